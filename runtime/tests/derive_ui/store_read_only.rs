use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
#[vmcs(store)]
struct Mixed {
    host_rip: u64,
    vm_exit_reason: u32,
}

fn main() {}
