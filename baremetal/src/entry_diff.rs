//! The generated VM-entry checker against Bochs' real VM entry. From the valid state
//! (entry_state), each boundary mutation of vmcs-gen (with the rules that fail before its target
//! repaired), then random combinations of them, is written to a fresh VMCS; the checker judges the
//! state read back through VMREAD, VMLAUNCH gives Bochs' outcome. They agree when Bochs' outcome is
//! one the SDM allows for the failing rules (any VMfail beats an entry failure; among controls and
//! host state, or among guest-state checks, any order); a disagreement is a named deviation
//! (deviations.rs) or unexplained, which fails the suite.

use vmcs::VmcsRead;
use vmcs::caps::VmxCaps;
use vmcs::entry::{self, Facts, Outcome, Rule, RuleSet, Selection, Tier};
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters, Vmcs, VmxError, VmxOperation, VmxRegion};
// Fixed-seed: the random combinations repeat exactly.
use vmcs_test_support::Rng;

use crate::entry_guard::{Held, Host, hold};
use crate::entry_mutate::{self, EDITS, Env, FIXES, MUTATIONS, Undo};
use crate::entry_report::Stats;
use crate::entry_state::{self, BASELINE_LEN, Physical};
use crate::entry_verdict::{Covered, DeviationRules, Entries, MAX_DEVIATIONS, Seen, allowed, explain};
use crate::rt;
use crate::rt::check;

/// Mutated states launched per model, at least.
const STATES: u32 = 10_000;
/// The same as L1 under our L0, where each VMREAD/VMWRITE the states take may be an exit to L0
/// and VMLAUNCH is L0's emulation: the states aimed at a rule and some random ones.
const STATES_AS_L1: u32 = 1_100;

static mut VMCS_DIFF: VmxRegion = VmxRegion::new();

impl Stats {
    /// Count a state not launched, and the rule it was aimed at.
    fn hold(&mut self, why: Held, a: &Attempt<'_>) {
        self.held[why as usize] += 1;
        if let (Some(t), Some(held_aim)) = (a.target, &mut self.held_aim) {
            held_aim.insert(Rule::ALL[t]);
        }
    }

    /// Count one launched state: agreement, a named deviation, or unexplained; and coverage.
    fn judge(&mut self, verdict: &Verdict, seen: Seen, covered: &Covered, a: &Attempt<'_>, blocker: Option<Rule>) {
        let (failing, entries) = (verdict.failing, &verdict.entries);
        self.launched += 1;
        if allowed(&failing, seen, &|r| Some(entries.outcome(r))) {
            self.agree += 1;
        } else if let Some(d) = explain(&failing, seen, covered, entries) {
            self.deviations[d] += 1;
        } else {
            self.unexplained += 1;
            if self.unexplained <= 20 {
                report_unexplained(verdict, seen, a);
            }
        }
        if let (Some(first), Some(reached)) = (failing.first(), &mut self.reached) {
            reached.insert(first);
        }
        if let (Some(t), Some(aimed)) = (a.target, &mut self.aimed) {
            aimed.insert(Rule::ALL[t]);
            if let Some(b) = blocker {
                self.blocked[t] = Some(b);
            }
        }
    }
}

fn launch(v: &mut CurrentVmcs<'_>, host: &Host) -> Seen {
    let mut regs = GuestRegisters::default();
    // SAFETY: the host state is this context (entry_state::baseline, guarded by `hold`); the guest
    // exits at once (preemption timer 0, or VMCALL first, every exception and event exiting).
    let r = unsafe { v.launch(&mut regs) };
    host.restore();
    match r {
        Err(VmxError::FailInvalid) => Seen::Failed(Outcome::VmFailInvalid),
        Err(VmxError::FailValid(e)) => Seen::Failed(Outcome::VmFailValid(e.number())),
        Ok(exit) if exit.entry_failure() => {
            let q = v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(u64::MAX);
            Seen::Failed(Outcome::EntryFailure { reason: exit.basic_raw() as u32, qualification: q as u32 })
        }
        Ok(exit) => Seen::Entered(exit.basic_raw()),
    }
}

/// The checker's verdict on one state: the failing rules, and the entry each MSR-loading rule
/// first fails on.
struct Verdict {
    failing: RuleSet,
    entries: Entries,
}

impl Verdict {
    fn of(checker: &entry::Checker, v: &CurrentVmcs<'_>, failing: RuleSet) -> Verdict {
        let mut entries = Entries::NONE;
        let msr_load = Selection::tiers(&[Tier::MsrLoad]);
        let _ = checker.for_each_failure(v, &Physical, msr_load, |f| {
            if let Some(n) = f.entry {
                entries.record(f.rule, n);
            }
        });
        Verdict { failing, entries }
    }
}

/// One state: the edit lists applied in order (the first aimed at `target`, whose failing
/// predecessors are then repaired).
struct Attempt<'a> {
    target: Option<usize>,
    lists: &'a [&'static [u16]],
}

struct Run<'a, 'r> {
    op: &'a mut VmxOperation<'r>,
    /// The one VMCS every state is written to, cleared before each.
    vmcs: Vmcs,
    caps: VmxCaps,
    facts: Facts,
    /// The checker of this model (its capabilities evaluated once).
    checker: entry::Checker,
    base: [(u32, u64); BASELINE_LEN],
    host: Host,
    dev_rules: DeviationRules,
    stats: Stats,
}

const MAX_REPAIRS: usize = 32;

/// `vmcs` cleared (launch state clear) and made current: the fresh VMCS a state is written to.
fn fresh<'v>(op: &'v mut VmxOperation<'_>, vmcs: &'v mut Vmcs) -> Result<CurrentVmcs<'v>, VmxError> {
    op.clear(vmcs)?;
    op.load(vmcs)
}

impl Run<'_, '_> {
    fn attempt(&mut self, a: &Attempt<'_>) {
        if !a.lists.iter().all(|l| entry_mutate::exist(l, &self.caps)) {
            return self.stats.hold(Held::AbsentField, a);
        }
        let Ok(mut v) = fresh(self.op, &mut self.vmcs) else {
            check(false, format_args!("entry: cannot load the VMCS"));
            return;
        };
        for (enc, val) in &self.base {
            let _ = v.vmwrite(*enc as u64, *val);
        }
        let env = Env { caps: &self.caps, facts: &self.facts };
        let launch_sets = [F::HOST_RIP.encoding(), F::HOST_RSP.encoding()];
        let touches = |l: &[u16]| {
            l.iter().any(
                |e| matches!(EDITS[*e as usize].target, entry_mutate::Target::Field(f) if launch_sets.contains(&f)),
            )
        };
        if a.lists.iter().any(|l| touches(l)) {
            return self.stats.hold(Held::HostRipRsp, a);
        }
        let mut undo = Undo::new();
        for list in a.lists {
            if entry_mutate::apply(&mut v, &env, list, &mut undo).is_err() {
                undo.undo();
                return self.stats.hold(Held::AbsentField, a);
            }
        }
        let memory = Physical;
        let checker = &self.checker;
        let failures = |v: &CurrentVmcs<'_>| checker.failures(v, &memory, Selection::ALL).ok();
        let blocker = a.target.and_then(|t| repair(&mut v, t, a.lists[0], &env, &mut undo, &failures));
        let Some(failing) = failures(&v) else {
            check(false, format_args!("entry: a field the checks read is unreadable"));
            return;
        };
        let covered = Covered::of(&self.caps, &v, &self.dev_rules);
        let may_enter = covered.bochs_may_enter(&failing);
        if let Some(h) = hold(&v, &self.caps, &failing, may_enter, &self.base) {
            undo.undo();
            return self.stats.hold(h, a);
        }
        let verdict = Verdict::of(checker, &v, failing);
        let seen = launch(&mut v, &self.host);
        undo.undo();
        self.stats.judge(&verdict, seen, &covered, a, blocker);
    }
}

impl Run<'_, '_> {
    /// The launch-state checks (26.1): VMRESUME of the clear baseline (error 5), and VMLAUNCH of
    /// it once launched (error 4), judged with the facts of each instruction.
    fn launch_state(&mut self) {
        for twice in [false, true] {
            let Ok(mut v) = fresh(self.op, &mut self.vmcs) else { return };
            for (enc, val) in &self.base {
                let _ = v.vmwrite(*enc as u64, *val);
            }
            let mut regs = GuestRegisters::default();
            let facts = if twice {
                // SAFETY: the baseline enters and exits at once (see `launch`).
                let first = unsafe { v.launch(&mut regs) };
                self.host.restore();
                if first.is_err() {
                    check(false, format_args!("entry: the baseline does not enter: {first:?}"));
                    return;
                }
                Facts { launched: true, ..self.facts }
            } else {
                Facts { vmlaunch: false, ..self.facts }
            };
            let mut checker = self.checker;
            *checker.facts_mut() = facts;
            let Ok(failing) = checker.failures(&v, &Physical, Selection::ALL) else { return };
            let covered = Covered::of(&self.caps, &v, &self.dev_rules);
            // SAFETY: both fail before anything is loaded (launch state), as the checker says.
            let r = unsafe { if twice { v.launch(&mut regs) } else { v.resume(&mut regs) } };
            self.host.restore();
            let seen = match r {
                Err(VmxError::FailValid(e)) => Seen::Failed(Outcome::VmFailValid(e.number())),
                Err(VmxError::FailInvalid) => Seen::Failed(Outcome::VmFailInvalid),
                Ok(exit) => Seen::Entered(exit.basic_raw()),
            };
            let target = if twice { "vmlaunch_needs_clear" } else { "vmresume_needs_launched" };
            let index = Rule::ALL.iter().position(|r| r.name() == target);
            let verdict = Verdict { failing, entries: Entries::NONE };
            self.stats.judge(&verdict, seen, &covered, &Attempt { target: index, lists: &[] }, None);
        }
    }
}

/// While a rule before the target fails, apply a way to make it hold that keeps every bit set so
/// far. Returns the earlier rule that could not be made to hold without undoing the mutation.
fn repair(
    v: &mut CurrentVmcs<'_>,
    target: usize,
    edits: &[u16],
    env: &Env<'_>,
    undo: &mut Undo,
    failures: &dyn Fn(&CurrentVmcs<'_>) -> Option<RuleSet>,
) -> Option<Rule> {
    let mut kept = [0u16; 64];
    let n0 = edits.len().min(kept.len());
    kept[..n0].copy_from_slice(&edits[..n0]);
    let mut n = n0;
    for _ in 0..MAX_REPAIRS {
        let first = failures(v).and_then(|f| f.first())?;
        if first as usize >= target {
            return None;
        }
        let keeps = |way: &[u16]| {
            !way.iter().any(|x| kept[..n].iter().any(|k| EDITS[*k as usize].conflicts(&EDITS[*x as usize])))
        };
        let Some(way) = FIXES[first as usize].iter().find(|w| keeps(w)) else { return Some(first) };
        if entry_mutate::apply(v, env, way, undo).is_err() || n + way.len() > kept.len() {
            return Some(first);
        }
        kept[n..n + way.len()].copy_from_slice(way);
        n += way.len();
    }
    None
}

fn report_unexplained(verdict: &Verdict, seen: Seen, a: &Attempt<'_>) {
    let (failing, entries) = (&verdict.failing, &verdict.entries);
    let first = failing.first().map_or("none", |r| r.name());
    let target = a.target.map_or("random", |t| Rule::ALL[t].name());
    println!(
        "FAIL entry: unexplained: aimed at {target}, checker {first} ({} failing, outcome {:?}), bochs {seen:?}",
        failing.len(),
        failing.first().map(|r| entries.outcome(r))
    );
    for r in failing.iter().take(6) {
        println!("     - {} ({:?})", r.name(), entries.outcome(r));
    }
    for list in a.lists {
        for e in list.iter() {
            println!("     - edit {:?}", EDITS[*e as usize]);
        }
    }
}

pub fn run(op: &mut VmxOperation<'_>, caps: &VmxCaps) {
    // Under our L0, VM entry is L0's emulation: its checks of vmcs12, then Bochs' of vmcs02.
    let states = if rt::multiboot_booted() { STATES_AS_L1 } else { STATES };
    entry_state::clear_scratch();
    entry_state::fill_msr_lists();
    entry_state::fill_guest_idt();
    // SAFETY: single-threaded; the region is borrowed once, identity-mapped.
    let region = unsafe { rt::unique(&raw mut VMCS_DIFF) };
    let phys = region as *const VmxRegion as u64;
    // SAFETY: `phys` is the region's physical address, distinct from the VMXON region.
    let Ok(vmcs) = (unsafe { op.vmcs(region, phys) }) else {
        return check(false, format_args!("entry: cannot VMCLEAR the VMCS"));
    };
    let host = Host::now();
    let mut run = Run {
        op,
        vmcs,
        caps: *caps,
        facts: entry_state::facts(phys),
        checker: entry::Checker::new(caps, entry_state::facts(phys)),
        base: entry_state::baseline(caps),
        host,
        dev_rules: DeviationRules::new(),
        stats: Stats {
            launched: 0,
            agree: 0,
            deviations: [0; MAX_DEVIATIONS],
            unexplained: 0,
            held: [0; 6],
            reached: Some(RuleSet::EMPTY),
            aimed: Some(RuleSet::EMPTY),
            held_aim: Some(RuleSet::EMPTY),
            blocked: [None; Rule::ALL.len()],
        },
    };
    for (rule, edits) in MUTATIONS.iter() {
        run.attempt(&Attempt { target: Some(*rule as usize), lists: &[edits] });
    }
    run.launch_state();
    let targeted = run.stats.launched;
    let mut rng = Rng(0x5eed_0fb0_c520_2026);
    // Random combinations of the mutations that exist on this model.
    let mut pool = [0u16; MUTATIONS.len()];
    let mut n = 0;
    for (i, (_, edits)) in MUTATIONS.iter().enumerate() {
        if entry_mutate::exist(edits, caps) {
            pool[n] = i as u16;
            n += 1;
        }
    }
    while run.stats.launched < states.max(targeted + 1) {
        let pick = |rng: &mut Rng| MUTATIONS[pool[(rng.next() % n as u64) as usize] as usize].1;
        let lists = [pick(&mut rng), pick(&mut rng), pick(&mut rng)];
        let n = 2 + (rng.next() % 2) as usize;
        run.attempt(&Attempt { target: None, lists: &lists[..n] });
    }
    crate::entry_report::report(&run.stats, targeted, states, caps);
}
