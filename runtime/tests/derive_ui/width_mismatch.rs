use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
struct Host {
    host_rip: u32,
    host_cs_selector: u32,
    #[vmcs(field = "VM_EXIT_REASON")]
    reason: usize,
}

fn main() {}
