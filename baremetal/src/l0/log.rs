//! L0's own output: every line on port 0xE9 starts with `L0: `, apart from L1's output (which
//! reaches COM1 and port 0xE9 unchanged), and the ways a run ends.

use core::fmt::{self, Write};

use crate::cpu::{exit_failure, exit_success, outb};

/// Writes to port 0xE9, starting every line with the prefix.
pub struct Log {
    line_start: bool,
}

impl Write for Log {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.line_start {
                for p in b"L0: " {
                    outb(0xe9, *p);
                }
            }
            outb(0xe9, b);
            self.line_start = b == b'\n';
        }
        Ok(())
    }
}

/// One log line.
pub fn line(args: fmt::Arguments<'_>) {
    let _ = writeln!(Log { line_start: true }, "{args}");
}

#[macro_export]
macro_rules! l0log {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}

/// The run ends with L1's status (port 0xF4): the line scripts/l1 turns into its exit status,
/// then Bochs' magic breakpoint (whose debugger script quits).
pub fn finish(status: u8) -> ! {
    line(format_args!("exit status {status}"));
    exit_success()
}

/// L0 cannot go on: the reason, then "Shutdown" on port 0x8900 (Bochs exits 1).
pub fn fail(args: fmt::Arguments<'_>) -> ! {
    line(format_args!("failure: {args}"));
    exit_failure()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fail(format_args!("panic: {info}"))
}

#[unsafe(no_mangle)]
extern "C" fn exception_handler(vector: u64, frame: *const u64) -> ! {
    // SAFETY: the stub left the CPU's exception frame at `frame`.
    let (a, b, c) = unsafe { (*frame, *frame.add(1), *frame.add(2)) };
    fail(format_args!("exception vector {vector} in L0, frame {a:#x} {b:#x} {c:#x}"))
}
