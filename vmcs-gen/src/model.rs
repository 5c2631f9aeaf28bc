//! The validated schema model: what every emitter, the command line and vmcs-derive work from.

use crate::encoding::{Encoding, Kind, Width};
use crate::gate::Gate;

mod exits;
pub use exits::{Bitfield, BitfieldId, Bits, Decode, ExitReason, InstructionError, NamedValue};
mod copy;
pub use copy::*;

/// Index of a field in [`Schema::fields`].
pub type FieldId = usize;
/// Index of a capability in [`Schema::caps`].
pub type CapId = usize;
/// Index of a capability MSR in [`Schema::msrs`].
pub type MsrId = usize;

/// The whole validated schema.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
    pub msrs: Vec<Msr>,
    pub caps: Vec<Capability>,
    pub layouts: Vec<Layout>,
    pub predicates: Vec<Predicate>,
    pub hooks: Vec<Hook>,
    pub sets: Vec<CopySet>,
    /// Basic VM-exit reasons, by number.
    pub reasons: Vec<ExitReason>,
    /// Layouts of exit-information fields (exit reason, qualifications, interruption information).
    pub bitfields: Vec<Bitfield>,
    /// VM-instruction errors, by number.
    pub instruction_errors: Vec<InstructionError>,
    /// The VM-entry consistency checks (checks.toml).
    pub checks: crate::checks::Checks,
    /// Display paths of the files the schema was read from, for generated headers.
    pub sources: Vec<String>,
}

/// An architectural VMCS field. 64-bit fields are declared once; the high half is derived.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub encoding: Encoding,
    pub width: Width,
    pub kind: Kind,
    /// None: the field exists on every processor that supports VMX.
    pub gate: Option<Gate<CapId>>,
    pub doc: String,
    /// Set for fields that only one source knows (e.g. "bochs-head").
    pub source: Option<String>,
    /// L1's value is an L1 guest-physical address: vmcs02 needs L0's translation.
    pub guest_physical: bool,
    /// vmcs02's value is L0's, not a copy of L1's: why.
    pub l0_owned: Option<String>,
}

impl Field {
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
    pub name: String,
    pub index: u32,
    /// The IA32_VMX_TRUE_* MSR that reports the controls instead, when it exists (its `requires`).
    pub true_msr: Option<MsrId>,
    pub kind: MsrKind,
    /// The MSR exists only if this gate holds; otherwise it reads as 0.
    pub requires: Option<Gate<CapId>>,
    /// The VMCS control field whose allowed settings the MSR reports. The field is in effect only
    /// while `requires` holds over the control values (e.g. the secondary controls only with
    /// "activate secondary controls"); otherwise it acts as 0.
    pub control_field: Option<FieldId>,
    pub doc: String,
}

/// A named capability bit that gates refer to.
#[derive(Clone, Debug)]
pub struct Capability {
    pub name: String,
    pub msr: MsrId,
    pub bit: u32,
    pub doc: String,
}

/// The storage type of a layout member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberType {
    U16,
    U32,
    U64,
    /// Natural width, stored as 64 bits so the layout is the same on 32- and 64-bit hosts.
    Natural,
    /// Space kept for future members: padding, dead space.
    Reserved,
}

impl MemberType {
    pub fn parse(s: &str) -> Option<MemberType> {
        Some(match s {
            "u16" => MemberType::U16,
            "u32" => MemberType::U32,
            "u64" => MemberType::U64,
            "natural" => MemberType::Natural,
            "reserved" => MemberType::Reserved,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::U16 => "u16",
            MemberType::U32 => "u32",
            MemberType::U64 => "u64",
            MemberType::Natural => "natural",
            MemberType::Reserved => "reserved",
        }
    }
    /// The size of a scalar member; None for reserved space (its size is declared).
    pub fn scalar_size(self) -> Option<u32> {
        match self {
            MemberType::U16 => Some(2),
            MemberType::U32 => Some(4),
            MemberType::U64 | MemberType::Natural => Some(8),
            MemberType::Reserved => None,
        }
    }
    /// The member type that stores a field of this width.
    pub fn for_width(w: Width) -> MemberType {
        match w {
            Width::W16 => MemberType::U16,
            Width::W32 => MemberType::U32,
            Width::W64 => MemberType::U64,
            Width::Natural => MemberType::Natural,
        }
    }
}

/// A member of a software VMCS layout, at a pinned offset.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub ty: MemberType,
    pub field: Option<FieldId>,
    pub doc: Option<String>,
    /// For reserved space: members of the previous layout it retires.
    pub retires: Vec<String>,
    /// Clean-field group (an index into the layout's `clean.groups`), or None.
    pub clean: Option<CleanGroup>,
}

/// The clean-field group of a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanGroup {
    /// One group: the bit number in the clean-fields member.
    Bit(u32),
    /// Every group at once (a write clears every clean bit).
    All,
}

/// Clean-field tracking of a layout (the eVMCS's `hv_clean_fields`).
#[derive(Clone, Debug)]
pub struct CleanFields {
    /// The u32 member holding the bits.
    pub member: String,
    /// (group name, bit).
    pub groups: Vec<(String, u32)>,
}

impl CleanFields {
    /// Every group bit.
    pub fn all_mask(&self) -> u32 {
        self.groups.iter().fold(0, |m, (_, b)| m | 1 << b)
    }
}

impl Member {
    pub fn end(&self) -> u32 {
        self.offset + self.size
    }
}

/// A software VMCS layout such as KVM's vmcs12.
#[derive(Clone, Debug)]
pub struct Layout {
    pub name: String,
    pub doc: String,
    pub revision: u32,
    /// Size of the VMCS region (IA32_VMX_BASIC bits 44:32).
    pub size: u32,
    /// A released layout is an ABI: its lock file pins every member.
    pub released: bool,
    /// The layout this one evolved from under the same revision.
    pub previous: Option<String>,
    pub clean: Option<CleanFields>,
    pub members: Vec<Member>,
}

impl Layout {
    /// Bytes from offset 0 to the end of the last member.
    pub fn used_bytes(&self) -> u32 {
        self.members.iter().map(Member::end).max().unwrap_or(0)
    }
    pub fn mapped(&self) -> impl Iterator<Item = (&Member, FieldId)> {
        self.members.iter().filter_map(|m| m.field.map(|f| (m, f)))
    }
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn field_by_encoding(&self, enc: Encoding) -> Option<&Field> {
        let full = Encoding(enc.raw() & !1);
        self.fields.iter().find(|f| f.encoding == full && (!enc.is_high() || f.width == Width::W64))
    }
    pub fn cap(&self, name: &str) -> Option<CapId> {
        self.caps.iter().position(|c| c.name == name)
    }
    pub fn layout(&self, name: &str) -> Option<&Layout> {
        self.layouts.iter().find(|l| l.name == name)
    }
    pub fn msr_of(&self, cap: CapId) -> &Msr {
        &self.msrs[self.caps[cap].msr]
    }
    /// Render a gate with capability names.
    pub fn gate_text(&self, gate: &Gate<CapId>) -> String {
        gate.render(&|c: &CapId| self.caps[*c].name.clone())
    }
}
