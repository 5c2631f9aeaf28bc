//! VMLAUNCH/VMRESUME (errors 4, 5, 7, 8, 26, VMfailInvalid, entry failure 33) and INVEPT/INVVPID
//! (#UD without the capability, types, descriptors, error 28).

mod common;

use common::*;
use vmcs::caps::{Cap, Capabilities};
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs_nested_vmx::vmx::{Invalidation, Outcome};

const UD: InsnResult = InsnResult::Fault { vector: 6, error_code: None };

fn launch(w: &mut World, launch: bool) -> (Outcome, InsnResult) {
    let o = w.exec(if launch { R::Vmlaunch } else { R::Vmresume }, 0, 0);
    (o, w.result())
}

#[test]
fn a_valid_vmcs12_enters_l2_without_retiring_the_instruction() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    assert_eq!(launch(&mut w, true), (Outcome::EnterL2 { launch: true }, InsnResult::NotRetired));
    // L0 records the launch at the nested exit; then VMLAUNCH is error 4 and VMRESUME enters.
    w.nested.current_mut().vmcs12.inner_mut().launch_state = 1;
    assert_eq!(launch(&mut w, true).1, InsnResult::FailValid(4));
    assert_eq!(launch(&mut w, false).0, Outcome::EnterL2 { launch: false });
}

#[test]
fn vmresume_of_a_clear_vmcs_is_error_5() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    assert_eq!(launch(&mut w, false).1, InsnResult::FailValid(5));
}

#[test]
fn launch_without_current_vmcs_or_on_a_shadow_vmcs_is_vmfail_invalid() {
    let mut w = World::new();
    vmxon(&mut w);
    assert_eq!(launch(&mut w, true).1, InsnResult::FailInvalid);
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    w.nested.current_mut().vmcs12.inner_mut().hdr |= 1 << 31;
    assert_eq!(launch(&mut w, true).1, InsnResult::FailInvalid);
}

#[test]
fn blocking_by_mov_ss_is_error_26() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    w.set(F::GUEST_INTERRUPTIBILITY_INFO.raw(), 2);
    assert_eq!(launch(&mut w, true).1, InsnResult::FailValid(26));
    // Blocking by STI does not stop the entry.
    w.set(F::GUEST_INTERRUPTIBILITY_INFO.raw(), 1);
    assert_eq!(launch(&mut w, true).0, Outcome::EnterL2 { launch: true });
}

#[test]
fn invalid_controls_are_error_7() {
    type Value = fn(&World) -> u64;
    let cases: [(u64, Value); 5] = [
        // A control L1's MSRs do not allow (bit 17 of the primary controls: tertiary).
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), |w| adjust(w, 0x48e, 0) | 1 << 17),
        // A must-be-1 pin control cleared.
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), |_| 0),
        (F::CR3_TARGET_COUNT.raw(), |_| 1),
        // A VM-entry MSR-load list not 16-byte aligned.
        (F::VM_ENTRY_MSR_LOAD_ADDR.raw(), |_| 0x3008),
        // Valid, NMI type with vector 3.
        (F::VM_ENTRY_INTR_INFO_FIELD.raw(), |_| 1 << 31 | 2 << 8 | 3),
    ];
    for (field, value) in cases {
        let mut w = World::new();
        vmxon_and_load(&mut w);
        valid_vmcs12(&mut w);
        let v = value(&w);
        assert_eq!(vmwrite(&mut w, F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 1), InsnResult::Succeed);
        assert_eq!(vmwrite(&mut w, F::VM_ENTRY_MSR_LOAD_ADDR.raw(), 0x3000), InsnResult::Succeed);
        assert_eq!(vmwrite(&mut w, field, v), InsnResult::Succeed);
        assert_eq!(launch(&mut w, true).1, InsnResult::FailValid(7), "{field:#x} = {v:#x}");
        let rule = w.nested.last_entry_failure().unwrap().rule;
        assert_eq!(rule.outcome(), vmcs::entry::Outcome::VmFailValid(7), "{}", rule.name());
    }
}

#[test]
fn invalid_host_state_is_error_8() {
    let cases = [
        (F::HOST_TR_SELECTOR.raw(), 0),
        (F::HOST_CS_SELECTOR.raw(), 0x0b),
        (F::HOST_CR4.raw(), 0x20),
        (F::HOST_RIP.raw(), 0x8000_0000_0000),
        (F::HOST_GDTR_BASE.raw(), 0x0000_8000_0000_0000),
    ];
    for (field, v) in cases {
        let mut w = World::new();
        vmxon_and_load(&mut w);
        valid_vmcs12(&mut w);
        assert_eq!(vmwrite(&mut w, field, v), InsnResult::Succeed);
        assert_eq!(launch(&mut w, true).1, InsnResult::FailValid(8), "{field:#x} = {v:#x}");
    }
    // The host address-space size must match L1's own mode (L1 is in long mode here).
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    let exit = adjust(&w, 0x48f, 0);
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_CONTROLS.raw(), exit), InsnResult::Succeed);
    let entry = adjust(&w, 0x490, 0);
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_CONTROLS.raw(), entry), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::GUEST_CR4.raw(), 0x2020), InsnResult::Succeed);
    assert_eq!(launch(&mut w, true).1, InsnResult::FailValid(8));
}

#[test]
fn invalid_guest_state_is_an_entry_failure_exit() {
    let cases = [(F::GUEST_RFLAGS.raw(), 0, 0), (F::GUEST_CR4.raw(), 0x20, 0), (F::VMCS_LINK_POINTER.raw(), 0x5000, 4)];
    for (field, v, qualification) in cases {
        let mut w = World::new();
        vmxon_and_load(&mut w);
        valid_vmcs12(&mut w);
        assert_eq!(vmwrite(&mut w, field, v), InsnResult::Succeed);
        let (o, r) = launch(&mut w, true);
        assert_eq!(
            o,
            Outcome::EntryFailed { reason: VmExitReason::from_bits(0x8000_0021), qualification },
            "{field:#x}"
        );
        assert_eq!(r, InsnResult::NotRetired);
    }
}

fn inv(w: &mut World, reason: R, kind: u64, desc: [u64; 2]) -> (Outcome, InsnResult) {
    w.cpu.gprs[1] = kind;
    w.cpu.gprs[3] = OPERAND;
    w.mem.put64(OPERAND, desc[0]);
    w.mem.put64(OPERAND + 8, desc[1]);
    let o = w.exec(reason, mem_info_reg2(3, 1), 0);
    (o, w.result())
}

const EPTP: u64 = 0x40_0000 | 3 << 3 | 6;

#[test]
fn invept_types_and_eptp() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(
        inv(&mut w, R::Invept, 1, [EPTP, 0]),
        (Outcome::Invalidate(Invalidation::EptSingle { eptp: EPTP }), InsnResult::Succeed)
    );
    assert_eq!(inv(&mut w, R::Invept, 2, [0, 0]).0, Outcome::Invalidate(Invalidation::EptAll));
    assert_eq!(inv(&mut w, R::Invept, 0, [EPTP, 0]).1, InsnResult::FailValid(28));
    assert_eq!(inv(&mut w, R::Invept, 3, [EPTP, 0]).1, InsnResult::FailValid(28));
    // Single-context with an EPTP L1 may not use: UC memory type, 5-level walk.
    assert_eq!(inv(&mut w, R::Invept, 1, [EPTP & !7, 0]).1, InsnResult::FailValid(28));
    assert_eq!(inv(&mut w, R::Invept, 1, [EPTP + (1 << 3), 0]).1, InsnResult::FailValid(28));
    // The descriptor is read (and faults) even for all-context.
    w.cpu.gprs[3] = 0x50_0000;
    w.cpu.gprs[1] = 2;
    w.exec(R::Invept, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(0) });
}

#[test]
fn invvpid_types_and_descriptor() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    let ok = |o: (Outcome, InsnResult)| o.0;
    assert_eq!(
        ok(inv(&mut w, R::Invvpid, 0, [5, 0x1000])),
        Outcome::Invalidate(Invalidation::VpidAddress { vpid: 5, address: 0x1000 })
    );
    assert_eq!(ok(inv(&mut w, R::Invvpid, 1, [5, 0])), Outcome::Invalidate(Invalidation::VpidSingle { vpid: 5 }));
    assert_eq!(ok(inv(&mut w, R::Invvpid, 2, [0, 0])), Outcome::Invalidate(Invalidation::VpidAll));
    assert_eq!(
        ok(inv(&mut w, R::Invvpid, 3, [5, 0])),
        Outcome::Invalidate(Invalidation::VpidSingleRetainingGlobals { vpid: 5 })
    );
    for (kind, desc) in [(4, [5, 0]), (1, [0, 0]), (1, [1 << 16 | 5, 0]), (0, [5, 0x8000_0000_0000])] {
        assert_eq!(inv(&mut w, R::Invvpid, kind, desc).1, InsnResult::FailValid(28), "type {kind} {desc:x?}");
    }
}

#[test]
fn invept_invvpid_without_the_capability_are_ud_even_outside_vmx_operation() {
    let host = bochs_caps("corei7_skylake_x");
    let offer = vmcs_nested_vmx::caps::Offer { from_host: &[Cap::ProcActivateSecondaryControls], emulated: EMULATED };
    let caps = vmcs_nested_vmx::caps::L1Caps::new(&host, &offer);
    assert!(!caps.caps().has(Cap::Proc2EnableEpt));
    let mut w = World::with_caps(caps);
    assert_eq!(inv(&mut w, R::Invept, 2, [0, 0]).1, UD);
    assert_eq!(inv(&mut w, R::Invvpid, 2, [0, 0]).1, UD);
    // With the capability but outside VMX operation: #UD too, from the permission check.
    let mut w = World::new();
    assert_eq!(inv(&mut w, R::Invept, 2, [0, 0]).1, UD);
    // At CPL 3 in VMX operation: #GP(0).
    vmxon(&mut w);
    w.set(F::GUEST_SS_AR_BYTES.raw(), AR_DATA | 3 << 5);
    assert_eq!(inv(&mut w, R::Invvpid, 2, [0, 0]).1, InsnResult::Fault { vector: 13, error_code: Some(0) });
}
