//! Judging one launched state: the outcomes the SDM allows for the checker's failing rules, and
//! the Bochs deviation that explains a disagreement.

use vmcs::caps::VmxCaps;
use vmcs::entry::{Outcome, Rule, RuleSet};
use vmcs::hw::CurrentVmcs;

use crate::deviations::DEVIATIONS;

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
/// given by `outcome_of` (None: not checked)?
pub fn allowed(failing: &RuleSet, seen: Seen, outcome_of: &dyn Fn(Rule) -> Option<Outcome>) -> bool {
    let outcomes = || failing.iter().filter_map(outcome_of);
    let Some(first) = outcomes().map(rank).min() else { return matches!(seen, Seen::Entered(_)) };
    match seen {
        Seen::Entered(_) => false,
        Seen::Failed(o) => outcomes().any(|x| rank(x) == first && x == o),
    }
}

/// Which rules each deviation touches in one state, taken before the launch changes the VMCS.
pub struct Covered([RuleSet; MAX_DEVIATIONS]);

pub const MAX_DEVIATIONS: usize = 24;

impl Covered {
    /// `rules`: each deviation's rules, resolved once ([`DeviationRules`]).
    pub fn of(caps: &VmxCaps, v: &CurrentVmcs, rules: &DeviationRules) -> Covered {
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
pub fn explain(failing: &RuleSet, seen: Seen, covered: &Covered) -> Option<usize> {
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
            ds.iter().filter(|i| covered.0[**i].contains(r)).try_fold(r.outcome(), |_, i| DEVIATIONS[*i].outcome(r))
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
