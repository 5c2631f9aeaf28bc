//! What every kernel of this package needs from the processor: port output, the Bochs exit
//! signals, the GDT/TSS/IDT, control registers. Each kernel's boot code provides `gdt64`, and its
//! runtime an `exception_handler`.

// Shared by both kernels; each uses part of it.
#![allow(dead_code)]

use core::arch::asm;

// The 32 exception vectors: push the vector and call the kernel's `exception_handler(vector,
// frame)`, which never returns.
core::arch::global_asm!(
    r#"
    .section .text.isr, "ax"
    .balign 16
    .global isr_stubs
isr_stubs:
    .set v, 0
    .rept 32
    .balign 16
    push v
    jmp isr_common
    .set v, v + 1
    .endr
isr_common:
    pop rdi
    mov rsi, rsp
    and rsp, -16
    call exception_handler
6:
    hlt
    jmp 6b
"#
);

pub fn outb(port: u16, v: u8) {
    // SAFETY: port I/O to Bochs' debug ports only.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) };
}

/// Success: the magic breakpoint returns to Bochs' debugger, whose script quits with status 0.
pub fn exit_success() -> ! {
    // SAFETY: `xchg bx, bx` is a no-op on real hardware.
    unsafe { asm!("xchg bx, bx", options(nomem, nostack)) };
    halt()
}

/// Failure: "Shutdown" on port 0x8900 makes Bochs exit with status 1.
pub fn exit_failure() -> ! {
    for b in b"Shutdown" {
        outb(0x8900, *b);
    }
    halt()
}

/// The one mutable borrow of a static.
///
/// # Safety
/// `p` points to a static that nothing else borrows for the rest of the run.
pub unsafe fn unique<T>(p: *mut T) -> &'static mut T {
    // SAFETY: the caller's promise.
    unsafe { &mut *p }
}

pub fn halt() -> ! {
    loop {
        // SAFETY: interrupts are off; HLT waits forever.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

unsafe extern "C" {
    /// Each kernel's boot code defines its GDT: null, 64-bit code (0x08), data (0x10), and two
    /// free slots for the TSS descriptor (0x18).
    static mut gdt64: [u64; 5];
    static isr_stubs: u8;
}

#[repr(C, align(16))]
pub struct Tss(pub [u8; 104]);
pub static mut TSS: Tss = Tss([0; 104]);

#[repr(C, align(16))]
struct Idt([u64; 64]);
static mut IDT: Idt = Idt([0; 64]);

#[repr(C, packed)]
struct DescPtr {
    limit: u16,
    base: u64,
}

pub const CODE_SEL: u16 = 0x08;
pub const DATA_SEL: u16 = 0x10;
pub const TSS_SEL: u16 = 0x18;

pub fn gdt_base() -> u64 {
    (&raw const gdt64) as u64
}
pub const GDT_LIMIT: u32 = 5 * 8 - 1;
pub fn tss_base() -> u64 {
    (&raw const TSS) as u64
}
pub fn idt_base() -> u64 {
    (&raw const IDT) as u64
}
pub const IDT_LIMIT: u32 = 32 * 16 - 1;

/// Install the TSS descriptor (and load TR) and an IDT whose 32 exception vectors report and fail.
pub fn init_cpu_tables() {
    let tss = tss_base();
    let limit = 103u64;
    let low =
        (limit & 0xffff) | (tss & 0xff_ffff) << 16 | 0x89 << 40 | (limit >> 16 & 0xf) << 48 | (tss >> 24 & 0xff) << 56;
    let stubs = (&raw const isr_stubs) as u64;
    // SAFETY: single-threaded early boot; the GDT slot 3/4 is free and the IDT is ours.
    unsafe {
        let g = &raw mut gdt64;
        (*g)[3] = low;
        (*g)[4] = tss >> 32;
        for v in 0..32 {
            set_idt_gate(v, stubs + v as u64 * 16);
        }
        let p = DescPtr { limit: IDT_LIMIT as u16, base: idt_base() };
        asm!("lidt [{}]", in(reg) &p, options(nostack));
        asm!("ltr {0:x}", in(reg) TSS_SEL, options(nostack));
    }
}

/// Point IDT vector `vector` (below 32) at `handler`, an interrupt gate in the kernel's code segment.
pub fn set_idt_gate(vector: usize, handler: u64) {
    // SAFETY: single-threaded; the IDT is this kernel's; the entry is written whole before use.
    unsafe {
        let idt = &raw mut IDT;
        (*idt).0[2 * vector] =
            (handler & 0xffff) | (CODE_SEL as u64) << 16 | 0x8e << 40 | (handler >> 16 & 0xffff) << 48;
        (*idt).0[2 * vector + 1] = handler >> 32;
    }
}

pub fn cr0() -> u64 {
    let v;
    // SAFETY: reading a control register.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nostack)) };
    v
}
pub fn cr3() -> u64 {
    let v;
    // SAFETY: reading a control register.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nostack)) };
    v
}
pub fn cr4() -> u64 {
    let v;
    // SAFETY: reading a control register.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nostack)) };
    v
}

/// Load this kernel's GDT and IDT again (after a VM exit that loaded other host GDTR/IDTR bases).
pub fn reload_descriptor_tables() {
    let gdt = DescPtr { limit: GDT_LIMIT as u16, base: gdt_base() };
    let idt = DescPtr { limit: IDT_LIMIT as u16, base: idt_base() };
    // SAFETY: this kernel's own GDT and IDT, which stay in place.
    unsafe {
        asm!("lgdt [{}]", in(reg) &gdt, options(nostack));
        asm!("lidt [{}]", in(reg) &idt, options(nostack));
    }
}

/// Was the kernel started by a Multiboot loader (as L1 under our L0, or by GRUB) rather than
/// from its own boot sector (bare Bochs)?
pub fn multiboot_booted() -> bool {
    unsafe extern "C" {
        static multiboot_booted: u32;
    }
    // SAFETY: a word of the image, written once by the Multiboot entry before Rust runs.
    unsafe { core::ptr::read_volatile(&raw const multiboot_booted) != 0 }
}
