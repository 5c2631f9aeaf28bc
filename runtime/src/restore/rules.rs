//! The rules [`NestedVmxMsrs::restore`] applies, in the order Linux 7.2.8 applies them.

use super::bits::{
    BASIC_32BIT_PHYS_ADDR_ONLY, BASIC_FEATURE_AND_RESERVED, MISC_FEATURE_AND_RESERVED, PIN_BASED_VMX_PREEMPTION_TIMER,
    basic_revision_id, basic_vmcs_size, is_bitwise_subset, misc_cr3_target_count, misc_max_msr_list,
    misc_mseg_revision, misc_preemption_timer_rate,
};
use super::{NestedVmxMsrs, RestoreError};
use crate::caps::Msr;

/// KVM routes 0x480..=0x491 (`KVM_FIRST_EMULATED_VMX_MSR`..=`KVM_LAST_EMULATED_VMX_MSR`) to its
/// restore code; the other capability MSRs are not restorable.
const KVM_RESTORABLE: core::ops::RangeInclusive<u32> = Msr::Basic.index()..=Msr::Vmfunc.index();

/// Which (low, high) pair of [`NestedVmxMsrs`] a restorable control MSR lives in.
#[derive(Clone, Copy)]
enum Control {
    Pin,
    Proc,
    Secondary,
    Exit,
    Entry,
}

impl NestedVmxMsrs {
    /// Userspace restores capability MSR `msr_index` to `data` on this vCPU, audited against
    /// `reference` (the host-wide maximum, KVM's `vmcs_config.nested`) by the Linux 7.2.8 rules.
    /// `vcpu_in_vmx_operation` is KVM's `vmx->nested.vmxon`. On success the value is stored
    /// (control and split MSRs into their low/high words); on failure nothing changes.
    ///
    /// Order of the checks: an index outside 0x480..=0x493 is [`RestoreError::UnknownMsr`];
    /// 0x492/0x493 are [`RestoreError::NotRestorable`] (KVM never routes them to its restore code,
    /// so not even the busy test applies); within 0x480..=0x491 the busy test comes first, then the
    /// MSR's own rules in the order KVM applies them (the first failing rule is reported).
    pub fn restore(
        &mut self,
        reference: &NestedVmxMsrs,
        vcpu_in_vmx_operation: bool,
        msr_index: u32,
        data: u64,
    ) -> Result<(), RestoreError> {
        let Some(msr) = Msr::from_index(msr_index) else { return Err(RestoreError::UnknownMsr) };
        if !KVM_RESTORABLE.contains(&msr_index) {
            return Err(RestoreError::NotRestorable);
        }
        if vcpu_in_vmx_operation {
            return Err(RestoreError::Busy);
        }
        match msr {
            Msr::Basic => self.restore_basic(reference, data),
            Msr::TruePin => self.restore_control(reference, Control::Pin, data),
            Msr::TrueProc => self.restore_control(reference, Control::Proc, data),
            Msr::TrueExit => self.restore_control(reference, Control::Exit, data),
            Msr::TrueEntry => self.restore_control(reference, Control::Entry, data),
            Msr::Proc2 => self.restore_control(reference, Control::Secondary, data),
            Msr::Misc => self.restore_misc(reference, data),
            Msr::Cr0Fixed0 => Self::restore_fixed0(&mut self.cr0_fixed0, reference.cr0_fixed0, data),
            Msr::Cr4Fixed0 => Self::restore_fixed0(&mut self.cr4_fixed0, reference.cr4_fixed0, data),
            Msr::EptVpid => self.restore_ept_vpid_cap(reference, data),
            Msr::VmcsEnum => {
                self.vmcs_enum = data;
                Ok(())
            }
            Msr::Vmfunc => self.restore_vmfunc(reference, data),
            // The non-TRUE controls (derived from the TRUE MSRs) and CR0/CR4 FIXED1 (from guest
            // CPUID).
            _ => Err(RestoreError::NotRestorable),
        }
    }

    fn restore_basic(&mut self, reference: &NestedVmxMsrs, data: u64) -> Result<(), RestoreError> {
        let supported = reference.basic;
        if !is_bitwise_subset(supported, data, BASIC_FEATURE_AND_RESERVED) {
            return Err(RestoreError::BasicFeatureOrReserved);
        }
        if data & BASIC_32BIT_PHYS_ADDR_ONLY != 0 {
            return Err(RestoreError::Basic32BitPhysAddr);
        }
        if basic_revision_id(data) != basic_revision_id(supported) {
            return Err(RestoreError::BasicRevision);
        }
        if basic_vmcs_size(data) < basic_vmcs_size(supported) {
            return Err(RestoreError::BasicVmcsSizeSmaller);
        }
        self.basic = data;
        Ok(())
    }

    fn control_words(&mut self, which: Control) -> (&mut u32, &mut u32) {
        match which {
            Control::Pin => (&mut self.pinbased_ctls_low, &mut self.pinbased_ctls_high),
            Control::Proc => (&mut self.procbased_ctls_low, &mut self.procbased_ctls_high),
            Control::Secondary => (&mut self.secondary_ctls_low, &mut self.secondary_ctls_high),
            Control::Exit => (&mut self.exit_ctls_low, &mut self.exit_ctls_high),
            Control::Entry => (&mut self.entry_ctls_low, &mut self.entry_ctls_high),
        }
    }

    fn restore_control(&mut self, reference: &NestedVmxMsrs, which: Control, data: u64) -> Result<(), RestoreError> {
        let supported = match which {
            Control::Pin => reference.true_pinbased_ctls(),
            Control::Proc => reference.true_procbased_ctls(),
            Control::Secondary => reference.secondary_ctls(),
            Control::Exit => reference.true_exit_ctls(),
            Control::Entry => reference.true_entry_ctls(),
        };
        // Must-be-1 bits (31:0) of the reference stay 1; more may be required.
        if !is_bitwise_subset(data, supported, 0x0000_0000_ffff_ffff) {
            return Err(RestoreError::ControlMustBe1Cleared);
        }
        // Allowed-1 bits (63:32) may only be taken away.
        if !is_bitwise_subset(supported, data, 0xffff_ffff_0000_0000) {
            return Err(RestoreError::ControlAllowed1Added);
        }
        let (low, high) = self.control_words(which);
        *low = data as u32;
        *high = (data >> 32) as u32;
        Ok(())
    }

    fn restore_misc(&mut self, reference: &NestedVmxMsrs, data: u64) -> Result<(), RestoreError> {
        let supported = reference.misc();
        if !is_bitwise_subset(supported, data, MISC_FEATURE_AND_RESERVED) {
            return Err(RestoreError::MiscFeatureOrReserved);
        }
        // The gate is this vCPU's current pin-based allowed-1 word, not the reference's.
        if self.pinbased_ctls_high & PIN_BASED_VMX_PREEMPTION_TIMER != 0
            && misc_preemption_timer_rate(data) != misc_preemption_timer_rate(supported)
        {
            return Err(RestoreError::MiscTimerRate);
        }
        if misc_cr3_target_count(data) > misc_cr3_target_count(supported) {
            return Err(RestoreError::MiscCr3Targets);
        }
        if misc_max_msr_list(data) > misc_max_msr_list(supported) {
            return Err(RestoreError::MiscMaxMsrList);
        }
        if misc_mseg_revision(data) != misc_mseg_revision(supported) {
            return Err(RestoreError::MiscMsegRevision);
        }
        self.misc_low = data as u32;
        self.misc_high = (data >> 32) as u32;
        Ok(())
    }

    fn restore_fixed0(slot: &mut u64, supported: u64, data: u64) -> Result<(), RestoreError> {
        // Every bit the reference requires to be 1 during VMX operation stays required.
        if !is_bitwise_subset(data, supported, !0) {
            return Err(RestoreError::Fixed0Cleared);
        }
        *slot = data;
        Ok(())
    }

    fn restore_ept_vpid_cap(&mut self, reference: &NestedVmxMsrs, data: u64) -> Result<(), RestoreError> {
        // Every bit is a feature or reserved: capabilities may only be dropped.
        if !is_bitwise_subset(reference.ept_vpid_cap(), data, !0) {
            return Err(RestoreError::EptVpidNotSubset);
        }
        self.ept_caps = data as u32;
        self.vpid_caps = (data >> 32) as u32;
        Ok(())
    }

    fn restore_vmfunc(&mut self, reference: &NestedVmxMsrs, data: u64) -> Result<(), RestoreError> {
        if data & !reference.vmfunc_controls != 0 {
            return Err(RestoreError::VmfuncNotSubset);
        }
        self.vmfunc_controls = data;
        Ok(())
    }
}
