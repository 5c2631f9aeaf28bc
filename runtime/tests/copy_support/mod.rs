//! A `NestedHooks` for tests: every hook a pure function of its inputs and of the L0 state in the
//! struct, recognisable in vmcs02 (so a test can tell a hook's value from a raw copy), and a log of
//! the calls in order.

#![allow(dead_code)]

use std::cell::RefCell;

use vmcs::VmcsError;
use vmcs::copy::NestedHooks;

/// L0's bits for L2: what the merging hooks OR into L1's controls and masks.
pub const L0_PIN: u32 = 0x0000_0009;
pub const L0_PROC: u32 = 0x0100_0000; // unconditional I/O exiting
pub const L0_SECONDARY: u32 = 0x0000_0022; // EPT, VPID
pub const L0_ENTRY: u32 = 0x0000_c000;
pub const L0_EXCEPTIONS: u32 = 0x0006_4042; // #DB #UD #NM #MC #AC
pub const L0_CR0_MASK: u64 = 0x8000_0021;
pub const L0_CR4_MASK: u64 = 0x0000_2000;
/// L0's VPID for L2 and L1's own.
pub const VPID02: u16 = 0x42;
pub const VPID01: u16 = 0x1;
/// Where L0 keeps L2's pages (host-physical = L1 guest-physical + this).
pub const HPA_OFFSET: u64 = 0x40_0000_0000;
pub const EPT02_ROOT: u64 = 0x7770_0000;
pub const EPT01_ROOT: u64 = 0x6660_0000;

/// Facts of one nested VM exit as L0 saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitFacts {
    pub reason: u32,
    pub qualification: u64,
    pub intr_info: u32,
    pub intr_error_code: u32,
    pub idt_vectoring_info: u32,
    pub idt_vectoring_error_code: u32,
    pub instruction_len: u32,
    pub guest_physical_address: u64,
}

/// The test L0: predicates, its own vCPU state, and the exit it is reflecting.
#[derive(Clone, Debug, Default)]
pub struct TestHooks {
    pub run_pending: bool,
    pub l0_ept: bool,
    pub l0_vpid: bool,
    pub pae_paging: bool,
    pub l1_pae_paging: bool,
    pub guest_ibt_or_shstk: bool,
    pub guest_shstk: bool,
    pub pfec_from_vmcs12: bool,
    pub host_apicv: bool,
    pub vpmu_perf_global_ctrl: bool,
    pub encls_exiting: bool,
    /// L1's state before the entry (DR7, DEBUGCTL, PAT, BNDCFGS, S_CET, SSP, SSP table).
    pub l1: [u64; 7],
    /// L2's state in L0's vCPU model on exit (activity, timer, DR7, EFER).
    pub l2_activity: u32,
    pub l2_timer: u32,
    pub l2_dr7: u64,
    pub l2_efer: u64,
    /// L1's TSC offset.
    pub l1_tsc_offset: u64,
    pub exit: ExitFacts,
    /// Every hook and predicate call, in order.
    pub log: RefCell<Vec<&'static str>>,
    /// Record calls in `log` (off by default: long runs would grow it).
    pub logging: bool,
    /// `vmcs02_vpid` fails (as an L0 hook may, e.g. a VMWRITE it makes).
    pub fail_vpid: bool,
}

impl TestHooks {
    /// The common case: L0 with EPT and VPID, a VMLAUNCH/VMRESUME being emulated.
    pub fn new() -> Self {
        TestHooks { run_pending: true, l0_ept: true, l0_vpid: true, pfec_from_vmcs12: true, ..Default::default() }
    }
    fn called(&self, name: &'static str) {
        if self.logging {
            self.log.borrow_mut().push(name);
        }
    }
    /// Where `name` was first called in the log.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.log.borrow().iter().position(|n| *n == name)
    }
}

type R<T> = Result<T, VmcsError>;

/// A recognisable function of an input: what a computing hook returns.
pub fn mark64(x: u64) -> u64 {
    x.rotate_left(17) ^ 0x5a5a_0000_0000_a5a5
}

/// The data segments' access-rights hooks, recorded as called.
macro_rules! data_ar_hooks {
    ($($name:ident),*) => {
        $(fn $name(&mut self, selector: u16) -> R<u32> {
            self.called(stringify!($name));
            Ok(data_ar(selector))
        })*
    };
}

impl NestedHooks for TestHooks {
    type Error = VmcsError;
    fn run_pending(&self) -> bool {
        self.called("run_pending");
        self.run_pending
    }
    fn l0_ept(&self) -> bool {
        self.called("l0_ept");
        self.l0_ept
    }
    fn l0_vpid(&self) -> bool {
        self.called("l0_vpid");
        self.l0_vpid
    }
    fn pae_paging(&self) -> bool {
        self.called("pae_paging");
        self.pae_paging
    }
    fn l1_pae_paging(&self) -> bool {
        self.called("l1_pae_paging");
        self.l1_pae_paging
    }
    fn guest_ibt_or_shstk(&self) -> bool {
        self.called("guest_ibt_or_shstk");
        self.guest_ibt_or_shstk
    }
    fn guest_shstk(&self) -> bool {
        self.called("guest_shstk");
        self.guest_shstk
    }
    fn pfec_from_vmcs12(&self) -> bool {
        self.called("pfec_from_vmcs12");
        self.pfec_from_vmcs12
    }
    fn host_apicv(&self) -> bool {
        self.called("host_apicv");
        self.host_apicv
    }
    fn vpmu_perf_global_ctrl(&self) -> bool {
        self.called("vpmu_perf_global_ctrl");
        self.vpmu_perf_global_ctrl
    }
    fn encls_exiting(&self) -> bool {
        self.called("encls_exiting");
        self.encls_exiting
    }
    fn vmcs02_pin_controls(&mut self, pin: u32) -> R<u32> {
        self.called("vmcs02_pin_controls");
        Ok((pin & !(1 << 6)) | L0_PIN)
    }
    fn vmcs02_proc_controls(&mut self, proc: u32) -> R<u32> {
        self.called("vmcs02_proc_controls");
        Ok((proc & !(1 << 25)) | L0_PROC)
    }
    fn vmcs02_secondary_controls(&mut self, secondary: u32, active: bool) -> R<u32> {
        self.called("vmcs02_secondary_controls");
        Ok(if active { secondary & !(1 << 14 | 1 << 17) } else { 0 } | L0_SECONDARY)
    }
    fn vmcs02_encls_exiting_bitmap(&mut self, bitmap: u64, enabled: bool) -> R<u64> {
        self.called("vmcs02_encls_exiting_bitmap");
        Ok(if enabled { bitmap } else { 0 } | 1)
    }
    fn vmcs02_entry_controls(&mut self, entry: u32, efer: u64) -> R<u32> {
        self.called("vmcs02_entry_controls");
        let lma = (efer >> 10 & 1) as u32;
        Ok((entry & !(1 << 13 | 1 << 9)) | L0_ENTRY | lma << 9)
    }
    fn vmcs02_preemption_timer(&mut self, value: u32) -> R<u32> {
        self.called("vmcs02_preemption_timer");
        Ok(value / 2)
    }
    fn vmcs02_vpid(&mut self, vpid: u16, enabled: bool) -> R<u16> {
        self.called("vmcs02_vpid");
        if self.fail_vpid {
            return Err(VmcsError::NoCurrentVmcs);
        }
        Ok(if enabled && vpid != 0 { VPID02 } else { VPID01 })
    }
    fn vmcs02_posted_intr_nv(&mut self, _vector: u16, _enabled: bool) -> R<u16> {
        self.called("vmcs02_posted_intr_nv");
        Ok(0xf1)
    }
    fn vmcs02_msr_bitmap(&mut self, _bitmap: u64, _enabled: bool) -> R<u64> {
        self.called("vmcs02_msr_bitmap");
        Ok(0x9000)
    }
    fn vmcs02_l1_dr7(&mut self) -> R<u64> {
        self.called("vmcs02_l1_dr7");
        Ok(self.l1[0])
    }
    fn vmcs02_debugctl(&mut self, debugctl: u64) -> R<u64> {
        self.called("vmcs02_debugctl");
        Ok(debugctl & 0x1801)
    }
    fn vmcs02_l1_debugctl(&mut self) -> R<u64> {
        self.called("vmcs02_l1_debugctl");
        Ok(self.l1[1])
    }
    fn vmcs02_l1_s_cet(&mut self) -> R<u64> {
        self.called("vmcs02_l1_s_cet");
        Ok(self.l1[4])
    }
    fn vmcs02_l1_ssp(&mut self) -> R<u64> {
        self.called("vmcs02_l1_ssp");
        Ok(self.l1[5])
    }
    fn vmcs02_l1_ssp_table(&mut self) -> R<u64> {
        self.called("vmcs02_l1_ssp_table");
        Ok(self.l1[6])
    }
    fn vmcs02_l1_bndcfgs(&mut self) -> R<u64> {
        self.called("vmcs02_l1_bndcfgs");
        Ok(self.l1[3])
    }
    fn vmcs02_exception_bitmap(&mut self, bitmap: u32) -> R<u32> {
        self.called("vmcs02_exception_bitmap");
        Ok(bitmap | L0_EXCEPTIONS)
    }
    fn vmcs02_cr0_guest_host_mask(&mut self, mask: u64) -> R<u64> {
        self.called("vmcs02_cr0_guest_host_mask");
        Ok(mask | L0_CR0_MASK)
    }
    fn vmcs02_cr4_guest_host_mask(&mut self, mask: u64) -> R<u64> {
        self.called("vmcs02_cr4_guest_host_mask");
        Ok(mask | L0_CR4_MASK)
    }
    fn vmcs02_l1_pat(&mut self) -> R<u64> {
        self.called("vmcs02_l1_pat");
        Ok(self.l1[2])
    }
    fn vmcs02_tsc_offset(&mut self, offset: u64, _multiplier: u64, offsetting: bool, _scaling: bool) -> R<u64> {
        self.called("vmcs02_tsc_offset");
        Ok(self.l1_tsc_offset.wrapping_add(if offsetting { offset } else { 0 }))
    }
    fn vmcs02_tsc_multiplier(&mut self, multiplier: u64, offsetting: bool, scaling: bool) -> R<u64> {
        self.called("vmcs02_tsc_multiplier");
        Ok(if offsetting && scaling { multiplier } else { 1 << 48 })
    }
    fn vmcs02_eptp(&mut self, eptp: u64, nested: bool) -> R<u64> {
        self.called("vmcs02_eptp");
        Ok(if nested { EPT02_ROOT | (eptp & 0xfff) } else { EPT01_ROOT | 0x5e })
    }
    fn vmcs02_guest_cr0(&mut self, cr0: u64) -> R<u64> {
        self.called("vmcs02_guest_cr0");
        Ok(cr0 | 0x20)
    }
    fn vmcs02_cr0_read_shadow(&mut self, cr0: u64, shadow: u64, mask: u64) -> R<u64> {
        self.called("vmcs02_cr0_read_shadow");
        Ok((cr0 & !mask) | (shadow & mask))
    }
    fn vmcs02_guest_cr4(&mut self, cr4: u64) -> R<u64> {
        self.called("vmcs02_guest_cr4");
        Ok(cr4 | 0x2000)
    }
    fn vmcs02_cr4_read_shadow(&mut self, cr4: u64, shadow: u64, mask: u64) -> R<u64> {
        self.called("vmcs02_cr4_read_shadow");
        Ok((cr4 & !mask) | (shadow & mask))
    }
    fn vmcs02_efer(&mut self, efer: u64, entry: u32) -> R<u64> {
        self.called("vmcs02_efer");
        Ok(if self.run_pending && entry >> 15 & 1 == 1 { efer } else { (entry as u64 >> 9 & 1) * 0x500 })
    }
    fn vmcs02_shadow_cr3(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs02_shadow_cr3");
        Ok(mark64(cr3))
    }
    fn vmcs02_pdptr0(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs02_pdptr0");
        Ok(mark64(cr3))
    }
    fn vmcs02_pdptr1(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs02_pdptr1");
        Ok(mark64(cr3 ^ 1))
    }
    fn vmcs02_pdptr2(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs02_pdptr2");
        Ok(mark64(cr3 ^ 2))
    }
    fn vmcs02_pdptr3(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs02_pdptr3");
        Ok(mark64(cr3 ^ 3))
    }
    fn vmcs02_perf_global_ctrl(&mut self, value: u64) -> R<u64> {
        self.called("vmcs02_perf_global_ctrl");
        Ok(value & 0xf)
    }
    fn vmcs02_apic_access_addr(&mut self, gpa: u64) -> R<u64> {
        self.called("vmcs02_apic_access_addr");
        Ok(gpa.wrapping_add(HPA_OFFSET))
    }
    fn vmcs02_virtual_apic_page_addr(&mut self, gpa: u64) -> R<u64> {
        self.called("vmcs02_virtual_apic_page_addr");
        Ok(gpa.wrapping_add(HPA_OFFSET))
    }
    fn vmcs02_posted_intr_desc_addr(&mut self, gpa: u64) -> R<u64> {
        self.called("vmcs02_posted_intr_desc_addr");
        Ok(gpa.wrapping_add(HPA_OFFSET))
    }
    fn vmcs12_guest_cr0(&mut self, cr0_02: u64, shadow_02: u64, cr0_12: u64, mask_12: u64) -> R<u64> {
        self.called("vmcs12_guest_cr0");
        let l0_only = L0_CR0_MASK & !mask_12;
        Ok((cr0_02 & !(mask_12 | l0_only)) | (cr0_12 & mask_12) | (shadow_02 & l0_only))
    }
    fn vmcs12_guest_cr4(&mut self, cr4_02: u64, shadow_02: u64, cr4_12: u64, mask_12: u64) -> R<u64> {
        self.called("vmcs12_guest_cr4");
        let l0_only = L0_CR4_MASK & !mask_12;
        Ok((cr4_02 & !(mask_12 | l0_only)) | (cr4_12 & mask_12) | (shadow_02 & l0_only))
    }
    fn vmcs12_activity_state(&mut self) -> R<u32> {
        self.called("vmcs12_activity_state");
        Ok(self.l2_activity)
    }
    fn vmcs12_preemption_timer(&mut self) -> R<u32> {
        self.called("vmcs12_preemption_timer");
        Ok(self.l2_timer)
    }
    fn vmcs12_dr7(&mut self) -> R<u64> {
        self.called("vmcs12_dr7");
        Ok(self.l2_dr7)
    }
    fn vmcs12_efer(&mut self) -> R<u64> {
        self.called("vmcs12_efer");
        Ok(self.l2_efer)
    }
    fn vmcs12_exit_reason(&mut self) -> R<u32> {
        self.called("vmcs12_exit_reason");
        Ok(self.exit.reason)
    }
    fn vmcs12_exit_qualification(&mut self) -> R<u64> {
        self.called("vmcs12_exit_qualification");
        Ok(self.exit.qualification)
    }
    fn vmcs12_exit_intr_info(&mut self) -> R<u32> {
        self.called("vmcs12_exit_intr_info");
        Ok(self.exit.intr_info)
    }
    fn vmcs12_exit_intr_error_code(&mut self) -> R<u32> {
        self.called("vmcs12_exit_intr_error_code");
        Ok(self.exit.intr_error_code)
    }
    fn vmcs12_idt_vectoring_info(&mut self) -> R<u32> {
        self.called("vmcs12_idt_vectoring_info");
        Ok(self.exit.idt_vectoring_info)
    }
    fn vmcs12_idt_vectoring_error_code(&mut self) -> R<u32> {
        self.called("vmcs12_idt_vectoring_error_code");
        Ok(self.exit.idt_vectoring_error_code)
    }
    fn vmcs12_exit_instruction_len(&mut self) -> R<u32> {
        self.called("vmcs12_exit_instruction_len");
        Ok(self.exit.instruction_len)
    }
    fn vmcs12_exit_guest_physical_address(&mut self) -> R<u64> {
        self.called("vmcs12_exit_guest_physical_address");
        Ok(self.exit.guest_physical_address)
    }
    fn vmcs01_efer(&mut self, efer: u64, load: bool, host_address_space_size: bool) -> R<u64> {
        self.called("vmcs01_efer");
        Ok(if load {
            efer
        } else if host_address_space_size {
            0x500
        } else {
            0
        })
    }
    fn vmcs01_guest_cr0(&mut self, cr0: u64) -> R<u64> {
        self.called("vmcs01_guest_cr0");
        Ok(cr0 | 0x20)
    }
    fn vmcs01_guest_cr4(&mut self, cr4: u64) -> R<u64> {
        self.called("vmcs01_guest_cr4");
        Ok(cr4 | 0x2000)
    }
    fn vmcs01_shadow_cr3(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs01_shadow_cr3");
        Ok(mark64(cr3))
    }
    fn vmcs01_pdptr0(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs01_pdptr0");
        Ok(cr3 | 1)
    }
    fn vmcs01_pdptr1(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs01_pdptr1");
        Ok(cr3 | 2)
    }
    fn vmcs01_pdptr2(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs01_pdptr2");
        Ok(cr3 | 3)
    }
    fn vmcs01_pdptr3(&mut self, cr3: u64) -> R<u64> {
        self.called("vmcs01_pdptr3");
        Ok(cr3 | 4)
    }
    fn vmcs01_perf_global_ctrl(&mut self, value: u64) -> R<u64> {
        self.called("vmcs01_perf_global_ctrl");
        Ok(value & 0x7)
    }
    data_ar_hooks!(vmcs01_ss_ar, vmcs01_ds_ar, vmcs01_es_ar, vmcs01_fs_ar, vmcs01_gs_ar);
}

/// A data segment's access rights after an exit: KVM's 0xc093, unusable for a null selector.
fn data_ar(selector: u16) -> u32 {
    if selector & !7 == 0 { 0x1_0000 } else { 0xc093 }
}
