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
pub use crate::generated::entry::{EntryCaps, Facts, Rule};

/// What a processor does when a check fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// VMfailInvalid (CF = 1).
    VmFailInvalid,
    /// VMfailValid with this VM-instruction error (ZF = 1): 4, 5, 26, 7 (controls) or 8 (host state).
    VmFailValid(u32),
    /// A VM-entry failure: exit reason `reason` (33 guest state, 34 MSR loading) with bit 31 set, and
    /// the exit qualification.
    EntryFailure {
        /// The basic exit reason (33 or 34).
        reason: u32,
        /// The exit qualification.
        qualification: u32,
    },
}

impl Outcome {
    /// The exit-reason field for an entry failure (bit 31 set).
    pub const fn exit_reason(self) -> Option<u32> {
        match self {
            Outcome::EntryFailure { reason, .. } => Some(reason | 0x8000_0000),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::VmFailInvalid => f.write_str("VMfailInvalid"),
            Outcome::VmFailValid(n) => write!(f, "VMfailValid({n})"),
            Outcome::EntryFailure { reason, qualification } => {
                write!(f, "VM-entry failure: exit {reason}, qualification {qualification}")
            }
        }
    }
}

/// The SDM's groups of checks, in the order a processor applies them (the SDM lets controls and
/// host state be checked in either order; these rules check controls first, as KVM and Bochs do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// 26.1: VMfailInvalid, errors 26, 4, 5.
    Basic,
    /// 26.2.1: control fields (VMfailValid 7).
    Controls,
    /// 26.2.2-26.2.4: host-state area (VMfailValid 8).
    Host,
    /// 26.3: guest-state area (exit 33).
    Guest,
    /// 26.4: MSR loading (exit 34).
    MsrLoad,
}

impl Tier {
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A rule's entry in schema/checks.toml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// The schema name (`_<segment>` appended for a per-segment rule).
    pub name: &'static str,
    /// The SDM section (2016-2022 numbering, "VM Entries" as chapter 26).
    pub section: &'static str,
    /// The id of the row (e.g. "H1") in the table of VM-entry checks the schema was written from
    /// (checks.toml's `ref`).
    pub reference: &'static str,
    /// The check as written in the schema; it holds on a valid VMCS.
    pub text: &'static str,
    /// What the check requires, in words.
    pub doc: &'static str,
    /// What a processor does when the check fails.
    pub outcome: Outcome,
    /// The group the SDM checks it in (and so its order among the others).
    pub tier: Tier,
    /// The Linux 7.2.8 function that checks it for vmcs12, if any.
    pub kvm: Option<&'static str>,
    /// KVM applies it to a vmcs12 restored by KVM_SET_NESTED_STATE.
    pub kvm_restore: bool,
}

impl Rule {
    /// [`RuleInfo::name`].
    pub const fn name(self) -> &'static str {
        self.info().name
    }
    /// [`RuleInfo::section`].
    pub const fn section(self) -> &'static str {
        self.info().section
    }
    /// [`RuleInfo::reference`].
    pub const fn reference(self) -> &'static str {
        self.info().reference
    }
    /// [`RuleInfo::doc`].
    pub const fn doc(self) -> &'static str {
        self.info().doc
    }
    /// [`RuleInfo::outcome`].
    pub const fn outcome(self) -> Outcome {
        self.info().outcome
    }
    /// [`RuleInfo::tier`].
    pub const fn tier(self) -> Tier {
        self.info().tier
    }
    /// [`RuleInfo::kvm`].
    pub const fn kvm(self) -> Option<&'static str> {
        self.info().kvm
    }
    /// [`RuleInfo::kvm_restore`].
    pub const fn kvm_restore(self) -> bool {
        self.info().kvm_restore
    }
    /// The rule named `name`.
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.name() == name)
    }
}

/// A failed check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The rule that fails.
    pub rule: Rule,
    /// For a rule of the MSR-loading tier: the number (from 1) of the VM-entry MSR-load entry it
    /// fails on, which is the exit qualification.
    pub entry: Option<u32>,
}

impl Failure {
    /// A failure of `rule`.
    pub const fn new(rule: Rule) -> Self {
        Failure { rule, entry: None }
    }
    /// A rule of the MSR-loading tier failing on entry `number` (from 1).
    pub const fn at_entry(rule: Rule, number: u32) -> Self {
        Failure { rule, entry: Some(number) }
    }
    /// What the processor does (for MSR loading, with the entry's number as the qualification).
    pub const fn outcome(self) -> Outcome {
        match (self.rule.outcome(), self.entry) {
            (Outcome::EntryFailure { reason, .. }, Some(n)) => Outcome::EntryFailure { reason, qualification: n },
            (o, _) => o,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.rule;
        write!(f, "{} (SDM {}, {}): {}: {}", r.name(), r.section(), r.reference(), self.outcome(), r.doc())?;
        match self.entry {
            Some(n) => write!(f, " (VM-entry MSR-load entry {n})"),
            None => Ok(()),
        }
    }
}

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

/// What the checks read beyond the VMCS: physical memory (the guest-physical memory of L1, for a
/// nested hypervisor), and whether a WRMSR would fault (the last check on each VM-entry MSR-load
/// entry).
pub trait GuestMemory {
    /// `bytes` (4 or 8) little-endian bytes at `address`, or None where nothing can be read (the
    /// checks then see all ones, as a read of non-existent memory returns on x86).
    fn read(&self, address: u64, bytes: u32) -> Option<u64>;

    /// Would WRMSR of `value` to MSR `index` fault (#GP) at CPL 0 (SDM 26.4: such an entry fails
    /// VM entry)? The answer is the environment's: the processor's MSRs, or for a nested
    /// hypervisor its emulation of L1's. The default says no: the VMM that then writes the MSRs
    /// finds out itself.
    fn wrmsr_faults(&self, index: u32, value: u64) -> bool {
        let _ = (index, value);
        false
    }
}

/// No memory: every read sees all ones (for checks that must not touch memory, e.g. a restore).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemory;

impl GuestMemory for NoMemory {
    fn read(&self, _: u64, _: u32) -> Option<u64> {
        None
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

const WORDS: usize = Rule::ALL.len().div_ceil(64);

/// A set of rules (a bit per rule), iterated in check order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleSet([u64; WORDS]);

impl RuleSet {
    /// No rule.
    pub const EMPTY: RuleSet = RuleSet([0; WORDS]);

    /// Add `rule`.
    pub fn insert(&mut self, rule: Rule) {
        let i = rule as usize;
        self.0[i / 64] |= 1 << (i % 64);
    }
    /// Take `rule` out.
    pub fn remove(&mut self, rule: Rule) {
        let i = rule as usize;
        self.0[i / 64] &= !(1 << (i % 64));
    }
    /// Whether `rule` is in the set.
    pub fn contains(&self, rule: Rule) -> bool {
        let i = rule as usize;
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    /// Whether the set has no rule.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    /// How many rules the set has.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// The rules, in check order.
    pub fn iter(&self) -> impl Iterator<Item = Rule> + '_ {
        Rule::ALL.iter().copied().filter(|r| self.contains(*r))
    }
    /// The first rule in check order.
    pub fn first(&self) -> Option<Rule> {
        self.iter().next()
    }
}

// Helpers of the generated code.

/// `bytes` of memory at `address`, all ones where unreadable.
#[inline(always)]
pub(crate) fn read_memory<M: GuestMemory + ?Sized>(memory: &M, address: u64, bytes: u32) -> u64 {
    let mask = if bytes >= 8 { u64::MAX } else { (1u64 << (8 * bytes)) - 1 };
    memory.read(address, bytes).unwrap_or(u64::MAX) & mask
}

/// `value << amount` within `width` bits; 0 for an amount of `width` or more.
#[inline(always)]
#[allow(dead_code)] // for rules that shift left by a variable amount
pub(crate) fn shl(value: u64, amount: u64, width: u32) -> u64 {
    let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
    if amount >= width as u64 { 0 } else { (value << amount) & mask }
}

/// `value >> amount`; 0 for an amount of `width` or more.
#[inline(always)]
pub(crate) fn shr(value: u64, amount: u64, width: u32) -> u64 {
    if amount >= width as u64 { 0 } else { value >> amount }
}
