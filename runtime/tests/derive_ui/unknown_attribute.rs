use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
#[vmcs(stor)]
struct Host {
    #[vmcs(name = "HOST_RIP")]
    rip: u64,
}

fn main() {}
