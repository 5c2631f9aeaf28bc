//! CR0 as L1 shares it with L2 through its guest/host mask and read shadow: L2 reads an owned bit
//! from the shadow, its write of an owned bit that differs from the shadow is L1's exit 28 (and
//! changes nothing), and once L1 gives the bit up L2 writes it without an exit and vmcs12's guest
//! CR0 shows it after the next exit.

use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters};
use vmcs::{VmcsRead, VmcsWrite};

use crate::check;
use crate::l2::{expect, skip};

/// CR0.TS: a bit L2 may change freely (no fixed bit, nothing L0 owns).
const TS: u64 = 1 << 3;

core::arch::global_asm!(
    r#"
    .section .text.l2_cr, "ax"
    .global l2_cr0
// RBX: CR0 as L2 reads it; then L2 clears TS (MOV from RDX), then sets it, then reports.
l2_cr0:
    mov rbx, cr0
    mov rdx, rbx
    and rdx, -9
    mov cr0, rdx
    mov rdx, cr0
    or rdx, 8
    mov cr0, rdx
    mov eax, 0x66
    vmcall
    jmp l2_cr0
"#
);

unsafe extern "C" {
    fn l2_cr0();
}

pub fn run(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters) {
    let cr0 = v.read_raw(F::GUEST_CR0.raw()).unwrap_or(0) & !TS;
    // L1 owns TS and shows L2 TS = 1, while L2's real CR0.TS is 0.
    let w = [
        (F::GUEST_RIP.raw(), l2_cr0 as *const () as u64),
        (F::GUEST_RFLAGS.raw(), 0x2),
        (F::GUEST_CR0.raw(), cr0),
        (F::CR0_GUEST_HOST_MASK.raw(), TS),
        (F::CR0_READ_SHADOW.raw(), cr0 | TS),
    ]
    .iter()
    .try_for_each(|&(f, val)| v.write_raw(f, val));
    check(w.is_ok(), format_args!("CR0.TS owned by L1, shadow 1, L2's 0: {w:?}"));
    let got = expect(v, regs, true, R::CrAccess, "L2 clears an owned CR0 bit the shadow sets");
    let q = v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(0);
    let now = v.read_raw(F::GUEST_CR0.raw()).unwrap_or(0);
    check(
        got && q == 0x200 && regs.rbx & TS != 0 && now == cr0,
        format_args!(
            "MOV to CR0 from RDX: qualification {q:#x} (want 0x200), L2 read TS {} from the shadow, guest CR0 {now:#x} unchanged",
            regs.rbx >> 3 & 1
        ),
    );
    skip(v);
    let _ = v.write_raw(F::CR0_GUEST_HOST_MASK.raw(), 0);
    expect(v, regs, true, R::Vmcall, "L2 sets CR0.TS, which L1 no longer owns");
    let now = v.read_raw(F::GUEST_CR0.raw()).unwrap_or(0);
    check(now == cr0 | TS, format_args!("vmcs12's guest CR0 {now:#x} (want {:#x}: L2's write)", cr0 | TS));
    let _ = v.write_raw(F::GUEST_CR0.raw(), cr0);
}
