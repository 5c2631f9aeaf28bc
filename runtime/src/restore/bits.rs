//! The bit fields of IA32_VMX_BASIC and IA32_VMX_MISC that KVM's restore rules compare, and the
//! masks it compares them under.

use crate::controls::PinBasedVmExecControl;

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
pub(super) const fn is_bitwise_subset(superset: u64, subset: u64, mask: u64) -> bool {
    subset & mask & !superset == 0
}

pub(super) const fn join(low: u32, high: u32) -> u64 {
    low as u64 | (high as u64) << 32
}
