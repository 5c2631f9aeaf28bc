//! Masked values made zero or non-zero: the `x & m == 0` shape of reserved-bit checks, where
//! the mask is a constant, a fact or a capability MSR's fixed bits.

use super::Gen;
use super::place::Slot;
use crate::checks::mutate::{Edit, Op, Source, Target, Value};
use crate::model::expr::{Arith, Expr, FactId};
use crate::model::{FieldId, MsrId};

impl Gen<'_> {
    /// Ways to make `x` non-zero, for `x == 0` checks.
    pub(super) fn nonzero(&self, x: &Expr) -> Option<Vec<Vec<Edit>>> {
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
    pub(super) fn zero(&self, x: &Expr) -> Option<Vec<Vec<Edit>>> {
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
