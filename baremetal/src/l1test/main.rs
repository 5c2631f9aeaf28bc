//! The second L1 test kernel: a Multiboot kernel run as L1 under our L0 (scripts/nested-suite),
//! for what the bare-metal suite does not cover: two vmcs12 juggled with VMCLEAR/VMPTRLD and a
//! byte copy of a cleared region, VMREAD/VMWRITE memory operands (a #PF among them), and an L2
//! whose exits L1 routes by changing its controls between entries (exception bitmap, #PF
//! error-code filter, I/O bitmaps, interrupt and NMI windows, HLT, the local APIC's timer
//! interrupting L2, CR0's guest/host mask, MSR bitmaps), and a 32-bit PAE L2 on L1's own EPT
//! (EPT violation, repair and INVEPT, misconfiguration, vmcs12's PDPTRs). Every check prints one
//! line on port 0xE9; the last line is `N passed, M failed`.
#![no_std]
#![no_main]

#[macro_use]
#[path = "../long_mode.rs"]
mod long_mode;
#[path = "../mboot.rs"]
mod boot;
#[path = "../cpu.rs"]
mod cpu;
mod cr;
mod irq;
mod l2;
#[path = "../mem.rs"]
mod mem;
mod msr_bitmap;
mod pae;
#[macro_use]
#[path = "../rt.rs"]
mod rt;
mod regions;

use vmcs::hw::{VmxOperation, VmxRegion};

pub use rt::{check, finish};

/// Mask both 8259 PICs: L2 runs with interrupts enabled in the interrupt-window test, and the
/// interrupts a loader left running have no handler here.
fn mask_pics() {
    cpu::outb(0x21, 0xff);
    cpu::outb(0xa1, 0xff);
}

static mut VMXON_REGION: VmxRegion = VmxRegion::new();

#[unsafe(no_mangle)]
extern "C" fn mb_main(_magic: u32, _info: u32) -> ! {
    rt::init_cpu_tables();
    mask_pics();
    regions::install_pf_handler();
    // SAFETY: single-threaded; the region is borrowed once, identity-mapped.
    let vmxon = unsafe { cpu::unique(&raw mut VMXON_REGION) };
    let phys = vmxon as *const VmxRegion as u64;
    // SAFETY: CPL 0, identity mapping, one processor.
    let mut op = match unsafe { VmxOperation::enter(vmxon, phys) } {
        Ok(op) => op,
        Err(e) => {
            check(false, format_args!("vmxon: {e}"));
            finish()
        }
    };
    check(true, format_args!("vmxon: revision {:#x}", op.revision()));
    regions::juggle(&mut op);
    l2::run(&mut op);
    pae::run(&mut op);
    match op.exit() {
        Ok(()) => check(true, format_args!("vmxoff")),
        Err(e) => check(false, format_args!("vmxoff: {e}")),
    }
    finish()
}
