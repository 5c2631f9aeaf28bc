use vmcs::{VmcsWrite, Vmcs12, fields};

fn main() {
    let mut v = Vmcs12::zeroed();
    let selector: u64 = 0x10;
    let _ = v.write(fields::GUEST_CS_SELECTOR, selector);
}
