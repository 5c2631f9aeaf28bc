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

mod bits;
mod error;
mod rules;

pub use bits::{
    BASIC_32BIT_PHYS_ADDR_ONLY, BASIC_FEATURE_AND_RESERVED, MISC_FEATURE_AND_RESERVED, PIN_BASED_VMX_PREEMPTION_TIMER,
    basic_revision_id, basic_vmcs_size, misc_cr3_target_count, misc_max_msr_list, misc_mseg_revision,
    misc_preemption_timer_rate,
};
pub use error::RestoreError;

use crate::caps::{Msr, VmxCaps};
use bits::join;

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

    /// The values a capability set reports, stored as KVM keeps them: the TRUE controls for
    /// pin/proc/exit/entry, every other MSR as read. The inverse of [`Self::get`].
    pub fn from_caps(caps: &VmxCaps) -> NestedVmxMsrs {
        let r = |m: Msr| caps.raw(m.index());
        let (low, high) = (|m: Msr| r(m) as u32, |m: Msr| (r(m) >> 32) as u32);
        NestedVmxMsrs {
            basic: r(Msr::Basic),
            pinbased_ctls_low: low(Msr::TruePin),
            pinbased_ctls_high: high(Msr::TruePin),
            procbased_ctls_low: low(Msr::TrueProc),
            procbased_ctls_high: high(Msr::TrueProc),
            secondary_ctls_low: low(Msr::Proc2),
            secondary_ctls_high: high(Msr::Proc2),
            tertiary_ctls: r(Msr::Proc3),
            exit_ctls_low: low(Msr::TrueExit),
            exit_ctls_high: high(Msr::TrueExit),
            secondary_exit_ctls: r(Msr::Exit2),
            entry_ctls_low: low(Msr::TrueEntry),
            entry_ctls_high: high(Msr::TrueEntry),
            misc_low: low(Msr::Misc),
            misc_high: high(Msr::Misc),
            cr0_fixed0: r(Msr::Cr0Fixed0),
            cr0_fixed1: r(Msr::Cr0Fixed1),
            cr4_fixed0: r(Msr::Cr4Fixed0),
            cr4_fixed1: r(Msr::Cr4Fixed1),
            ept_caps: low(Msr::EptVpid),
            vpid_caps: high(Msr::EptVpid),
            vmcs_enum: r(Msr::VmcsEnum),
            vmfunc_controls: r(Msr::Vmfunc),
        }
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
}
