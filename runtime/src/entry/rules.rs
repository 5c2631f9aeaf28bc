//! What a rule is and what its failure says: the schema entry of each generated [`Rule`]
//! ([`RuleInfo`]), the SDM's [`Tier`]s and [`Outcome`]s, a [`Failure`], and sets of rules.

use core::fmt;

use super::{Rule, Tier};

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
