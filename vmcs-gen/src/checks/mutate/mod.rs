//! Boundary mutations of a valid VMCS, derived from each rule's expression: edits that make the
//! rule's premise hold and its conclusion fail (or just hold), at the values the rule compares
//! against: each bit it tests, each constant it compares with (and its neighbours), the bit
//! at MAXPHYADDR or at the canonical boundary, the lowest and highest bit of each mask, every
//! bit of a control word checked against its capability MSR (set and cleared).
//!
//! Whether a mutation really violates the rule does not matter to a differential test (the checker
//! and the processor judge the same state); the generator aims at the boundary so that every rule is
//! reached. Values that depend on the processor are symbolic ([`Value`]) and resolved where the
//! mutation is applied.

mod reach;

use crate::model::expr::{Expr, FactId, Logic};
use crate::model::{FieldId, MsrId, Rule, Schema, Tier};
use reach::Gen;

/// Where a value comes from when the mutation is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The capability MSR's value for the processor.
    Msr(MsrId),
    /// The fact's value for the processor (e.g. MAXPHYADDR).
    Fact(FactId),
    /// The field's value in the state being mutated.
    Field(FieldId),
}

/// A value, resolved when the mutation is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// This number.
    Const(u64),
    /// `1 << (fact + delta)` (0 if out of range).
    FactBit {
        /// The fact giving the bit number, e.g. MAXPHYADDR.
        fact: FactId,
        /// Added to the fact's value.
        delta: i32,
    },
    /// The lowest set bit of `source & mask` (0 if none).
    LowestSet {
        /// Where the bits come from.
        source: Source,
        /// The bits considered.
        mask: u64,
    },
    /// The highest set bit of `source & mask`.
    HighestSet {
        /// Where the bits come from.
        source: Source,
        /// The bits considered.
        mask: u64,
    },
    /// The lowest clear bit of `source` within `mask`.
    LowestClear {
        /// Where the bits come from.
        source: Source,
        /// The bits considered.
        mask: u64,
    },
    /// `(((source >> lo) + delta) & (2^width - 1)) << at`: a field's bits, moved by `delta`.
    Plus {
        /// Where the value comes from.
        source: Source,
        /// The lowest bit of the value's bit range.
        lo: u32,
        /// The range's width in bits.
        width: u32,
        /// Added to the range's value (wrapping within the width).
        delta: i64,
        /// Where the result is placed.
        at: u32,
    },
    /// The physical address of spare page `n` (the kernel's scratch pages).
    Page(u32),
    /// The control field `field` adjusted to MSR `msr`'s allowed settings.
    Allowed {
        /// The capability MSR whose allowed-0/allowed-1 settings apply.
        msr: MsrId,
        /// The control field adjusted.
        field: FieldId,
    },
    /// `fact & mask`.
    FactBits {
        /// The fact.
        fact: FactId,
        /// The bits kept.
        mask: u64,
    },
    /// `source & mask`.
    Bits {
        /// Where the bits come from.
        source: Source,
        /// The bits kept.
        mask: u64,
    },
    /// `!source & mask`.
    Clear {
        /// Where the bits come from.
        source: Source,
        /// The bits kept after inverting.
        mask: u64,
    },
    /// The index (`data` false) or the value (`data` true) of a WRMSR the environment says faults
    /// (what `wrmsr_faults` answers where the mutation is applied).
    FaultingWrmsr {
        /// The value (true) or the index (false).
        data: bool,
    },
}

/// How an edit changes its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `x = (x & !mask) | (value & mask)`.
    Assign {
        /// The bits assigned; the others keep their value.
        mask: u64,
    },
    /// `x |= value`: set the value's bits.
    Or,
    /// `x &= !value`: clear the value's bits.
    AndNot,
    /// `x ^= value`: flip the value's bits.
    Xor,
}

/// What an edit changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A VMCS field.
    Field(FieldId),
    /// `bytes` of physical memory at `(base field & base_mask) + offset`.
    Memory {
        /// The field holding the physical address (e.g. the MSR-load list address).
        base: FieldId,
        /// The address bits of that field.
        base_mask: u64,
        /// Bytes from the base address.
        offset: u64,
        /// How many bytes the edit changes, little-endian: the width the rule reads there.
        bytes: u32,
    },
}

/// One change to a VMCS state: `target op= value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edit {
    /// What it changes.
    pub target: Target,
    /// How `value` combines with the target's bits.
    pub op: Op,
    /// With what, resolved where the edit is applied.
    pub value: Value,
}

/// A mutation aimed at a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mutation {
    /// Index of the rule in `schema.checks.rules`.
    pub rule: usize,
    /// Applied in order to a valid state (never empty in what [`all`] returns).
    pub edits: Vec<Edit>,
}

/// Boundary mutations for every rule, deduplicated, in rule order.
pub fn all(schema: &Schema) -> Vec<Mutation> {
    let mut out: Vec<Mutation> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in schema.checks.rules.iter().enumerate() {
        for edits in for_rule(schema, r) {
            if !edits.is_empty() && seen.insert(edits.clone()) {
                out.push(Mutation { rule: i, edits });
            }
        }
    }
    out
}

impl Edit {
    /// The bits of its target the edit may change (all of them for a symbolic value).
    pub fn bits(&self) -> u64 {
        match (self.op, self.value) {
            (Op::Assign { mask }, _) => mask,
            (_, Value::Const(v)) => v,
            _ => u64::MAX,
        }
    }

    /// Would the two edits leave a common bit of one target different (a fix that undoes part
    /// of a mutation)? Two edits that set the same bits the same way do not conflict.
    pub fn conflicts(&self, other: &Edit) -> bool {
        self.target == other.target
            && self.bits() & other.bits() != 0
            && (self.op, self.value) != (other.op, other.value)
    }
}

/// The mutations of one rule: premise + each violation, each violation alone, the premise alone,
/// and each way to make the premise false. A rule of the MSR-loading tier is aimed at the first
/// entry of a one-entry list and at the second of three.
pub fn for_rule(schema: &Schema, rule: &Rule) -> Vec<Vec<Edit>> {
    let g = Gen { schema };
    let e = inline(&rule.check, &mut Vec::new());
    let (premise, body) = match &e {
        Expr::Logic { op: Logic::Implies, lhs, rhs } => ((**lhs).clone(), (**rhs).clone()),
        other => (Expr::Bool(true), other.clone()),
    };
    let mut pre = g.satisfy(&premise, true);
    // A rule reading memory through a pointer field: point it at a spare page first (the
    // MSR-load list stays where the valid state has it, on entries that load without a fault).
    if rule.tier != Tier::MsrLoad {
        pre.extend(g.memory_bases(&e));
    }
    let mut out = Vec::new();
    for v in g.ways(&body, false) {
        out.push(merge(&pre, &v));
        out.push(v);
    }
    out.push(pre);
    out.extend(g.ways(&premise, false));
    if rule.tier == Tier::MsrLoad {
        out.retain(|m| !m.is_empty());
        out = out.iter().flat_map(|m| [g.at_entry(m, 1, 0), g.at_entry(m, 3, 1)]).collect();
    }
    out
}

/// Ways to make a rule hold (its conclusion; else not its premise): what a differential run
/// applies when another rule fails before the one a mutation aims at, taking the first way that
/// does not undo the mutation ([`Edit::conflicts`]).
pub fn fixes(schema: &Schema, rule: &Rule) -> Vec<Vec<Edit>> {
    Gen { schema }.ways(&inline(&rule.check, &mut Vec::new()), true)
}

/// `a` then `b`, without the edits of `a` that `b` repeats or assigns over entirely.
fn merge(a: &[Edit], b: &[Edit]) -> Vec<Edit> {
    let overrides = |y: &Edit, x: &Edit| {
        y == x || (y.target == x.target && matches!(y.op, Op::Assign { mask } if x.bits() & !mask == 0))
    };
    let mut out: Vec<Edit> = a.iter().copied().filter(|x| !b.iter().any(|y| overrides(y, x))).collect();
    out.extend_from_slice(b);
    out
}

/// The expression with every `let` inlined.
fn inline(e: &Expr, env: &mut Vec<Option<Expr>>) -> Expr {
    let rec = |x: &Expr, env: &mut Vec<Option<Expr>>| Box::new(inline(x, env));
    match e {
        Expr::Let { var, value, body } => {
            let v = inline(value, env);
            if env.len() <= *var {
                env.resize(var + 1, None);
            }
            env[*var] = Some(v);
            inline(body, env)
        }
        Expr::Var { var, .. } => env.get(*var).cloned().flatten().unwrap_or(Expr::Bool(false)),
        Expr::Mem { ty, addr } => Expr::Mem { ty: *ty, addr: rec(addr, env) },
        Expr::Not(x) => Expr::Not(rec(x, env)),
        Expr::BitNot { ty, value } => Expr::BitNot { ty: *ty, value: rec(value, env) },
        Expr::Logic { op, lhs, rhs } => Expr::Logic { op: *op, lhs: rec(lhs, env), rhs: rec(rhs, env) },
        Expr::Compare { op, lhs, rhs } => Expr::Compare { op: *op, lhs: rec(lhs, env), rhs: rec(rhs, env) },
        Expr::Arith { op, ty, lhs, rhs } => Expr::Arith { op: *op, ty: *ty, lhs: rec(lhs, env), rhs: rec(rhs, env) },
        Expr::Bit { value, bit } => Expr::Bit { value: rec(value, env), bit: *bit },
        Expr::Bits { value, ty, hi, lo } => Expr::Bits { value: rec(value, env), ty: *ty, hi: *hi, lo: *lo },
        Expr::In { value, set } => Expr::In { value: rec(value, env), set: set.clone() },
        Expr::Convert { value, to } => Expr::Convert { value: rec(value, env), to: *to },
        Expr::WrmsrFaults { index, value } => Expr::WrmsrFaults { index: rec(index, env), value: rec(value, env) },
        other => other.clone(),
    }
}
