use vmcs::{VmcsWrite, Vmcs12, fields};

fn main() {
    let mut v = Vmcs12::zeroed();
    let _ = v.write(fields::VM_EXIT_REASON, 18u32);
}
