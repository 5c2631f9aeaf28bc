//! What this L0 computes for the generated copy routines (`vmcs::copy::NestedHooks`): L0's
//! controls merged with L1's ([`L0Policy`]), the VPID and EPT pointer L2 runs with, the EFER L2
//! gets, the PAE PDPTEs L2's CR3 names when L2 runs on L0's EPT, the exit facts of the exit being
//! reflected, and L1's EFER after it.
//!
//! This L0 offers L1 no APIC virtualization, posted interrupts, ENCLS exiting, CET, MPX or a
//! virtual PMU; runs every L2 on EPT (L0's for L1's memory, or the EPT02 L0 builds from L1's EPT12); runs
//! vmcs02 without MSR and I/O bitmaps (L0 routes those exits, [`L0Policy::proc_clear`]).

use vmcs::VmcsError;
use vmcs::controls::{CpuBasedVmExecControl as Proc, VmEntryControls as Entry};
use vmcs::copy::NestedHooks;
use vmcs::exit::{ExitReason, VmExitReason};
use vmcs::fields as F;

use crate::exit_facts::ExitSource;
use crate::vcpu::{GuestMemory, MemoryError};

pub(crate) const EFER_LME: u64 = 1 << 8;
pub(crate) const EFER_LMA: u64 = 1 << 10;

/// L2's EFER (KVM's nested_vmx_calc_efer): vmcs12's on VMLAUNCH/VMRESUME with "load IA32_EFER",
/// else L1's with LMA and LME following "IA-32e mode guest".
pub fn l2_efer(entry12: u32, efer12: u64, run_pending: bool, l1_efer: u64) -> u64 {
    if run_pending && entry12 & Entry::LOAD_IA32_EFER.bits() != 0 {
        return efer12;
    }
    if entry12 & Entry::IA32E_MODE_GUEST.bits() != 0 {
        l1_efer | EFER_LMA | EFER_LME
    } else {
        l1_efer & !(EFER_LMA | EFER_LME)
    }
}

/// What L0 puts into every vmcs02, whatever L1 asks.
#[derive(Clone, Copy, Debug, Default)]
pub struct L0Policy {
    /// Pin-based controls L0 sets on top of L1's.
    pub pin: u32,
    /// Primary processor-based controls L0 sets on top of L1's.
    pub proc: u32,
    /// Secondary processor-based controls L0 sets on top of L1's.
    pub proc2: u32,
    /// Primary controls L0 takes out of L1's (e.g. the I/O and MSR bitmaps, whose addresses are
    /// L1's guest-physical ones: L0 routes those exits itself).
    pub proc_clear: u32,
    /// vmcs02's VM-exit controls are L0's (the exit goes to L0), plus these ones of L1's.
    pub exit: u32,
    /// The VM-exit controls of L1's that vmcs02 takes on (e.g. acknowledge interrupt on exit).
    pub exit_from_l1: u32,
    /// VM-entry controls L0 adds; "IA-32e mode guest" always follows L2's EFER.LMA.
    pub entry: u32,
    /// The EPT L2 runs on when vmcs12 has none (L0's EPT for L1's memory).
    pub ept_pointer: Option<u64>,
    /// The VPID L2 runs with (L0's, never L1's).
    pub vpid02: Option<u16>,
    /// With nested EPT: the EPTP of the EPT02 L0 keeps for vmcs12's EPTP12 ([`crate::nested_ept`]);
    /// None refuses nested EPT.
    pub ept02_pointer: Option<u64>,
}

/// Why a nested entry cannot be prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepareError {
    /// vmcs02 refused an access.
    Vmcs(VmcsError),
    /// L1's memory (its PDPTEs) cannot be read.
    Memory(MemoryError),
    /// vmcs12 asks for what this L0 does not offer or emulate.
    Unsupported(&'static str),
}

impl From<VmcsError> for PrepareError {
    fn from(e: VmcsError) -> Self {
        PrepareError::Vmcs(e)
    }
}

/// The exit reasons whose guest-physical-address field the SDM defines (APIC access, EPT
/// violation, EPT misconfiguration; for the others it is undefined and vmcs12 gets 0).
const GPA_REASONS: [ExitReason; 3] = [ExitReason::ApicAccess, ExitReason::EptViolation, ExitReason::EptMisconfig];

/// One nested entry's or exit's hooks.
pub struct L0Hooks<'a> {
    /// What L0 puts into every vmcs02.
    pub policy: &'a L0Policy,
    /// L2 (or L1, for the host-state load) runs on L0's EPT.
    pub l0_ept: bool,
    /// L1's EFER before the entry (or vmcs01's after the exit).
    pub l1_efer: u64,
    /// L1's VMLAUNCH/VMRESUME is being emulated (KVM's nested_run_pending).
    pub run_pending: bool,
    /// L2 in PAE paging, from vmcs12's CR0/CR4 and the EFER L2 gets.
    pub pae_paging: bool,
    /// L1's memory, for L2's PDPTEs.
    pub mem: Option<&'a dyn GuestMemory>,
    /// The exit being reflected (exit hooks only; they fail without it).
    pub exit: Option<&'a dyn ExitSource>,
}

type R<T> = Result<T, PrepareError>;

impl L0Hooks<'_> {
    /// Field `encoding` of the exit being reflected.
    fn fact(&self, encoding: u64) -> R<u64> {
        let exit = self.exit.ok_or(PrepareError::Unsupported("exit facts outside a nested exit"))?;
        Ok(exit.exit_field(encoding)?)
    }

    /// The error code of an event whose information field is `info`: read only when the field
    /// says the event delivered one (bits 31 and 11; the SDM leaves it undefined otherwise).
    fn error_code(&self, info: u64, encoding: u64) -> R<u32> {
        Ok(if info >> 31 & 1 == 1 && info >> 11 & 1 == 1 { self.fact(encoding)? as u32 } else { 0 })
    }

    /// L2's PDPTE `i` from the page-directory-pointer table at vmcs12's CR3 in L1's memory.
    fn pdpte(&self, cr3: u64, i: u64) -> R<u64> {
        let mem = self.mem.ok_or(PrepareError::Unsupported("PDPTEs without L1's memory"))?;
        mem.read_u64((cr3 & 0xffff_ffe0) + 8 * i).map_err(PrepareError::Memory)
    }
}

impl NestedHooks for L0Hooks<'_> {
    type Error = PrepareError;
    fn run_pending(&self) -> bool {
        self.run_pending
    }
    fn l0_ept(&self) -> bool {
        self.l0_ept
    }
    fn l0_vpid(&self) -> bool {
        self.policy.vpid02.is_some()
    }
    fn pae_paging(&self) -> bool {
        self.pae_paging
    }
    fn l1_pae_paging(&self) -> bool {
        // A PAE-paging L1 after the exit would need its PDPTEs from its memory: not done here.
        false
    }
    fn guest_ibt_or_shstk(&self) -> bool {
        false
    }
    fn guest_shstk(&self) -> bool {
        false
    }
    fn pfec_from_vmcs12(&self) -> bool {
        true // L0 runs L2 on EPT and never intercepts #PF for itself
    }
    fn host_apicv(&self) -> bool {
        false
    }
    fn vpmu_perf_global_ctrl(&self) -> bool {
        false
    }
    fn encls_exiting(&self) -> bool {
        false
    }
    fn vmcs02_pin_controls(&mut self, pin: u32) -> R<u32> {
        Ok(pin | self.policy.pin)
    }
    fn vmcs02_proc_controls(&mut self, proc: u32) -> R<u32> {
        let secondary = if self.policy.proc2 != 0 { Proc::ACTIVATE_SECONDARY_CONTROLS.bits() } else { 0 };
        Ok((proc | self.policy.proc | secondary) & !self.policy.proc_clear)
    }
    fn vmcs02_secondary_controls(&mut self, secondary: u32, active: bool) -> R<u32> {
        Ok(if active { secondary } else { 0 } | self.policy.proc2)
    }
    fn vmcs02_encls_exiting_bitmap(&mut self, _: u64, _: bool) -> R<u64> {
        Err(PrepareError::Unsupported("ENCLS exiting"))
    }
    fn vmcs02_entry_controls(&mut self, entry: u32, efer: u64) -> R<u32> {
        let ia32e = Entry::IA32E_MODE_GUEST.bits();
        let lma = l2_efer(entry, efer, self.run_pending, self.l1_efer) & EFER_LMA != 0;
        Ok((entry | self.policy.entry) & !ia32e | if lma { ia32e } else { 0 })
    }
    fn vmcs02_preemption_timer(&mut self, value: u32) -> R<u32> {
        Ok(value) // vmcs02 runs L1's preemption timer on the processor's
    }
    fn vmcs02_vpid(&mut self, _vpid12: u16, _enabled: bool) -> R<u16> {
        self.policy.vpid02.ok_or(PrepareError::Unsupported("VPID"))
    }
    fn vmcs02_posted_intr_nv(&mut self, _: u16, _: bool) -> R<u16> {
        Ok(0) // no posted interrupts in vmcs02
    }
    fn vmcs02_msr_bitmap(&mut self, _: u64, _: bool) -> R<u64> {
        Ok(0) // vmcs02 runs without MSR bitmaps (policy.proc_clear)
    }
    fn vmcs02_l1_dr7(&mut self) -> R<u64> {
        Ok(0x400)
    }
    fn vmcs02_debugctl(&mut self, debugctl: u64) -> R<u64> {
        Ok(debugctl)
    }
    fn vmcs02_l1_debugctl(&mut self) -> R<u64> {
        Ok(0)
    }
    fn vmcs02_l1_s_cet(&mut self) -> R<u64> {
        Ok(0)
    }
    fn vmcs02_l1_ssp(&mut self) -> R<u64> {
        Ok(0)
    }
    fn vmcs02_l1_ssp_table(&mut self) -> R<u64> {
        Ok(0)
    }
    fn vmcs02_l1_bndcfgs(&mut self) -> R<u64> {
        Ok(0)
    }
    fn vmcs02_exception_bitmap(&mut self, bitmap: u32) -> R<u32> {
        Ok(bitmap)
    }
    fn vmcs02_cr0_guest_host_mask(&mut self, mask: u64) -> R<u64> {
        Ok(mask)
    }
    fn vmcs02_cr4_guest_host_mask(&mut self, mask: u64) -> R<u64> {
        Ok(mask)
    }
    fn vmcs02_l1_pat(&mut self) -> R<u64> {
        Ok(0x0007_0406_0007_0406) // the power-on PAT
    }
    fn vmcs02_tsc_offset(&mut self, offset: u64, _: u64, offsetting: bool, _: bool) -> R<u64> {
        Ok(if offsetting { offset } else { 0 })
    }
    fn vmcs02_tsc_multiplier(&mut self, multiplier: u64, offsetting: bool, scaling: bool) -> R<u64> {
        Ok(if offsetting && scaling { multiplier } else { 1 << 48 })
    }
    fn vmcs02_eptp(&mut self, _eptp12: u64, nested: bool) -> R<u64> {
        if nested {
            // The EPT02 L0 keeps for vmcs12's EPTP (crate::nested_ept).
            return self.policy.ept02_pointer.ok_or(PrepareError::Unsupported("nested EPT"));
        }
        self.policy.ept_pointer.ok_or(PrepareError::Unsupported("L2 without L0's EPT"))
    }
    fn vmcs02_guest_cr0(&mut self, cr0: u64) -> R<u64> {
        Ok(cr0)
    }
    fn vmcs02_cr0_read_shadow(&mut self, cr0: u64, shadow: u64, mask: u64) -> R<u64> {
        Ok(cr0 & !mask | shadow & mask)
    }
    fn vmcs02_guest_cr4(&mut self, cr4: u64) -> R<u64> {
        Ok(cr4)
    }
    fn vmcs02_cr4_read_shadow(&mut self, cr4: u64, shadow: u64, mask: u64) -> R<u64> {
        Ok(cr4 & !mask | shadow & mask)
    }
    fn vmcs02_efer(&mut self, efer: u64, entry: u32) -> R<u64> {
        Ok(l2_efer(entry, efer, self.run_pending, self.l1_efer))
    }
    fn vmcs02_shadow_cr3(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("L2 without L0's EPT"))
    }
    fn vmcs02_pdptr0(&mut self, cr3: u64) -> R<u64> {
        self.pdpte(cr3, 0)
    }
    fn vmcs02_pdptr1(&mut self, cr3: u64) -> R<u64> {
        self.pdpte(cr3, 1)
    }
    fn vmcs02_pdptr2(&mut self, cr3: u64) -> R<u64> {
        self.pdpte(cr3, 2)
    }
    fn vmcs02_pdptr3(&mut self, cr3: u64) -> R<u64> {
        self.pdpte(cr3, 3)
    }
    fn vmcs02_perf_global_ctrl(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("PERF_GLOBAL_CTRL"))
    }
    fn vmcs02_apic_access_addr(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("APIC-access page"))
    }
    fn vmcs02_virtual_apic_page_addr(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("virtual-APIC page"))
    }
    fn vmcs02_posted_intr_desc_addr(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("posted interrupts"))
    }
    fn vmcs12_guest_cr0(&mut self, cr0_02: u64, _shadow_02: u64, cr0_12: u64, mask_12: u64) -> R<u64> {
        Ok(cr0_02 & !mask_12 | cr0_12 & mask_12) // vmcs02's mask is L1's: L0 owns no CR0 bit
    }
    fn vmcs12_guest_cr4(&mut self, cr4_02: u64, _shadow_02: u64, cr4_12: u64, mask_12: u64) -> R<u64> {
        Ok(cr4_02 & !mask_12 | cr4_12 & mask_12)
    }
    fn vmcs12_activity_state(&mut self) -> R<u32> {
        Ok(self.fact(F::GUEST_ACTIVITY_STATE.raw())? as u32)
    }
    fn vmcs12_preemption_timer(&mut self) -> R<u32> {
        Ok(self.fact(F::VMX_PREEMPTION_TIMER_VALUE.raw())? as u32)
    }
    fn vmcs12_dr7(&mut self) -> R<u64> {
        self.fact(F::GUEST_DR7.raw())
    }
    fn vmcs12_efer(&mut self) -> R<u64> {
        self.fact(F::GUEST_IA32_EFER.raw())
    }
    fn vmcs12_exit_reason(&mut self) -> R<u32> {
        Ok(self.fact(F::VM_EXIT_REASON.raw())? as u32)
    }
    fn vmcs12_exit_qualification(&mut self) -> R<u64> {
        self.fact(F::EXIT_QUALIFICATION.raw())
    }
    fn vmcs12_exit_intr_info(&mut self) -> R<u32> {
        Ok(self.fact(F::VM_EXIT_INTR_INFO.raw())? as u32)
    }
    fn vmcs12_exit_intr_error_code(&mut self) -> R<u32> {
        let info = self.fact(F::VM_EXIT_INTR_INFO.raw())?;
        self.error_code(info, F::VM_EXIT_INTR_ERROR_CODE.raw())
    }
    fn vmcs12_idt_vectoring_info(&mut self) -> R<u32> {
        Ok(self.fact(F::IDT_VECTORING_INFO_FIELD.raw())? as u32)
    }
    fn vmcs12_idt_vectoring_error_code(&mut self) -> R<u32> {
        let info = self.fact(F::IDT_VECTORING_INFO_FIELD.raw())?;
        self.error_code(info, F::IDT_VECTORING_ERROR_CODE.raw())
    }
    fn vmcs12_exit_instruction_len(&mut self) -> R<u32> {
        Ok(self.fact(F::VM_EXIT_INSTRUCTION_LEN.raw())? as u32)
    }
    fn vmcs12_exit_guest_physical_address(&mut self) -> R<u64> {
        let reason = VmExitReason::from_bits(self.fact(F::VM_EXIT_REASON.raw())? as u32);
        let defined = reason.basic().is_some_and(|r| GPA_REASONS.contains(&r));
        if defined { self.fact(F::GUEST_PHYSICAL_ADDRESS.raw()) } else { Ok(0) }
    }
    fn vmcs01_efer(&mut self, efer: u64, load: bool, host_address_space_size: bool) -> R<u64> {
        Ok(match (load, host_address_space_size) {
            (true, _) => efer,
            (false, true) => self.l1_efer | EFER_LMA | EFER_LME,
            (false, false) => self.l1_efer & !(EFER_LMA | EFER_LME),
        })
    }
    fn vmcs01_guest_cr0(&mut self, cr0: u64) -> R<u64> {
        Ok(cr0) // vmcs12's host CR0 satisfies L1's fixed bits (checked at entry)
    }
    fn vmcs01_guest_cr4(&mut self, cr4: u64) -> R<u64> {
        Ok(cr4)
    }
    fn vmcs01_shadow_cr3(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("L1 without L0's EPT"))
    }
    fn vmcs01_pdptr0(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("a PAE-paging L1"))
    }
    fn vmcs01_pdptr1(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("a PAE-paging L1"))
    }
    fn vmcs01_pdptr2(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("a PAE-paging L1"))
    }
    fn vmcs01_pdptr3(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("a PAE-paging L1"))
    }
    fn vmcs01_perf_global_ctrl(&mut self, _: u64) -> R<u64> {
        Err(PrepareError::Unsupported("PERF_GLOBAL_CTRL"))
    }
    fn vmcs01_ss_ar(&mut self, selector: u16) -> R<u32> {
        Ok(data_ar(selector))
    }
    fn vmcs01_ds_ar(&mut self, selector: u16) -> R<u32> {
        Ok(data_ar(selector))
    }
    fn vmcs01_es_ar(&mut self, selector: u16) -> R<u32> {
        Ok(data_ar(selector))
    }
    fn vmcs01_fs_ar(&mut self, selector: u16) -> R<u32> {
        Ok(data_ar(selector))
    }
    fn vmcs01_gs_ar(&mut self, selector: u16) -> R<u32> {
        Ok(data_ar(selector))
    }
}

/// A data segment's access rights after a VM exit (SDM 28.5.2): unusable for a null selector
/// (one whose bits 15:3 are 0), else KVM's read/write, accessed, present, 4 KiB-granular 32-bit
/// data segment.
const fn data_ar(selector: u16) -> u32 {
    if selector & !7 == 0 { 0x1_0000 } else { 0xc093 }
}

impl PrepareError {
    /// As the VMCS access error the exit path reports: an unsupported feature or unreachable
    /// memory means the value cannot be produced; 0 marks it (no VM-instruction error).
    pub fn into_vmcs(self) -> VmcsError {
        match self {
            PrepareError::Vmcs(e) => e,
            _ => VmcsError::InstructionError(0),
        }
    }
}
