//! Two VMCSs in turn, as a nested hypervisor switches vmcs01 and vmcs02 (`vmcs::hw::Vmcs`):
//! VMPTRLD of one leaves the other active with its contents and launch state, VMCLEAR of a VMCS
//! that is not current leaves the current one current, and the launch state follows VMCLEAR and
//! VMLAUNCH as the SDM says. At every step VMPTRST agrees with the pointer the token recorded,
//! and each `Vmcs`'s launch state with what VMLAUNCH/VMRESUME then do.

use vmcs::exit::ExitReason;
use vmcs::fields as F;
use vmcs::hw::{GuestRegisters, VmInstructionError, VmxError, VmxOperation};
use vmcs::{VmcsRead, VmcsWrite};

use crate::rt::check;

/// VMPTRST equals `want` and the token's own record of the current VMCS.
fn pointer_is(op: &VmxOperation<'_>, want: Option<u64>, what: &str) {
    let p = op.current_vmcs_pointer();
    let recorded = op.current();
    check(
        p == Ok(want.unwrap_or(u64::MAX)) && recorded == want,
        format_args!("{what}: VMPTRST {p:x?}, recorded {recorded:x?}, want {want:x?}"),
    );
}

/// `launched` is the guest VMCS, which the suite launched and resumed to an HLT exit; `other` is
/// a clear VMCS that was never entered. Both are inactive or current, never cleared since.
pub fn run(op: &mut VmxOperation<'_>, launched: &mut vmcs::hw::Vmcs, other: &mut vmcs::hw::Vmcs, entry: u64) {
    let rip = F::GUEST_RIP;
    check(launched.is_launched(), format_args!("the launched VMCS's launch state: launched"));
    let kept = match op.load(launched) {
        Ok(v) => v.read(rip).unwrap_or(0),
        Err(e) => return check(false, format_args!("VMPTRLD of the launched VMCS: {e:?}")),
    };
    match op.load(other) {
        Ok(mut v) => {
            let w = v.write(rip, 0x5a5a);
            check(w.is_ok() && !v.is_launched(), format_args!("VMWRITE into the other VMCS: {w:?}"));
        }
        Err(e) => return check(false, format_args!("VMPTRLD of the other VMCS: {e:?}")),
    }
    pointer_is(op, Some(other.phys()), "VMPTRLD of the other VMCS");

    // Back to the launched VMCS with VMPTRLD alone: contents and launch state kept.
    let mut regs = GuestRegisters::default();
    match op.load(launched) {
        Ok(mut v) => {
            let got = v.read(rip);
            // SAFETY: the VMCS is launched: VMLAUNCH fails before entering the guest.
            let r = unsafe { v.launch(&mut regs) };
            check(
                got == Ok(kept) && r == Err(VmxError::FailValid(VmInstructionError::VmlaunchNonClearVmcs)),
                format_args!("reloaded: GUEST_RIP {got:x?} ({kept:#x}), VMLAUNCH {r:?} (error 4)"),
            );
        }
        Err(e) => return check(false, format_args!("VMPTRLD of the launched VMCS again: {e:?}")),
    }
    pointer_is(op, Some(launched.phys()), "VMPTRLD of the launched VMCS again");

    // VMCLEAR of the launched VMCS while the other is current.
    match op.load(other) {
        Ok(v) => check(v.read(rip) == Ok(0x5a5a), format_args!("the other VMCS kept its GUEST_RIP")),
        Err(e) => return check(false, format_args!("VMPTRLD of the other VMCS again: {e:?}")),
    }
    let c = op.clear(launched);
    check(c.is_ok() && !launched.is_launched() && !launched.is_active(), format_args!("VMCLEAR: {c:?}"));
    pointer_is(op, Some(other.phys()), "VMCLEAR of a VMCS that is not current");
    {
        let Ok(mut v) = op.load(launched) else {
            return check(false, format_args!("VMPTRLD after VMCLEAR"));
        };
        let got = v.read(rip);
        check(got == Ok(kept), format_args!("VMCLEAR wrote the VMCS back: GUEST_RIP {got:x?} ({kept:#x})"));
        // SAFETY: the VMCS is clear: VMRESUME fails before entering the guest.
        let r = unsafe { v.resume(&mut regs) };
        check(
            r == Err(VmxError::FailValid(VmInstructionError::VmresumeNonLaunchedVmcs)) && !v.is_launched(),
            format_args!("VMRESUME after VMCLEAR: {r:?} (error 5)"),
        );
        // A clear VMCS enters with VMLAUNCH again (the guest starts over at its VMCALL).
        let _ = v.write(rip, entry);
        // SAFETY: the suite's host state describes this context; the guest runs VMCALL first.
        let r = unsafe { v.launch(&mut regs) };
        check(
            matches!(r, Ok(e) if e.basic() == Some(ExitReason::Vmcall)) && v.is_launched(),
            format_args!("VMLAUNCH after VMCLEAR: exit {r:?}, launched {}", v.is_launched()),
        );
    }
    // The handle is gone; the VMCS is still current.
    pointer_is(op, Some(launched.phys()), "after the handle");
}
