//! A real interrupt while L2 runs: the local APIC's timer, which L1 owns (L0 maps the local APIC
//! to the machine and leaves interrupts to L1). With external-interrupt exiting and
//! acknowledge-interrupt-on-exit in vmcs12, the interrupt is L1's VM exit 1 with its vector in
//! VM_EXIT_INTR_INFO; with external-interrupt exiting off, L2's own handler takes it.

use vmcs::controls::{PinBasedVmExecControl as Pin, VmExitControls as Exit};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters};
use vmcs::{VmcsRead, VmcsWrite};

use crate::check;

/// The timer's vector (an interrupt gate in L2's IDT).
const VECTOR: u8 = 0x30;
/// The xAPIC's registers, at its default base (identity-mapped by L1's paging).
const APIC: u64 = 0xfee0_0000;
const EOI: u64 = 0xb0;
const SPURIOUS: u64 = 0xf0;
const LVT_TIMER: u64 = 0x320;
const INITIAL_COUNT: u64 = 0x380;
const DIVIDE: u64 = 0x3e0;

core::arch::global_asm!(
    r#"
    .section .text.l2_irq, "ax"
    .global l2_wait_irq, l2_irq
// L2 enables interrupts and spins until its handler has counted one (R13), then reports.
l2_wait_irq:
    sti
1:  test r13, r13
    jz 1b
    cli
    mov eax, 0x55
    vmcall
    jmp l2_wait_irq
l2_irq:
    inc r13
    push rax
    movabs rax, 0xfee000b0
    mov dword ptr [rax], 0
    pop rax
    iretq
"#
);

unsafe extern "C" {
    fn l2_wait_irq();
    fn l2_irq();
}

fn apic_write(reg: u64, value: u32) {
    // SAFETY: the local APIC's MMIO page, mapped by L1's paging and L0's EPT to the machine's.
    unsafe { core::ptr::write_volatile((APIC + reg) as *mut u32, value) };
}

/// A one-shot timer interrupt at VECTOR, soon.
fn arm_timer() {
    apic_write(SPURIOUS, 0x1ff);
    apic_write(DIVIDE, 0xb);
    apic_write(LVT_TIMER, VECTOR as u32);
    apic_write(INITIAL_COUNT, 20_000);
}

/// L2 at `l2_wait_irq` with interrupts off and no interrupt counted, `pin` and `exit` in vmcs12.
fn restart(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters, pin: u64, exit: u64) -> bool {
    regs.r13 = 0;
    let w = [
        (F::GUEST_RIP.raw(), l2_wait_irq as *const () as u64),
        (F::GUEST_RFLAGS.raw(), 0x2),
        (F::GUEST_INTERRUPTIBILITY_INFO.raw(), 0),
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin),
        (F::VM_EXIT_CONTROLS.raw(), exit),
    ]
    .iter()
    .try_for_each(|&(f, val)| v.write_raw(f, val));
    check(w.is_ok(), format_args!("L2 waiting for an interrupt: {w:?}"));
    w.is_ok()
}

pub fn run(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters) {
    crate::l2::gate(VECTOR as usize, l2_irq as *const () as u64);
    let pin = v.read_raw(F::PIN_BASED_VM_EXEC_CONTROL.raw()).unwrap_or(0);
    let exit = v.read_raw(F::VM_EXIT_CONTROLS.raw()).unwrap_or(0);
    let (ext, ack) = (Pin::EXTERNAL_INTERRUPT_EXITING.bits() as u64, Exit::ACK_INTERRUPT_ON_EXIT.bits() as u64);
    if !restart(v, regs, pin | ext, exit | ack) {
        return;
    }
    arm_timer();
    let got = crate::l2::expect(v, regs, true, R::ExternalInterrupt, "the APIC timer, external-interrupt exiting");
    let info = v.read_raw(F::VM_EXIT_INTR_INFO.raw()).unwrap_or(0);
    check(
        got && info == 0x8000_0000 | VECTOR as u64 && regs.r13 == 0,
        format_args!("acknowledged at the exit: interruption information {info:#x}, L2 handled {}", regs.r13),
    );
    // The exit acknowledged it: L1 ends it in the APIC as its handler would.
    apic_write(EOI, 0);
    if !restart(v, regs, pin, exit) {
        return;
    }
    arm_timer();
    crate::l2::expect(v, regs, true, R::Vmcall, "the APIC timer again, delivered to L2");
    check(
        regs.rax == 0x55 && regs.r13 == 1,
        format_args!("L2's handler took it: marker {:#x}, interrupts {}", regs.rax, regs.r13),
    );
}
