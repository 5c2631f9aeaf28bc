use vmcs_derive::VmcsFields;

// Three different mistakes: all of them are reported, each at its own token.
#[derive(VmcsFields)]
#[vmcs(store)]
struct Host {
    host_rsp: u64,
    host_rpi: u64,
    host_cr3: u32,
    #[vmcs(field = "HOST_RSP")]
    stack: u64,
}

fn main() {
    // Code using the generated items adds no errors of its own.
    let mut v = vmcs::Vmcs12::zeroed();
    let host = Host::load(&v).unwrap();
    host.store(&mut v).unwrap();
    assert!(Host::ENCODINGS.is_empty());
}
