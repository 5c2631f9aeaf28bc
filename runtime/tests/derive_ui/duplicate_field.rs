use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
struct Host {
    host_rip: u64,
    #[vmcs(field = "HOST_RIP")]
    rip: u64,
}

fn main() {}
