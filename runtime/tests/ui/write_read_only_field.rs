use vmcs::{SoftwareVmcs, Vmcs12, fields};

fn main() {
    let mut v = Vmcs12::zeroed();
    let _ = v.set(fields::VM_EXIT_REASON, 18u32);
}
