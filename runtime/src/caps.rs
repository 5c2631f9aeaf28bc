//! Capability sets: what a vCPU's IA32_VMX_* MSRs allow. Field existence and VMCS_ENUM are
//! evaluated against them ([`crate::fields::exists`], [`crate::fields::vmcs_enum`]).
//!
//! [`Msr`] is generated from `schema/capabilities.toml`: every capability MSR with its index, its
//! TRUE MSR and its `requires` gate, and which MSR reports its capabilities ([`Msr::reported_by`],
//! tabulated from the schema compiler's one statement of the choice); [`VmxCaps::value`] reads it.

pub use crate::generated::caps::{Cap, Msr};

/// IA32_FEATURE_CONTROL (not a capability MSR, so not in the schema): VMXON outside SMX needs
/// it locked with VMX outside SMX enabled ([`feature_control::VMXON`]).
pub mod feature_control {
    /// The MSR's index.
    pub const INDEX: u32 = 0x3a;
    /// Bit 0: locked (WRMSR faults until reset).
    pub const LOCK: u64 = 1 << 0;
    /// Bit 2: VMXON allowed outside SMX.
    pub const VMX_OUTSIDE_SMX: u64 = 1 << 2;
    /// The bits VMXON outside SMX requires set.
    pub const VMXON: u64 = LOCK | VMX_OUTSIDE_SMX;
}

/// Something that answers "does this vCPU have capability `cap`?".
pub trait Capabilities {
    /// Whether the vCPU has `cap`.
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

/// How a capability MSR reports capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsrKind {
    /// Allowed-0 settings in bits 31:0 (a 1 forces the control to 1), allowed-1 in bits 63:32.
    Control,
    /// Bit n reports capability n (for a 64-bit control field: the allowed-1 setting of control n).
    Flags,
}

/// Raw values of the capability MSRs the schema declares ([`Msr`]), as `rdmsr` reports them. An
/// MSR never set reads as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxCaps {
    values: [u64; Msr::ALL.len()],
}

impl Default for VmxCaps {
    fn default() -> Self {
        Self::new()
    }
}

impl VmxCaps {
    /// Every MSR 0: no capability at all (VMX without any optional feature, not even TRUE MSRs).
    pub const fn new() -> Self {
        VmxCaps { values: [0; Msr::ALL.len()] }
    }

    /// Set MSR `index`; an index the schema does not declare is ignored (it carries no VMX
    /// capability the runtime evaluates).
    pub fn set(&mut self, index: u32, value: u64) -> &mut Self {
        if let Some(msr) = Msr::from_index(index) {
            self.values[msr as usize] = value;
        }
        self
    }

    /// The raw value of MSR `index` (0 if unset or not declared).
    pub fn raw(&self, index: u32) -> u64 {
        Msr::from_index(index).map_or(0, |msr| self.values[msr as usize])
    }

    /// The value that reports `msr`'s capabilities: that of the MSR the schema chooses
    /// ([`Msr::reported_by`]: its TRUE MSR when that exists), 0 when `msr` does not exist.
    pub fn value(&self, msr: Msr) -> u64 {
        msr.reported_by(self).map_or(0, |m| self.values[m as usize])
    }
}

impl Capabilities for VmxCaps {
    fn has(&self, cap: Cap) -> bool {
        self.has_cap(cap)
    }
}
