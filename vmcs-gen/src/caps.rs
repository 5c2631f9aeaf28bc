//! Evaluating gates against a vCPU's capability MSRs, field existence and VMCS_ENUM.

use std::collections::BTreeMap;

use crate::model::{CapId, FieldId, Layout, MsrId, MsrKind, Schema};

/// A capability set: what a vCPU (or CPU model) reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caps {
    /// Every capability the schema names (the maximal CPU).
    All,
    /// Every capability but these.
    AllExcept(Vec<CapId>),
    /// Capability MSR values by index; a missing MSR reads as 0.
    Msrs(BTreeMap<u32, u64>),
}

impl Caps {
    fn raw(&self, index: u32) -> u64 {
        match self {
            Caps::Msrs(m) => m.get(&index).copied().unwrap_or(0),
            _ => 0,
        }
    }
}

/// How deep `requires` chains may go (they are acyclic in a valid schema; this bounds a bad one).
const MAX_REQUIRES_DEPTH: u32 = 8;

impl Schema {
    /// Does `caps` have capability `cap`?
    pub fn has_cap(&self, caps: &Caps, cap: CapId) -> bool {
        self.has_cap_at(caps, cap, 0)
    }

    fn has_cap_at(&self, caps: &Caps, cap: CapId, depth: u32) -> bool {
        match caps {
            Caps::All => true,
            Caps::AllExcept(off) => !off.contains(&cap),
            Caps::Msrs(_) => {
                let c = &self.caps[cap];
                let value = self.msr_value_at(caps, c.msr, depth);
                match self.msrs[c.msr].kind {
                    MsrKind::Control => value >> (32 + c.bit) & 1 == 1,
                    MsrKind::Flags => value >> c.bit & 1 == 1,
                }
            }
        }
    }

    /// The value that reports a capability MSR's capabilities ([`Schema::reported_by`]).
    pub fn msr_value(&self, caps: &Caps, msr: MsrId) -> u64 {
        self.msr_value_at(caps, msr, 0)
    }

    fn msr_value_at(&self, caps: &Caps, msr: MsrId, depth: u32) -> u64 {
        let reporting = self.reported_by(msr, &mut |m| self.msr_exists_at(caps, m, depth));
        reporting.map_or(0, |m| caps.raw(self.msrs[m].index))
    }

    /// Does MSR `msr` exist for these capabilities (its `requires` gate)?
    pub fn msr_exists(&self, caps: &Caps, msr: MsrId) -> bool {
        self.msr_exists_at(caps, msr, 0)
    }

    fn msr_exists_at(&self, caps: &Caps, msr: MsrId, depth: u32) -> bool {
        match &self.msrs[msr].requires {
            None => true,
            Some(req) => depth < MAX_REQUIRES_DEPTH && req.eval(&mut |c| self.has_cap_at(caps, *c, depth + 1)),
        }
    }

    /// Does field `f` exist on a processor with capabilities `caps`?
    pub fn field_exists(&self, caps: &Caps, f: FieldId) -> bool {
        match &self.fields[f].gate {
            None => true,
            Some(g) => g.eval(&mut |c| self.has_cap(caps, *c)),
        }
    }

    /// IA32_VMX_VMCS_ENUM a CPU with these capabilities should report: the highest index (bits 9:1)
    /// among the architectural fields that exist, shifted left by 1.
    pub fn arch_vmcs_enum(&self, caps: &Caps) -> u64 {
        self.vmcs_enum_of(0..self.fields.len(), caps)
    }

    /// VMCS_ENUM over a software layout: the highest index among its mapped fields that exist.
    /// For vmcs12 this is what KVM's nested_vmx_calc_vmcs_enum_msr() computes.
    pub fn layout_vmcs_enum(&self, layout: &Layout, caps: &Caps) -> u64 {
        self.vmcs_enum_of(layout.mapped().map(|(_, f)| f), caps)
    }

    /// The one VMCS_ENUM routine: the highest index among `fields` that exist, shifted left by 1.
    fn vmcs_enum_of(&self, fields: impl Iterator<Item = FieldId>, caps: &Caps) -> u64 {
        let max = fields.filter(|&f| self.field_exists(caps, f)).map(|f| self.fields[f].encoding.index()).max();
        (max.unwrap_or(0) as u64) << 1
    }

    /// Fields that exist for `caps`, in schema order.
    pub fn existing_fields(&self, caps: &Caps) -> Vec<FieldId> {
        (0..self.fields.len()).filter(|&f| self.field_exists(caps, f)).collect()
    }
}
