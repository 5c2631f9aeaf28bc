//! The test kernels' runtime (the suite and the L1 test kernel): the console (port 0xE9), counted
//! checks and the final line, panic and exception reports, and the shared processor support
//! ([`crate::cpu`]) under the names the kernels use.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

pub use crate::cpu::*;

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

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

/// One check: a line `ok   ...` or `FAIL ...`, counted.
pub fn check(ok: bool, what: fmt::Arguments<'_>) {
    if ok {
        PASSED.fetch_add(1, Ordering::Relaxed);
        crate::println!("ok   {what}");
    } else {
        FAILED.fetch_add(1, Ordering::Relaxed);
        crate::println!("FAIL {what}");
    }
}

/// The last line, `N passed, M failed`, then the Bochs exit that says which.
pub fn finish() -> ! {
    let (p, f) = (PASSED.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed));
    crate::println!("{p} passed, {f} failed");
    if f == 0 { exit_success() } else { exit_failure() }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
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
