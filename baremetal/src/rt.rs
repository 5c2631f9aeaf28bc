//! Freestanding runtime: console (port 0xE9), Bochs exit signals, memory functions, GDT/TSS/IDT.

use core::arch::asm;
use core::fmt::{self, Write};

pub fn outb(port: u16, v: u8) {
    // SAFETY: port I/O to Bochs' debug ports only.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) };
}

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            outb(0xe9, b);
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($t:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::rt::Console, $($t)*);
    }};
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

pub fn halt() -> ! {
    loop {
        // SAFETY: interrupts are off; HLT waits forever.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("FAIL panic: {info}");
    crate::println!("0 passed, 1 failed");
    exit_failure()
}

#[unsafe(no_mangle)]
extern "C" fn exception_handler(vector: u64, frame: *const u64) -> ! {
    // SAFETY: the stub left the CPU's exception frame at `frame`.
    let (a, b, c) = unsafe { (*frame, *frame.add(1), *frame.add(2)) };
    crate::println!("FAIL exception vector {vector} frame {a:#x} {b:#x} {c:#x}");
    crate::println!("0 passed, 1 failed");
    exit_failure()
}

/// The prebuilt libcore names it; nothing unwinds here.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the C contract of memcpy.
    unsafe { asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n => _, options(nostack)) };
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the C contract of memmove: copy backwards when the destination overlaps above.
    unsafe {
        if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
            asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n => _, options(nostack));
        } else if n > 0 {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                inout("rcx") n => _,
                options(nostack)
            );
        }
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the C contract of memset.
    unsafe { asm!("rep stosb", inout("rdi") dst => _, in("al") c as u8, inout("rcx") n => _, options(nostack)) };
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: the C contract of memcmp.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

unsafe extern "C" {
    static mut gdt64: [u64; 5];
    static isr_stubs: u8;
    pub fn guest_entry();
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
        let idt = &raw mut IDT;
        for v in 0..32u64 {
            let h = stubs + v * 16;
            (*idt).0[2 * v as usize] = (h & 0xffff) | (CODE_SEL as u64) << 16 | 0x8e << 40 | (h >> 16 & 0xffff) << 48;
            (*idt).0[2 * v as usize + 1] = h >> 32;
        }
        let p = DescPtr { limit: IDT_LIMIT as u16, base: idt_base() };
        asm!("lidt [{}]", in(reg) &p, options(nostack));
        asm!("ltr {0:x}", in(reg) TSS_SEL, options(nostack));
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
