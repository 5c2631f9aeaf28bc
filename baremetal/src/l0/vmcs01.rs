//! vmcs01: the VMCS that runs L1. L1 starts the way a Multiboot loader leaves a kernel (32-bit
//! protected mode, paging off, flat segments, EAX = magic, EBX = boot information), which needs
//! "unrestricted guest" (and so EPT). L1 owns the machine's interrupts and devices: no
//! external-interrupt or NMI exiting, no exception exiting, I/O and MSRs pass through except what
//! L0 emulates (port 0xF4, IA32_FEATURE_CONTROL, the VMX capability MSRs). L0 owns CR0.NE and
//! CR4.VMXE (fixed to 1 in VMX operation), which L1 sees through the read shadows.

use vmcs::caps::{Cap, Capabilities, Msr, VmxCaps, feature_control};
use vmcs::controls::{
    Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin, SecondaryVmExecControl as Proc2,
    UnsupportedControls, VmEntryControls as Entry, VmExitControls as Exit,
};
use vmcs::fields as F;
use vmcs::hw::{self, CurrentVmcs, GuestRegisters};
use vmcs::{VmcsError, VmcsRead, VmcsWrite};
use vmcs_nested_vmx::vcpu::{CR0_PE, CR0_PG};

use crate::cpu;
use crate::loader::L1Start;

#[repr(C, align(4096))]
struct Page([u8; 4096]);
static mut IO_A: Page = Page([0; 4096]);
static mut IO_B: Page = Page([0; 4096]);
static mut MSR_BITMAP: Page = Page([0; 4096]);
static mut VMREAD_BITMAP: Page = Page([0; 4096]);
static mut VMWRITE_BITMAP: Page = Page([0; 4096]);

/// QEMU's isa-debug-exit port: a write ends the run with that status.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
pub const IA32_EFER: u32 = 0xc000_0080;

/// A VMX capability MSR (the schema's), which L0 answers for L1.
pub fn is_vmx_msr(index: u32) -> bool {
    Msr::from_index(index).is_some()
}
/// L1's VPID (L0 runs with VPID 0).
pub const VPID01: u64 = 1;

pub const CR0_NE: u64 = 1 << 5;
pub const CR4_VMXE: u64 = 1 << 13;

/// Why L0 cannot run a Multiboot L1 on this processor.
pub fn missing_feature(caps: &VmxCaps) -> Option<&'static str> {
    [
        (Cap::ProcActivateSecondaryControls, "secondary controls"),
        (Cap::Proc2EnableEpt, "EPT"),
        (Cap::Proc2UnrestrictedGuest, "unrestricted guest"),
        (Cap::ProcUseIoBitmaps, "I/O bitmaps"),
        (Cap::ProcUseMsrBitmaps, "MSR bitmaps"),
        (Cap::ExitSaveIa32Efer, "save IA32_EFER on exit"),
        (Cap::ExitLoadIa32Efer, "load IA32_EFER on exit"),
        (Cap::EntryLoadIa32Efer, "load IA32_EFER on entry"),
        (Cap::EptPde2mb, "2 MiB EPT pages"),
        (Cap::EptMemtypeWb, "write-back EPT"),
        (Cap::EptPageWalk4, "4-level EPT"),
    ]
    .into_iter()
    .find(|(c, _)| !caps.has(*c))
    .map(|(_, what)| what)
}

fn set_bit(bitmap: *mut Page, bit: u32) {
    // SAFETY: the bitmaps are L0's statics, written before L1 runs.
    unsafe { (*bitmap).0[(bit / 8) as usize] |= 1 << (bit % 8) };
}

/// Intercept reads and writes of a low MSR (0..0x1fff) in the MSR bitmap.
fn intercept_msr(index: u32) {
    set_bit(&raw mut MSR_BITMAP, index);
    set_bit(&raw mut MSR_BITMAP, 2048 * 8 + index);
}

fn phys<T>(p: *const T) -> u64 {
    p as u64
}

/// L0's own state, the host state of vmcs01 and vmcs02 alike (every exit comes back here).
pub fn write_host_state(v: &mut CurrentVmcs<'_>) -> Result<(), VmcsError> {
    let w = |v: &mut CurrentVmcs<'_>, f: u64, val: u64| v.write_raw(f, val);
    w(v, F::HOST_CR0.raw(), cpu::cr0())?;
    w(v, F::HOST_CR3.raw(), cpu::cr3())?;
    w(v, F::HOST_CR4.raw(), cpu::cr4())?;
    for f in [F::HOST_ES_SELECTOR, F::HOST_SS_SELECTOR, F::HOST_DS_SELECTOR, F::HOST_FS_SELECTOR, F::HOST_GS_SELECTOR] {
        w(v, f.raw(), cpu::DATA_SEL as u64)?;
    }
    w(v, F::HOST_CS_SELECTOR.raw(), cpu::CODE_SEL as u64)?;
    w(v, F::HOST_TR_SELECTOR.raw(), cpu::TSS_SEL as u64)?;
    w(v, F::HOST_FS_BASE.raw(), 0)?;
    w(v, F::HOST_GS_BASE.raw(), 0)?;
    w(v, F::HOST_TR_BASE.raw(), cpu::tss_base())?;
    w(v, F::HOST_GDTR_BASE.raw(), cpu::gdt_base())?;
    w(v, F::HOST_IDTR_BASE.raw(), cpu::idt_base())?;
    w(v, F::HOST_IA32_SYSENTER_CS.raw(), 0)?;
    w(v, F::HOST_IA32_SYSENTER_ESP.raw(), 0)?;
    w(v, F::HOST_IA32_SYSENTER_EIP.raw(), 0)?;
    // SAFETY: EFER exists on every processor with VMX.
    w(v, F::HOST_IA32_EFER.raw(), unsafe { hw::rdmsr(IA32_EFER) })?;
    Ok(())
}

/// VMCS shadowing for L1 (the processor has it): vmcs01 gets the VMREAD/VMWRITE bitmaps now; the
/// control and the link pointer follow whether L1 has a current VMCS ([`set_shadowing`]).
pub fn set_shadow_bitmaps(v: &mut CurrentVmcs<'_>, bitmaps: &vmcs::copy::ShadowBitmaps) -> Result<(), VmcsError> {
    // SAFETY: L0's statics, written before L1 uses them.
    unsafe {
        cpu::unique(&raw mut VMREAD_BITMAP).0 = bitmaps.vmread;
        cpu::unique(&raw mut VMWRITE_BITMAP).0 = bitmaps.vmwrite;
    }
    v.write_raw(F::VMREAD_BITMAP.raw(), phys(&raw const VMREAD_BITMAP))?;
    v.write_raw(F::VMWRITE_BITMAP.raw(), phys(&raw const VMWRITE_BITMAP))
}

/// Turn L1's VMCS shadowing on (its VMREAD/VMWRITE go to the shadow VMCS at `shadow`) or off.
pub fn set_shadowing<V: VmcsRead + VmcsWrite>(v: &mut V, shadow: Option<u64>) -> Result<(), VmcsError> {
    let proc2 = v.read_raw(F::SECONDARY_VM_EXEC_CONTROL.raw())?;
    let bit = Proc2::VMCS_SHADOWING.bits() as u64;
    v.write_raw(F::SECONDARY_VM_EXEC_CONTROL.raw(), if shadow.is_some() { proc2 | bit } else { proc2 & !bit })?;
    v.write_raw(F::VMCS_LINK_POINTER.raw(), shadow.unwrap_or(u64::MAX))
}

/// The VM-exit controls of every VMCS L0 runs: exits come back to 64-bit L0 with its EFER, and
/// save the guest's.
pub fn l0_exit_controls(caps: &VmxCaps) -> Result<Exit, UnsupportedControls> {
    Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE | Exit::SAVE_IA32_EFER | Exit::LOAD_IA32_EFER, Exit::empty())
}

/// Fill vmcs01 for L1's first entry; `regs` gets the Multiboot registers.
pub fn setup(
    v: &mut CurrentVmcs<'_>,
    caps: &VmxCaps,
    eptp: u64,
    start: &L1Start,
    regs: &mut GuestRegisters,
) -> Result<(), VmcsError> {
    set_bit(&raw mut IO_A, DEBUG_EXIT_PORT as u32);
    intercept_msr(feature_control::INDEX);
    for m in Msr::ALL {
        intercept_msr(m.index());
    }
    let none = |_| VmcsError::InstructionError(7);
    let pin = Pin::adjust(caps, Pin::empty(), Pin::empty()).map_err(none)?;
    let proc = Proc::adjust(
        caps,
        Proc::USE_IO_BITMAPS | Proc::USE_MSR_BITMAPS | Proc::ACTIVATE_SECONDARY_CONTROLS,
        Proc::empty(),
    )
    .map_err(none)?;
    let proc2 = Proc2::adjust(caps, Proc2::ENABLE_EPT | Proc2::UNRESTRICTED_GUEST, Proc2::ENABLE_VPID).map_err(none)?;
    let exit = l0_exit_controls(caps).map_err(none)?;
    let entry = Entry::adjust(caps, Entry::LOAD_IA32_EFER, Entry::empty()).map_err(none)?;
    let vpid = proc2.contains(Proc2::ENABLE_VPID);
    let w = |v: &mut CurrentVmcs<'_>, f: u64, val: u64| v.write_raw(f, val);
    w(v, F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin.bits() as u64)?;
    w(v, F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc.bits() as u64)?;
    w(v, F::SECONDARY_VM_EXEC_CONTROL.raw(), proc2.bits() as u64)?;
    w(v, F::VM_EXIT_CONTROLS.raw(), exit.bits() as u64)?;
    w(v, F::VM_ENTRY_CONTROLS.raw(), entry.bits() as u64)?;
    w(v, F::IO_BITMAP_A.raw(), phys(&raw const IO_A))?;
    w(v, F::IO_BITMAP_B.raw(), phys(&raw const IO_B))?;
    w(v, F::MSR_BITMAP.raw(), phys(&raw const MSR_BITMAP))?;
    w(v, F::EPT_POINTER.raw(), eptp)?;
    if vpid {
        w(v, F::VIRTUAL_PROCESSOR_ID.raw(), VPID01)?;
    }
    w(v, F::VMCS_LINK_POINTER.raw(), u64::MAX)?;
    for f in [
        F::EXCEPTION_BITMAP,
        F::PAGE_FAULT_ERROR_CODE_MASK,
        F::PAGE_FAULT_ERROR_CODE_MATCH,
        F::CR3_TARGET_COUNT,
        F::VM_EXIT_MSR_STORE_COUNT,
        F::VM_EXIT_MSR_LOAD_COUNT,
        F::VM_ENTRY_MSR_LOAD_COUNT,
        F::VM_ENTRY_INTR_INFO_FIELD,
    ] {
        w(v, f.raw(), 0)?;
    }
    // L0 owns the bits VMX operation fixes (PE and PG too: L0 follows L1's EFER.LMA through
    // them, and L1 cannot leave paging in VMX operation) and every bit the processor does not allow.
    let cr0_fixed1 = caps.raw(Msr::Cr0Fixed1.index());
    let cr4_fixed1 = caps.raw(Msr::Cr4Fixed1.index());
    let cr0_l1 = 0x11; // PE | ET, as a Multiboot loader leaves it
    w(v, F::CR0_GUEST_HOST_MASK.raw(), CR0_PE | CR0_NE | CR0_PG | (!cr0_fixed1 & 0xffff_ffff))?;
    w(v, F::CR0_READ_SHADOW.raw(), cr0_l1)?;
    w(v, F::GUEST_CR0.raw(), cr0_l1 | CR0_NE)?;
    w(v, F::CR4_GUEST_HOST_MASK.raw(), CR4_VMXE | (!cr4_fixed1 & 0xffff_ffff))?;
    w(v, F::CR4_READ_SHADOW.raw(), 0)?;
    w(v, F::GUEST_CR4.raw(), CR4_VMXE)?;
    w(v, F::GUEST_CR3.raw(), 0)?;
    write_host_state(v)?;
    // L1 at its Multiboot entry.
    let segs = [
        (F::GUEST_ES_SELECTOR, F::GUEST_ES_BASE, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES, 0x10, 0xc093u64),
        (F::GUEST_CS_SELECTOR, F::GUEST_CS_BASE, F::GUEST_CS_LIMIT, F::GUEST_CS_AR_BYTES, 0x08, 0xc09b),
        (F::GUEST_SS_SELECTOR, F::GUEST_SS_BASE, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES, 0x10, 0xc093),
        (F::GUEST_DS_SELECTOR, F::GUEST_DS_BASE, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES, 0x10, 0xc093),
        (F::GUEST_FS_SELECTOR, F::GUEST_FS_BASE, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES, 0x10, 0xc093),
        (F::GUEST_GS_SELECTOR, F::GUEST_GS_BASE, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES, 0x10, 0xc093),
    ];
    for (sel, base, limit, ar, s, a) in segs {
        w(v, sel.raw(), s)?;
        w(v, base.raw(), 0)?;
        w(v, limit.raw(), 0xffff_ffff)?;
        w(v, ar.raw(), a)?;
    }
    w(v, F::GUEST_LDTR_SELECTOR.raw(), 0)?;
    w(v, F::GUEST_LDTR_BASE.raw(), 0)?;
    w(v, F::GUEST_LDTR_LIMIT.raw(), 0)?;
    w(v, F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000)?;
    // A busy 32-bit TSS: TR must be usable, even where L1 never loads one.
    w(v, F::GUEST_TR_SELECTOR.raw(), 0)?;
    w(v, F::GUEST_TR_BASE.raw(), 0)?;
    w(v, F::GUEST_TR_LIMIT.raw(), 0x67)?;
    w(v, F::GUEST_TR_AR_BYTES.raw(), 0x8b)?;
    for f in [F::GUEST_GDTR_BASE, F::GUEST_IDTR_BASE] {
        w(v, f.raw(), 0)?;
    }
    w(v, F::GUEST_GDTR_LIMIT.raw(), 0)?;
    w(v, F::GUEST_IDTR_LIMIT.raw(), 0)?;
    w(v, F::GUEST_RIP.raw(), start.entry as u64)?;
    w(v, F::GUEST_RSP.raw(), 0)?;
    w(v, F::GUEST_RFLAGS.raw(), 0x2)?;
    w(v, F::GUEST_DR7.raw(), 0x400)?;
    w(v, F::GUEST_IA32_EFER.raw(), 0)?;
    w(v, F::GUEST_IA32_DEBUGCTL.raw(), 0)?;
    for f in [F::GUEST_INTERRUPTIBILITY_INFO, F::GUEST_ACTIVITY_STATE, F::GUEST_SYSENTER_CS] {
        w(v, f.raw(), 0)?;
    }
    for f in [F::GUEST_PENDING_DBG_EXCEPTIONS, F::GUEST_SYSENTER_ESP, F::GUEST_SYSENTER_EIP] {
        w(v, f.raw(), 0)?;
    }
    *regs =
        GuestRegisters { rax: vmcs_multiboot::BOOTLOADER_MAGIC as u64, rbx: start.info as u64, ..Default::default() };
    Ok(())
}
