//! Reading a rule's expression for the edits that make its parts true or false: logic and
//! comparisons here, where the bits live in [`place`], masked values made zero or not in [`zero`].

mod place;
mod zero;

use super::{Edit, Op, Target, Value, merge};
use crate::gate::Gate;
use crate::model::expr::{Arith, Cmp, Expr, Logic};
use crate::model::{MsrId, Schema};

/// At most this many alternatives per expression (products of alternatives grow fast).
const MAX_WAYS: usize = 12;

/// The edit generator, over the schema whose fields and capability MSRs the edits name.
pub(super) struct Gen<'a> {
    pub schema: &'a Schema,
}

impl Gen<'_> {
    /// A control bit on or off; on also turns on the controls that put its field in effect.
    pub(super) fn control(&self, msr: MsrId, bit: u32, on: bool) -> Vec<Edit> {
        let m = &self.schema.msrs[msr];
        let Some(f) = m.control_field else { return Vec::new() };
        let op = if on { Op::Or } else { Op::AndNot };
        let mut out = vec![Edit { target: Target::Field(f), op, value: Value::Const(1 << bit) }];
        if on && let Some(req) = &m.requires {
            // The first capability of an `|` suffices; every one of an `&`.
            let caps: Vec<_> = match req {
                Gate::Any(gs) => gs.first().map(|g| g.caps().into_iter().copied().collect()).unwrap_or_default(),
                g => g.caps().into_iter().copied().collect(),
            };
            for c in caps {
                let cap = &self.schema.caps[c];
                out.extend(self.control(cap.msr, cap.bit, true));
            }
        }
        out
    }

    /// The first way to make `e` evaluate to `want`.
    pub(super) fn satisfy(&self, e: &Expr, want: bool) -> Vec<Edit> {
        self.ways(e, want).into_iter().next().unwrap_or_default()
    }

    /// Ways to make `e` evaluate to `want` (best effort: shapes the generator does not know give
    /// none).
    pub(super) fn ways(&self, e: &Expr, want: bool) -> Vec<Vec<Edit>> {
        let mut out = match e {
            // All of them: one way of each, combined.
            Expr::Logic { op: Logic::And, lhs, rhs } if want => self.product(lhs, rhs, true),
            Expr::Logic { op: Logic::Or, lhs, rhs } if !want => self.product(lhs, rhs, false),
            // Either: the ways of each side.
            Expr::Logic { op: Logic::Or, lhs, rhs } => [self.ways(lhs, true), self.ways(rhs, true)].concat(),
            Expr::Logic { op: Logic::And, lhs, rhs } => [self.ways(lhs, false), self.ways(rhs, false)].concat(),
            Expr::Logic { op: Logic::Implies, lhs, rhs } if want => {
                [self.ways(rhs, true), self.ways(lhs, false)].concat()
            }
            // `a => b` false: `a` and not `b`.
            Expr::Logic { op: Logic::Implies, lhs, rhs } => {
                let pre = self.satisfy(lhs, true);
                self.ways(rhs, false).into_iter().map(|v| merge(&pre, &v)).collect()
            }
            Expr::Not(x) => self.ways(x, !want),
            Expr::Control { msr, bit } => vec![self.control(*msr, *bit, want)],
            Expr::Allowed(msr) if want => match self.schema.msrs[*msr].control_field {
                Some(field) => {
                    let value = Value::Allowed { msr: *msr, field };
                    vec![vec![Edit { target: Target::Field(field), op: Op::Assign { mask: u64::MAX }, value }]]
                }
                None => Vec::new(),
            },
            Expr::Allowed(msr) => self.allowed(*msr),
            Expr::Bit { value, bit } => match self.slot(value) {
                Some(s) => vec![vec![s.edit(if want { Op::Or } else { Op::AndNot }, 1 << bit)]],
                None => Vec::new(),
            },
            Expr::In { value, set } => match self.slot(value) {
                Some(s) => {
                    let inside = |v: u64| set.iter().any(|(lo, hi)| (*lo..=*hi).contains(&v));
                    let mut vals: Vec<u64> =
                        set.iter().flat_map(|(lo, hi)| [*lo, *hi, lo.wrapping_sub(1), hi.wrapping_add(1)]).collect();
                    vals.push(s.max());
                    vals.dedup();
                    vals.into_iter()
                        .filter(|v| *v <= s.max() && inside(*v) == want)
                        .map(|v| vec![s.assign(v)])
                        .collect()
                }
                None => Vec::new(),
            },
            Expr::Compare { op, lhs, rhs } => self.compare(*op, lhs, rhs, want),
            // A WRMSR that faults: one the environment names (its index and its value).
            Expr::WrmsrFaults { index, value } if want => match (self.slot(index), self.slot(value)) {
                (Some(i), Some(v)) => vec![vec![
                    i.set(Op::Assign { mask: i.mask() }, Value::FaultingWrmsr { data: false }),
                    v.set(Op::Assign { mask: v.mask() }, Value::FaultingWrmsr { data: true }),
                ]],
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        out.retain(|w| !w.is_empty());
        out.truncate(MAX_WAYS);
        out
    }

    /// Each way for `lhs` combined with each way for `rhs` (both as `want`).
    fn product(&self, lhs: &Expr, rhs: &Expr, want: bool) -> Vec<Vec<Edit>> {
        let (a, b) = (self.ways(lhs, want), self.ways(rhs, want));
        if a.is_empty() || b.is_empty() {
            // One side the generator cannot reach: the other's ways alone.
            return if a.is_empty() { b } else { a };
        }
        let mut out = Vec::new();
        for x in a.iter().take(MAX_WAYS) {
            for y in b.iter().take(MAX_WAYS / 2) {
                out.push(merge(x, y));
            }
        }
        out
    }

    fn compare(&self, op: Cmp, lhs: &Expr, rhs: &Expr, want: bool) -> Vec<Vec<Edit>> {
        let (op, lhs, rhs) = if matches!(lhs, Expr::Int { .. }) { (flip(op), rhs, lhs) } else { (op, lhs, rhs) };
        let holds = |v: u64, k: u64| op.holds(v, k);
        if let Expr::Int { value: k, .. } = rhs {
            let k = *k;
            let zero_test = k == 0 && matches!(op, Cmp::Eq | Cmp::Ne);
            if zero_test
                && want != (op == Cmp::Eq)
                && let Some(w) = self.nonzero(lhs)
            {
                return w;
            }
            if zero_test
                && want == (op == Cmp::Eq)
                && let Some(w) = self.zero(lhs)
            {
                return w;
            }
            let Some(s) = self.slot(lhs) else { return Vec::new() };
            // An all-ones "none" value (the link pointer) is left for 0; others move by one.
            let mut vals =
                if k == s.max() { vec![0, k, k ^ 1] } else { vec![k, k ^ 1, k.wrapping_add(1), k.wrapping_sub(1), 0] };
            vals.push(s.max());
            vals.dedup();
            return vals
                .into_iter()
                .filter(|v| *v <= s.max() && holds(*v, k) == want)
                .take(3)
                .map(|v| vec![s.assign(v)])
                .collect();
        }
        // Two values: move either onto (or off) the other. `x == y << n` copies shifted.
        let (y, at) = match rhs {
            Expr::Arith { op: Arith::Shl, lhs: y, rhs: n, .. } => match &**n {
                Expr::Int { value, .. } => (&**y, *value as u32),
                _ => (rhs, 0),
            },
            _ => (rhs, 0),
        };
        let (Some(x), ys) = (self.slot(lhs), self.slot(y)) else { return Vec::new() };
        let (xs, yv) = (self.source(lhs), self.source(y));
        let deltas: &[i64] = match (op, want) {
            (Cmp::Eq | Cmp::Le | Cmp::Ge, true) => &[0],
            (Cmp::Ne, false) => &[0],
            (Cmp::Le | Cmp::Lt, false) | (Cmp::Gt, true) => &[1],
            (Cmp::Ge | Cmp::Gt, false) | (Cmp::Lt, true) => &[-1],
            _ => &[1, -1],
        };
        let mut out = Vec::new();
        for &d in deltas {
            if let Some(src) = yv {
                out.push(vec![x.copy(src, d, at)]);
            }
            if let (Some(ys), Some(src), 0) = (ys, xs, at) {
                out.push(vec![ys.copy(src, -d, 0)]);
            }
        }
        if !want {
            out.push(vec![x.edit(Op::Xor, 1)]);
        }
        out
    }

    /// Every bit of the control word set and cleared.
    fn allowed(&self, msr: MsrId) -> Vec<Vec<Edit>> {
        let Some(f) = self.schema.msrs[msr].control_field else { return Vec::new() };
        (0..self.width(f)).flat_map(|bit| [self.control(msr, bit, true), self.control(msr, bit, false)]).collect()
    }
}

/// `k op x` as `x op' k`.
fn flip(op: Cmp) -> Cmp {
    match op {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        o => o,
    }
}
