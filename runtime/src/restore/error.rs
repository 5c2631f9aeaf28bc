//! Why a restore was refused: one variant per rule of KVM's `vmx_set_vmx_msr()`.

use core::fmt;

/// Why [`NestedVmxMsrs::restore`](super::NestedVmxMsrs::restore) refused a value. Every variant but `UnknownMsr` is a KVM
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
    /// BASIC: within [`BASIC_FEATURE_AND_RESERVED`](super::BASIC_FEATURE_AND_RESERVED) the value sets a bit the reference lacks (an
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
    /// MISC: within [`MISC_FEATURE_AND_RESERVED`](super::MISC_FEATURE_AND_RESERVED) the value sets a bit the reference lacks.
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
