//! The blob's header (`struct kvm_vmx_nested_state_hdr`) and the vCPU facts some rules need.

use crate::{
    INVALID_GPA, KVM_STATE_NESTED_EVMCS, KVM_STATE_NESTED_GIF_SET, KVM_STATE_NESTED_GUEST_MODE,
    KVM_STATE_NESTED_KNOWN_FLAGS, KVM_STATE_NESTED_MTF_PENDING, KVM_STATE_NESTED_RUN_PENDING,
};

/// The facts about the target vCPU that some rules need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuContext {
    /// The guest CPUID advertises VMX (rules 8 and 14).
    pub has_vmx: bool,
    /// The vCPU is currently in SMM (rule 12).
    pub in_smm: bool,
    /// Enlightened VMCS was enabled on the vCPU (rule 14).
    pub evmcs_enabled: bool,
    /// The guest MAXPHYADDR (rules 8 and 16, `page_address_valid`).
    pub maxphyaddr: u8,
}

impl Default for VcpuContext {
    /// VMX in CPUID, not in SMM, no eVMCS, MAXPHYADDR 52.
    fn default() -> Self {
        Self { has_vmx: true, in_smm: false, evmcs_enabled: false, maxphyaddr: 52 }
    }
}

impl VcpuContext {
    /// KVM's `page_address_valid()`: page-aligned and within the guest MAXPHYADDR.
    pub fn page_address_valid(&self, gpa: u64) -> bool {
        let legal = match gpa.checked_shr(u32::from(self.maxphyaddr)) {
            Some(high) => high == 0,
            None => true, // MAXPHYADDR >= 64: every address is legal.
        };
        gpa & 0xfff == 0 && legal
    }
}

/// `struct kvm_vmx_nested_state_hdr` (at offset 8 of the blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxHeader {
    /// The VMXON pointer; [`INVALID_GPA`] when not in VMX operation.
    pub vmxon_pa: u64,
    /// The current VMCS pointer; [`INVALID_GPA`] when none.
    pub vmcs12_pa: u64,
    /// `smm.flags` (`KVM_STATE_NESTED_SMM_*`).
    pub smm_flags: u16,
    /// `flags` (`KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE`).
    pub vmx_flags: u32,
    /// `preemption_timer_deadline`.
    pub preemption_timer_deadline: u64,
}

impl VmxHeader {
    /// Not in VMX operation: both pointers invalid, no flags.
    pub const NOT_IN_VMX_OPERATION: Self = Self {
        vmxon_pa: INVALID_GPA,
        vmcs12_pa: INVALID_GPA,
        smm_flags: 0,
        vmx_flags: 0,
        preemption_timer_deadline: 0,
    };
}

impl Default for VmxHeader {
    /// [`VmxHeader::NOT_IN_VMX_OPERATION`].
    fn default() -> Self {
        Self::NOT_IN_VMX_OPERATION
    }
}

/// The names of the `KVM_STATE_NESTED_*` bits set in `flags` (without the prefix), in bit order,
/// and the bits no name covers.
pub fn flag_names(flags: u16) -> (impl Iterator<Item = &'static str>, u16) {
    const NAMES: [(u16, &str); 5] = [
        (KVM_STATE_NESTED_GUEST_MODE, "GUEST_MODE"),
        (KVM_STATE_NESTED_RUN_PENDING, "RUN_PENDING"),
        (KVM_STATE_NESTED_EVMCS, "EVMCS"),
        (KVM_STATE_NESTED_MTF_PENDING, "MTF_PENDING"),
        (KVM_STATE_NESTED_GIF_SET, "GIF_SET"),
    ];
    let names = NAMES.into_iter().filter(move |(bit, _)| flags & bit != 0).map(|(_, name)| name);
    (names, flags & !KVM_STATE_NESTED_KNOWN_FLAGS)
}
