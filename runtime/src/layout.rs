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

/// A dense table over (width, type, index): entry = member offset + 1, 0 = no field.
/// `INDEX_BITS` is the number of index bits the layout needs (its largest mapped index fits).
pub struct LookupTable<const LEN: usize, const INDEX_BITS: u32> {
    pub slots: [u16; LEN],
}

impl<const LEN: usize, const INDEX_BITS: u32> LookupTable<LEN, INDEX_BITS> {
    /// Build the table at compile time from (full encoding, member offset) pairs. A pair that does
    /// not fit, or two fields in one slot, stops the build.
    pub const fn build(entries: &[(u32, u16)]) -> Self {
        assert!(LEN == 16 << INDEX_BITS, "LEN must be 16 << INDEX_BITS");
        let mut slots = [0u16; LEN];
        let mut i = 0;
        while i < entries.len() {
            let (encoding, offset) = entries[i];
            assert!(encoding as u64 & !Self::VALID == 0 && encoding & 1 == 0, "encoding does not fit the table");
            let index = Self::slot_index(encoding as u64);
            assert!(slots[index] == 0, "two fields share a table slot");
            slots[index] = offset + 1;
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

    /// Encoding bits that may be set: width (14:13), type (11:10), the low INDEX_BITS index bits, access (0).
    const VALID: u64 = 0x6C01 | (((1u64 << INDEX_BITS) - 1) << 1);

    #[inline(always)]
    pub fn lookup(&self, encoding: u64) -> Option<Location> {
        // In bounds by construction: the index is masked to LEN - 1 whatever the encoding.
        let slot = self.slots[Self::slot_index(encoding)];
        if encoding & !Self::VALID != 0 || slot == 0 {
            return None;
        }
        let offset = slot - 1;
        let high = encoding & 1 != 0;
        let access = match (encoding >> 13) & 3 {
            0 if !high => Access::U16,
            2 if !high => Access::U32,
            3 if !high => Access::U64,
            1 if !high => Access::U64,
            1 => return Some(Location { offset: offset + 4, access: Access::High }),
            _ => return None,
        };
        Some(Location { offset, access })
    }
}

/// Read a location from a layout's bytes with SDM width semantics (zero-extended).
#[inline(always)]
pub fn read(bytes: &[u8], loc: Location) -> Option<u64> {
    let o = loc.offset as usize;
    Some(match loc.access {
        Access::U16 => u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?) as u64,
        Access::U32 | Access::High => u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?) as u64,
        Access::U64 => u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?),
    })
}

/// Write a location: 16- and 32-bit fields keep the low bits of `value`; a high access writes the
/// low 32 bits of `value` into bits 63:32 of its field.
#[inline(always)]
pub fn write(bytes: &mut [u8], loc: Location, value: u64) -> Option<()> {
    let o = loc.offset as usize;
    match loc.access {
        Access::U16 => bytes.get_mut(o..o + 2)?.copy_from_slice(&(value as u16).to_le_bytes()),
        Access::U32 | Access::High => bytes.get_mut(o..o + 4)?.copy_from_slice(&(value as u32).to_le_bytes()),
        Access::U64 => bytes.get_mut(o..o + 8)?.copy_from_slice(&value.to_le_bytes()),
    }
    Some(())
}
