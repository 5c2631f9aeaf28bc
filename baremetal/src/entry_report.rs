//! The differential's summary per model: the states launched and held, the named deviations,
//! and coverage (which rules were the first failure of a launched state, and why the others were
//! not), then the verdict line that fails the suite on an unexplained disagreement or a rule
//! missed.

use vmcs::caps::VmxCaps;
use vmcs::entry::{Rule, RuleSet};

use crate::deviations::DEVIATIONS;
use crate::entry_guard::HELD_NAMES;
use crate::entry_mutate::{CONTROLS, DEPENDS};
use crate::entry_verdict::MAX_DEVIATIONS;
use crate::rt::check;

/// What a run of the differential counts (entry_diff fills it in).
pub struct Stats {
    pub launched: u32,
    pub agree: u32,
    pub deviations: [u32; MAX_DEVIATIONS],
    pub unexplained: u32,
    pub held: [u32; 6],
    /// Rules that were the first failure of a launched state.
    pub reached: Option<RuleSet>,
    /// Rules a launched state was aimed at.
    pub aimed: Option<RuleSet>,
    /// Rules a state that was not launched was aimed at.
    pub held_aim: Option<RuleSet>,
    /// Per rule: an earlier rule that could not be made to hold without undoing a mutation aimed
    /// at it.
    pub blocked: [Option<Rule>; Rule::ALL.len()],
}

/// `states`: how many states the run had to launch.
pub fn report(s: &Stats, targeted: u32, states: u32, caps: &VmxCaps) {
    let dev: u32 = s.deviations.iter().sum();
    let named = DEVIATIONS.iter().zip(s.deviations.iter()).filter(|(_, n)| **n > 0).count();
    println!(
        "data: entry checks: {} states launched ({targeted} aimed at a rule, the rest random combinations)",
        s.launched
    );
    for (name, n) in HELD_NAMES.iter().zip(s.held.iter()) {
        if *n > 0 {
            println!("data: entry checks: {n} states not launched: {name}");
        }
    }
    for (d, n) in DEVIATIONS.iter().zip(s.deviations.iter()) {
        if *n > 0 {
            println!("exception: {}: {n} states: SDM: {}", d.name, d.sdm);
        }
    }
    // Coverage: every rule whose controls this model allows is the first failure of some
    // launched state, unless states aimed at it were not launched, an earlier rule blocks it, or its
    // failure hinges on a capability or a fact of the VMM (each listed by name).
    let (reached, aimed) = (s.reached.unwrap_or(RuleSet::EMPTY), s.aimed.unwrap_or(RuleSet::EMPTY));
    let held_aim = s.held_aim.unwrap_or(RuleSet::EMPTY);
    let (mut absent, mut held, mut blocked, mut depends, mut missed) = (0, 0, 0, 0, 0);
    for (i, r) in Rule::ALL.iter().enumerate() {
        if reached.contains(*r) {
        } else if out_of_reach_here(caps, i) {
            absent += 1;
        } else if held_aim.contains(*r) {
            held += 1;
            let how = if aimed.contains(*r) { "some" } else { "every" };
            println!("data: entry checks: not reached ({how} state aimed at it not launched): {}", r.name());
        } else if let Some(b) = s.blocked[i] {
            blocked += 1;
            println!("data: entry checks: not reached (blocked here by {}): {}", b.name(), r.name());
        } else if DEPENDS[i] != 0 {
            depends += 1;
            println!("data: entry checks: not reached (decided by a capability or a VMM fact here): {}", r.name());
        } else {
            missed += 1;
            println!("FAIL entry checks: never the first failure of a launched state: {}", r.name());
        }
    }
    println!(
        "data: entry checks: {} rules: {} reached; {absent} need controls this model does not allow, {held} only in states not launched, {blocked} blocked by an earlier rule, {depends} decided by a capability or VMM fact, {missed} missed",
        Rule::ALL.len(),
        reached.len()
    );
    check(
        s.unexplained == 0 && s.launched >= states && missed == 0,
        format_args!(
            "entry checks: {} agree, {dev} Bochs deviations ({named} named), {} unexplained",
            s.agree, s.unexplained
        ),
    );
}

/// Is the rule out of reach on this model: its check names a control the model does not allow
/// to be 1?
fn out_of_reach_here(caps: &VmxCaps, r: usize) -> bool {
    let controls = CONTROLS[r];
    controls.iter().any(|(msr, bit)| {
        let v = caps.value(*msr);
        let allowed1 = match msr.kind() {
            vmcs::caps::MsrKind::Control => v >> (32 + *bit as u32) & 1,
            vmcs::caps::MsrKind::Flags => v >> *bit & 1,
        };
        allowed1 == 0 && !msr_must_be_1(caps, *msr, *bit)
    })
}

fn msr_must_be_1(caps: &VmxCaps, msr: vmcs::caps::Msr, bit: u8) -> bool {
    msr.kind() == vmcs::caps::MsrKind::Control && caps.value(msr) >> bit & 1 == 1
}
