//! Raw-encoding access to a software VMCS layout (vmcs12): the lookup L0 performs when it
//! emulates L1's VMREAD/VMWRITE, where the encoding is chosen by the guest.
//!
//! The lookup is O(1), total over every `u64` input, never panics, and never indexes out of
//! bounds, even speculatively: the table index is built by masking the encoding's bits, so it is
//! inside the table whatever the validity branch predicts (KVM clamps with array_index_nospec for
//! the same reason).

/// How a raw encoding accesses its member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    U16,
    U32,
    /// 64-bit and natural-width fields (natural width is 64 bits in a software VMCS).
    U64,
    /// High-access encoding of a 64-bit field: bits 63:32, stored at offset + 4.
    High,
}

/// Where an encoding lives in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Byte offset of the accessed bytes in the layout.
    pub offset: u16,
    pub access: Access,
}

impl Location {
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
pub struct UnsupportedField(pub u64);

/// E.g. `encoding 0x2032 names no field of this layout`.
impl core::fmt::Display for UnsupportedField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "encoding {:#x} names no field of this layout", self.0)
    }
}

impl core::error::Error for UnsupportedField {}

/// A dense table over (width, type, index). A slot holds the member offset (bits 11:0) and the
/// access size (bits 13:12: 1 = 16-bit, 2 = 32-bit, 3 = 64-bit); 0 means no field.
/// `INDEX_BITS` is the number of index bits the layout needs (its largest mapped index fits).
pub struct LookupTable<const LEN: usize, const INDEX_BITS: u32> {
    pub slots: [u16; LEN],
}

/// Access of a slot's size code, and of a high access (code 4 | 3).
const ACCESS: [Access; 8] =
    [Access::U16, Access::U16, Access::U32, Access::U64, Access::U16, Access::U16, Access::U16, Access::High];

impl<const LEN: usize, const INDEX_BITS: u32> LookupTable<LEN, INDEX_BITS> {
    /// Encoding bits that may be set: width (14:13), type (11:10), the low INDEX_BITS index bits, access (0).
    const VALID: u64 = 0x6C01 | (((1u64 << INDEX_BITS) - 1) << 1);

    /// Build the table at compile time from (full encoding, member offset) pairs. A pair that does
    /// not fit, or two fields in one slot, stops the build.
    pub const fn build(entries: &[(u32, u16)]) -> Self {
        assert!(LEN == 16 << INDEX_BITS, "LEN must be 16 << INDEX_BITS");
        let mut slots = [0u16; LEN];
        let mut i = 0;
        while i < entries.len() {
            let (encoding, offset) = entries[i];
            assert!(encoding as u64 & !Self::VALID == 0 && encoding & 1 == 0, "encoding does not fit the table");
            assert!(offset < 0x1000, "offset does not fit a slot");
            let size = match (encoding >> 13) & 3 {
                0 => 1,
                2 => 2,
                _ => 3,
            };
            let index = Self::slot_index(encoding as u64);
            assert!(slots[index] == 0, "two fields share a table slot");
            slots[index] = offset | size << 12;
            i += 1;
        }
        LookupTable { slots }
    }

    #[inline(always)]
    const fn slot_index(encoding: u64) -> usize {
        let index = (((encoding >> 13) & 3) << (INDEX_BITS + 2))
            | (((encoding >> 10) & 3) << INDEX_BITS)
            | ((encoding >> 1) & ((1 << INDEX_BITS) - 1));
        index as usize & (LEN - 1)
    }

    /// Where `encoding` lives. Branch-free but for the final validity test: L1 picks encodings at
    /// random as far as the predictor is concerned.
    #[inline(always)]
    pub fn lookup(&self, encoding: u64) -> Option<Location> {
        // In bounds by construction: the index is masked to LEN - 1 whatever the encoding.
        let slot = self.slots[Self::slot_index(encoding)];
        let size = (slot >> 12) as usize;
        let high = (encoding & 1) as usize;
        // A high access is valid only for 64-bit fields (width bits 14:13 = 01), not natural width.
        let valid = (encoding & !Self::VALID == 0) & (size != 0) & ((high == 0) | ((encoding >> 13) & 3 == 1));
        let offset = (slot & 0xfff) + 4 * high as u16;
        let access = ACCESS[(size | high << 2) & 7];
        if valid { Some(Location { offset, access }) } else { None }
    }
}

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
