//! L1's current VMCS as L0 caches it: the 4 KiB VMCS region in L1 memory, whose first bytes are the
//! vmcs12 layout (KVM's ABI) and whose tail L0 keeps byte for byte.
//!
//! L1's VMREAD/VMWRITE accept exactly the fields that exist for L1's capabilities
//! ([`vmcs::fields::exists`]), as a processor does. vmcs12 has no member for a few architectural
//! fields every VMX processor has (the executive-VMCS pointer, SMBASE, the CR3-target values,
//! the I/O RCX/RSI/RDI/RIP exit fields; KVM's L1 gets error 12 for them), nor for fields of
//! features KVM does not emulate. L0 stores each of them in the region's tail, at
//! [`EXTENSION_OFFSET`] + 8 × (its rank among the fields vmcs12 does not map, in encoding order),
//! so they survive VMCLEAR, VMPTRLD and a byte copy of the region like every other field.
//!
//! Writes do not mask reserved bits of the guest AR-byte fields (KVM ANDs them with 0x1f0ff to
//! behave the same on every host; the SDM's VMWRITE stores the value, and Bochs does): a reserved
//! bit makes the VM entry fail as it would on the machine.

use vmcs::copy::Tracked;
use vmcs::fields::{FieldKind, FieldWidth};
use vmcs::layouts::{self, Location, MemberAccess};
use vmcs::{Layout, VmInstructionError, Vmcs12, VmcsError, VmcsRead, VmcsWrite, fields};

use crate::caps::L1Caps;
use vmcs::caps::{Cap, Capabilities};

/// The VMCS region size L1 sees in IA32_VMX_BASIC.
pub const REGION_SIZE: usize = Vmcs12::REGION_SIZE;
/// Where the fields vmcs12 does not map live in the region.
pub const EXTENSION_OFFSET: usize = 0x800;
/// Room for them: 8 bytes each.
pub const EXTENSION_SLOTS: usize = 64;
const TAIL: usize = REGION_SIZE - Vmcs12::USED_BYTES;

const _: () = assert!(Vmcs12::USED_BYTES <= EXTENSION_OFFSET && EXTENSION_OFFSET + 8 * EXTENSION_SLOTS <= REGION_SIZE);

/// The region offset holding `encoding` (full access), for a field vmcs12 does not map.
fn extension_offset(full: u32) -> Option<usize> {
    let mut rank = 0;
    for f in fields::ALL.iter() {
        if Vmcs12::locate(f.encoding as u64).is_some() {
            continue;
        }
        if f.encoding == full {
            return (rank < EXTENSION_SLOTS).then_some(EXTENSION_OFFSET + 8 * rank);
        }
        rank += 1;
    }
    None
}

/// Why L1's VMREAD/VMWRITE of a field failed (error 12 or 13).
pub type FieldError = VmInstructionError;
const UNSUPPORTED_COMPONENT: FieldError = VmInstructionError::UnsupportedComponent;
const READ_ONLY_COMPONENT: FieldError = VmInstructionError::VmwriteReadOnlyComponent;

/// The cached region of L1's current VMCS.
#[derive(Clone)]
pub struct Current {
    /// The vmcs12 bytes, with the dirty groups L1's VMWRITEs mark (for the copy routines).
    pub vmcs12: Tracked<Vmcs12>,
    /// The rest of the region, kept byte for byte (the extension fields live here).
    tail: [u8; TAIL],
}

impl Current {
    /// A region read from L1 memory (VMPTRLD): every dirty group set.
    pub fn from_region(region: &[u8; REGION_SIZE]) -> Self {
        let mut v = Vmcs12::zeroed();
        v.as_bytes_mut().copy_from_slice(&region[..Vmcs12::USED_BYTES]);
        let mut tail = [0; TAIL];
        tail.copy_from_slice(&region[Vmcs12::USED_BYTES..]);
        Current { vmcs12: Tracked::new(v), tail }
    }

    /// The region's bytes as L1 memory must hold them (VMCLEAR).
    pub fn to_region(&self, out: &mut [u8; REGION_SIZE]) {
        out[..Vmcs12::USED_BYTES].copy_from_slice(self.vmcs12.inner().as_bytes());
        out[Vmcs12::USED_BYTES..].copy_from_slice(&self.tail);
    }

    /// Where `encoding` lives if it names a field of L1's VMCS (any `u64`; L1 chooses it).
    fn locate(encoding: u64, caps: &L1Caps) -> Option<Target> {
        if !fields::exists(encoding, caps.caps()) {
            return None;
        }
        Self::place(encoding)
    }

    /// Where an architectural field lives in the region, whatever the capabilities.
    fn place(encoding: u64) -> Option<Target> {
        if let Some(loc) = Vmcs12::locate(encoding) {
            return Some(Target::Vmcs12(loc));
        }
        let full = (encoding & !1) as u32;
        let info = fields::ALL.iter().find(|f| f.encoding == full)?;
        let offset = extension_offset(full)? - Vmcs12::USED_BYTES;
        let access = access(info.width, encoding);
        let offset = offset + if access == MemberAccess::High { 4 } else { 0 };
        Some(Target::Tail(Location { offset: offset as u16, access }))
    }

    /// L1's VMREAD: the value with VMREAD width semantics, or error 12.
    pub fn l1_read(&self, encoding: u64, caps: &L1Caps) -> Result<u64, FieldError> {
        match Self::locate(encoding, caps).ok_or(UNSUPPORTED_COMPONENT)? {
            Target::Vmcs12(loc) => layouts::read(self.vmcs12.inner().as_bytes(), loc),
            Target::Tail(loc) => layouts::read(&self.tail, loc),
        }
        .ok_or(UNSUPPORTED_COMPONENT)
    }

    /// L1's VMWRITE: error 12 for a field that does not exist, then error 13 for a read-only
    /// (VM-exit information) field unless L1's IA32_VMX_MISC bit 29 allows it.
    pub fn l1_write(&mut self, encoding: u64, value: u64, caps: &L1Caps) -> Result<(), FieldError> {
        let target = Self::locate(encoding, caps).ok_or(UNSUPPORTED_COMPONENT)?;
        if field_kind(encoding) == FieldKind::ReadOnly && !caps.caps().has(Cap::MiscVmwriteAnyField) {
            return Err(READ_ONLY_COMPONENT);
        }
        match target {
            // Through the tracker: the written field's dirty group is marked.
            Target::Vmcs12(_) => self.vmcs12.write_raw(encoding, value).map_err(|_| UNSUPPORTED_COMPONENT),
            Target::Tail(loc) => layouts::write(&mut self.tail, loc, value).ok_or(UNSUPPORTED_COMPONENT),
        }
    }

    /// A vmcs12 member by encoding, for L0's own use (no existence check, no dirtying): 0 when the
    /// layout has no such field.
    pub fn get(&self, encoding: u64) -> u64 {
        self.vmcs12.inner().read_raw(encoding).unwrap_or(0)
    }

    /// L0's own write of a vmcs12 field (exit information, launch state): marks nothing dirty.
    pub fn set(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.vmcs12.inner_mut().write_raw(encoding, value)
    }
}

/// The region as a VMCS backend for L0's own reads (the VM-entry checks): every architectural field,
/// whatever L1's capabilities (the checks read only those that exist for them).
impl VmcsRead for Current {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        match Self::place(encoding) {
            Some(Target::Vmcs12(loc)) => layouts::read(self.vmcs12.inner().as_bytes(), loc),
            Some(Target::Tail(loc)) => layouts::read(&self.tail, loc),
            None => None,
        }
        .ok_or(VmcsError::UnsupportedField(encoding))
    }
}

fn access(width: FieldWidth, encoding: u64) -> MemberAccess {
    match (width, encoding & 1 == 1) {
        (FieldWidth::W16, _) => MemberAccess::U16,
        (FieldWidth::W32, _) => MemberAccess::U32,
        (_, false) => MemberAccess::U64,
        (_, true) => MemberAccess::High,
    }
}

#[derive(Clone, Copy)]
enum Target {
    Vmcs12(Location),
    Tail(Location),
}

/// The kind of a field from its encoding (bits 11:10), as VMWRITE decides read-only-ness.
fn field_kind(encoding: u64) -> FieldKind {
    match encoding >> 10 & 3 {
        0 => FieldKind::Control,
        1 => FieldKind::ReadOnly,
        2 => FieldKind::GuestState,
        _ => FieldKind::HostState,
    }
}

/// How many architectural fields vmcs12 does not map (all of them must fit the extension).
pub fn unmapped_fields() -> usize {
    fields::ALL.iter().filter(|f| Vmcs12::locate(f.encoding as u64).is_none()).count()
}
