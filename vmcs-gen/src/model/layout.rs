//! Software VMCS layouts (vmcs12, the eVMCS, released predecessors) and the locks that pin the
//! released ones.

use super::{FieldId, Pos};
use crate::encoding::Width;

/// The storage type of a layout member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberType {
    /// 2 bytes: a 16-bit field.
    U16,
    /// 4 bytes: a 32-bit field, or a layout's own word such as the eVMCS clean-fields mask.
    U32,
    /// 8 bytes: a 64-bit field (both halves; the high access reads bytes 4..8).
    U64,
    /// Natural width, stored as 64 bits so the layout is the same on 32- and 64-bit hosts.
    Natural,
    /// Space kept for future members: padding, dead space.
    Reserved,
}

impl MemberType {
    /// The type a layout file spells `s` ([`MemberType::as_str`]), or None for any other text.
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
    /// The layout-file spelling: "u16", "u32", "u64", "natural", "reserved".
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
    /// Unique in the layout: the generated struct's member name (KVM's for vmcs12).
    pub name: String,
    /// Byte offset from the start of the layout.
    pub offset: u32,
    /// Bytes; the scalar size of `ty`, or the declared size of reserved space.
    pub size: u32,
    /// How the bytes are used.
    pub ty: MemberType,
    /// The VMCS field stored here, None for the layout's own members (header, padding).
    pub field: Option<FieldId>,
    /// The documentation of a member that stores no field (one that does is documented by it).
    pub doc: Option<String>,
    /// For reserved space: members of the previous layout it retires.
    pub retires: Vec<String>,
    /// Clean-field group (an index into the layout's `clean.groups`), or None.
    pub clean: Option<CleanGroup>,
    /// Where its values are written.
    pub pos: MemberPos,
}

/// Where a member's values are written, for the errors of passes after loading.
#[derive(Clone, Debug, Default)]
pub struct MemberPos {
    /// Its name.
    pub name: Pos,
    /// Its offset.
    pub offset: Pos,
    /// Its type.
    pub ty: Pos,
    /// Each `retires` entry.
    pub retires: Vec<Pos>,
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
    /// The first byte past the member.
    pub fn end(&self) -> u32 {
        self.offset + self.size
    }
}

/// A software VMCS layout such as KVM's vmcs12.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The layout's name (its file name under layouts/), e.g. "vmcs12".
    pub name: String,
    /// What the layout is and who reads it.
    pub doc: String,
    /// The VMCS revision identifier its regions start with (e.g. KVM's vmcs12 0x11e57ed0).
    pub revision: u32,
    /// Size of the VMCS region (IA32_VMX_BASIC bits 44:32).
    pub size: u32,
    /// A released layout is an ABI: its lock file pins every member.
    pub released: bool,
    /// The layout this one evolved from under the same revision.
    pub previous: Option<String>,
    /// Clean-field tracking, for layouts that have it (the eVMCS).
    pub clean: Option<CleanFields>,
    /// Every member, in declaration order.
    pub members: Vec<Member>,
    /// Every declared member loaded. After a successful load all layouts are complete; while
    /// errors are being collected the compatibility pass skips an incomplete one, whose missing
    /// members would read as removed.
    pub complete: bool,
    /// Where its head values are written.
    pub pos: LayoutPos,
}

/// Where a layout's head values are written.
#[derive(Clone, Debug, Default)]
pub struct LayoutPos {
    /// Its name.
    pub name: Pos,
    /// Its revision.
    pub revision: Pos,
    /// Its size.
    pub size: Pos,
    /// Its `previous`, when it names one.
    pub previous: Option<Pos>,
}

impl Layout {
    /// Bytes from offset 0 to the end of the last member.
    pub fn used_bytes(&self) -> u32 {
        self.members.iter().map(Member::end).max().unwrap_or(0)
    }
    /// The members that store a VMCS field, with that field, in declaration order.
    pub fn mapped(&self) -> impl Iterator<Item = (&Member, FieldId)> {
        self.members.iter().filter_map(|m| m.field.map(|f| (m, f)))
    }
}

/// A member as an older layout (or a lock) pinned it: what compatibility compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// The member's name, which identifies it across layouts.
    pub name: String,
    /// Byte offset, as [`Member::offset`].
    pub offset: u32,
    /// Bytes, as [`Member::size`].
    pub size: u32,
    /// "u16", "u32", "u64", "natural" or "reserved".
    pub ty: String,
}

impl Pinned {
    /// The first byte past the member.
    pub fn end(&self) -> u32 {
        self.offset + self.size
    }
    /// Reserved space: bytes a newer layout may give to new members.
    pub fn reserved(&self) -> bool {
        self.ty == "reserved"
    }
    /// `m` as it stands now.
    pub fn of(m: &Member) -> Pinned {
        Pinned { name: m.name.clone(), offset: m.offset, size: m.size, ty: m.ty.as_str().to_string() }
    }
    /// Every member of `l`, by offset.
    pub fn of_layout(l: &Layout) -> Vec<Pinned> {
        let mut v: Vec<Pinned> = l.members.iter().map(Pinned::of).collect();
        v.sort_by_key(|p| p.offset);
        v
    }
}

/// The lock of a released layout (locks/NAME.lock.toml): its head and members as released.
#[derive(Clone, Debug)]
pub struct Lock {
    /// The layout it pins.
    pub layout: String,
    /// The revision identifier as released.
    pub revision: u32,
    /// The region size as released.
    pub size: u32,
    /// Every member as released.
    pub members: Vec<LockPin>,
    /// Where its head values are written.
    pub pos: LockPos,
}

/// One pinned member of a lock.
#[derive(Clone, Debug)]
pub struct LockPin {
    /// The member as released.
    pub pinned: Pinned,
    /// Where the pin is written (its name).
    pub pos: Pos,
}

/// Where a lock's head values are written.
#[derive(Clone, Debug, Default)]
pub struct LockPos {
    /// Its `layout`.
    pub layout: Pos,
    /// Its `revision`.
    pub revision: Pos,
    /// Its `size`.
    pub size: Pos,
}
