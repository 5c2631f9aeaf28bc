//! An interpreter of the typed rules: what `vmcs-gen state check` runs on a vmcs12 decoded with
//! the schema's layout, and the reference the generated checker is tested against.

use super::Rule;
use super::expr::{Arith, Cmp, Expr, IntTy, Logic};
use crate::caps::Caps;
use crate::gate::Gate;
use crate::model::{CapId, FieldId, MsrId, MsrKind, Schema};

/// What the rules read: the VMCS (by field), the capabilities, the facts and physical memory.
pub struct Inputs<'a> {
    pub schema: &'a Schema,
    pub caps: &'a Caps,
    /// Fact values by index of `schema.checks.facts` (a boolean is 0 or 1).
    pub facts: &'a [u64],
    /// The value of a field, or None if the VMCS cannot provide it.
    pub field: &'a dyn Fn(FieldId) -> Option<u64>,
    /// Physical memory: `bytes` (4 or 8) at an address, or None where unreadable.
    pub memory: &'a dyn Fn(u64, u32) -> Option<u64>,
}

/// A field the rules needed that the VMCS could not provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable(pub FieldId);

impl Inputs<'_> {
    /// Does the rule apply (its gate holds)? Rules that do not apply are never evaluated.
    pub fn applies(&self, rule: &Rule) -> bool {
        rule.gate.as_ref().is_none_or(|g| g.eval(&mut |c| self.schema.has_cap(self.caps, *c)))
    }

    /// Does the rule hold? None when it does not apply.
    pub fn holds(&self, rule: &Rule) -> Result<Option<bool>, Unreadable> {
        if !self.applies(rule) {
            return Ok(None);
        }
        let mut vars = Vec::new();
        Ok(Some(self.eval(&rule.check, &mut vars)? != 0))
    }

    /// Every failing rule, in check order, with its exit qualification where the outcome has one.
    pub fn failures(&self) -> Result<Vec<usize>, Unreadable> {
        let mut out = Vec::new();
        for (i, r) in self.schema.checks.rules.iter().enumerate() {
            if self.holds(r)? == Some(false) {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// The control field of `msr` as in effect: 0 while its `requires` does not hold on the
    /// controls, or where the field does not exist for the capabilities (it is then never read).
    pub fn control_word(&self, msr: MsrId) -> Result<u64, Unreadable> {
        let m = &self.schema.msrs[msr];
        let Some(field) = m.control_field else { return Ok(0) };
        if let Some(req) = &m.requires
            && !self.gate_on_controls(req)?
        {
            return Ok(0);
        }
        if !self.schema.field_exists(self.caps, field) {
            return Ok(0);
        }
        (self.field)(field).ok_or(Unreadable(field))
    }

    fn gate_on_controls(&self, gate: &Gate<CapId>) -> Result<bool, Unreadable> {
        Ok(match gate {
            Gate::Cap(c) => self.control_bit(self.schema.caps[*c].msr, self.schema.caps[*c].bit)?,
            Gate::Any(gs) => {
                for g in gs {
                    if self.gate_on_controls(g)? {
                        return Ok(true);
                    }
                }
                false
            }
            Gate::All(gs) => {
                for g in gs {
                    if !self.gate_on_controls(g)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }

    fn control_bit(&self, msr: MsrId, bit: u32) -> Result<bool, Unreadable> {
        Ok(self.control_word(msr)? >> bit & 1 == 1)
    }

    fn allowed(&self, msr: MsrId) -> Result<bool, Unreadable> {
        let ctl = self.control_word(msr)?;
        let value = self.schema.msr_value(self.caps, msr);
        Ok(match self.schema.msrs[msr].kind {
            MsrKind::Control => {
                let (must1, may1) = (value & 0xffff_ffff, value >> 32);
                ctl & must1 == must1 && ctl & !may1 == 0
            }
            MsrKind::Flags => ctl & !value == 0,
        })
    }

    fn eval(&self, e: &Expr, vars: &mut Vec<u64>) -> Result<u64, Unreadable> {
        Ok(match e {
            Expr::Bool(b) => *b as u64,
            Expr::Int { value, .. } => *value,
            Expr::Field(f) => (self.field)(*f).ok_or(Unreadable(*f))? & field_mask(self.schema, *f),
            Expr::Control { msr, bit } => self.control_bit(*msr, *bit)? as u64,
            Expr::Allowed(m) => self.allowed(*m)? as u64,
            Expr::Cap(c) => self.schema.has_cap(self.caps, *c) as u64,
            Expr::Msr(m) => self.schema.msr_value(self.caps, *m),
            Expr::Fact(f) => self.facts.get(*f).copied().unwrap_or(0),
            Expr::Mem { ty, addr } => {
                let a = self.eval(addr, vars)?;
                (self.memory)(a, ty.bits() / 8).unwrap_or(u64::MAX) & ty.mask()
            }
            Expr::Not(x) => (self.eval(x, vars)? == 0) as u64,
            Expr::BitNot { ty, value } => !self.eval(value, vars)? & ty.mask(),
            Expr::Logic { op, lhs, rhs } => {
                let l = self.eval(lhs, vars)? != 0;
                let r = match op {
                    Logic::And if !l => false,
                    Logic::Or if l => true,
                    Logic::Implies if !l => true,
                    _ => self.eval(rhs, vars)? != 0,
                };
                r as u64
            }
            Expr::Compare { op, lhs, rhs } => {
                let (l, r) = (self.eval(lhs, vars)?, self.eval(rhs, vars)?);
                (match op {
                    Cmp::Eq => l == r,
                    Cmp::Ne => l != r,
                    Cmp::Lt => l < r,
                    Cmp::Le => l <= r,
                    Cmp::Gt => l > r,
                    Cmp::Ge => l >= r,
                }) as u64
            }
            Expr::Arith { op, ty, lhs, rhs } => {
                let (l, r) = (self.eval(lhs, vars)?, self.eval(rhs, vars)?);
                arith(*op, *ty, l, r)
            }
            Expr::Bit { value, bit } => self.eval(value, vars)? >> bit & 1,
            Expr::Bits { value, hi, lo, .. } => {
                let v = self.eval(value, vars)?;
                (v >> lo) & (u64::MAX >> (63 - (hi - lo)))
            }
            Expr::In { value, set } => {
                let v = self.eval(value, vars)?;
                set.iter().any(|(lo, hi)| (*lo..=*hi).contains(&v)) as u64
            }
            Expr::Convert { value, to } => self.eval(value, vars)? & to.mask(),
            Expr::Let { var, value, body } => {
                let v = self.eval(value, vars)?;
                if vars.len() <= *var {
                    vars.resize(var + 1, 0);
                }
                vars[*var] = v;
                self.eval(body, vars)?
            }
            Expr::Var { var, .. } => vars.get(*var).copied().unwrap_or(0),
        })
    }
}

/// `lhs op rhs` within width `ty`: wrapping, and a shift by the width or more gives 0.
pub fn arith(op: Arith, ty: IntTy, l: u64, r: u64) -> u64 {
    let v = match op {
        Arith::BitOr => l | r,
        Arith::BitXor => l ^ r,
        Arith::BitAnd => l & r,
        Arith::Shl => {
            if r >= ty.bits() as u64 {
                0
            } else {
                l << r
            }
        }
        Arith::Shr => {
            if r >= ty.bits() as u64 {
                0
            } else {
                l >> r
            }
        }
        Arith::Add => l.wrapping_add(r),
        Arith::Sub => l.wrapping_sub(r),
        Arith::Mul => l.wrapping_mul(r),
    };
    v & ty.mask()
}

fn field_mask(schema: &Schema, f: FieldId) -> u64 {
    match schema.fields[f].width {
        crate::encoding::Width::W16 => 0xffff,
        crate::encoding::Width::W32 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

impl Inputs<'_> {
    /// The first rule, in check order, that `select` picks and that fails (its index).
    pub fn first_failure(&self, select: impl Fn(&Rule) -> bool) -> Result<Option<usize>, Unreadable> {
        for (i, r) in self.schema.checks.rules.iter().enumerate() {
            if select(r) && self.holds(r)? == Some(false) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}
