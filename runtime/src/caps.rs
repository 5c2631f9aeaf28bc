//! Capability sets: what a vCPU's IA32_VMX_* MSRs allow. Field existence and VMCS_ENUM are
//! evaluated against them ([`crate::fields::exists`], [`crate::fields::vmcs_enum`]).

pub use crate::generated::caps::Cap;

/// Something that answers "does this vCPU have capability `cap`?".
pub trait Capabilities {
    fn has(&self, cap: Cap) -> bool;
}

/// Every capability the schema names: the maximal CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllCaps;

impl Capabilities for AllCaps {
    fn has(&self, _: Cap) -> bool {
        true
    }
}

/// Every capability except the listed ones.
#[derive(Clone, Copy, Debug)]
pub struct AllExcept<'a>(pub &'a [Cap]);

impl Capabilities for AllExcept<'_> {
    fn has(&self, cap: Cap) -> bool {
        !self.0.contains(&cap)
    }
}

/// First capability MSR (IA32_VMX_BASIC) and how many indices [`VmxCaps`] keeps.
pub const FIRST_VMX_MSR: u32 = 0x480;
pub const VMX_MSR_SLOTS: usize = 0x20;

/// Raw capability MSR values 0x480..0x49f, as `rdmsr` reports them. An MSR never set reads as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxCaps {
    values: [u64; VMX_MSR_SLOTS],
}

impl Default for VmxCaps {
    fn default() -> Self {
        VmxCaps { values: [0; VMX_MSR_SLOTS] }
    }
}

impl VmxCaps {
    pub const fn new() -> Self {
        VmxCaps { values: [0; VMX_MSR_SLOTS] }
    }

    /// Set MSR `index`; indices outside 0x480..0x49f are ignored (they carry no VMX capability).
    pub fn set(&mut self, index: u32, value: u64) -> &mut Self {
        if let Some(slot) = index.checked_sub(FIRST_VMX_MSR).and_then(|i| self.values.get_mut(i as usize)) {
            *slot = value;
        }
        self
    }

    /// The raw value of MSR `index` (0 if unset or not a VMX capability MSR).
    pub fn raw(&self, index: u32) -> u64 {
        index.checked_sub(FIRST_VMX_MSR).and_then(|i| self.values.get(i as usize)).copied().unwrap_or(0)
    }

    /// The control MSR to consult: the TRUE_* variant when IA32_VMX_BASIC bit 55 is set.
    pub(crate) fn control_msr(&self, index: u32, true_index: Option<u32>) -> u64 {
        match true_index {
            Some(t) if self.raw(FIRST_VMX_MSR) >> 55 & 1 == 1 => self.raw(t),
            _ => self.raw(index),
        }
    }
}

impl Capabilities for VmxCaps {
    fn has(&self, cap: Cap) -> bool {
        self.has_cap(cap)
    }
}
