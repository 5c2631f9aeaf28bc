//! Restoring IA32_VMX_* capability MSRs: the audit KVM applies to userspace values.
//!
//! A nested hypervisor advertises its own VMX capability MSRs to L1. When a VM migrates, userspace
//! writes the values saved on the source back into the destination vCPU, and the destination must
//! refuse any value that promises more than it can emulate. [`NestedVmxMsrs`] holds one vCPU's
//! advertised values (the shape of KVM's `struct nested_vmx_msrs`) and
//! [`NestedVmxMsrs::restore`] applies exactly the rules of Linux 7.2.8 (`arch/x86/kvm/vmx/nested.c`,
//! `vmx_set_vmx_msr()` and its helpers), each failure named by a [`RestoreError`] variant.
//!
//! # The reference value
//!
//! Every subset test compares the new value with `reference`: the host-wide maximum
//! (`vmcs_config.nested` in KVM), not the vCPU's current value. The one exception is the
//! preemption-timer-rate test of IA32_VMX_MISC, whose *gate* is the vCPU's current pin-based
//! allowed-1 word (see [`RestoreError::MiscTimerRate`]).
//!
//! # Differences from the original (Linux 4.10, commit 62cc6b9dc61e, 2016)
//!
//! - The reference was the vCPU's *current* value. Once userspace restricted an MSR (cleared an
//!   allowed-1 bit, dropped a feature), the wider value could never be restored on that vCPU.
//!   "KVM: nVMX: Let userspace set nVMX MSR to any _host_ supported value" (June 2022, Cc stable)
//!   moved every comparison to `vmcs_config.nested`; this module implements the fixed behaviour.
//! - There was no busy check: the MSRs could change while the vCPU was in VMX operation. Now
//!   every write to 0x480..=0x491 fails with -EBUSY then ([`RestoreError::Busy`]).
//! - IA32_VMX_VMFUNC (0x491) was not restorable (it fell into the default -EINVAL case). Now it is
//!   restorable as a subset of the reference ([`RestoreError::VmfuncNotSubset`]).
//! - The BASIC and MISC masks were written as one feature-and-reserved expression; 7.2.8 splits them
//!   into named feature and reserved bits (BASIC bit 56 moved from reserved to feature), but the
//!   unions are numerically identical ([`BASIC_FEATURE_AND_RESERVED`], [`MISC_FEATURE_AND_RESERVED`]).
//!
//! # What the caller still checks
//!
//! KVM reaches these rules only for host-initiated writes (a guest WRMSR to a capability MSR is a
//! #GP) and only when the vCPU's CPUID advertises VMX. Both are the caller's business here.

use core::fmt;

use crate::caps::Msr;
use crate::controls::PinBasedVmExecControl;

/// KVM routes 0x480..=0x491 (`KVM_FIRST_EMULATED_VMX_MSR`..=`KVM_LAST_EMULATED_VMX_MSR`) to its
/// restore code; the other capability MSRs are not restorable.
const KVM_RESTORABLE: core::ops::RangeInclusive<u32> = Msr::Basic.index()..=Msr::Vmfunc.index();

/// IA32_VMX_BASIC bits KVM treats as features (49 dual-monitor, 54 INS/OUTS info, 55 TRUE
/// controls, 56 no hardware error code consistency check) or reserved (63:57, 47:45, 31):
/// `0x01c2000000000000 | 0xfe00e00080000000`. The same union as the 2016 mask.
pub const BASIC_FEATURE_AND_RESERVED: u64 = 0xffc2_e000_8000_0000;
/// IA32_VMX_BASIC bit 48: VMX structures limited to 32-bit physical addresses.
pub const BASIC_32BIT_PHYS_ADDR_ONLY: u64 = 1 << 48;
/// IA32_VMX_MISC bits KVM treats as features (5, 8:6, 14, 15, 28, 29, 30) or reserved (31, 13:9):
/// `0x7000c1e0 | 0x80003e00`. The same union as the 2016 mask.
pub const MISC_FEATURE_AND_RESERVED: u64 = 0xf000_ffe0;
/// Pin-based control "activate VMX-preemption timer" (the schema's bit).
pub const PIN_BASED_VMX_PREEMPTION_TIMER: u32 = PinBasedVmExecControl::ACTIVATE_PREEMPTION_TIMER.bits();

/// VMCS revision identifier: IA32_VMX_BASIC bits 30:0.
pub const fn basic_revision_id(basic: u64) -> u32 {
    (basic & 0x7fff_ffff) as u32
}

/// VMCS region size in bytes: IA32_VMX_BASIC bits 44:32.
pub const fn basic_vmcs_size(basic: u64) -> u32 {
    ((basic >> 32) & 0x1fff) as u32
}

/// VMX-preemption timer rate (TSC bit that ticks the timer): IA32_VMX_MISC bits 4:0.
pub const fn misc_preemption_timer_rate(misc: u64) -> u32 {
    (misc & 0x1f) as u32
}

/// Number of CR3-target values: IA32_VMX_MISC bits 24:16.
pub const fn misc_cr3_target_count(misc: u64) -> u32 {
    ((misc >> 16) & 0x1ff) as u32
}

/// Maximum MSR-list size field (512 * (N + 1) entries): IA32_VMX_MISC bits 27:25.
pub const fn misc_max_msr_list(misc: u64) -> u32 {
    ((misc >> 25) & 0x7) as u32
}

/// MSEG revision identifier: IA32_VMX_MISC bits 63:32.
pub const fn misc_mseg_revision(misc: u64) -> u32 {
    (misc >> 32) as u32
}

/// Within `mask`, `subset` sets no bit that `superset` lacks.
const fn is_bitwise_subset(superset: u64, subset: u64, mask: u64) -> bool {
    subset & mask & !superset == 0
}

const fn join(low: u32, high: u32) -> u64 {
    low as u64 | (high as u64) << 32
}

/// One vCPU's nested VMX capability MSRs, as KVM keeps them (`struct nested_vmx_msrs`).
///
/// Control MSRs are split into the must-be-1 word (`*_low`, MSR bits 31:0) and the allowed-1 word
/// (`*_high`, MSR bits 63:32); the control MSRs hold the TRUE values (0x48d..0x490).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NestedVmxMsrs {
    /// IA32_VMX_BASIC ([`Msr::Basic`]).
    pub basic: u64,
    /// IA32_VMX_TRUE_PINBASED_CTLS ([`Msr::TruePin`]) bits 31:0.
    pub pinbased_ctls_low: u32,
    /// IA32_VMX_TRUE_PINBASED_CTLS ([`Msr::TruePin`]) bits 63:32.
    pub pinbased_ctls_high: u32,
    /// IA32_VMX_TRUE_PROCBASED_CTLS ([`Msr::TrueProc`]) bits 31:0.
    pub procbased_ctls_low: u32,
    /// IA32_VMX_TRUE_PROCBASED_CTLS ([`Msr::TrueProc`]) bits 63:32.
    pub procbased_ctls_high: u32,
    /// IA32_VMX_PROCBASED_CTLS2 ([`Msr::Proc2`]) bits 31:0.
    pub secondary_ctls_low: u32,
    /// IA32_VMX_PROCBASED_CTLS2 ([`Msr::Proc2`]) bits 63:32.
    pub secondary_ctls_high: u32,
    /// IA32_VMX_PROCBASED_CTLS3 ([`Msr::Proc3`]): allowed-1 bits of the tertiary controls.
    pub tertiary_ctls: u64,
    /// IA32_VMX_TRUE_EXIT_CTLS ([`Msr::TrueExit`]) bits 31:0.
    pub exit_ctls_low: u32,
    /// IA32_VMX_TRUE_EXIT_CTLS ([`Msr::TrueExit`]) bits 63:32.
    pub exit_ctls_high: u32,
    /// IA32_VMX_EXIT_CTLS2 ([`Msr::Exit2`]): allowed-1 bits of the secondary exit controls.
    pub secondary_exit_ctls: u64,
    /// IA32_VMX_TRUE_ENTRY_CTLS ([`Msr::TrueEntry`]) bits 31:0.
    pub entry_ctls_low: u32,
    /// IA32_VMX_TRUE_ENTRY_CTLS ([`Msr::TrueEntry`]) bits 63:32.
    pub entry_ctls_high: u32,
    /// IA32_VMX_MISC ([`Msr::Misc`]) bits 31:0.
    pub misc_low: u32,
    /// IA32_VMX_MISC ([`Msr::Misc`]) bits 63:32.
    pub misc_high: u32,
    /// IA32_VMX_CR0_FIXED0 ([`Msr::Cr0Fixed0`]).
    pub cr0_fixed0: u64,
    /// IA32_VMX_CR0_FIXED1 ([`Msr::Cr0Fixed1`]).
    pub cr0_fixed1: u64,
    /// IA32_VMX_CR4_FIXED0 ([`Msr::Cr4Fixed0`]).
    pub cr4_fixed0: u64,
    /// IA32_VMX_CR4_FIXED1 ([`Msr::Cr4Fixed1`]).
    pub cr4_fixed1: u64,
    /// IA32_VMX_EPT_VPID_CAP ([`Msr::EptVpid`]) bits 31:0.
    pub ept_caps: u32,
    /// IA32_VMX_EPT_VPID_CAP ([`Msr::EptVpid`]) bits 63:32.
    pub vpid_caps: u32,
    /// IA32_VMX_VMCS_ENUM ([`Msr::VmcsEnum`]).
    pub vmcs_enum: u64,
    /// IA32_VMX_VMFUNC ([`Msr::Vmfunc`]).
    pub vmfunc_controls: u64,
}

/// Why [`NestedVmxMsrs::restore`] refused a value. Every variant but `UnknownMsr` is a KVM
/// `-EINVAL` (or `-EBUSY`) from `vmx_set_vmx_msr()` and its helpers in Linux 7.2.8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestoreError {
    /// The vCPU is in VMX operation (after VMXON): KVM's `-EBUSY` for 0x480..=0x491, so L1 never
    /// sees its capabilities change under it. Not in the 2016 code.
    Busy,
    /// The MSR exists but cannot be restored: the non-TRUE controls 0x481..=0x484 (derived from
    /// the TRUE MSRs), CR0/CR4_FIXED1 0x487/0x489 (generated from guest CPUID), and
    /// PROCBASED_CTLS3/EXIT_CTLS2 0x492/0x493 (outside KVM's restorable range 0x480..=0x491).
    NotRestorable,
    /// BASIC: within [`BASIC_FEATURE_AND_RESERVED`] the value sets a bit the reference lacks (an
    /// added feature or a set reserved bit).
    BasicFeatureOrReserved,
    /// BASIC: bit 48 (32-bit physical addresses only) is set; KVM never emulates that VMX.
    Basic32BitPhysAddr,
    /// BASIC: the VMCS revision identifier (bits 30:0) differs from the reference.
    BasicRevision,
    /// BASIC: the VMCS region size (bits 44:32) is smaller than the reference.
    BasicVmcsSizeSmaller,
    /// Control MSR (TRUE pin/proc/exit/entry, PROCBASED_CTLS2): a must-be-1 bit of the reference
    /// (bits 31:0) is 0 in the value.
    ControlMustBe1Cleared,
    /// Control MSR: an allowed-1 bit (bits 63:32) the reference does not allow is set.
    ControlAllowed1Added,
    /// MISC: within [`MISC_FEATURE_AND_RESERVED`] the value sets a bit the reference lacks.
    MiscFeatureOrReserved,
    /// MISC: the preemption-timer rate (bits 4:0) differs from the reference while the vCPU's
    /// *current* pin-based allowed-1 word allows the preemption timer (bit 6). Without the timer
    /// the rate is not checked.
    MiscTimerRate,
    /// MISC: more CR3-target values (bits 24:16) than the reference.
    MiscCr3Targets,
    /// MISC: a larger max-MSR-list field (bits 27:25) than the reference.
    MiscMaxMsrList,
    /// MISC: the MSEG revision identifier (bits 63:32) differs from the reference.
    MiscMsegRevision,
    /// CR0/CR4_FIXED0: a bit the reference requires to be 1 is 0 in the value.
    Fixed0Cleared,
    /// EPT_VPID_CAP: the value sets a bit (of all 64) the reference lacks.
    EptVpidNotSubset,
    /// VMFUNC: the value sets a VM-function bit the reference lacks.
    VmfuncNotSubset,
    /// Not a VMX capability MSR (outside 0x480..=0x493): KVM does not route it here at all.
    UnknownMsr,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            RestoreError::Busy => "vCPU is in VMX operation",
            RestoreError::NotRestorable => "capability MSR is not restorable",
            RestoreError::BasicFeatureOrReserved => "IA32_VMX_BASIC adds a feature or sets a reserved bit",
            RestoreError::Basic32BitPhysAddr => "IA32_VMX_BASIC limits VMX structures to 32-bit addresses",
            RestoreError::BasicRevision => "IA32_VMX_BASIC changes the VMCS revision identifier",
            RestoreError::BasicVmcsSizeSmaller => "IA32_VMX_BASIC shrinks the VMCS region",
            RestoreError::ControlMustBe1Cleared => "control MSR clears a must-be-1 bit",
            RestoreError::ControlAllowed1Added => "control MSR allows a control the host does not",
            RestoreError::MiscFeatureOrReserved => "IA32_VMX_MISC adds a feature or sets a reserved bit",
            RestoreError::MiscTimerRate => "IA32_VMX_MISC changes the preemption-timer rate",
            RestoreError::MiscCr3Targets => "IA32_VMX_MISC raises the CR3-target count",
            RestoreError::MiscMaxMsrList => "IA32_VMX_MISC raises the maximum MSR-list size",
            RestoreError::MiscMsegRevision => "IA32_VMX_MISC changes the MSEG revision identifier",
            RestoreError::Fixed0Cleared => "CR fixed-0 MSR clears a must-be-1 bit",
            RestoreError::EptVpidNotSubset => "IA32_VMX_EPT_VPID_CAP adds a capability",
            RestoreError::VmfuncNotSubset => "IA32_VMX_VMFUNC adds a VM function",
            RestoreError::UnknownMsr => "not a VMX capability MSR",
        };
        f.write_str(text)
    }
}

impl core::error::Error for RestoreError {}

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
    /// VMCS revision identifier of `basic` (bits 30:0).
    pub const fn revision_id(&self) -> u32 {
        basic_revision_id(self.basic)
    }

    /// VMCS region size of `basic` (bits 44:32).
    pub const fn vmcs_size(&self) -> u32 {
        basic_vmcs_size(self.basic)
    }

    /// IA32_VMX_MISC as one value.
    pub const fn misc(&self) -> u64 {
        join(self.misc_low, self.misc_high)
    }

    /// Preemption-timer rate of MISC (bits 4:0).
    pub const fn preemption_timer_rate(&self) -> u32 {
        misc_preemption_timer_rate(self.misc())
    }

    /// CR3-target count of MISC (bits 24:16).
    pub const fn cr3_target_count(&self) -> u32 {
        misc_cr3_target_count(self.misc())
    }

    /// Max-MSR-list field of MISC (bits 27:25).
    pub const fn max_msr_list(&self) -> u32 {
        misc_max_msr_list(self.misc())
    }

    /// MSEG revision identifier of MISC (bits 63:32).
    pub const fn mseg_revision(&self) -> u32 {
        misc_mseg_revision(self.misc())
    }

    /// IA32_VMX_EPT_VPID_CAP as one value.
    pub const fn ept_vpid_cap(&self) -> u64 {
        join(self.ept_caps, self.vpid_caps)
    }

    /// IA32_VMX_TRUE_PINBASED_CTLS as one value.
    pub const fn true_pinbased_ctls(&self) -> u64 {
        join(self.pinbased_ctls_low, self.pinbased_ctls_high)
    }

    /// IA32_VMX_TRUE_PROCBASED_CTLS as one value.
    pub const fn true_procbased_ctls(&self) -> u64 {
        join(self.procbased_ctls_low, self.procbased_ctls_high)
    }

    /// IA32_VMX_PROCBASED_CTLS2 as one value.
    pub const fn secondary_ctls(&self) -> u64 {
        join(self.secondary_ctls_low, self.secondary_ctls_high)
    }

    /// IA32_VMX_TRUE_EXIT_CTLS as one value.
    pub const fn true_exit_ctls(&self) -> u64 {
        join(self.exit_ctls_low, self.exit_ctls_high)
    }

    /// IA32_VMX_TRUE_ENTRY_CTLS as one value.
    pub const fn true_entry_ctls(&self) -> u64 {
        join(self.entry_ctls_low, self.entry_ctls_high)
    }

    /// The stored value of a capability MSR, or `None` for the non-TRUE controls 0x481..=0x484
    /// (KVM derives them from the TRUE values on read) and indices outside 0x480..=0x493.
    pub const fn get(&self, msr_index: u32) -> Option<u64> {
        let Some(msr) = Msr::from_index(msr_index) else { return None };
        Some(match msr {
            Msr::Basic => self.basic,
            Msr::Misc => self.misc(),
            Msr::Cr0Fixed0 => self.cr0_fixed0,
            Msr::Cr0Fixed1 => self.cr0_fixed1,
            Msr::Cr4Fixed0 => self.cr4_fixed0,
            Msr::Cr4Fixed1 => self.cr4_fixed1,
            Msr::VmcsEnum => self.vmcs_enum,
            Msr::Proc2 => self.secondary_ctls(),
            Msr::EptVpid => self.ept_vpid_cap(),
            Msr::TruePin => self.true_pinbased_ctls(),
            Msr::TrueProc => self.true_procbased_ctls(),
            Msr::TrueExit => self.true_exit_ctls(),
            Msr::TrueEntry => self.true_entry_ctls(),
            Msr::Vmfunc => self.vmfunc_controls,
            Msr::Proc3 => self.tertiary_ctls,
            Msr::Exit2 => self.secondary_exit_ctls,
            _ => return None,
        })
    }

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
