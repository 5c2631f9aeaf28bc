//! L1's IA-32e mode is L0's vCPU state in VMX operation (as KVM keeps EFER): read from vmcs01
//! once, then known, until a nested VM exit loads another host mode or VMXOFF ends it.

mod common;

use common::nested::*;
use common::*;
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs_nested_vmx::vmx::Outcome;

const WIDE: u64 = 0x1_2345_6789;

#[test]
fn in_vmx_operation_the_mode_is_not_read_again() {
    let mut w = ready();
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), WIDE), InsnResult::Succeed);
    // vmcs01's IA-32e control cleared behind L0's back: the emulation still knows L1 is 64-bit.
    w.set(F::VM_ENTRY_CONTROLS.raw(), 0);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(WIDE));
    // A nested round trip keeps it (the entry checks make vmcs12's host address-space size
    // L1's own mode): L1's host state loaded without reading the control either.
    let mut v02 = enter(&mut w, true);
    l2_exit(&mut v02, R::Vmcall.number() as u32, 0x4010);
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    w.nested.load_l1_host_state(&mut w.vmcs01).unwrap();
    assert_eq!(w.get(F::VM_ENTRY_CONTROLS.raw()), 0, "known, so neither read nor rewritten");
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0x4010));
    // After VMXOFF nothing is known: the next emulation reads vmcs01 again (32-bit now).
    assert_eq!(w.exec(R::Vmxoff, 0, 0), Outcome::ResumeL1);
    w.set(F::GUEST_CS_AR_BYTES.raw(), AR_CODE32);
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.exec(R::Vmread, reg_info(2, 1), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 6, error_code: None }, "#UD outside VMX operation");
    assert_eq!(w.get(F::GUEST_RIP.raw()), RIP);
}
