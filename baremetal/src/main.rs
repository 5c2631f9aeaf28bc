//! Freestanding test kernel for the `vmcs` hardware backend, run under Bochs by scripts/bochs-suite.
//! Every check prints one line on port 0xE9; the last line is `N passed, M failed`.
#![no_std]
#![no_main]

#[macro_use]
mod long_mode;
mod boot;
mod cpu;
mod exits;
mod mem;
mod reflect;
#[macro_use]
mod rt;
mod deviations;
mod entry_diff;
mod entry_guard;
mod entry_mutate;
mod entry_report;
mod entry_state;
mod entry_verdict;
mod host_cache;
mod suite;
mod sweep;
mod switch;

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    rt::init_cpu_tables();
    suite::run()
}
