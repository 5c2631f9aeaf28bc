//! Reading a rule's expression for the edits that make its parts true or false.

use super::{Edit, Op, Source, Target, Value, merge};
use crate::gate::Gate;
use crate::model::expr::{Arith, Cmp, Expr, FactId, Logic};
use crate::model::{FieldId, MsrId, Schema};

/// At most this many alternatives per expression (products of alternatives grow fast).
const MAX_WAYS: usize = 12;

/// Bits `lo..lo+width` of a target.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub target: Target,
    pub lo: u32,
    pub width: u32,
}

impl Slot {
    fn mask(self) -> u64 {
        (u64::MAX >> (64 - self.width)) << self.lo
    }
    fn max(self) -> u64 {
        u64::MAX >> (64 - self.width)
    }
    fn assign(self, v: u64) -> Edit {
        self.set(Op::Assign { mask: self.mask() }, Value::Const((v << self.lo) & self.mask()))
    }
    fn edit(self, op: Op, v: u64) -> Edit {
        self.set(op, Value::Const((v << self.lo) & self.mask()))
    }
    fn set(self, op: Op, value: Value) -> Edit {
        Edit { target: self.target, op, value }
    }
    /// `self := other + delta` (bits of a field or capability MSR).
    fn copy(self, other: (Source, u32), delta: i64, at: u32) -> Edit {
        let value = Value::Plus { source: other.0, lo: other.1, width: self.width, delta, at: self.lo + at };
        self.set(Op::Assign { mask: self.mask() }, value)
    }
}

pub(super) struct Gen<'a> {
    pub schema: &'a Schema,
}

impl Gen<'_> {
    fn width(&self, f: FieldId) -> u32 {
        match self.schema.fields[f].width {
            crate::encoding::Width::W16 => 16,
            crate::encoding::Width::W32 => 32,
            _ => 64,
        }
    }

    /// A field, memory word or bit range of one, possibly converted; or a single bit tested as a
    /// value (`EFER[10] == exit.host_address_space_size`).
    fn slot(&self, e: &Expr) -> Option<Slot> {
        match e {
            Expr::Field(f) => Some(Slot { target: Target::Field(*f), lo: 0, width: self.width(*f) }),
            Expr::Mem { ty, addr } => {
                let (base, base_mask, offset) = self.address(addr)?;
                let target = Target::Memory { base, base_mask, offset, bytes: ty.bits() / 8 };
                Some(Slot { target, lo: 0, width: ty.bits() })
            }
            Expr::Bits { value, hi, lo, .. } => {
                let s = self.slot(value)?;
                Some(Slot { target: s.target, lo: s.lo + lo, width: hi - lo + 1 })
            }
            Expr::Convert { value, to } => {
                let s = self.slot(value)?;
                Some(Slot { width: s.width.min(to.bits()), ..s })
            }
            Expr::Bit { value, bit } => {
                let s = self.slot(value)?;
                Some(Slot { target: s.target, lo: s.lo + bit, width: 1 })
            }
            Expr::Control { msr, bit } => {
                let f = self.schema.msrs[*msr].control_field?;
                Some(Slot { target: Target::Field(f), lo: *bit, width: 1 })
            }
            _ => None,
        }
    }

    /// Where a value to copy comes from: a field's bits, or a capability MSR's.
    fn source(&self, e: &Expr) -> Option<(Source, u32)> {
        match e {
            Expr::Msr(m) => Some((Source::Msr(*m), 0)),
            Expr::Fact(f) => Some((Source::Fact(*f), 0)),
            Expr::Bits { value, lo, .. } => self.source(value).map(|(s, l)| (s, l + lo)),
            Expr::Convert { value, .. } => self.source(value),
            _ => match self.slot(e)?.target {
                Target::Field(f) => Some((Source::Field(f), self.slot(e)?.lo)),
                Target::Memory { .. } => None,
            },
        }
    }

    /// `FIELD`, `FIELD & MASK`, `FIELD + K`, `(FIELD & MASK) + K` as a memory address; an
    /// MSR-load entry's part (`FIELD + 16 * msr_entry + K`) as its part of the first entry.
    pub(super) fn address(&self, e: &Expr) -> Option<(FieldId, u64, u64)> {
        match e {
            Expr::Field(f) => Some((*f, u64::MAX, 0)),
            Expr::Arith { op: Arith::Add, lhs, rhs, .. } if matches!(&**rhs, Expr::Arith { op: Arith::Mul, lhs: n, .. } if **n == Expr::MsrEntry) => {
                self.address(lhs)
            }
            Expr::Arith { op: Arith::BitAnd, lhs, rhs, .. } => match (&**lhs, &**rhs) {
                (Expr::Field(f), Expr::Int { value, .. }) => Some((*f, *value, 0)),
                _ => None,
            },
            Expr::Arith { op: Arith::Add, lhs, rhs, .. } => {
                let (f, m, o) = self.address(lhs)?;
                match &**rhs {
                    Expr::Int { value, .. } => Some((f, m, o + value)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

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
        let holds = |v: u64, k: u64| match op {
            Cmp::Eq => v == k,
            Cmp::Ne => v != k,
            Cmp::Lt => v < k,
            Cmp::Le => v <= k,
            Cmp::Gt => v > k,
            Cmp::Ge => v >= k,
        };
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

    /// Ways to make `x` non-zero, for `x == 0` checks.
    fn nonzero(&self, x: &Expr) -> Option<Vec<Vec<Edit>>> {
        match x {
            Expr::Arith { op: Arith::BitAnd, .. } => {
                let m = self.masked(x)?;
                let s = m.slot;
                Some(match m.by {
                    // FIELD & CONST: its lowest and highest bits.
                    By::Const => {
                        mask_bits(m.mask & s.mask()).into_iter().map(|bit| vec![s.edit(Op::Or, bit >> s.lo)]).collect()
                    }
                    // FIELD & FACT: the lowest bit the fact names (e.g. a reserved EFER bit).
                    By::Fact(f) => {
                        vec![vec![s.set(Op::Or, Value::LowestSet { source: Source::Fact(f), mask: m.mask & s.mask() })]]
                    }
                    // FIELD & ~MSR: the lowest bit a FIXED1 MSR does not allow.
                    By::NotMsr(msr) => {
                        vec![vec![
                            s.set(Op::Or, Value::LowestClear { source: Source::Msr(msr), mask: m.mask & s.mask() }),
                        ]]
                    }
                    // MSR & ~FIELD: clear the lowest and the highest bit a FIXED0 MSR requires.
                    By::MsrOfNot(msr) => {
                        let src = Source::Msr(msr);
                        [
                            Value::LowestSet { source: src, mask: m.mask & s.mask() },
                            Value::HighestSet { source: src, mask: m.mask & s.mask() },
                        ]
                        .into_iter()
                        .map(|v| vec![s.set(Op::AndNot, v)])
                        .collect()
                    }
                })
            }
            Expr::Arith { op: Arith::Shr, lhs, rhs, .. } => {
                if let (Some(list), Expr::Fact(f)) = (list_end(lhs), &**rhs) {
                    return Some(vec![self.list_across(list, *f)]);
                }
                // `(FIELD & CONST) >> n`: the field's bits (the bit set below is one the mask keeps).
                let masked = || self.masked(lhs).filter(|m| matches!(m.by, By::Const)).map(|m| m.slot);
                let s = self.slot(lhs).or_else(masked)?;
                let mut ways = Vec::new();
                match &**rhs {
                    Expr::Fact(f) => ways.push(vec![s.set(Op::Or, Value::FactBit { fact: *f, delta: 0 })]),
                    Expr::Arith { op: Arith::Sub, lhs: a, rhs: d, .. } => {
                        if let (Expr::Fact(f), Expr::Int { value: d, .. }) = (&**a, &**d) {
                            ways.push(vec![s.set(Op::Or, Value::FactBit { fact: *f, delta: -(*d as i32) })]);
                        }
                    }
                    Expr::Int { value: n, .. } if (*n as u32) < s.width => ways.push(vec![s.edit(Op::Or, 1 << n)]),
                    _ => {}
                }
                ways.push(vec![s.edit(Op::Or, 1 << (s.width - 1))]);
                Some(ways)
            }
            _ => None,
        }
    }

    /// A list of two entries whose first lies below `1 << fact` and whose second ends above it:
    /// the entry size-aligned address just below the bound, for `ADDR + k * COUNT - 1 >> fact`.
    fn list_across(&self, (addr, count, size): (FieldId, FieldId, u64), fact: FactId) -> Vec<Edit> {
        let shift = size.trailing_zeros();
        let a = Slot { target: Target::Field(addr), lo: 0, width: self.width(addr) };
        vec![
            Slot { target: Target::Field(count), lo: 0, width: self.width(count) }.assign(2),
            a.set(Op::Assign { mask: a.mask() }, Value::FactBit { fact, delta: 0 }),
            a.copy((Source::Field(addr), shift), -1, shift),
        ]
    }

    /// Ways to make `x` zero (what the fix of an `x & m == 0` check does).
    fn zero(&self, x: &Expr) -> Option<Vec<Vec<Edit>>> {
        let m = self.masked(x)?;
        let s = m.slot;
        Some(vec![vec![match m.by {
            By::Const => s.set(Op::AndNot, Value::Const(m.mask & s.mask())),
            By::Fact(f) => s.set(Op::AndNot, Value::FactBits { fact: f, mask: m.mask & s.mask() }),
            By::NotMsr(msr) => s.set(Op::AndNot, Value::Clear { source: Source::Msr(msr), mask: m.mask & s.mask() }),
            By::MsrOfNot(msr) => s.set(Op::Or, Value::Bits { source: Source::Msr(msr), mask: m.mask & s.mask() }),
        }]])
    }

    /// `x & ...` as a field masked by constants and one of a fact, a capability MSR's clear bits,
    /// or (for `MSR & ~FIELD`) the MSR's set bits.
    fn masked(&self, x: &Expr) -> Option<Masked> {
        let mut factors = Vec::new();
        and_factors(x, &mut factors);
        let (mut mask, mut slot, mut not_slot, mut by) = (u64::MAX, None, None, By::Const);
        for f in factors {
            match f {
                Expr::Int { value, .. } => mask &= value,
                Expr::Msr(m) => by = By::MsrOfNot(*m),
                Expr::Fact(id) => by = By::Fact(*id),
                Expr::BitNot { value, .. } => match &**value {
                    Expr::Msr(m) => by = By::NotMsr(*m),
                    v => not_slot = Some(self.slot(v)?),
                },
                v => slot = Some(self.slot(v)?),
            }
        }
        match (slot, not_slot, by) {
            (Some(s), None, By::Const | By::Fact(_) | By::NotMsr(_)) => Some(Masked { slot: s, mask, by }),
            (None, Some(s), By::MsrOfNot(_)) => Some(Masked { slot: s, mask, by }),
            _ => None,
        }
    }

    /// Every bit of the control word set and cleared.
    fn allowed(&self, msr: MsrId) -> Vec<Vec<Edit>> {
        let Some(f) = self.schema.msrs[msr].control_field else { return Vec::new() };
        (0..self.width(f)).flat_map(|bit| [self.control(msr, bit, true), self.control(msr, bit, false)]).collect()
    }

    /// `edits` with the VM-entry MSR-load list `count` entries long, its memory edits moved from the
    /// first entry to entry `n` (from 0).
    pub(super) fn at_entry(&self, edits: &[Edit], count: u64, n: u64) -> Vec<Edit> {
        let list = self.schema.fields.iter().position(|f| f.name == "VM_ENTRY_MSR_LOAD_ADDR");
        let count_field = self.schema.fields.iter().position(|f| f.name == "VM_ENTRY_MSR_LOAD_COUNT");
        let mut out = Vec::new();
        if let Some(c) = count_field {
            out.push(Slot { target: Target::Field(c), lo: 0, width: 32 }.assign(count));
        }
        out.extend(edits.iter().map(|e| match e.target {
            Target::Memory { base, base_mask, offset, bytes } if Some(base) == list => {
                Edit { target: Target::Memory { base, base_mask, offset: offset + 16 * n, bytes }, ..*e }
            }
            _ => *e,
        }));
        out
    }

    /// Point every field the rule reads memory through at a spare page.
    pub(super) fn memory_bases(&self, e: &Expr) -> Vec<Edit> {
        let mut out = Vec::new();
        e.walk(&mut |x| {
            if let Expr::Mem { addr, .. } = x
                && let Some((base, _, _)) = self.address(addr)
            {
                let edit =
                    Edit { target: Target::Field(base), op: Op::Assign { mask: u64::MAX }, value: Value::Page(16) };
                if !out.contains(&edit) {
                    out.push(edit);
                }
            }
        });
        out
    }
}

#[derive(Clone, Copy)]
enum By {
    Const,
    Fact(usize),
    NotMsr(MsrId),
    MsrOfNot(MsrId),
}

struct Masked {
    slot: Slot,
    mask: u64,
    by: By,
}

/// The factors of a chain of `&`.
fn and_factors<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Arith { op: Arith::BitAnd, lhs, rhs, .. } => {
            and_factors(lhs, out);
            and_factors(rhs, out);
        }
        other => out.push(other),
    }
}

/// The lowest and highest set bits of a mask.
fn mask_bits(m: u64) -> Vec<u64> {
    if m == 0 {
        return Vec::new();
    }
    let (lo, hi) = (1u64 << m.trailing_zeros(), 1u64 << (63 - m.leading_zeros()));
    if lo == hi { vec![lo] } else { vec![lo, hi] }
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

/// `ADDR + k * u64(COUNT) - 1` (k a power of two): the last byte of a list of COUNT entries of k
/// bytes at ADDR, as (ADDR, COUNT, k).
fn list_end(e: &Expr) -> Option<(FieldId, FieldId, u64)> {
    let Expr::Arith { op: Arith::Sub, lhs, rhs, .. } = e else { return None };
    let Expr::Arith { op: Arith::Add, lhs: base, rhs: step, .. } = &**lhs else { return None };
    let Expr::Arith { op: Arith::Mul, lhs: size, rhs: count, .. } = &**step else { return None };
    let count = match &**count {
        Expr::Convert { value, .. } => &**value,
        c => c,
    };
    match (&**rhs, &**base, &**size, count) {
        (Expr::Int { value: 1, .. }, Expr::Field(a), Expr::Int { value: k, .. }, Expr::Field(c))
            if k.is_power_of_two() =>
        {
            Some((*a, *c, *k))
        }
        _ => None,
    }
}
