//! The kvm-bindings interop (feature `kvm-bindings`): the same rules on rust-vmm's buffer type.
#![cfg(feature = "kvm-bindings")]

use kvm_bindings::nested::KvmNestedStateBuffer;
use vmcs::nested_state::kvm_bindings_buffer::{as_bytes, check_buffer, to_buffer};
use vmcs::nested_state::{NestedStateBuilder, NestedStateError, VcpuContext};
use vmcs::{Vmcs12, VmcsRead, VmcsWrite, fields};

#[test]
fn buffer_layout_is_kvm_nested_state() {
    // struct kvm_nested_state: 128-byte header, then vmcs12 and shadow vmcs12 (4096 each).
    assert_eq!(size_of::<KvmNestedStateBuffer>(), 128 + 2 * 4096);
    let empty = KvmNestedStateBuffer::empty();
    assert_eq!(u32::from_le_bytes(as_bytes(&empty)[4..8].try_into().unwrap()), empty.size);
}

#[test]
fn round_trip_through_the_buffer() {
    let mut v = Vmcs12::zeroed();
    v.hdr = 0x11e5_7ed0;
    v.write(fields::GUEST_RIP, 0x1000).unwrap();
    let builder = NestedStateBuilder::new().vmxon_pa(0x10000).vmcs12_pa(0x20000).vmcs12(Some(v));
    let buffer = to_buffer(&builder).unwrap();
    assert_eq!(buffer.size, 4224);
    let state = check_buffer(&buffer, &VcpuContext::default()).unwrap();
    assert_eq!(state.vmcs12().unwrap().read(fields::GUEST_RIP), Ok(0x1000));
    // And the rules apply: the VMCS pointer may not be the VMXON pointer.
    let bad = to_buffer(&builder.vmcs12_pa(0x10000)).unwrap();
    assert_eq!(check_buffer(&bad, &VcpuContext::default()).err(), Some(NestedStateError::Vmcs12PaIsVmxonPa));
}
