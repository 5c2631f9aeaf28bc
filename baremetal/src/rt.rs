//! The suite kernel's runtime: its console (port 0xE9), its panic and exception reports, and the
//! shared processor support ([`crate::cpu`]) under the names the suite uses.

use core::fmt::{self, Write};

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
