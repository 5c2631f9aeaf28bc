//! The facts of an exit of L2: each exit-information field read from vmcs02 once, the others
//! only when the copy routines ask for them; the error codes and the guest-physical address only
//! where the SDM defines them; saving nested state while L2 runs takes L2's EFER from vmcs02.

mod common;

use common::nested::*;
use common::*;
use vmcs::controls::VmExitControls as Exit;
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::{VmcsRead, VmcsWrite};
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::exit_facts::ExitFacts;

#[test]
fn exit_information_is_read_once_and_the_rest_through() {
    let mut v02 = vmcs02();
    l2_exit(&mut v02, R::Cpuid.number() as u32, 0x4002);
    let c = Counted::new(&mut v02);
    let facts = ExitFacts::new(&c, VmExitReason::from_bits(R::Cpuid.number() as u32));
    assert_eq!(facts.read_raw(F::VM_EXIT_REASON.raw()), Ok(R::Cpuid.number() as u64));
    for _ in 0..3 {
        assert_eq!(facts.read_raw(F::EXIT_QUALIFICATION.raw()), Ok(0x55));
        assert_eq!(facts.read_raw(F::GUEST_RIP.raw()), Ok(0x4002));
    }
    // The reason came with the exit; the qualification once; guest state every time.
    assert_eq!(c.counts().reads, 1 + 3);
}

/// vmcs12 after L2's exit `reason`, with vmcs02's exit information as `fields` leave it.
fn reflect(reason: R, fields: &[(u64, u64)]) -> World {
    let mut w = ready();
    let mut v02 = enter(&mut w, true);
    l2_exit(&mut v02, reason.number() as u32, 0x4010);
    for &(f, v) in fields {
        v02.write_raw(f, v).unwrap();
    }
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    w
}

#[test]
fn error_codes_and_the_guest_physical_address_only_where_defined() {
    let stale = [
        (F::VM_EXIT_INTR_ERROR_CODE.raw(), 0x77),
        (F::IDT_VECTORING_ERROR_CODE.raw(), 0x66),
        (F::GUEST_PHYSICAL_ADDRESS.raw(), 0x5000),
    ];
    let w = reflect(R::Cpuid, &stale);
    let v12 = |f: u64| w.nested.current().get(f);
    assert_eq!(v12(F::VM_EXIT_INTR_ERROR_CODE.raw()), 0, "no valid event with an error code");
    assert_eq!(v12(F::IDT_VECTORING_ERROR_CODE.raw()), 0);
    assert_eq!(v12(F::GUEST_PHYSICAL_ADDRESS.raw()), 0, "undefined for CPUID");
    // A #GP(0x18) raised while delivering a #NP(0x20): both error codes are defined.
    let gp = 1 << 31 | 1 << 11 | 3 << 8 | 13;
    let np = 1 << 31 | 1 << 11 | 3 << 8 | 11;
    let w = reflect(
        R::ExceptionNmi,
        &[
            (F::VM_EXIT_INTR_INFO.raw(), gp),
            (F::VM_EXIT_INTR_ERROR_CODE.raw(), 0x18),
            (F::IDT_VECTORING_INFO_FIELD.raw(), np),
            (F::IDT_VECTORING_ERROR_CODE.raw(), 0x20),
        ],
    );
    let v12 = |f: u64| w.nested.current().get(f);
    assert_eq!((v12(F::VM_EXIT_INTR_ERROR_CODE.raw()), v12(F::IDT_VECTORING_ERROR_CODE.raw())), (0x18, 0x20));
    let w = reflect(R::EptViolation, &stale);
    assert_eq!(w.nested.current().get(F::GUEST_PHYSICAL_ADDRESS.raw()), 0x5000);
}

#[test]
fn saving_while_l2_runs_takes_l2s_efer_from_vmcs02() {
    let mut w = ready();
    let save = Exit::SAVE_IA32_EFER.bits() as u64;
    let exit = w.nested.current().get(F::VM_EXIT_CONTROLS.raw()) | save;
    let exit = adjust(&w, 0x48f, exit);
    assert_eq!(exit & save, save, "L1 may save EFER");
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_CONTROLS.raw(), exit), InsnResult::Succeed);
    let mut v02 = enter(&mut w, true);
    // L2 cleared EFER.SCE since its entry.
    v02.write_raw(F::GUEST_IA32_EFER.raw(), 0xd00).unwrap();
    w.nested.sync_for_save(&v02, true, 0xd01).unwrap();
    assert_eq!(w.nested.current().get(F::GUEST_IA32_EFER.raw()), 0xd00);
}
