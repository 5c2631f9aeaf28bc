//! Judging one launched state: the outcomes the SDM allows for the checker's failing rules, and
//! the Bochs deviation that explains a disagreement.

use vmcs::caps::VmxCaps;
use vmcs::entry::{Outcome, Rule, RuleSet};
use vmcs::hw::CurrentVmcs;

use crate::deviations::{DEVIATIONS, Departure};

/// What Bochs did with one VMLAUNCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Failed(Outcome),
    /// The guest entered and exited with this basic reason.
    Entered(u16),
}

/// The rank of an outcome in the SDM's order: basic, controls and host state, guest, MSR loading.
pub fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::VmFailInvalid | Outcome::VmFailValid(4 | 5 | 26) => 0,
        Outcome::VmFailValid(_) => 1,
        Outcome::EntryFailure { reason: 33, .. } => 2,
        Outcome::EntryFailure { .. } => 3,
    }
}

/// Is `seen` an outcome the SDM allows when exactly `failing` fail, with each rule's outcome
/// given by `outcome_of` (None: not checked)? Among the MSR-loading rules, each with the first
/// entry it fails on, only the earliest entry can be the outcome (entries load in order).
pub fn allowed(failing: &RuleSet, seen: Seen, outcome_of: &dyn Fn(Rule) -> Option<Outcome>) -> bool {
    let outcomes = || failing.iter().filter_map(outcome_of);
    let Some(first) = outcomes().map(rank).min() else { return matches!(seen, Seen::Entered(_)) };
    let entry = |o: Outcome| match o {
        Outcome::EntryFailure { qualification, .. } => qualification,
        _ => 0,
    };
    match seen {
        Seen::Entered(_) => false,
        Seen::Failed(o) if first == 3 => outcomes().filter(|x| rank(*x) == 3).min_by_key(|x| entry(*x)) == Some(o),
        Seen::Failed(o) => outcomes().any(|x| rank(x) == first && x == o),
    }
}

/// The first MSR-load entry (from 1) each failing rule of the MSR-loading tier fails on.
#[derive(Clone, Copy)]
pub struct Entries([(Option<Rule>, u32); 8]);

impl Entries {
    pub const NONE: Entries = Entries([(None, 0); 8]);

    /// Record `entry` for `rule` unless an earlier one is recorded.
    pub fn record(&mut self, rule: Rule, entry: u32) {
        if self.0.iter().any(|(r, _)| *r == Some(rule)) {
            return;
        }
        if let Some(slot) = self.0.iter_mut().find(|(r, _)| r.is_none()) {
            *slot = (Some(rule), entry);
        }
    }

    /// The rule's outcome in this state (for an MSR-loading rule, at its first failing entry).
    pub fn outcome(&self, rule: Rule) -> Outcome {
        match self.0.iter().find(|(r, _)| *r == Some(rule)) {
            Some((_, n)) => vmcs::entry::Failure::at_entry(rule, *n).outcome(),
            None => rule.outcome(),
        }
    }
}

/// Which rules each deviation touches in one state, taken before the launch changes the VMCS.
pub struct Covered([RuleSet; MAX_DEVIATIONS]);

pub const MAX_DEVIATIONS: usize = 24;

impl Covered {
    /// `rules`: each deviation's rules, resolved once ([`DeviationRules`]).
    pub fn of(caps: &VmxCaps, v: &CurrentVmcs<'_>, rules: &DeviationRules) -> Covered {
        let mut c = [RuleSet::EMPTY; MAX_DEVIATIONS];
        for (i, d) in DEVIATIONS.iter().enumerate().take(MAX_DEVIATIONS) {
            for r in rules.0[i].iter().flatten() {
                if (d.when)(caps, v, *r) {
                    c[i].insert(*r);
                }
            }
        }
        Covered(c)
    }

    /// Could Bochs enter the guest with these rules failing: does a deviation in which Bochs
    /// leaves a rule unchecked cover each of them here?
    pub fn bochs_may_enter(&self, failing: &RuleSet) -> bool {
        failing.iter().all(|r| {
            DEVIATIONS.iter().zip(&self.0).any(|(d, c)| matches!(d.departure, Departure::Unchecked(_)) && c.contains(r))
        })
    }
}

/// Each deviation's rules, looked up by name once.
pub struct DeviationRules([[Option<Rule>; 8]; MAX_DEVIATIONS]);

impl DeviationRules {
    pub fn new() -> Self {
        let mut t = [[None; 8]; MAX_DEVIATIONS];
        for (i, d) in DEVIATIONS.iter().enumerate().take(MAX_DEVIATIONS) {
            for (j, r) in d.rules().take(8).enumerate() {
                t[i][j] = Some(r);
            }
        }
        DeviationRules(t)
    }
}

/// The deviation that explains `seen`, if one (alone, or with every one that touches this state)
/// does: under it, the rules Bochs fails are `failing` with its departures applied.
pub fn explain(failing: &RuleSet, seen: Seen, covered: &Covered, entries: &Entries) -> Option<usize> {
    let with = |ds: &[usize]| {
        let mut bochs = *failing;
        for &i in ds {
            if DEVIATIONS[i].adds() {
                for r in covered.0[i].iter() {
                    bochs.insert(r);
                }
            }
        }
        let outcome = move |r: Rule| {
            ds.iter()
                .filter(|i| covered.0[**i].contains(r))
                .try_fold(entries.outcome(r), |_, i| DEVIATIONS[*i].outcome(r))
        };
        allowed(&bochs, seen, &outcome)
    };
    let touching: [usize; MAX_DEVIATIONS] = core::array::from_fn(|i| i);
    let touching: [usize; MAX_DEVIATIONS] = {
        let mut t = touching;
        let mut n = 0;
        for i in 0..DEVIATIONS.len().min(MAX_DEVIATIONS) {
            if !covered.0[i].is_empty() {
                t[n] = i;
                n += 1;
            }
        }
        t[n..].fill(usize::MAX);
        t
    };
    let n = touching.iter().take_while(|i| **i != usize::MAX).count();
    if let Some(i) = touching[..n].iter().find(|i| with(core::slice::from_ref(*i))) {
        return Some(*i);
    }
    (n > 1 && with(&touching[..n])).then(|| touching[0])
}
