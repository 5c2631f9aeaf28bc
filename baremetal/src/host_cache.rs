//! `vmcs::hw`'s VM entry writes HOST_RSP and HOST_RIP only when they change (KVM's
//! vmx_update_host_rsp): entries from one place write nothing, VMCLEAR keeps what the VMCS holds,
//! and a VMWRITE of either field through the handle makes the next entry write it again, which
//! the entry differential relies on (it writes both, then launches).

use vmcs::exit::ExitReason;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, FpuState, GuestRegisters, Vmcs, VmxOperation};
use vmcs::{VmcsRead, VmcsWrite};

use crate::rt::check;

/// The guest entered at `entry` (its VMCALL) and back, always from this one place: whether it
/// came back with the VMCALL exit, and the VMWRITEs of HOST_RSP/HOST_RIP the entry made.
#[inline(never)]
fn round(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters, fpu: &mut FpuState, entry: u64) -> (bool, u64) {
    let before = v.host_state_writes();
    let resume = v.is_launched();
    let _ = v.write(F::GUEST_RIP, entry);
    // SAFETY: the suite's host state describes this context; the guest runs VMCALL first.
    let r = unsafe { v.run(regs, fpu, resume) };
    (matches!(r, Ok(e) if e.basic() == Some(ExitReason::Vmcall)), v.host_state_writes() - before)
}

/// `vmcs` is the suite's guest VMCS, current and launched, its guest starting at `entry`.
pub fn run(op: &mut VmxOperation<'_>, vmcs: &mut Vmcs, entry: u64) {
    let (mut regs, mut fpu) = (GuestRegisters::default(), FpuState::initial());
    {
        let Ok(mut v) = op.load(vmcs) else { return check(false, format_args!("host state: VMPTRLD")) };
        let (ok, _) = round(&mut v, &mut regs, &mut fpu, entry);
        let (again, writes) = round(&mut v, &mut regs, &mut fpu, entry);
        check(ok && again && writes == 0, format_args!("host state: an entry from the same place writes {writes} (0)"));
        let rsp = v.read(F::HOST_RSP).unwrap_or(0);
        let rip = v.read(F::HOST_RIP).unwrap_or(0);
        for (field, name, value) in [(F::HOST_RSP, "HOST_RSP", rsp), (F::HOST_RIP, "HOST_RIP", rip)] {
            let _ = v.write(field, value);
            let (ok, writes) = round(&mut v, &mut regs, &mut fpu, entry);
            check(
                ok && writes == 1,
                format_args!("host state: after a VMWRITE of {name} the entry writes {writes} (1)"),
            );
        }
        // A wrong HOST_RSP written through the handle: the entry puts its own back.
        let _ = v.write(F::HOST_RSP, rsp - 0x100);
        let (ok, writes) = round(&mut v, &mut regs, &mut fpu, entry);
        let now = v.read(F::HOST_RSP).unwrap_or(0);
        check(
            ok && writes == 1 && now == rsp,
            format_args!("host state: HOST_RSP {now:#x} ({rsp:#x}) after a wrong one, {writes} written (1)"),
        );
    }
    // VMCLEAR writes the VMCS to its region, VMPTRLD reads it back: HOST_RSP/HOST_RIP with it.
    let c = op.clear(vmcs);
    let Ok(mut v) = op.load(vmcs) else { return check(false, format_args!("host state: VMPTRLD after VMCLEAR")) };
    let (ok, writes) = round(&mut v, &mut regs, &mut fpu, entry);
    check(
        c.is_ok() && ok && writes == 0 && v.is_launched(),
        format_args!("host state: VMLAUNCH after VMCLEAR {c:?} writes {writes} (0)"),
    );
}
