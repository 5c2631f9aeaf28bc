use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
struct ExitInfo {
    vm_exit_reson: u32,
    #[vmcs(field = "EXIT_QUALIFCATION")]
    qualification: u64,
}

fn main() {}
