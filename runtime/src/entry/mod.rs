//! VM-entry consistency checks, generated from schema/checks.toml: what VMLAUNCH/VMRESUME checks
//! before it loads anything (SDM "VM Entries": controls, host state, guest state), over any
//! [`VmcsRead`] backend, the capability MSRs ([`VmxCaps`]) and [`Facts`] about the CPU and the VMM.
//!
//! A nested hypervisor runs them on L1's vmcs12 (with the capabilities it gives L1) before building
//! vmcs02; a VMM restoring nested state runs KVM's subset ([`Selection::KVM_RESTORE`]).
//!
//! - [`Checker`]: the capabilities (evaluated once, [`EntryCaps`]) and facts of one vCPU;
//!   [`Checker::check`] gives the first failing rule in the SDM's tiers, as a typed [`Failure`]
//!   naming the rule, its SDM section and the [`Outcome`] (VMfailValid 7/8, exit 33 with its
//!   qualification, or exit 34 with the number of the failing MSR-load entry); [`Checker::failures`] / [`Checker::for_each_failure`] every failing rule (an
//!   audit).
//! - [`check`] and friends: the same for a one-off check from raw [`VmxCaps`].
//!
//! Fields that do not exist for the capabilities are never read; memory (the virtual-APIC page's
//! VTPR, the VMCS the link pointer references, PAE PDPTEs, the VM-entry MSR-load list) is read
//! through [`GuestMemory`], which also says whether a WRMSR of an MSR-load entry would fault.
//! The MSR-load rules run on each of the list's `VM_ENTRY_MSR_LOAD_COUNT` entries in turn, up to
//! the recommended maximum of 512 × (IA32_VMX_MISC\[27:25\] + 1) (beyond it the SDM leaves the
//! processor's behaviour undefined; KVM fails VM entry on the entry after it).
//! No allocation, no panics.

use core::fmt;

use crate::access::{VmcsError, VmcsRead};
use crate::caps::VmxCaps;
pub use crate::generated::entry::{EntryCaps, Facts, Rule, Tier};

mod memory;
mod rules;
pub use memory::{GuestMemory, NoMemory};
#[allow(unused_imports)] // shl: for rules that shift left by a variable amount
pub(crate) use memory::{read_memory, shl, shr};
pub use rules::{Failure, Outcome, RuleInfo, RuleSet};

/// A field the checks needed could not be read from the VMCS backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The field's encoding.
    pub encoding: u32,
    /// What the backend answered.
    pub error: VmcsError,
}

/// Why [`check`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// The first failing rule.
    Failed(Failure),
    /// The VMCS backend could not provide a field.
    Read(ReadError),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::Failed(x) => x.fmt(f),
            EntryError::Read(e) => write!(f, "cannot read field {:#06x}: {:?}", e.encoding, e.error),
        }
    }
}

// A tier's bit in a Selection.
impl Tier {
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which rules run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    tiers: u8,
    kvm_restore_only: bool,
    /// Tiers of which only the rules KVM checks in software run.
    kvm_only: u8,
}

impl Selection {
    /// Every rule.
    pub const ALL: Selection = Selection { tiers: 0x1f, kvm_restore_only: false, kvm_only: 0 };
    /// The control-field checks only (26.2.1).
    pub const CONTROLS: Selection = Selection::tiers(&[Tier::Controls]);
    /// Every rule before MSR loading (26.1-26.3): what a VMM that loads the VM-entry MSR-load
    /// list itself, WRMSR by WRMSR after the guest state, checks first.
    pub const BEFORE_MSR_LOADING: Selection = Selection::tiers(&[Tier::Basic, Tier::Controls, Tier::Host, Tier::Guest]);
    /// What KVM 7.2.8 applies to a vmcs12 restored by KVM_SET_NESTED_STATE
    /// (`nested_vmx_check_restored_vmcs12`: controls, host state, guest state as KVM checks it).
    pub const KVM_RESTORE: Selection = Selection { tiers: 0x1f, kvm_restore_only: true, kvm_only: 0 };
    /// What KVM 7.2.8's VMLAUNCH/VMRESUME checks in software before it enters vmcs02
    /// (`nested_vmx_run`): every rule before MSR loading, of the guest state only those KVM checks
    /// (`nested_vmx_check_guest_state` and the others checks.toml names as `kvm`); the processor's
    /// entry of vmcs02 checks the rest.
    pub const KVM_ENTRY: Selection = Selection::BEFORE_MSR_LOADING.kvm_checked_only(Tier::Guest);

    /// The rules of these tiers.
    pub const fn tiers(tiers: &[Tier]) -> Selection {
        let mut bits = 0;
        let mut i = 0;
        while i < tiers.len() {
            bits |= tiers[i].bit();
            i += 1;
        }
        Selection { tiers: bits, kvm_restore_only: false, kvm_only: 0 }
    }

    /// This selection with only the rules of `tier` that KVM 7.2.8 checks in software
    /// ([`RuleInfo::kvm`]).
    pub const fn kvm_checked_only(self, tier: Tier) -> Selection {
        Selection { kvm_only: self.kvm_only | tier.bit(), ..self }
    }

    /// Does the selection include any rule of `tier`?
    #[inline(always)]
    pub const fn has_tier(self, tier: Tier) -> bool {
        self.tiers & tier.bit() != 0
    }

    /// Does the selection include `rule`?
    #[inline(always)]
    pub const fn has(self, rule: Rule) -> bool {
        (!self.kvm_restore_only || rule.kvm_restore())
            && (self.kvm_only & rule.tier().bit() == 0 || rule.kvm().is_some())
    }
}

/// Receives failing rules in check order.
pub trait FailureSink {
    /// Record a failure; return true to stop checking.
    fn fail(&mut self, failure: Failure) -> bool;
}

struct First(Option<Failure>);

impl FailureSink for First {
    #[inline(always)]
    fn fail(&mut self, failure: Failure) -> bool {
        self.0 = Some(failure);
        true
    }
}

struct Each<F>(F);

impl<F: FnMut(Failure)> FailureSink for Each<F> {
    fn fail(&mut self, failure: Failure) -> bool {
        (self.0)(failure);
        false
    }
}

/// The VM-entry checks of one vCPU: its capabilities, evaluated once, and its facts. A nested
/// hypervisor keeps one per vCPU (rebuilt when L1's IA32_VMX_* MSRs or the facts change) and checks
/// vmcs12 with it on every VMLAUNCH/VMRESUME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checker {
    caps: EntryCaps,
    facts: Facts,
}

impl Checker {
    /// A checker for a vCPU with capabilities `caps` (evaluated here, once) and `facts`.
    pub fn new(caps: &VmxCaps, facts: Facts) -> Self {
        Checker { caps: EntryCaps::new(caps), facts }
    }

    /// The facts the checks use.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The facts of the next check (e.g. `launched`, `vmlaunch` per instruction).
    pub fn facts_mut(&mut self) -> &mut Facts {
        &mut self.facts
    }

    /// The first failing rule in check order, as VMLAUNCH/VMRESUME would report it.
    pub fn check<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(&self, vmcs: &V, memory: &M) -> Result<(), EntryError> {
        self.check_only(vmcs, memory, Selection::ALL)
    }

    /// The first failing rule of `selection` in check order.
    pub fn check_only<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
        &self,
        vmcs: &V,
        memory: &M,
        selection: Selection,
    ) -> Result<(), EntryError> {
        let mut first = First(None);
        crate::generated::entry::run(vmcs, &self.caps, &self.facts, memory, selection, &mut first)
            .map_err(EntryError::Read)?;
        match first.0 {
            Some(f) => Err(EntryError::Failed(f)),
            None => Ok(()),
        }
    }

    /// Calls `f` for every failing rule of `selection`, in check order.
    pub fn for_each_failure<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
        &self,
        vmcs: &V,
        memory: &M,
        selection: Selection,
        f: impl FnMut(Failure),
    ) -> Result<(), ReadError> {
        crate::generated::entry::run(vmcs, &self.caps, &self.facts, memory, selection, &mut Each(f))
    }

    /// Every failing rule of `selection`, as a set.
    pub fn failures<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
        &self,
        vmcs: &V,
        memory: &M,
        selection: Selection,
    ) -> Result<RuleSet, ReadError> {
        let mut set = RuleSet::EMPTY;
        self.for_each_failure(vmcs, memory, selection, |f| set.insert(f.rule))?;
        Ok(set)
    }
}

/// [`Checker::check_only`] once, from raw capability MSRs.
pub fn check_only<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
    vmcs: &V,
    caps: &VmxCaps,
    facts: &Facts,
    memory: &M,
    selection: Selection,
) -> Result<(), EntryError> {
    Checker::new(caps, *facts).check_only(vmcs, memory, selection)
}

/// [`Checker::check`] once, from raw capability MSRs.
pub fn check<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
    vmcs: &V,
    caps: &VmxCaps,
    facts: &Facts,
    memory: &M,
) -> Result<(), EntryError> {
    check_only(vmcs, caps, facts, memory, Selection::ALL)
}

/// [`Checker::for_each_failure`] once, from raw capability MSRs.
pub fn for_each_failure<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
    vmcs: &V,
    caps: &VmxCaps,
    facts: &Facts,
    memory: &M,
    selection: Selection,
    f: impl FnMut(Failure),
) -> Result<(), ReadError> {
    Checker::new(caps, *facts).for_each_failure(vmcs, memory, selection, f)
}

/// [`Checker::failures`] once, from raw capability MSRs.
pub fn failures<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized>(
    vmcs: &V,
    caps: &VmxCaps,
    facts: &Facts,
    memory: &M,
    selection: Selection,
) -> Result<RuleSet, ReadError> {
    Checker::new(caps, *facts).failures(vmcs, memory, selection)
}
