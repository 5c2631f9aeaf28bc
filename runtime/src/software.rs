//! Software VMCS layouts (vmcs12): raw-encoding and typed access shared by every generated layout.
//!
//! An L0 emulating L1's VMREAD and VMWRITE takes the encoding from L1's register: any `u64`.
//! [`SoftwareVmcs::read_any`] and [`SoftwareVmcs::write_any`] look it up in O(1) and refuse an
//! encoding the layout does not map, never panicking; L0 turns the refusal into
//! VM-instruction error 12 for L1.
//!
//! ```
//! use vmcs::{SoftwareVmcs, Vmcs12, fields};
//!
//! let mut vmcs12 = Vmcs12::zeroed();
//! // L1: VMWRITE GUEST_RIP (0x681e), then VMREAD it and GUEST_CS_SELECTOR (0x0802).
//! vmcs12.write_any(0x681e, 0x1000).unwrap();
//! assert_eq!(vmcs12.read_any(0x681e), Ok(0x1000));
//! assert_eq!(vmcs12.read_any(0x0802), Ok(0));
//! assert_eq!({ vmcs12.guest_rip }, 0x1000); // the member of KVM's struct vmcs12 (packed: copied out)
//! // A 16-bit field keeps the low 16 bits of what L1 writes (SDM: VMWRITE).
//! vmcs12.write_any(fields::GUEST_CS_SELECTOR.raw(), 0x1_0008).unwrap();
//! assert_eq!(vmcs12.read_any(0x0802), Ok(0x0008));
//! // An architectural field KVM's vmcs12 lacks (EPTP_INDEX), encodings no VMCS has: refused.
//! for encoding in [fields::EPTP_INDEX.raw(), 0x8000_0000_0000_681e, u64::MAX] {
//!     assert!(vmcs12.read_any(encoding).is_err());
//!     assert!(vmcs12.write_any(encoding, 1).is_err());
//! }
//! ```

use crate::caps::Capabilities;
use crate::layout::{Location, UnsupportedField};
use crate::lookup;

/// A generated software VMCS layout.
///
/// # Safety
/// Implementors are `repr(C, packed)` structs of integers and byte arrays, exactly `USED_BYTES`
/// long, so that viewing them as bytes is sound, and `slot` returns 0 or a slot of a
/// [`crate::lookup::LookupTable`] built for `USED_BYTES`, so that its window is inside the struct.
/// Only the generator implements it.
pub unsafe trait SoftwareVmcs: Sized + Copy {
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

    /// The lookup-table slot of `encoding` (0: no field), the whole lookup behind
    /// [`SoftwareVmcs::read_any`] and [`SoftwareVmcs::write_any`] (see [`crate::lookup::LookupTable`]).
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

    /// VMREAD semantics by raw encoding: 16/32-bit fields zero-extended, a high access returns
    /// bits 63:32 of its 64-bit field, natural width is 64 bits.
    #[inline(always)]
    fn read_any(&self, encoding: u64) -> Result<u64, UnsupportedField> {
        let slot = Self::slot(encoding);
        // SAFETY: `slot` comes from this layout's table (the trait's contract) and the bytes are
        // this layout's.
        let value = unsafe { lookup::read_slot(self.as_bytes().as_ptr(), slot) };
        if slot != 0 { Ok(value) } else { Err(UnsupportedField(encoding)) }
    }

    /// VMWRITE semantics by raw encoding: 16/32-bit fields keep the low bits of `value`, a high
    /// access writes the low 32 bits of `value` into bits 63:32.
    #[inline(always)]
    fn write_any(&mut self, encoding: u64, value: u64) -> Result<(), UnsupportedField> {
        let Some(slot) = Self::slot_checked(encoding) else { return Err(UnsupportedField(encoding)) };
        // SAFETY: as for read_any.
        unsafe { lookup::write_slot(self.as_bytes_mut().as_mut_ptr(), slot, value) };
        Ok(())
    }

    /// VMCS_ENUM for this layout: the highest index among its mapped fields that exist for `caps`
    /// (what KVM's nested_vmx_calc_vmcs_enum_msr() computes for vmcs12).
    fn vmcs_enum<C: Capabilities + ?Sized>(caps: &C) -> u64 {
        crate::field::vmcs_enum(Self::MAPPED.iter().copied(), caps)
    }
}

/// Every software layout is a VMCS backend; L0 writes exit information into it, so read-only
/// fields are writable here.
impl<T: SoftwareVmcs> crate::access::VmcsRead for T {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, crate::access::VmcsError> {
        self.read_any(encoding).map_err(|e| crate::access::VmcsError::UnsupportedField(e.0))
    }
}

impl<T: SoftwareVmcs> crate::access::VmcsWrite for T {
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), crate::access::VmcsError> {
        self.write_any(encoding, value).map_err(|e| crate::access::VmcsError::UnsupportedField(e.0))
    }
}
