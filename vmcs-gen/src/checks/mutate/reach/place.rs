//! Where an expression's bits live: a field, a memory word reached through a field, or a bit
//! range of one ([`Slot`]); and moving memory edits to where a rule reads them.

use super::Gen;
use crate::checks::mutate::{Edit, Op, Source, Target, Value};
use crate::encoding::Width;
use crate::model::FieldId;
use crate::model::expr::{Arith, Expr};

/// Bits `lo..lo+width` of a target.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub target: Target,
    pub lo: u32,
    pub width: u32,
}

impl Slot {
    pub(super) fn mask(self) -> u64 {
        (u64::MAX >> (64 - self.width)) << self.lo
    }
    pub(super) fn max(self) -> u64 {
        u64::MAX >> (64 - self.width)
    }
    pub(super) fn assign(self, v: u64) -> Edit {
        self.set(Op::Assign { mask: self.mask() }, Value::Const((v << self.lo) & self.mask()))
    }
    pub(super) fn edit(self, op: Op, v: u64) -> Edit {
        self.set(op, Value::Const((v << self.lo) & self.mask()))
    }
    pub(super) fn set(self, op: Op, value: Value) -> Edit {
        Edit { target: self.target, op, value }
    }
    /// `self := other + delta` (bits of a field or capability MSR).
    pub(super) fn copy(self, other: (Source, u32), delta: i64, at: u32) -> Edit {
        let value = Value::Plus { source: other.0, lo: other.1, width: self.width, delta, at: self.lo + at };
        self.set(Op::Assign { mask: self.mask() }, value)
    }
}

impl Gen<'_> {
    pub(super) fn width(&self, f: FieldId) -> u32 {
        match self.schema.fields[f].width {
            Width::W16 => 16,
            Width::W32 => 32,
            _ => 64,
        }
    }

    /// A field, memory word or bit range of one, possibly converted; or a single bit tested as a
    /// value (`EFER[10] == exit.host_address_space_size`).
    pub(super) fn slot(&self, e: &Expr) -> Option<Slot> {
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
    pub(super) fn source(&self, e: &Expr) -> Option<(Source, u32)> {
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
    fn address(&self, e: &Expr) -> Option<(FieldId, u64, u64)> {
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

    /// `edits` with the VM-entry MSR-load list `count` entries long, its memory edits moved from the
    /// first entry to entry `n` (from 0).
    pub(in super::super) fn at_entry(&self, edits: &[Edit], count: u64, n: u64) -> Vec<Edit> {
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
    pub(in super::super) fn memory_bases(&self, e: &Expr) -> Vec<Edit> {
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
