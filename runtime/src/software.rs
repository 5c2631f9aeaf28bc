//! Software VMCS layouts (vmcs12): raw-encoding and typed access shared by every generated layout.

use crate::caps::Capabilities;
use crate::layout::{self, Location, UnsupportedField};

/// A generated software VMCS layout.
///
/// # Safety
/// Implementors are `repr(C, packed)` structs of integers and byte arrays, exactly `USED_BYTES`
/// long, so that viewing them as bytes is sound. Only the generator implements it.
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
    #[inline]
    fn read_any(&self, encoding: u64) -> Result<u64, UnsupportedField> {
        Self::locate(encoding).and_then(|loc| layout::read(self.as_bytes(), loc)).ok_or(UnsupportedField(encoding))
    }

    /// VMWRITE semantics by raw encoding: 16/32-bit fields keep the low bits of `value`, a high
    /// access writes the low 32 bits of `value` into bits 63:32.
    #[inline]
    fn write_any(&mut self, encoding: u64, value: u64) -> Result<(), UnsupportedField> {
        Self::locate(encoding)
            .and_then(|loc| layout::write(self.as_bytes_mut(), loc, value))
            .ok_or(UnsupportedField(encoding))
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
