//! L0: a Multiboot kernel that boots the Multiboot kernel given as its first module as L1, in its
//! own memory behind EPT, and emulates L1's VMX operation with the nested-VMX core
//! (`vmcs-nested-vmx`) on Bochs' hardware VMX (`vmcs::hw`). Run by scripts/l1.
//!
//! L0's log lines start with `L0: ` on port 0xE9; L1's port I/O (COM1, 0xE9, 0x8900) reaches the
//! machine. A run ends when L1 writes port 0xF4 (`L0: exit status N`), executes Bochs' magic
//! breakpoint, shuts Bochs down through port 0x8900, or when L0 fails (`L0: failure: ...`).
#![no_std]
#![no_main]

#[macro_use]
#[path = "../long_mode.rs"]
mod long_mode;
#[path = "../mboot.rs"]
mod boot;
#[path = "../cpu.rs"]
mod cpu;
mod ept;
mod ept02;
mod l1exits;
mod l1mem;
mod loader;
mod msr;
#[macro_use]
mod log;
mod l2;
#[path = "../mem.rs"]
mod mem;
mod meter;
mod run;
mod vcpu;
mod vmcs01;
mod vmcss;

use vmcs::caps::Cap;
use vmcs::hw::{self, VmxOperation, VmxRegion};
use vmcs_nested_vmx::caps::{L1Caps, Offer, SUPPORTED};

/// L0 offers L1 every capability the nested-VMX core supports that the host has (`SUPPORTED`),
/// and emulates these whatever the host has: TRUE controls, and VMWRITE to exit-information
/// fields (KVM offers it too: vmcs12 is software).
const EMULATED: &[Cap] = &[Cap::BasicTrueCtls, Cap::MiscVmwriteAnyField];

static mut VMXON_REGION: VmxRegion = VmxRegion::new();

#[unsafe(no_mangle)]
extern "C" fn mb_main(magic: u32, info: u32) -> ! {
    cpu::init_cpu_tables();
    msr::install();
    if magic != vmcs_multiboot::BOOTLOADER_MAGIC {
        log::fail(format_args!("not started by a Multiboot loader (EAX {magic:#x})"));
    }
    if !hw::vmx_supported() {
        log::fail(format_args!("this CPU has no VMX"));
    }
    // SAFETY: CPL 0, VMX supported.
    let host = unsafe { hw::read_vmx_caps() };
    if let Some(what) = vmcs01::missing_feature(&host) {
        log::fail(format_args!("this CPU cannot host a Multiboot L1: no {what}"));
    }
    let start = match loader::load(info) {
        Ok(s) => s,
        Err(why) => log::fail(format_args!("loading L1: {why}")),
    };
    l0log!("L1 loaded: entry {:#x}, boot information at {:#x}", start.entry, start.info);
    let eptp = ept::build();
    let l1caps = L1Caps::new(&host, &Offer { from_host: SUPPORTED, emulated: EMULATED });
    // SAFETY: single-threaded; the static region is borrowed once, identity-mapped.
    let vmxon = unsafe { cpu::unique(&raw mut VMXON_REGION) };
    let vmxon_phys = vmxon as *const VmxRegion as u64;
    // SAFETY: CPL 0, identity mapping, one processor, nothing else uses VMX.
    let mut op = match unsafe { VmxOperation::enter(vmxon, vmxon_phys) } {
        Ok(op) => op,
        Err(e) => log::fail(format_args!("VMXON: {e}")),
    };
    run::run(&mut op, &host, l1caps, eptp, &start)
}
