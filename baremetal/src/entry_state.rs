//! The valid VM-entry state the differential run mutates: a 64-bit guest on this kernel's own
//! page tables, GDT, IDT and TSS, every address field pointing at a page of its own (so that
//! turning any control on is valid), every exception exiting and, where the model has it, the
//! VMX-preemption timer at 0 (the guest exits before its first instruction, whatever its state).

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::controls::{Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin};
use vmcs::controls::{VmEntryControls as Entry, VmExitControls as Exit};
use vmcs::entry::{Facts, GuestMemory};
use vmcs::fields as F;

use crate::rt;

unsafe extern "C" {
    /// The guest's code: VMCALL first (boot.rs).
    fn guest_entry();
}

/// Pages the state's address fields point at, and spares mutations may point at.
pub const SCRATCH_PAGES: usize = 24;
#[repr(C, align(4096))]
pub struct Scratch(pub [[u8; 4096]; SCRATCH_PAGES]);
pub static mut SCRATCH: Scratch = Scratch([[0; 4096]; SCRATCH_PAGES]);

#[repr(C, align(16))]
struct Stack([u8; 8192]);
static mut GUEST_STACK: Stack = Stack([0; 8192]);

/// The physical address of scratch page `i` (identity mapping).
pub fn scratch_page(i: usize) -> u64 {
    (&raw const SCRATCH) as u64 + 4096 * i as u64
}

/// Is `[address, address + bytes)` inside the scratch pages (where mutations may write)?
pub fn in_scratch(address: u64, bytes: u32) -> bool {
    let start = scratch_page(0);
    address >= start && address.saturating_add(bytes as u64) <= start + (4096 * SCRATCH_PAGES) as u64
}

/// RAM Bochs gives the kernel (`megs: 32`): reads above it see no memory.
pub const RAM: u64 = 32 << 20;

/// Physical memory as the processor sees it: identity-mapped RAM, all ones elsewhere.
pub struct Physical;

/// A WRMSR that faults on every model: a non-canonical IA32_KERNEL_GS_BASE (what the mutations
/// aimed at the MSR-load rule `msr_load_wrmsr` write into an entry).
pub const FAULTING_WRMSR: (u32, u64) = (0xc000_0102, 0x8000_0000_0000_0000);

/// MSRs that hold a linear address: WRMSR of a non-canonical one faults.
const ADDRESS_MSRS: [u32; 7] = [0x175, 0x176, 0xc000_0082, 0xc000_0083, 0xc000_0100, 0xc000_0101, 0xc000_0102];

impl GuestMemory for Physical {
    /// What WRMSR does on these models, for the MSRs the mutations load: a non-canonical address
    /// to an address MSR faults; Bochs runs with `ignore_bad_msrs` (its default), so a WRMSR to
    /// an MSR it lacks does not.
    fn wrmsr_faults(&self, index: u32, value: u64) -> bool {
        let canonical = ((value << 16) as i64 >> 16) as u64 == value;
        ADDRESS_MSRS.contains(&index) && !canonical
    }

    fn read(&self, address: u64, bytes: u32) -> Option<u64> {
        if address.checked_add(bytes as u64).is_none_or(|end| end > RAM) {
            return None;
        }
        let mut v = 0u64;
        for i in 0..bytes as u64 {
            // SAFETY: RAM below 32 MiB is identity-mapped (1 GiB of 2 MiB pages at boot).
            let b = unsafe { core::ptr::read_volatile((address + i) as *const u8) };
            v |= (b as u64) << (8 * i);
        }
        Some(v)
    }
}

/// Write `bytes` of `value` into a scratch page; false (and nothing written) elsewhere.
pub fn write_scratch(address: u64, bytes: u32, value: u64) -> bool {
    if !in_scratch(address, bytes) {
        return false;
    }
    for i in 0..bytes as u64 {
        // SAFETY: inside the scratch pages (checked), which only this module's users touch.
        unsafe { core::ptr::write_volatile((address + i) as *mut u8, (value >> (8 * i)) as u8) };
    }
    true
}

/// Zero the scratch pages.
pub fn clear_scratch() {
    for i in 0..SCRATCH_PAGES {
        for off in (0..4096).step_by(8) {
            // SAFETY: as in `write_scratch`.
            unsafe { core::ptr::write_volatile((scratch_page(i) + off) as *mut u64, 0) };
        }
    }
}

/// Scratch pages 12-14 (the VM-exit MSR-store, VM-exit MSR-load and VM-entry MSR-load areas): 256
/// entries each that store or load IA32_SYSENTER_CS (174H) as 0, which this kernel does not use.
pub fn fill_msr_lists() {
    for page in 12..15 {
        for entry in 0..256u64 {
            write_scratch(scratch_page(page) + 16 * entry, 8, 0x174);
        }
    }
}

/// Scratch page 17: the guest's IDT, 256 interrupt gates to the guest's VMCALL, so that an event
/// delivered to the guest (injected, or an interrupt) ends in a VM exit.
pub fn fill_guest_idt() {
    let h = guest_entry as *const () as u64;
    let low = (h & 0xffff) | (rt::CODE_SEL as u64) << 16 | 0x8e << 40 | (h >> 16 & 0xffff) << 48;
    for v in 0..256u64 {
        write_scratch(scratch_page(17) + 16 * v, 8, low);
        write_scratch(scratch_page(17) + 16 * v + 8, 8, h >> 32);
    }
}

/// Facts of this processor and this kernel: MAXPHYADDR from CPUID, 4-level paging, IA-32e mode,
/// outside SMM, VMLAUNCH of a clear VMCS at `vmcs`.
pub fn facts(vmcs: u64) -> Facts {
    let maxphyaddr = core::arch::x86_64::__cpuid(0x8000_0008).eax as u8;
    let ext = core::arch::x86_64::__cpuid(0x8000_0001);
    // SCE, LME, LMA always; NXE where CPUID reports NX.
    let efer_ok = 1 | 1 << 8 | 1 << 10 | ((ext.edx >> 20 & 1) as u64) << 11;
    Facts {
        maxphyaddr,
        linear_width: 48,
        efer_lma: true,
        in_smm: false,
        current_vmcs: vmcs,
        efer_reserved: !efer_ok,
        // LBR, BTF, and bits 6-15 of the architectural IA32_DEBUGCTL.
        debugctl_reserved: !0xffc3,
        perf_global_ctrl_reserved: !0,
        rtit_ctl_reserved: !0,
        rtm: false,
        sgx: false,
        sti_blocks_nmi_injection: true,
        vmlaunch: true,
        launched: false,
        current_is_shadow: false,
        mov_ss_blocked: false,
    }
}

/// The valid state as (encoding, value), written in this order; fields the model lacks are left
/// out by the caller (VMWRITE error 12).
pub fn baseline(caps: &VmxCaps) -> [(u32, u64); BASELINE_LEN] {
    let pin_want =
        if caps.has(Cap::PinActivatePreemptionTimer) { Pin::ACTIVATE_PREEMPTION_TIMER } else { Pin::empty() };
    let pin = Pin::adjust(caps, pin_want, Pin::empty()).map_or(0, |c| c.to_bits());
    let proc = Proc::adjust(caps, Proc::HLT_EXITING, Proc::empty()).map_or(0, |c| c.to_bits());
    let exit = Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE, Exit::empty()).map_or(0, |c| c.to_bits());
    let entry = Entry::adjust(caps, Entry::IA32E_MODE_GUEST, Entry::empty()).map_or(0, |c| c.to_bits());
    let (cr0, cr3, cr4) = (rt::cr0(), rt::cr3(), rt::cr4());
    let (gdt, idt, tss) = (rt::gdt_base(), rt::idt_base(), rt::tss_base());
    // Every external interrupt exits (a pending one would otherwise reach the guest's IDT).
    let rip = guest_entry as *const () as u64;
    let rsp = (&raw mut GUEST_STACK) as u64 + 8192;
    let (cs, ds, tr) = (rt::CODE_SEL as u64, rt::DATA_SEL as u64, rt::TSS_SEL as u64);
    let p = scratch_page;
    [
        (F::PIN_BASED_VM_EXEC_CONTROL.encoding(), pin),
        (F::CPU_BASED_VM_EXEC_CONTROL.encoding(), proc),
        (F::VM_EXIT_CONTROLS.encoding(), exit),
        (F::VM_ENTRY_CONTROLS.encoding(), entry),
        (F::SECONDARY_VM_EXEC_CONTROL.encoding(), 0),
        (F::EXCEPTION_BITMAP.encoding(), 0xffff_ffff),
        (F::PAGE_FAULT_ERROR_CODE_MASK.encoding(), 0),
        (F::PAGE_FAULT_ERROR_CODE_MATCH.encoding(), 0),
        (F::CR3_TARGET_COUNT.encoding(), 0),
        (F::VM_EXIT_MSR_STORE_COUNT.encoding(), 0),
        (F::VM_EXIT_MSR_LOAD_COUNT.encoding(), 0),
        (F::VM_ENTRY_MSR_LOAD_COUNT.encoding(), 0),
        (F::VM_ENTRY_INTR_INFO_FIELD.encoding(), 0),
        (F::VM_ENTRY_EXCEPTION_ERROR_CODE.encoding(), 0),
        (F::VM_ENTRY_INSTRUCTION_LEN.encoding(), 0),
        (F::TPR_THRESHOLD.encoding(), 0),
        (F::VMX_PREEMPTION_TIMER_VALUE.encoding(), 0),
        (F::CR0_GUEST_HOST_MASK.encoding(), 0),
        (F::CR4_GUEST_HOST_MASK.encoding(), 0),
        (F::CR0_READ_SHADOW.encoding(), 0),
        (F::CR4_READ_SHADOW.encoding(), 0),
        (F::VMCS_LINK_POINTER.encoding(), u64::MAX),
        (F::IO_BITMAP_A.encoding(), p(0)),
        (F::IO_BITMAP_B.encoding(), p(1)),
        (F::MSR_BITMAP.encoding(), p(2)),
        (F::VIRTUAL_APIC_PAGE_ADDR.encoding(), p(3)),
        (F::APIC_ACCESS_ADDR.encoding(), p(4)),
        (F::POSTED_INTR_DESC_ADDR.encoding(), p(5)),
        (F::POSTED_INTR_NV.encoding(), 0xf2),
        (F::PML_ADDRESS.encoding(), p(6)),
        (F::EPTP_LIST_ADDRESS.encoding(), p(7)),
        (F::VMREAD_BITMAP.encoding(), p(8)),
        (F::VMWRITE_BITMAP.encoding(), p(9)),
        (F::VE_INFORMATION_ADDRESS.encoding(), p(10)),
        (F::SPPT_POINTER.encoding(), p(11)),
        (F::VM_EXIT_MSR_STORE_ADDR.encoding(), p(12)),
        (F::VM_EXIT_MSR_LOAD_ADDR.encoding(), p(13)),
        (F::VM_ENTRY_MSR_LOAD_ADDR.encoding(), p(14)),
        // WB, 4-level walk, tables at a zeroed page: a guest that enters exits on an EPT violation.
        (F::EPT_POINTER.encoding(), p(15) | 6 | 3 << 3),
        (F::VIRTUAL_PROCESSOR_ID.encoding(), 1),
        (F::TSC_MULTIPLIER.encoding(), 1 << 48),
        (F::VM_FUNCTION_CONTROL.encoding(), 0),
        (F::HOST_CR0.encoding(), cr0),
        (F::HOST_CR3.encoding(), cr3),
        (F::HOST_CR4.encoding(), cr4),
        (F::HOST_ES_SELECTOR.encoding(), ds),
        (F::HOST_CS_SELECTOR.encoding(), cs),
        (F::HOST_SS_SELECTOR.encoding(), ds),
        (F::HOST_DS_SELECTOR.encoding(), ds),
        (F::HOST_FS_SELECTOR.encoding(), ds),
        (F::HOST_GS_SELECTOR.encoding(), ds),
        (F::HOST_TR_SELECTOR.encoding(), tr),
        (F::HOST_FS_BASE.encoding(), 0),
        (F::HOST_GS_BASE.encoding(), 0),
        (F::HOST_TR_BASE.encoding(), tss),
        (F::HOST_GDTR_BASE.encoding(), gdt),
        (F::HOST_IDTR_BASE.encoding(), idt),
        // What the launch code writes (this kernel's addresses): canonical, as the real values.
        (F::HOST_RIP.encoding(), rip),
        (F::HOST_RSP.encoding(), rsp),
        (F::HOST_IA32_SYSENTER_CS.encoding(), 0),
        (F::HOST_IA32_SYSENTER_ESP.encoding(), 0),
        (F::HOST_IA32_SYSENTER_EIP.encoding(), 0),
        (F::HOST_IA32_PAT.encoding(), 0x0007_0406_0007_0406),
        (F::HOST_IA32_EFER.encoding(), 0x500),
        (F::GUEST_CR0.encoding(), cr0),
        (F::GUEST_CR3.encoding(), cr3),
        (F::GUEST_CR4.encoding(), cr4),
        (F::GUEST_DR7.encoding(), 0x400),
        (F::GUEST_RSP.encoding(), rsp),
        (F::GUEST_RIP.encoding(), rip),
        (F::GUEST_RFLAGS.encoding(), 0x2),
        (F::GUEST_PENDING_DBG_EXCEPTIONS.encoding(), 0),
        (F::GUEST_SYSENTER_CS.encoding(), 0),
        (F::GUEST_SYSENTER_ESP.encoding(), 0),
        (F::GUEST_SYSENTER_EIP.encoding(), 0),
        (F::GUEST_IA32_DEBUGCTL.encoding(), 0),
        (F::GUEST_IA32_PAT.encoding(), 0x0007_0406_0007_0406),
        (F::GUEST_IA32_EFER.encoding(), 0x500),
        (F::GUEST_INTERRUPTIBILITY_INFO.encoding(), 0),
        (F::GUEST_ACTIVITY_STATE.encoding(), 0),
        (F::GUEST_ES_SELECTOR.encoding(), ds),
        (F::GUEST_ES_BASE.encoding(), 0),
        (F::GUEST_ES_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_ES_AR_BYTES.encoding(), 0xc093),
        (F::GUEST_CS_SELECTOR.encoding(), cs),
        (F::GUEST_CS_BASE.encoding(), 0),
        (F::GUEST_CS_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_CS_AR_BYTES.encoding(), 0xa09b),
        (F::GUEST_SS_SELECTOR.encoding(), ds),
        (F::GUEST_SS_BASE.encoding(), 0),
        (F::GUEST_SS_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_SS_AR_BYTES.encoding(), 0xc093),
        (F::GUEST_DS_SELECTOR.encoding(), ds),
        (F::GUEST_DS_BASE.encoding(), 0),
        (F::GUEST_DS_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_DS_AR_BYTES.encoding(), 0xc093),
        (F::GUEST_FS_SELECTOR.encoding(), ds),
        (F::GUEST_FS_BASE.encoding(), 0),
        (F::GUEST_FS_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_FS_AR_BYTES.encoding(), 0xc093),
        (F::GUEST_GS_SELECTOR.encoding(), ds),
        (F::GUEST_GS_BASE.encoding(), 0),
        (F::GUEST_GS_LIMIT.encoding(), 0xffff_ffff),
        (F::GUEST_GS_AR_BYTES.encoding(), 0xc093),
        (F::GUEST_LDTR_SELECTOR.encoding(), 0),
        (F::GUEST_LDTR_BASE.encoding(), 0),
        (F::GUEST_LDTR_LIMIT.encoding(), 0),
        (F::GUEST_LDTR_AR_BYTES.encoding(), 0x1_0000),
        (F::GUEST_TR_SELECTOR.encoding(), tr),
        (F::GUEST_TR_BASE.encoding(), tss),
        (F::GUEST_TR_LIMIT.encoding(), 103),
        (F::GUEST_TR_AR_BYTES.encoding(), 0x8b),
        (F::GUEST_GDTR_BASE.encoding(), gdt),
        (F::GUEST_GDTR_LIMIT.encoding(), rt::GDT_LIMIT as u64),
        (F::GUEST_IDTR_BASE.encoding(), p(17)),
        (F::GUEST_IDTR_LIMIT.encoding(), 0xfff),
    ]
}

pub const BASELINE_LEN: usize = 116;
