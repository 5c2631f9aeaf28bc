//! The encoding -> field table of a software VMCS layout: what L0 runs on every VMREAD/VMWRITE it
//! emulates for L1, with the encoding chosen by the guest. O(1), total over every `u64`, never a
//! panic, and never an out-of-bounds load, even speculatively.
//!
//! The table index keeps encoding bits 0 (access type: high half) and `INDEX_BITS:1` (the field
//! index) in place and brings bits 14:10 (width, bit 12, type) down next to them: two masks, a
//! shift and an OR, masked into the table whatever the input. An encoding with any other bit set
//! (bits 63:15, the index bits above `INDEX_BITS`) reads an empty slot instead, by a conditional
//! move, not a branch (a write, which branches on the answer anyway, exits early instead). Every
//! valid encoding, high halves included, has a slot of its own, so neither the access type nor the
//! width needs a test. With `INDEX_BITS` = 5 (vmcs12) the table has 2048 slots, of which the valid
//! encodings touch 184 (the half of bit 12 is never read).
//!
//! Each encoding has two slots, one per use, both 0 for no field. Its location slot (`u32`) is the
//! [`Location`] as it sits in a register: the offset (bits 15:0) and the [`MemberAccess`] (bits 17:16),
//! with bit 31 set. Its window slot (`u64`) is a whole read: the offset of the 8-byte window to
//! load (bits 11:0), how many bytes before the field the window starts (bits 14:12; not 0 only in
//! the last 7 bytes of a layout, where the window must stop at the end), bit 15 set, and above
//! bit 15 the value mask (`slot | 0xffff` is the mask): one load, an OR and an AND.

/// How a raw encoding accesses its member. (The discriminants are what this table computes from
/// a slot.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MemberAccess {
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
    pub access: MemberAccess,
}

impl Location {
    /// How many bytes the access touches.
    pub const fn bytes(self) -> usize {
        match self.access {
            MemberAccess::U16 => 2,
            MemberAccess::U32 | MemberAccess::High => 4,
            MemberAccess::U64 => 8,
        }
    }
}

/// See the module documentation.
pub struct LookupTable<const LEN: usize, const INDEX_BITS: u32> {
    locations: [u32; LEN],
    windows: [u64; LEN],
}

/// Bytes the window starts before the field (not 0 only in the last 7 bytes of a layout).
const BACK: u64 = 7 << 12;

impl<const LEN: usize, const INDEX_BITS: u32> LookupTable<LEN, INDEX_BITS> {
    /// Encoding bits a mapped field may set: width, bit 12 and type (14:10; valid encodings keep bit
    /// 12 clear, so its half of the table stays empty), the low INDEX_BITS index bits, the access type.
    pub const VALID: u64 = 0x7c00 | ((1u64 << (INDEX_BITS + 1)) - 1);

    /// The slot every invalid encoding reads: the one of encoding 0x1000 (bit 12), always empty.
    const EMPTY: usize = Self::index(0x1000);

    /// Build the table at compile time from (full encoding, member offset) pairs of a layout of
    /// `used_bytes` bytes; the high half of each 64-bit field is added. A pair that does not fit,
    /// two fields in one slot, or a field outside the layout stops the build: every window of the
    /// table lies inside the layout, which the reads rely on.
    pub const fn build(entries: &[(u32, u16)], used_bytes: usize) -> Self {
        assert!(LEN == 64 << INDEX_BITS, "LEN must be 64 << INDEX_BITS");
        assert!(used_bytes >= 8 && used_bytes <= 0x1000, "the layout must hold an 8-byte window");
        let mut t = LookupTable { locations: [0; LEN], windows: [0; LEN] };
        let mut i = 0;
        while i < entries.len() {
            let (encoding, offset) = entries[i];
            assert!(encoding as u64 & !Self::VALID == 0 && encoding & 0x1001 == 0, "encoding does not fit the table");
            let access = match (encoding >> 13) & 3 {
                0 => MemberAccess::U16,
                2 => MemberAccess::U32,
                _ => MemberAccess::U64,
            };
            t.put(encoding as u64, offset as usize, access, used_bytes);
            if (encoding >> 13) & 3 == 1 {
                t.put(encoding as u64 | 1, offset as usize + 4, MemberAccess::High, used_bytes);
            }
            i += 1;
        }
        t
    }

    const fn put(&mut self, encoding: u64, offset: usize, access: MemberAccess, used: usize) {
        let bytes = Location { offset: 0, access }.bytes();
        assert!(offset + bytes <= used, "a field lies outside the layout");
        let back = (offset + 8).saturating_sub(used);
        let index = Self::index(encoding);
        assert!(self.locations[index] == 0, "two fields share a table slot");
        self.locations[index] = 1 << 31 | (access as u32) << 16 | offset as u32;
        let mask = u64::MAX >> (64 - 8 * bytes);
        self.windows[index] = (mask & !0xffff) | 1 << 15 | (back as u64) << 12 | (offset - back) as u64;
    }

    #[inline(always)]
    const fn index(encoding: u64) -> usize {
        let low = encoding & ((1 << (INDEX_BITS + 1)) - 1);
        let high = (encoding >> (10 - (INDEX_BITS + 1))) & (0x1f << (INDEX_BITS + 1));
        (low | high) as usize & (LEN - 1)
    }

    /// The table index of `encoding`: an empty slot unless only the bits a field may set are set.
    #[inline(always)]
    fn checked_index(encoding: u64) -> usize {
        let index = if encoding & !Self::VALID == 0 { Self::index(encoding) } else { Self::EMPTY };
        index & (LEN - 1)
    }

    /// The window slot of `encoding`, 0 if it names no field: what [`read_slot`] and
    /// [`write_slot`] take.
    #[inline(always)]
    pub fn slot(&self, encoding: u64) -> u64 {
        self.windows[Self::checked_index(encoding)]
    }

    /// [`LookupTable::slot`] as an early exit, for a caller that branches on the answer anyway
    /// (a write): an encoding with a bit no field may set returns before the table is read.
    #[inline(always)]
    pub fn slot_checked(&self, encoding: u64) -> Option<u64> {
        if encoding & !Self::VALID != 0 {
            return None;
        }
        let slot = self.windows[Self::index(encoding)];
        if slot != 0 { Some(slot) } else { None }
    }

    /// Where `encoding` lives.
    #[inline(always)]
    pub fn lookup(&self, encoding: u64) -> Option<Location> {
        let slot = self.locations[Self::checked_index(encoding)];
        let access = match (slot >> 16) & 3 {
            0 => MemberAccess::U16,
            1 => MemberAccess::U32,
            2 => MemberAccess::High,
            _ => MemberAccess::U64,
        };
        if slot != 0 { Some(Location { offset: slot as u16, access }) } else { None }
    }
}

/// Read the field of a window slot from a layout's bytes: one 8-byte load at the field and a mask
/// (a field in the last 7 bytes of the layout is read from an earlier window, off the hot path).
/// Slot 0 reads the first 8 bytes.
///
/// # Safety
/// `base` points to the bytes of the layout whose [`LookupTable`] produced `slot` (or `slot` is 0):
/// `build` placed each window inside that layout, and every layout holds at least 8 bytes.
#[inline(always)]
pub unsafe fn read_slot(base: *const u8, slot: u64) -> u64 {
    // SAFETY: the caller's promise; the layout may be packed, hence the unaligned load.
    let raw = unsafe { base.add((slot & 0xfff) as usize).cast::<u64>().read_unaligned() };
    if slot & BACK != 0 {
        return back(raw, slot);
    }
    raw & (slot | 0xffff)
}

#[cold]
#[inline(never)]
fn back(raw: u64, slot: u64) -> u64 {
    (raw >> ((slot & BACK) >> 9)) & (slot | 0xffff)
}

/// Write the field of a nonzero window slot: 16- and 32-bit fields keep the low bits of `value`, a
/// high half the low 32 bits into bits 63:32. The other bytes of the window are kept.
///
/// # Safety
/// As for [`read_slot`], with `base` valid for writes.
#[inline(always)]
pub unsafe fn write_slot(base: *mut u8, slot: u64, value: u64) {
    // SAFETY: the caller's promise; the layout may be packed, hence the unaligned accesses.
    let p = unsafe { base.add((slot & 0xfff) as usize).cast::<u64>() };
    if slot & BACK != 0 {
        // SAFETY: as above.
        return unsafe { write_back(p, slot, value) };
    }
    let mask = slot | 0xffff;
    // SAFETY: as above.
    unsafe { p.write_unaligned((p.read_unaligned() & !mask) | (value & mask)) };
}

/// # Safety
/// As for [`write_slot`], with `p` its window.
#[cold]
#[inline(never)]
unsafe fn write_back(p: *mut u64, slot: u64, value: u64) {
    let shift = (slot & BACK) >> 9;
    let mask = (slot | 0xffff) << shift;
    // SAFETY: the caller's promise.
    unsafe { p.write_unaligned((p.read_unaligned() & !mask) | ((value << shift) & mask)) };
}
