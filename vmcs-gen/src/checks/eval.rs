//! An interpreter of the typed rules: what `vmcs-gen state check` runs on a vmcs12 decoded with
//! the schema's layout, and the reference the generated checker is tested against.

use crate::caps::Caps;
use crate::gate::Gate;
use crate::model::expr::{Arith, Expr, IntTy, Logic};
use crate::model::{CapId, FieldId, MsrId, MsrKind, Rule, Schema, Tier};

/// What the rules read: the VMCS (by field), the capabilities, the facts and physical memory.
pub struct Inputs<'a> {
    /// The schema whose rules are evaluated.
    pub schema: &'a Schema,
    /// The capabilities: which rules apply, which fields exist, the MSR values rules compare with.
    pub caps: &'a Caps,
    /// Fact values by index of `schema.checks.facts` (a boolean is 0 or 1).
    pub facts: &'a [u64],
    /// The value of a field, or None if the VMCS cannot provide it.
    pub field: &'a dyn Fn(FieldId) -> Option<u64>,
    /// Physical memory: `bytes` (4 or 8) at an address, or None where unreadable.
    pub memory: &'a dyn Fn(u64, u32) -> Option<u64>,
    /// Would WRMSR of a value to an MSR fault (`wrmsr_faults(index, value)`)?
    pub wrmsr_faults: &'a dyn Fn(u32, u64) -> bool,
}

/// A failing rule: its index in `schema.checks.rules` and, for a rule of the MSR-loading tier, the
/// number (from 1) of the VM-entry MSR-load entry it fails on (the exit qualification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed {
    /// Index in `schema.checks.rules`.
    pub rule: usize,
    /// The MSR-load entry, from 1; None for the other tiers.
    pub entry: Option<u32>,
}

/// `let` bindings, and the MSR-load entry being checked.
struct Scope {
    vars: Vec<u64>,
    entry: u64,
}

/// A field the rules needed that the VMCS could not provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable(pub FieldId);

impl Inputs<'_> {
    /// Does the rule apply (its gate holds)? Rules that do not apply are never evaluated.
    pub fn applies(&self, rule: &Rule) -> bool {
        rule.gate.as_ref().is_none_or(|g| g.eval(&mut |c| self.schema.has_cap(self.caps, *c)))
    }

    /// Does the rule hold (on every MSR-load entry, for a rule of that tier)? None when it does
    /// not apply.
    pub fn holds(&self, rule: &Rule) -> Result<Option<bool>, Unreadable> {
        if !self.applies(rule) {
            return Ok(None);
        }
        if rule.tier == Tier::MsrLoad {
            for entry in 0..self.entries()? {
                if !self.holds_at(rule, entry)? {
                    return Ok(Some(false));
                }
            }
            return Ok(Some(true));
        }
        self.holds_at(rule, 0).map(Some)
    }

    /// Does the rule (which applies) hold, on MSR-load entry `entry` (from 0) for a rule of that tier?
    fn holds_at(&self, rule: &Rule, entry: u64) -> Result<bool, Unreadable> {
        let mut scope = Scope { vars: Vec::new(), entry };
        Ok(self.eval(&rule.check, &mut scope)? != 0)
    }

    /// The entries of the VM-entry MSR-load list the rules check: its count, up to the recommended
    /// maximum of 512 × (IA32_VMX_MISC[27:25] + 1) (beyond it the SDM leaves behaviour undefined).
    fn entries(&self) -> Result<u64, Unreadable> {
        let count = self.schema.fields.iter().position(|f| f.name == "VM_ENTRY_MSR_LOAD_COUNT");
        let Some(f) = count else { return Ok(0) };
        let count = (self.field)(f).ok_or(Unreadable(f))? & 0xffff_ffff;
        let misc =
            self.schema.msrs.iter().position(|m| m.name == "misc").map_or(0, |m| self.schema.msr_value(self.caps, m));
        Ok(count.min(512 * ((misc >> 25 & 7) + 1)))
    }

    /// Every failing rule that `select` picks, in check order: the rules of the MSR-loading tier
    /// entry by entry (each entry's failing rules, then the next entry's).
    pub fn failures_of(&self, select: impl Fn(&Rule) -> bool) -> Result<Vec<Failed>, Unreadable> {
        let mut out = Vec::new();
        self.run(&select, &mut |f| {
            out.push(f);
            false
        })?;
        Ok(out)
    }

    /// Every failing rule, in check order.
    pub fn failures(&self) -> Result<Vec<Failed>, Unreadable> {
        self.failures_of(|_| true)
    }

    /// The first failing rule, in check order, that `select` picks.
    pub fn first_failure(&self, select: impl Fn(&Rule) -> bool) -> Result<Option<Failed>, Unreadable> {
        let mut first = None;
        self.run(&select, &mut |f| {
            first = Some(f);
            true
        })?;
        Ok(first)
    }

    /// The rules `select` picks, in check order, until `fail` returns true.
    fn run(&self, select: &dyn Fn(&Rule) -> bool, fail: &mut dyn FnMut(Failed) -> bool) -> Result<(), Unreadable> {
        let rules = &self.schema.checks.rules;
        let picked = |r: &Rule| select(r) && self.applies(r);
        for (i, r) in rules.iter().enumerate() {
            if r.tier != Tier::MsrLoad && picked(r) && !self.holds_at(r, 0)? && fail(Failed { rule: i, entry: None }) {
                return Ok(());
            }
        }
        let list: Vec<usize> =
            (0..rules.len()).filter(|&i| rules[i].tier == Tier::MsrLoad && picked(&rules[i])).collect();
        if list.is_empty() {
            return Ok(());
        }
        for entry in 0..self.entries()? {
            for &i in &list {
                if !self.holds_at(&rules[i], entry)? && fail(Failed { rule: i, entry: Some(entry as u32 + 1) }) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The control field of `msr` as in effect: 0 while its `requires` does not hold on the
    /// controls, or where the field does not exist for the capabilities (it is then never read).
    fn control_word(&self, msr: MsrId) -> Result<u64, Unreadable> {
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

    fn eval(&self, e: &Expr, vars: &mut Scope) -> Result<u64, Unreadable> {
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
                op.holds(l, r) as u64
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
                if vars.vars.len() <= *var {
                    vars.vars.resize(var + 1, 0);
                }
                vars.vars[*var] = v;
                self.eval(body, vars)?
            }
            Expr::Var { var, .. } => vars.vars.get(*var).copied().unwrap_or(0),
            Expr::MsrEntry => vars.entry,
            Expr::WrmsrFaults { index, value } => {
                let (i, v) = (self.eval(index, vars)?, self.eval(value, vars)?);
                (self.wrmsr_faults)(i as u32, v) as u64
            }
        })
    }
}

/// `lhs op rhs` within width `ty`: wrapping, and a shift by the width or more gives 0.
fn arith(op: Arith, ty: IntTy, l: u64, r: u64) -> u64 {
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
