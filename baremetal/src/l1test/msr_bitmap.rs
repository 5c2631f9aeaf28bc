//! L1's MSR bitmaps route L2's RDMSR/WRMSR: an access whose bit is set is L1's exit 31/32 with
//! the MSR in RCX; one L1 does not intercept L0 performs for L2 (here WRMSR of SYSENTER_ESP,
//! which vmcs02 holds and vmcs12 shows after the next exit).

use vmcs::controls::CpuBasedVmExecControl as Proc;
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters};
use vmcs::{VmcsRead, VmcsWrite};

use crate::check;
use crate::cpu;
use crate::l2::{expect, skip};

const SYSENTER_CS: u64 = 0x174;
/// What L2 writes into SYSENTER_ESP.
const ESP: u64 = 0x1234_5000;

core::arch::global_asm!(
    r#"
    .section .text.l2_msr, "ax"
    .global l2_msr
// WRMSR SYSENTER_ESP (not intercepted), RDMSR SYSENTER_CS (intercepted), then report.
l2_msr:
    mov ecx, 0x175
    mov eax, {esp}
    xor edx, edx
    wrmsr
    mov ecx, 0x174
    rdmsr
    mov eax, 0x77
    vmcall
    jmp l2_msr
"#,
    esp = const ESP,
);

unsafe extern "C" {
    fn l2_msr();
}

#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut BITMAP: Page = Page([0; 4096]);

pub fn run(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters) {
    // SAFETY: single-threaded; the bitmap is written before L2 runs. Read bitmap for low MSRs
    // at offset 0: bit SYSENTER_CS.
    unsafe { cpu::unique(&raw mut BITMAP).0[SYSENTER_CS as usize / 8] |= 1 << (SYSENTER_CS % 8) };
    let proc = v.read_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw()).unwrap_or(0);
    let w = [
        (F::GUEST_RIP.raw(), l2_msr as *const () as u64),
        (F::GUEST_SYSENTER_ESP.raw(), 0),
        (F::MSR_BITMAP.raw(), (&raw const BITMAP) as u64),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc | Proc::USE_MSR_BITMAPS.bits() as u64),
    ]
    .iter()
    .try_for_each(|&(f, val)| v.write_raw(f, val));
    check(w.is_ok(), format_args!("an MSR bitmap intercepting RDMSR of SYSENTER_CS: {w:?}"));
    let got = expect(v, regs, true, R::MsrRead, "WRMSR SYSENTER_ESP (not intercepted), then RDMSR SYSENTER_CS");
    let esp = v.read_raw(F::GUEST_SYSENTER_ESP.raw());
    check(
        got && regs.rcx == SYSENTER_CS && esp == Ok(ESP),
        format_args!("the RDMSR exit names RCX {:#x}; L0 did L2's WRMSR: vmcs12 SYSENTER_ESP {esp:x?}", regs.rcx),
    );
    skip(v);
    // L1 emulates the RDMSR with a value of its own; L2 goes on to report.
    (regs.rax, regs.rdx) = (0x10, 0);
    expect(v, regs, true, R::Vmcall, "L2 after L1's emulated RDMSR");
    let _ = v.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc);
}
