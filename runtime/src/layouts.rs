//! Software VMCS layouts: `vmcs12` (KVM's, byte for byte), its released predecessors and the
//! eVMCS, each a generated struct implementing [`Layout`], and how a raw encoding reaches its
//! member ([`Location`]).
//!
//! An L0 emulating L1's VMREAD and VMWRITE takes the encoding from L1's register: any `u64`.
//! [`VmcsRead::read_raw`] and [`VmcsWrite::write_raw`] on a layout look it up in O(1)
//! ([`crate::lookup::LookupTable`]) and refuse an encoding the layout does not map
//! ([`VmcsError::UnsupportedField`]), never panicking; L0
//! turns the refusal into VM-instruction error 12 for L1. The typed `read`/`write` take a
//! [`crate::fields`] handle.
//!
//! ```
//! use vmcs::{Vmcs12, VmcsRead, VmcsWrite, fields};
//!
//! let mut vmcs12 = Vmcs12::zeroed();
//! // L1: VMWRITE GUEST_RIP (0x681e), then VMREAD it and GUEST_CS_SELECTOR (0x0802).
//! vmcs12.write_raw(0x681e, 0x1000).unwrap();
//! assert_eq!(vmcs12.read_raw(0x681e), Ok(0x1000));
//! assert_eq!(vmcs12.read_raw(0x0802), Ok(0));
//! assert_eq!({ vmcs12.guest_rip }, 0x1000); // the member of KVM's struct vmcs12 (packed: copied out)
//! // A 16-bit field keeps the low 16 bits of what L1 writes (SDM: VMWRITE).
//! vmcs12.write_raw(fields::GUEST_CS_SELECTOR.raw(), 0x1_0008).unwrap();
//! assert_eq!(vmcs12.read(fields::GUEST_CS_SELECTOR), Ok(0x0008));
//! // An architectural field KVM's vmcs12 lacks (EPTP_INDEX), encodings no VMCS has: refused.
//! for encoding in [fields::EPTP_INDEX.raw(), 0x8000_0000_0000_681e, u64::MAX] {
//!     assert!(vmcs12.read_raw(encoding).is_err());
//!     assert!(vmcs12.write_raw(encoding, 1).is_err());
//! }
//! ```

use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::caps::Capabilities;
use crate::lookup;
pub use crate::lookup::{Location, MemberAccess};

pub use crate::generated::layouts::*;

/// A generated software VMCS layout.
///
/// # Safety
/// Implementors are `repr(C, packed)` structs of integers and byte arrays, exactly `USED_BYTES`
/// long, so that viewing them as bytes is sound, and `slot` returns 0 or a slot of a
/// [`crate::lookup::LookupTable`] built for `USED_BYTES`, so that its window is inside the struct.
/// Only the generator implements it.
pub unsafe trait Layout: Sized + Copy {
    /// The VMCS revision identifier of this layout (IA32_VMX_BASIC bits 30:0).
    const REVISION: u32;
    /// The VMCS region size (IA32_VMX_BASIC bits 44:32).
    const REGION_SIZE: usize;
    /// Bytes the struct occupies.
    const USED_BYTES: usize;
    /// Full encodings of every mapped field, in encoding order.
    const MAPPED: &'static [u32];

    /// Where `encoding` lives, for any `u64` (L1 chooses it); None if no field of this layout.
    fn locate(encoding: u64) -> Option<Location>;

    /// The lookup-table slot of `encoding` (0: no field), the whole lookup behind `read_raw` and
    /// `write_raw` (see [`crate::lookup::LookupTable`]).
    fn slot(encoding: u64) -> u64;

    /// The same slot, None for no field, by an early exit (a write branches on it anyway).
    fn slot_checked(encoding: u64) -> Option<u64>;

    /// The layout's bytes.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: see the trait's safety contract.
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, Self::USED_BYTES) }
    }

    /// The layout's bytes, mutably.
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: see the trait's safety contract; every bit pattern is a valid value.
        unsafe { core::slice::from_raw_parts_mut(self as *mut Self as *mut u8, Self::USED_BYTES) }
    }

    /// IA32_VMX_VMCS_ENUM of this layout: the highest index among its mapped fields that exist
    /// for `caps`, shifted left by 1. `Vmcs12::vmcs_enum` is what an L0 reports to L1 (what KVM's
    /// nested_vmx_calc_vmcs_enum_msr() computes): L1's VMCS has only vmcs12's fields. A processor
    /// reports [`crate::fields::vmcs_enum`], over every architectural field.
    fn vmcs_enum<C: Capabilities + ?Sized>(caps: &C) -> u64 {
        crate::fields::vmcs_enum_of(Self::MAPPED.iter().copied(), caps)
    }
}

/// Every software layout is a VMCS backend, with VMREAD/VMWRITE semantics by raw encoding:
/// 16/32-bit fields zero-extended on read and keeping the low bits of a write, a high access
/// reading or writing bits 63:32 of its 64-bit field, natural width 64 bits. L0 writes exit
/// information into a layout, so read-only fields are writable here.
impl<T: Layout> VmcsRead for T {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        let slot = Self::slot(encoding);
        // SAFETY: `slot` comes from this layout's table (the trait's contract) and the bytes are
        // this layout's.
        let value = unsafe { lookup::read_slot(self.as_bytes().as_ptr(), slot) };
        if slot != 0 { Ok(value) } else { Err(VmcsError::UnsupportedField(encoding)) }
    }
}

impl<T: Layout> VmcsWrite for T {
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        let Some(slot) = Self::slot_checked(encoding) else { return Err(VmcsError::UnsupportedField(encoding)) };
        // SAFETY: as for read_raw.
        unsafe { lookup::write_slot(self.as_bytes_mut().as_mut_ptr(), slot, value) };
        Ok(())
    }
}

/// Value masks by access, in `MemberAccess` order.
const fn mask(access: MemberAccess) -> u64 {
    match access {
        MemberAccess::U16 => 0xffff,
        MemberAccess::U32 | MemberAccess::High => 0xffff_ffff,
        MemberAccess::U64 => u64::MAX,
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
