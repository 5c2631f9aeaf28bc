//! The memory functions the compiler's code calls (a freestanding binary has no libc), and the
//! personality routine the prebuilt libcore names. Shared by every kernel of this package.

use core::arch::asm;

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
