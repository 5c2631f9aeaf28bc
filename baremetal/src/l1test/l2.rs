//! An L2 that L1 steers through its controls, changing them between entries: each of L2's steps
//! exits to L1 or not depending on what L1 set last, and L1 checks the exit it gets.
//!
//! Last, vmcs12's MSR lists: loaded at entry, stored and loaded at exit, an entry failing on one.
//!
//! L2 shares L1's page tables and GDT and has an IDT of its own, whose #UD and #PF handlers count
//! (R15, R14) and skip the 2-byte faulting instruction.

use vmcs::controls::{
    Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin, VmEntryControls as Entry,
    VmExitControls as Exit,
};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters, VmxOperation, VmxRegion};
use vmcs::{VmcsRead, VmcsWrite};

use crate::{check, cpu};

core::arch::global_asm!(
    r#"
    .section .text.l2, "ax"
    .global l2_entry, l2_after_sti_nop
l2_entry:
    xor eax, eax
    cpuid
    ud2
    ud2
    mov eax, 0x33
    vmcall
    movabs rdi, 0xffff800000000000
    mov al, [rdi]
    mov al, [rdi]
    mov eax, 0x44
    vmcall
    out 0x81, al
    out 0x80, al
    mov eax, 0x66
    vmcall
    sti
    nop
l2_after_sti_nop:
    cli
    hlt
    jmp l2_entry

    .global l2_ud, l2_pf
l2_ud:
    inc r15
    add qword ptr [rsp], 2
    iretq
l2_pf:
    add rsp, 8
    inc r14
    add qword ptr [rsp], 2
    iretq
"#
);

unsafe extern "C" {
    fn l2_entry();
    static l2_after_sti_nop: u8;
    fn l2_ud();
    fn l2_pf();
}

/// L2's IDT: its 32 exceptions and the interrupt vectors up to 63 (irq.rs uses one).
#[repr(C, align(16))]
struct Idt([u64; 128]);
static mut L2_IDT: Idt = Idt([0; 128]);
#[repr(C, align(16))]
struct Stack([u8; 8192]);
static mut L2_STACK: Stack = Stack([0; 8192]);
#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut IO_A: Page = Page([0; 4096]);
static mut IO_B: Page = Page([0; 4096]);
static mut VMCS: VmxRegion = VmxRegion::new();

pub fn gate(vector: usize, handler: u64) {
    // SAFETY: single-threaded; L2's IDT is written before L2 runs.
    unsafe {
        let idt = &raw mut L2_IDT;
        (*idt).0[2 * vector] =
            (handler & 0xffff) | (cpu::CODE_SEL as u64) << 16 | 0x8e << 40 | (handler >> 16 & 0xffff) << 48;
        (*idt).0[2 * vector + 1] = handler >> 32;
    }
}

/// A 64-bit guest sharing this context, with L2's IDT and stack; the controls: HLT exiting, I/O
/// bitmaps (port 0x80 intercepted, 0x81 not), #UD intercepted, every #PF intercepted.
fn setup(v: &mut CurrentVmcs<'_>, caps: &vmcs::caps::VmxCaps) -> usize {
    gate(6, l2_ud as *const () as u64);
    gate(14, l2_pf as *const () as u64);
    // SAFETY: single-threaded; the bitmaps are written before L2 runs.
    unsafe { cpu::unique(&raw mut IO_A).0[0x80 / 8] |= 1 << (0x80 % 8) };
    let pin = Pin::adjust(caps, Pin::empty(), Pin::empty());
    let proc = Proc::adjust(caps, Proc::HLT_EXITING | Proc::USE_IO_BITMAPS, Proc::empty());
    let exit = Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE, Exit::empty());
    let entry = Entry::adjust(caps, Entry::IA32E_MODE_GUEST, Entry::empty());
    let (Ok(pin), Ok(proc), Ok(exit), Ok(entry)) = (pin, proc, exit, entry) else {
        check(false, format_args!("controls: {pin:?} {proc:?} {exit:?} {entry:?}"));
        return 1;
    };
    let (cr0, cr3, cr4) = (cpu::cr0(), cpu::cr3(), cpu::cr4());
    let (cs, ds, tr) = (cpu::CODE_SEL as u64, cpu::DATA_SEL as u64, cpu::TSS_SEL as u64);
    let writes = [
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin.to_bits()),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc.to_bits()),
        (F::VM_EXIT_CONTROLS.raw(), exit.to_bits()),
        (F::VM_ENTRY_CONTROLS.raw(), entry.to_bits()),
        (F::EXCEPTION_BITMAP.raw(), 1 << 6 | 1 << 14),
        (F::IO_BITMAP_A.raw(), (&raw const IO_A) as u64),
        (F::IO_BITMAP_B.raw(), (&raw const IO_B) as u64),
        (F::VMCS_LINK_POINTER.raw(), u64::MAX),
        (F::HOST_CR0.raw(), cr0),
        (F::HOST_CR3.raw(), cr3),
        (F::HOST_CR4.raw(), cr4),
        (F::HOST_CS_SELECTOR.raw(), cs),
        (F::HOST_SS_SELECTOR.raw(), ds),
        (F::HOST_DS_SELECTOR.raw(), ds),
        (F::HOST_ES_SELECTOR.raw(), ds),
        (F::HOST_TR_SELECTOR.raw(), tr),
        (F::HOST_TR_BASE.raw(), cpu::tss_base()),
        (F::HOST_GDTR_BASE.raw(), cpu::gdt_base()),
        (F::HOST_IDTR_BASE.raw(), cpu::idt_base()),
        (F::GUEST_CR0.raw(), cr0),
        (F::GUEST_CR3.raw(), cr3),
        (F::GUEST_CR4.raw(), cr4),
        (F::GUEST_DR7.raw(), 0x400),
        (F::GUEST_RIP.raw(), l2_entry as *const () as u64),
        (F::GUEST_RSP.raw(), (&raw mut L2_STACK) as u64 + 8192),
        (F::GUEST_RFLAGS.raw(), 0x2),
        (F::GUEST_CS_SELECTOR.raw(), cs),
        (F::GUEST_CS_LIMIT.raw(), 0xffff_ffff),
        (F::GUEST_CS_AR_BYTES.raw(), 0xa09b),
        (F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000),
        (F::GUEST_TR_SELECTOR.raw(), tr),
        (F::GUEST_TR_BASE.raw(), cpu::tss_base()),
        (F::GUEST_TR_LIMIT.raw(), 0x67),
        (F::GUEST_TR_AR_BYTES.raw(), 0x8b),
        (F::GUEST_GDTR_BASE.raw(), cpu::gdt_base()),
        (F::GUEST_GDTR_LIMIT.raw(), cpu::GDT_LIMIT as u64),
        (F::GUEST_IDTR_BASE.raw(), (&raw const L2_IDT) as u64),
        (F::GUEST_IDTR_LIMIT.raw(), 64 * 16 - 1),
        (F::GUEST_ES_SELECTOR.raw(), ds),
        (F::GUEST_SS_SELECTOR.raw(), ds),
        (F::GUEST_DS_SELECTOR.raw(), ds),
        (F::GUEST_FS_SELECTOR.raw(), ds),
        (F::GUEST_GS_SELECTOR.raw(), ds),
    ];
    let mut failures = 0;
    for (f, val) in writes {
        failures += v.write_raw(f, val).is_err() as usize;
    }
    let data = [F::GUEST_ES_LIMIT, F::GUEST_SS_LIMIT, F::GUEST_DS_LIMIT, F::GUEST_FS_LIMIT, F::GUEST_GS_LIMIT];
    let ars =
        [F::GUEST_ES_AR_BYTES, F::GUEST_SS_AR_BYTES, F::GUEST_DS_AR_BYTES, F::GUEST_FS_AR_BYTES, F::GUEST_GS_AR_BYTES];
    for (l, a) in data.iter().zip(ars) {
        failures += v.write_raw(l.raw(), 0xffff_ffff).is_err() as usize;
        failures += v.write_raw(a.raw(), 0xc093).is_err() as usize;
    }
    failures
}

/// The exit L1 expects next, and what L1 changes before resuming.
pub fn expect(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters, resume: bool, want: R, what: &str) -> bool {
    // SAFETY: the host state is this context (setup); L2 runs L1's code pages and its own stack.
    let r = unsafe { if resume { v.resume(regs) } else { v.launch(regs) } };
    let basic = r.ok().and_then(|e| e.basic());
    let ok = basic == Some(want);
    check(ok, format_args!("{what}: exit {:?} (want {})", r.map(|e| e.basic()), want.name()));
    ok
}

/// Advance L2's RIP past the instruction that exited.
pub fn skip(v: &mut CurrentVmcs<'_>) {
    let rip = v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0);
    let len = v.read_raw(F::VM_EXIT_INSTRUCTION_LEN.raw()).unwrap_or(0);
    let _ = v.write_raw(F::GUEST_RIP.raw(), rip + len);
}

pub fn run(op: &mut VmxOperation<'_>) {
    let caps = *op.caps();
    // SAFETY: single-threaded; the region is borrowed once.
    let region = unsafe { cpu::unique(&raw mut VMCS) };
    let phys = region as *const VmxRegion as u64;
    // SAFETY: L1's static region at `phys`, not the VMXON region.
    let Ok(mut vmcs) = (unsafe { op.vmcs(region, phys) }) else {
        check(false, format_args!("VMCLEAR of L2's VMCS"));
        return;
    };
    let Ok(mut v) = op.load(&mut vmcs) else {
        check(false, format_args!("VMPTRLD of L2's VMCS"));
        return;
    };
    let failures = setup(&mut v, &caps);
    check(failures == 0, format_args!("L2's VMCS: {failures} VMWRITEs failed"));
    let mut regs = GuestRegisters::default();
    if !expect(&mut v, &mut regs, false, R::Cpuid, "CPUID") {
        return;
    }
    skip(&mut v);
    let ud = expect(&mut v, &mut regs, true, R::ExceptionNmi, "UD2 with #UD in the exception bitmap");
    let info = v.read_raw(F::VM_EXIT_INTR_INFO.raw()).unwrap_or(0);
    check(
        ud && info & 0x80ff_07ff == 0x8000_0306,
        format_args!("its interruption information {info:#x} (valid, hardware exception, #UD)"),
    );
    skip(&mut v);
    // #UD no longer intercepted: L2's own handler counts it, then L2 reports with VMCALL.
    let _ = v.write_raw(F::EXCEPTION_BITMAP.raw(), 1 << 14);
    expect(&mut v, &mut regs, true, R::Vmcall, "the second UD2, delivered to L2");
    check(
        regs.rax == 0x33 && regs.r15 == 1,
        format_args!("L2 handled it: marker {:#x}, L2 #UD count {}", regs.rax, regs.r15),
    );
    skip(&mut v);
    let pf = expect(&mut v, &mut regs, true, R::ExceptionNmi, "a read of an unmapped page with every #PF intercepted");
    let q = v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(0);
    let ec = v.read_raw(F::VM_EXIT_INTR_ERROR_CODE.raw()).unwrap_or(0);
    check(pf && q == 0xffff_8000_0000_0000 && ec == 0, format_args!("#PF exit: address {q:#x}, error code {ec:#x}"));
    skip(&mut v);
    // Only writes exit now (error-code mask 2, match 2): L2's read #PF goes to L2.
    let _ = v.write_raw(F::PAGE_FAULT_ERROR_CODE_MASK.raw(), 2);
    let _ = v.write_raw(F::PAGE_FAULT_ERROR_CODE_MATCH.raw(), 2);
    expect(&mut v, &mut regs, true, R::Vmcall, "the second read, with the #PF filter changed");
    check(
        regs.rax == 0x44 && regs.r14 == 1,
        format_args!("L2 handled its #PF: marker {:#x}, L2 #PF count {}", regs.rax, regs.r14),
    );
    skip(&mut v);
    // OUT 0x81 is not in the I/O bitmap: it runs; OUT 0x80 is.
    let io = expect(&mut v, &mut regs, true, R::IoInstruction, "OUT 0x81 (not intercepted), then OUT 0x80");
    let q = v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(0);
    check(io && q >> 16 == 0x80, format_args!("the I/O exit is port {:#x}", q >> 16));
    skip(&mut v);
    expect(&mut v, &mut regs, true, R::Vmcall, "VMCALL before the interrupt window");
    skip(&mut v);
    // Interrupt-window exiting while L2 has IF = 0: no exit until STI and the instruction after it.
    let proc = v.read_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw()).unwrap_or(0);
    let _ = v.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc | Proc::INTERRUPT_WINDOW_EXITING.bits() as u64);
    expect(&mut v, &mut regs, true, R::InterruptWindow, "interrupt window");
    let rip = v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0);
    let want = (&raw const l2_after_sti_nop) as u64;
    check(rip == want, format_args!("the window opens after STI's shadow: RIP {rip:#x} (want {want:#x})"));
    let _ = v.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc);
    nmi_window(&mut v, &mut regs, proc, want);
    if expect(&mut v, &mut regs, true, R::Hlt, "HLT") {
        skip(&mut v);
        msr_lists(&mut v, &mut regs);
        crate::irq::run(&mut v, &mut regs);
        crate::cr::run(&mut v, &mut regs);
        crate::msr_bitmap::run(&mut v, &mut regs);
    }
}

/// NMI-window exiting with virtual NMIs (so also NMI exiting): L2 blocks no virtual NMI, so it
/// exits before its next instruction, at `rip`; then L1 turns the three controls off again.
fn nmi_window(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters, proc: u64, rip: u64) {
    let pin = v.read_raw(F::PIN_BASED_VM_EXEC_CONTROL.raw()).unwrap_or(0);
    let nmis = (Pin::NMI_EXITING | Pin::VIRTUAL_NMIS).bits() as u64;
    let w = v
        .write_raw(F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin | nmis)
        .and_then(|()| v.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc | Proc::NMI_WINDOW_EXITING.bits() as u64));
    check(w.is_ok(), format_args!("virtual NMIs and NMI-window exiting in vmcs12: {w:?}"));
    expect(v, regs, true, R::NmiWindow, "NMI window (virtual NMIs, none blocked)");
    let at = v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0);
    let blocking = v.read_raw(F::GUEST_INTERRUPTIBILITY_INFO.raw()).unwrap_or(u64::MAX);
    check(
        at == rip && blocking == 0,
        format_args!("before L2's next instruction: RIP {at:#x} (want {rip:#x}), interruptibility {blocking:#x}"),
    );
    let _ = v.write_raw(F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin);
    let _ = v.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc);
}

#[repr(C, align(16))]
struct MsrList([u64; 4]);
static mut ENTRY_LOAD: MsrList = MsrList([0; 4]);
static mut EXIT_STORE: MsrList = MsrList([0; 4]);
static mut EXIT_LOAD: MsrList = MsrList([0; 4]);

const KERNEL_GS_BASE: u32 = 0xc000_0102;
const SYSENTER_ESP: u32 = 0x175;
const FS_BASE: u32 = 0xc000_0100;

fn kernel_gs_base() -> u64 {
    // SAFETY: CPL 0; the MSR exists on every model with long mode.
    unsafe { vmcs::hw::rdmsr(KERNEL_GS_BASE) }
}

/// vmcs12's MSR lists (L0 processes them): the VM-entry MSR-load list sets L2's KERNEL_GS_BASE
/// (an MSR on the machine) and SYSENTER_ESP (one the VMCS holds), the VM-exit MSR-store list
/// gets them back at L2's next exit, the VM-exit MSR-load list gives L1 its own KERNEL_GS_BASE;
/// then an entry list naming IA32_FS_BASE second fails the entry with exit 34, qualification 2,
/// the first entry loaded.
fn msr_lists(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters) {
    // SAFETY: single-threaded; the lists are only used here, while L2 does not run.
    let (entry, store, exit) = unsafe {
        (cpu::unique(&raw mut ENTRY_LOAD), cpu::unique(&raw mut EXIT_STORE), cpu::unique(&raw mut EXIT_LOAD))
    };
    entry.0 = [KERNEL_GS_BASE as u64, 0x1111_0000, SYSENTER_ESP as u64, 0x5000];
    store.0 = [KERNEL_GS_BASE as u64, 0, SYSENTER_ESP as u64, 0];
    exit.0 = [KERNEL_GS_BASE as u64, 0x7777_0000, 0, 0];
    let lists = [
        (F::VM_ENTRY_MSR_LOAD_ADDR.raw(), entry as *const MsrList as u64),
        (F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 2),
        (F::VM_EXIT_MSR_STORE_ADDR.raw(), store as *const MsrList as u64),
        (F::VM_EXIT_MSR_STORE_COUNT.raw(), 2),
        (F::VM_EXIT_MSR_LOAD_ADDR.raw(), exit as *const MsrList as u64),
        (F::VM_EXIT_MSR_LOAD_COUNT.raw(), 1),
    ];
    let w = lists.iter().try_for_each(|&(f, val)| v.write_raw(f, val));
    check(w.is_ok(), format_args!("MSR lists in vmcs12: {w:?}"));
    expect(v, regs, true, R::Cpuid, "CPUID, with MSR lists");
    // SAFETY: as above; L0 wrote the list while emulating the exit.
    let stored = unsafe { core::ptr::read_volatile(&raw const EXIT_STORE).0 };
    check(
        stored[1] == 0x1111_0000 && stored[3] == 0x5000,
        format_args!("VM-exit MSR-store list: KERNEL_GS_BASE {:#x}, SYSENTER_ESP {:#x} (L2's)", stored[1], stored[3]),
    );
    let esp = v.read_raw(F::GUEST_SYSENTER_ESP.raw());
    check(esp == Ok(0x5000), format_args!("vmcs12 guest SYSENTER_ESP {esp:x?}"));
    let gs = kernel_gs_base();
    check(gs == 0x7777_0000, format_args!("L1's KERNEL_GS_BASE {gs:#x} from the VM-exit MSR-load list"));
    skip(v);
    entry.0 = [KERNEL_GS_BASE as u64, 0x2222_0000, FS_BASE as u64, 0];
    let _ = v.write_raw(F::VM_EXIT_MSR_LOAD_COUNT.raw(), 0);
    // SAFETY: as in expect; the entry fails and L2 does not run.
    let r = unsafe { v.resume(regs) };
    let q = v.read_raw(F::EXIT_QUALIFICATION.raw());
    let gs = kernel_gs_base();
    check(
        r.map(|e| e.bits()) == Ok(0x8000_0022) && q == Ok(2) && gs == 0x2222_0000,
        format_args!(
            "an entry list naming IA32_FS_BASE: exit {:x?}, qualification {q:x?}, KERNEL_GS_BASE {gs:#x} (entry 1 loaded)",
            r.map(|e| e.bits())
        ),
    );
    for f in [F::VM_ENTRY_MSR_LOAD_COUNT, F::VM_EXIT_MSR_STORE_COUNT, F::VM_EXIT_MSR_LOAD_COUNT] {
        let _ = v.write_raw(f.raw(), 0);
    }
}
