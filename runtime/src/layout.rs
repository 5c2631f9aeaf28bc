//! Raw-encoding access to a software VMCS layout (vmcs12): the lookup L0 performs when it
//! emulates L1's VMREAD/VMWRITE, where the encoding is chosen by the guest.
//!
//! [`Location`] says where an encoding lives; [`crate::lookup::LookupTable`] finds it in O(1)
//! for any `u64`, and [`read()`]/[`write()`] access a location of any byte buffer (a layout, or the
//! fields of a VMCS region a layout lacks).

/// How a raw encoding accesses its member. (The discriminants are what [`crate::lookup`] computes
/// from a table slot.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Access {
    /// A 16-bit field: two bytes, zero-extended on read.
    U16 = 0,
    /// A 32-bit field: four bytes, zero-extended on read.
    U32 = 1,
    /// 64-bit and natural-width fields (natural width is 64 bits in a software VMCS).
    U64 = 3,
    /// High-access encoding of a 64-bit field: bits 63:32, stored at offset + 4.
    High = 2,
}

/// Where an encoding lives in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Byte offset of the accessed bytes in the layout.
    pub offset: u16,
    /// How the encoding accesses the bytes at `offset`.
    pub access: Access,
}

impl Location {
    /// How many bytes the access touches.
    pub const fn bytes(self) -> usize {
        match self.access {
            Access::U16 => 2,
            Access::U32 | Access::High => 4,
            Access::U64 => 8,
        }
    }
}

/// The encoding names no field of this layout (VM-instruction error 12 in VMREAD/VMWRITE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedField(
    /// The encoding, as the caller gave it.
    pub u64,
);

/// E.g. `encoding 0x2032 names no field of this layout`.
impl core::fmt::Display for UnsupportedField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "encoding {:#x} names no field of this layout", self.0)
    }
}

impl core::error::Error for UnsupportedField {}

/// Value masks by access, in `Access` order.
const fn mask(access: Access) -> u64 {
    match access {
        Access::U16 => 0xffff,
        Access::U32 | Access::High => 0xffff_ffff,
        Access::U64 => u64::MAX,
    }
}

/// The 8-byte window holding a location: its start and the bit shift of the location inside it.
/// None if the location does not fit in `len` bytes (only a hand-made Location can do that).
#[inline(always)]
fn window(len: usize, loc: Location) -> Option<(usize, u32)> {
    let o = loc.offset as usize;
    if len < 8 || o + loc.bytes() > len {
        return None;
    }
    // Near the end of the layout, read the last 8 bytes and shift instead of reading past it.
    let start = o.min(len - 8);
    Some((start, ((o - start) * 8) as u32))
}

/// Read a location from a layout's bytes with SDM width semantics (zero-extended): one 8-byte
/// load, a shift and a mask, whatever the width.
#[inline(always)]
pub fn read(bytes: &[u8], loc: Location) -> Option<u64> {
    let (start, shift) = window(bytes.len(), loc)?;
    let raw = u64::from_le_bytes(bytes.get(start..start + 8)?.try_into().ok()?);
    Some((raw >> shift) & mask(loc.access))
}

/// Write a location: 16- and 32-bit fields keep the low bits of `value`; a high access writes the
/// low 32 bits of `value` into bits 63:32 of its field. Bytes outside the location are kept.
#[inline(always)]
pub fn write(bytes: &mut [u8], loc: Location, value: u64) -> Option<()> {
    let (start, shift) = window(bytes.len(), loc)?;
    let chunk: &mut [u8; 8] = bytes.get_mut(start..start + 8)?.try_into().ok()?;
    let m = mask(loc.access) << shift;
    let raw = (u64::from_le_bytes(*chunk) & !m) | ((value << shift) & m);
    *chunk = raw.to_le_bytes();
    Some(())
}
