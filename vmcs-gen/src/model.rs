//! The validated schema model: what every emitter, the command line and vmcs-derive work from.

use crate::encoding::{Encoding, Kind, Width};
use crate::gate::Gate;

mod checks;
pub use checks::{Checks, Define, Fact, Outcome, Rule, Segment, Tier};
mod exits;
pub(crate) mod expr;
pub(crate) mod syntax;
pub use exits::{Bitfield, BitfieldId, Bits, Decode, ExitReason, InstructionError, NamedValue};
mod copy;
pub use copy::*;
mod layout;
pub use layout::{
    CleanFields, CleanGroup, Layout, LayoutPos, Lock, LockPin, LockPos, Member, MemberPos, MemberType, Pinned,
};
mod nested_state;
mod pos;
pub use pos::{FileId, Pos};

/// Index of a field in [`Schema::fields`].
pub type FieldId = usize;
/// Index of a capability in [`Schema::caps`].
pub type CapId = usize;
/// Index of a capability MSR in [`Schema::msrs`].
pub type MsrId = usize;

/// The whole validated schema, as [`Schema::load`] returns it only when no check failed: every
/// index in it ([`FieldId`], [`CapId`], [`MsrId`], ...) is in range, every gate names declared
/// capabilities, and every released layout matches its lock (unless
/// [`LoadOptions`](crate::LoadOptions) relaxed that).
#[derive(Clone, Debug, Default)]
pub struct Schema {
    /// Every architectural field (fields.toml), in declaration order: [`FieldId`] indexes it.
    pub fields: Vec<Field>,
    /// The capability MSRs (capabilities.toml), in declaration order: [`MsrId`] indexes it.
    pub msrs: Vec<Msr>,
    /// The named capability bits (capabilities.toml): [`CapId`] indexes it.
    pub caps: Vec<Capability>,
    /// The software VMCS layouts (layouts/*.toml), in the order of their files.
    pub layouts: Vec<Layout>,
    /// The facts only the hypervisor knows that copy conditions name (copysets.toml).
    pub predicates: Vec<Predicate>,
    /// The values the hypervisor computes for copy entries (copysets.toml).
    pub hooks: Vec<Hook>,
    /// The copy sets (copysets.toml), in declaration order; empty without that file.
    pub sets: Vec<CopySet>,
    /// Basic VM-exit reasons, by number.
    pub reasons: Vec<ExitReason>,
    /// Layouts of exit-information fields (exit reason, qualifications, interruption information).
    pub bitfields: Vec<Bitfield>,
    /// VM-instruction errors, by number.
    pub instruction_errors: Vec<InstructionError>,
    /// The VM-entry consistency checks (checks.toml).
    pub checks: Checks,
    /// The locks of released layouts (locks/*.lock.toml), as written.
    pub locks: Vec<Lock>,
    /// Display paths of the files the schema was read from, for generated headers.
    pub sources: Vec<String>,
    /// The files themselves: every [`Pos`] of the model points into one of them.
    pub files: Vec<crate::diag::SourceFile>,
}

/// An architectural VMCS field. 64-bit fields are declared once; the high half is derived.
#[derive(Clone, Debug)]
pub struct Field {
    /// UPPER_SNAKE_CASE, as Linux names it where it does, e.g. "GUEST_RIP".
    pub name: String,
    /// The full encoding (access type 0); for a 64-bit field, [`Field::encodings`] adds the high one.
    pub encoding: Encoding,
    /// As declared, equal to the encoding's width (the loader checks).
    pub width: Width,
    /// As declared, equal to the encoding's kind (the loader checks).
    pub kind: Kind,
    /// None: the field exists on every processor that supports VMX.
    pub gate: Option<Gate<CapId>>,
    /// What the field holds, after the SDM.
    pub doc: String,
    /// Set for fields that only one source knows (e.g. "bochs-head").
    pub source: Option<String>,
    /// L1's value is an L1 guest-physical address: vmcs02 needs L0's translation.
    pub guest_physical: bool,
    /// vmcs02's value is L0's, not a copy of L1's: why.
    pub l0_owned: Option<String>,
    /// Where the field is declared (its name).
    pub pos: Pos,
}

impl Field {
    /// A VM-exit information field (its kind is [`Kind::ReadOnly`]).
    pub fn is_read_only(&self) -> bool {
        self.kind == Kind::ReadOnly
    }
    /// Why a raw copy of L1's value into vmcs02 would be wrong, if it would.
    pub fn vmcs02_owner(&self) -> Option<String> {
        if self.guest_physical {
            Some("it holds an L1 guest-physical address, which vmcs02 needs translated".into())
        } else if let Some(why) = &self.l0_owned {
            Some(format!("it is L0-owned: {why}"))
        } else if self.kind == Kind::HostState {
            Some("vmcs02's host state is L0's: a VM exit from L2 returns to L0".into())
        } else {
            None
        }
    }
    /// The encodings that name this field: the full one, and the high one for 64-bit fields.
    pub fn encodings(&self) -> Vec<Encoding> {
        if self.width == Width::W64 { vec![self.encoding, self.encoding.high()] } else { vec![self.encoding] }
    }
}

/// How a capability MSR reports a capability bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrKind {
    /// A VM-execution/exit/entry control MSR: control n is allowed-1 iff MSR bit 32+n is set.
    Control,
    /// Capability bit n is MSR bit n.
    Flags,
}

/// A VMX capability MSR (IA32_VMX_*).
#[derive(Clone, Debug)]
pub struct Msr {
    /// The short name capabilities are prefixed with, e.g. "proc2" for IA32_VMX_PROCBASED_CTLS2.
    pub name: String,
    /// The MSR index RDMSR takes, e.g. 0x48b.
    pub index: u32,
    /// The IA32_VMX_TRUE_* MSR that reports the controls instead, when it exists (its `requires`).
    pub true_msr: Option<MsrId>,
    /// How it reports its capability bits.
    pub kind: MsrKind,
    /// The MSR exists only if this gate holds; otherwise it reads as 0.
    pub requires: Option<Gate<CapId>>,
    /// The VMCS control field whose allowed settings the MSR reports. The field is in effect only
    /// while `requires` holds over the control values (e.g. the secondary controls only with
    /// "activate secondary controls"); otherwise it acts as 0.
    pub control_field: Option<FieldId>,
    /// Its SDM name and what it reports.
    pub doc: String,
}

/// A named capability bit that gates refer to.
#[derive(Clone, Debug)]
pub struct Capability {
    /// `msr.bit_name`, e.g. "proc2.enable_ept": what gates write.
    pub name: String,
    /// The MSR that reports it.
    pub msr: MsrId,
    /// For a [`MsrKind::Control`] MSR the control bit (0..32, reported in MSR bit 32 + `bit`);
    /// for a [`MsrKind::Flags`] MSR the MSR bit itself.
    pub bit: u32,
    /// What the capability allows, after the SDM.
    pub doc: String,
    /// Where the capability is declared (its name).
    pub pos: Pos,
}

impl Schema {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    /// The field `enc` names: its full encoding, or the high one of a 64-bit field.
    pub fn field_by_encoding(&self, enc: Encoding) -> Option<&Field> {
        let full = Encoding(enc.raw() & !1);
        self.fields.iter().find(|f| f.encoding == full && (!enc.is_high() || f.width == Width::W64))
    }
    /// The capability named `name` (e.g. "proc2.enable_ept").
    pub fn cap(&self, name: &str) -> Option<CapId> {
        self.caps.iter().position(|c| c.name == name)
    }
    /// The layout named `name` (e.g. "vmcs12").
    pub fn layout(&self, name: &str) -> Option<&Layout> {
        self.layouts.iter().find(|l| l.name == name)
    }
    /// The MSR that reports `cap`.
    pub fn msr_of(&self, cap: CapId) -> &Msr {
        &self.msrs[self.caps[cap].msr]
    }
    /// Which MSR's value reports `msr`'s capabilities, given which MSRs exist: none when `msr`
    /// does not exist (it reads as 0), its TRUE MSR when that exists, else `msr` itself. The one
    /// statement of the choice: the evaluator ([`crate::caps`]) asks it, and the runtime's
    /// `Msr::reported_by` is tabulated from it.
    pub fn reported_by(&self, msr: MsrId, exists: &mut dyn FnMut(MsrId) -> bool) -> Option<MsrId> {
        if !exists(msr) {
            return None;
        }
        match self.msrs[msr].true_msr {
            Some(t) if exists(t) => Some(t),
            _ => Some(msr),
        }
    }
    /// Render a gate with capability names.
    pub fn gate_text(&self, gate: &Gate<CapId>) -> String {
        gate.render(&|c: &CapId| self.caps[*c].name.clone())
    }
}
