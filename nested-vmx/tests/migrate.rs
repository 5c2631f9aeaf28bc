//! L1's VMX state as KVM_GET/SET_NESTED_STATE blobs, and vmcs12 through an older layout.

mod common;

use common::*;
use vmcs::fields as F;
use vmcs::layouts::vmcs12_base::Vmcs12Base;
use vmcs::nested_state::{KVM_STATE_NESTED_GUEST_MODE, VcpuContext};
use vmcs_nested_vmx::migrate::{MAX_STATE, Restored};
use vmcs_nested_vmx::vmx::{INVALID_POINTER, NestedVmx};

fn vcpu() -> VcpuContext {
    VcpuContext { maxphyaddr: 39, ..VcpuContext::default() }
}

#[test]
fn a_saved_state_restores_into_a_fresh_vcpu() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x4242), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::GUEST_SMBASE.raw(), 0x9_0000), InsnResult::Succeed);
    let mut blob = [0u8; MAX_STATE];
    let n = w.nested.save_state(true, false, &mut blob).unwrap();
    assert_eq!(n, MAX_STATE);
    let view = vmcs::nested_state::check(&blob[..n], &vcpu()).unwrap();
    assert_eq!(view.flags() & KVM_STATE_NESTED_GUEST_MODE, KVM_STATE_NESTED_GUEST_MODE);
    assert_eq!((view.vmx_header().vmxon_pa, view.vmx_header().vmcs12_pa), (VMXON_REGION, VMCS_A));
    let mut fresh = NestedVmx::new(*w.nested.caps());
    assert_eq!(fresh.restore_state(&blob[..n], &vcpu()), Ok(Restored { guest_mode: true, run_pending: false }));
    assert_eq!((fresh.vmxon_pointer(), fresh.current_pointer()), (Some(VMXON_REGION), VMCS_A));
    assert_eq!(fresh.current().get(F::GUEST_RIP.raw()), 0x4242);
    // The field vmcs12 lacks travels in the region's tail.
    w.nested = fresh;
    assert_eq!(vmread(&mut w, F::GUEST_SMBASE.raw()), Ok(0x9_0000));
}

#[test]
fn outside_vmx_operation_and_without_a_current_vmcs() {
    let w = World::new();
    let mut blob = [0u8; MAX_STATE];
    let n = w.nested.save_state(false, false, &mut blob).unwrap();
    let mut fresh = NestedVmx::new(*w.nested.caps());
    assert_eq!(fresh.restore_state(&blob[..n], &vcpu()), Ok(Restored { guest_mode: false, run_pending: false }));
    assert!(!fresh.vmxon());
    let mut w = World::new();
    vmxon(&mut w);
    let n = w.nested.save_state(false, false, &mut blob).unwrap();
    assert_eq!(n, vmcs::nested_state::HEADER_SIZE, "no vmcs12 area without a current VMCS");
    assert_eq!(fresh.restore_state(&blob[..n], &vcpu()), Ok(Restored { guest_mode: false, run_pending: false }));
    assert_eq!((fresh.vmxon_pointer(), fresh.current_pointer()), (Some(VMXON_REGION), INVALID_POINTER));
}

#[test]
fn kvms_rules_refuse_a_bad_blob() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    let mut blob = [0u8; MAX_STATE];
    let n = w.nested.save_state(true, false, &mut blob).unwrap();
    // A VMXON pointer beyond the destination's MAXPHYADDR.
    let small = VcpuContext { maxphyaddr: 20, ..vcpu() };
    let mut fresh = NestedVmx::new(*w.nested.caps());
    assert!(fresh.restore_state(&blob[..n], &small).is_err());
    assert!(!fresh.vmxon(), "nothing taken from a refused blob");
}

#[test]
fn through_the_base_layout_keeps_what_it_holds() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x1234), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::GUEST_CR3.raw(), 0x8000), InsnResult::Succeed);
    let t = w.nested.through_layout::<Vmcs12Base>();
    assert_eq!(w.nested.current().get(F::GUEST_RIP.raw()), 0x1234);
    assert_eq!(w.nested.current().get(F::GUEST_CR3.raw()), 0x8000);
    // vmcs12_base predates the TSC multiplier and the CET fields.
    assert!(t.lost.contains(&(F::TSC_MULTIPLIER.raw() as u32)), "{:x?}", t.lost);
    assert!(!t.lost.contains(&(F::GUEST_RIP.raw() as u32)));
}
