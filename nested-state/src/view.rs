//! A view over a blob's header and areas.

use crate::bytes::{read_u16, read_u32, read_u64};
use crate::{
    HEADER_SIZE, KVM_STATE_NESTED_VMX_VMCS_SIZE, NestedStateError, OFF_DEADLINE, OFF_FLAGS, OFF_FORMAT, OFF_SIZE,
    OFF_SMM_FLAGS, OFF_VMCS12_PA, OFF_VMX_FLAGS, OFF_VMXON_PA, SHADOW_VMCS12_OFFSET, VMCS12_OFFSET, Vmcs12Shape,
    VmxHeader,
};

/// A blob's first `size` bytes (or fewer, when [`read`] got a truncated blob), described by a
/// vmcs12 shape. [`check`](crate::check) returns it only for blobs KVM would accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedState<'a> {
    bytes: &'a [u8],
    shape: Vmcs12Shape,
}

/// Reads a blob without applying KVM's rules, to show what it holds. Fails only when the 128-byte
/// header is missing ([`NestedStateError::HeaderTruncated`]). The view ends at the declared `size`
/// or at the end of `blob`, whichever comes first; an area that does not fit reads as None.
pub fn read(blob: &[u8], shape: Vmcs12Shape) -> Result<NestedState<'_>, NestedStateError> {
    if blob.len() < HEADER_SIZE {
        return Err(NestedStateError::HeaderTruncated { len: blob.len() });
    }
    let size = (read_u32(blob, OFF_SIZE) as usize).max(HEADER_SIZE);
    Ok(NestedState::new(blob.get(..size).unwrap_or(blob), shape))
}

impl<'a> NestedState<'a> {
    pub(crate) fn new(bytes: &'a [u8], shape: Vmcs12Shape) -> Self {
        Self { bytes, shape }
    }

    /// The bytes viewed: the blob's first `size()` bytes once checked.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The vmcs12 shape the view was made with.
    pub fn shape(&self) -> Vmcs12Shape {
        self.shape
    }

    /// `flags` (`KVM_STATE_NESTED_*`).
    pub fn flags(&self) -> u16 {
        read_u16(self.bytes, OFF_FLAGS)
    }

    /// `format` (always [`crate::KVM_STATE_NESTED_FORMAT_VMX`] once checked).
    pub fn format(&self) -> u16 {
        read_u16(self.bytes, OFF_FORMAT)
    }

    /// `size`: the declared total size.
    pub fn size(&self) -> u32 {
        read_u32(self.bytes, OFF_SIZE)
    }

    /// `hdr.vmx`.
    pub fn vmx_header(&self) -> VmxHeader {
        VmxHeader {
            vmxon_pa: read_u64(self.bytes, OFF_VMXON_PA),
            vmcs12_pa: read_u64(self.bytes, OFF_VMCS12_PA),
            smm_flags: read_u16(self.bytes, OFF_SMM_FLAGS),
            vmx_flags: read_u32(self.bytes, OFF_VMX_FLAGS),
            preemption_timer_deadline: read_u64(self.bytes, OFF_DEADLINE),
        }
    }

    /// The vmcs12 (its first `sizeof(struct vmcs12)` bytes) when the view covers it (a declared
    /// size of at least 128 + 998 once checked). Present even when KVM would ignore it (not in VMX
    /// operation).
    pub fn vmcs12(&self) -> Option<&'a [u8]> {
        self.meaningful(VMCS12_OFFSET)
    }

    /// The shadow vmcs12 (its first `sizeof(struct vmcs12)` bytes) when the view covers it (a
    /// declared size of at least 4224 + 998 once checked).
    pub fn shadow_vmcs12(&self) -> Option<&'a [u8]> {
        self.meaningful(SHADOW_VMCS12_OFFSET)
    }

    /// Whatever the view holds of the 4096-byte vmcs12 area, or None when it holds none of it.
    pub fn vmcs12_area(&self) -> Option<&'a [u8]> {
        self.area(VMCS12_OFFSET)
    }

    /// Whatever the view holds of the 4096-byte shadow vmcs12 area, or None when it holds none of it.
    pub fn shadow_vmcs12_area(&self) -> Option<&'a [u8]> {
        self.area(SHADOW_VMCS12_OFFSET)
    }

    fn meaningful(&self, off: usize) -> Option<&'a [u8]> {
        self.bytes.get(off..off.checked_add(self.shape.struct_size)?)
    }

    fn area(&self, off: usize) -> Option<&'a [u8]> {
        let end = off.saturating_add(KVM_STATE_NESTED_VMX_VMCS_SIZE).min(self.bytes.len());
        self.bytes.get(off..end).filter(|a| !a.is_empty())
    }
}
