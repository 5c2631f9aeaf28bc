use vmcs_derive::VmcsFields;

#[derive(VmcsFields)]
struct Tuple(u64, u32);

#[derive(VmcsFields)]
enum Exit {
    Reason,
}

fn main() {}
