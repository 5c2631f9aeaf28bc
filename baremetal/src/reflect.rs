//! The hooks of an L0 that reflects one hardware VM exit of its guest into a vmcs12, as the suite
//! does after the VMCALL exit: the exit facts are the processor's, L0 owns no CR0/CR4 bits, and L2's
//! vCPU state is what the processor saved. The suite never builds a vmcs02 from a vmcs12, so the
//! entry and host-state hooks refuse.

use vmcs::VmcsError;
use vmcs::copy::NestedHooks;

/// What the suite read from the processor at the exit.
pub struct Reflect {
    pub reason: u32,
    pub qualification: u64,
    pub instruction_len: u32,
    pub dr7: u64,
    pub efer: u64,
}

/// Shown through `Debug` in the suite's check lines.
#[derive(Debug)]
#[allow(dead_code)]
pub enum ReflectError {
    Vmcs(VmcsError),
    /// An entry or host-state hook: not part of reflecting an exit.
    NotReflecting(&'static str),
}

impl From<VmcsError> for ReflectError {
    fn from(e: VmcsError) -> Self {
        ReflectError::Vmcs(e)
    }
}

/// Entry and host-state hooks, which reflecting an exit never calls.
macro_rules! refuse {
    ($($name:ident($($t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&mut self, $(_: $t),*) -> Result<$r, ReflectError> {
            Err(ReflectError::NotReflecting(stringify!($name)))
        })*
    };
}

impl NestedHooks for Reflect {
    type Error = ReflectError;
    fn run_pending(&self) -> bool {
        false
    }
    fn l0_ept(&self) -> bool {
        false
    }
    fn l0_vpid(&self) -> bool {
        false
    }
    fn pae_paging(&self) -> bool {
        false
    }
    fn l1_pae_paging(&self) -> bool {
        false
    }
    fn guest_ibt_or_shstk(&self) -> bool {
        false
    }
    fn guest_shstk(&self) -> bool {
        false
    }
    fn pfec_from_vmcs12(&self) -> bool {
        true
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
    fn vmcs12_guest_cr0(
        &mut self,
        cr0_02: u64,
        _shadow_02: u64,
        cr0_12: u64,
        mask_12: u64,
    ) -> Result<u64, ReflectError> {
        Ok((cr0_02 & !mask_12) | (cr0_12 & mask_12))
    }
    fn vmcs12_guest_cr4(
        &mut self,
        cr4_02: u64,
        _shadow_02: u64,
        cr4_12: u64,
        mask_12: u64,
    ) -> Result<u64, ReflectError> {
        Ok((cr4_02 & !mask_12) | (cr4_12 & mask_12))
    }
    fn vmcs12_activity_state(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_preemption_timer(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_dr7(&mut self) -> Result<u64, ReflectError> {
        Ok(self.dr7)
    }
    fn vmcs12_efer(&mut self) -> Result<u64, ReflectError> {
        Ok(self.efer)
    }
    fn vmcs12_exit_reason(&mut self) -> Result<u32, ReflectError> {
        Ok(self.reason)
    }
    fn vmcs12_exit_qualification(&mut self) -> Result<u64, ReflectError> {
        Ok(self.qualification)
    }
    fn vmcs12_exit_intr_info(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_exit_intr_error_code(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_idt_vectoring_info(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_idt_vectoring_error_code(&mut self) -> Result<u32, ReflectError> {
        Ok(0)
    }
    fn vmcs12_exit_instruction_len(&mut self) -> Result<u32, ReflectError> {
        Ok(self.instruction_len)
    }
    fn vmcs12_exit_guest_physical_address(&mut self) -> Result<u64, ReflectError> {
        Ok(0)
    }
    refuse! {
        vmcs02_pin_controls(u32) -> u32;
        vmcs02_proc_controls(u32) -> u32;
        vmcs02_secondary_controls(u32, bool) -> u32;
        vmcs02_encls_exiting_bitmap(u64, bool) -> u64;
        vmcs02_entry_controls(u32, u64) -> u32;
        vmcs02_preemption_timer(u32) -> u32;
        vmcs02_vpid(u16, bool) -> u16;
        vmcs02_posted_intr_nv(u16, bool) -> u16;
        vmcs02_msr_bitmap(u64, bool) -> u64;
        vmcs02_l1_dr7() -> u64;
        vmcs02_debugctl(u64) -> u64;
        vmcs02_l1_debugctl() -> u64;
        vmcs02_l1_s_cet() -> u64;
        vmcs02_l1_ssp() -> u64;
        vmcs02_l1_ssp_table() -> u64;
        vmcs02_l1_bndcfgs() -> u64;
        vmcs02_exception_bitmap(u32) -> u32;
        vmcs02_cr0_guest_host_mask(u64) -> u64;
        vmcs02_cr4_guest_host_mask(u64) -> u64;
        vmcs02_l1_pat() -> u64;
        vmcs02_tsc_offset(u64, u64, bool, bool) -> u64;
        vmcs02_tsc_multiplier(u64, bool, bool) -> u64;
        vmcs02_eptp(u64, bool) -> u64;
        vmcs02_guest_cr0(u64) -> u64;
        vmcs02_cr0_read_shadow(u64, u64, u64) -> u64;
        vmcs02_guest_cr4(u64) -> u64;
        vmcs02_cr4_read_shadow(u64, u64, u64) -> u64;
        vmcs02_efer(u64, u32) -> u64;
        vmcs02_shadow_cr3(u64) -> u64;
        vmcs02_pdptr0(u64) -> u64;
        vmcs02_pdptr1(u64) -> u64;
        vmcs02_pdptr2(u64) -> u64;
        vmcs02_pdptr3(u64) -> u64;
        vmcs02_perf_global_ctrl(u64) -> u64;
        vmcs02_apic_access_addr(u64) -> u64;
        vmcs02_virtual_apic_page_addr(u64) -> u64;
        vmcs02_posted_intr_desc_addr(u64) -> u64;
        vmcs01_efer(u64, bool, bool) -> u64;
        vmcs01_guest_cr0(u64) -> u64;
        vmcs01_guest_cr4(u64) -> u64;
        vmcs01_shadow_cr3(u64) -> u64;
        vmcs01_pdptr0(u64) -> u64;
        vmcs01_pdptr1(u64) -> u64;
        vmcs01_pdptr2(u64) -> u64;
        vmcs01_pdptr3(u64) -> u64;
        vmcs01_perf_global_ctrl(u64) -> u64;
        vmcs01_ss_ar(u16) -> u32;
        vmcs01_ds_ar(u16) -> u32;
        vmcs01_es_ar(u16) -> u32;
        vmcs01_fs_ar(u16) -> u32;
        vmcs01_gs_ar(u16) -> u32;
    }
}
