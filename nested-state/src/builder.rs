//! Emitting blobs.

use core::fmt;

use crate::bytes::put;
use crate::{
    HEADER_SIZE, KVM_STATE_NESTED_FORMAT_VMX, KVM_STATE_NESTED_VMX_VMCS_SIZE, NestedState, OFF_DEADLINE, OFF_FLAGS,
    OFF_FORMAT, OFF_SIZE, OFF_SMM_FLAGS, OFF_VMCS12_PA, OFF_VMX_FLAGS, OFF_VMXON_PA, SHADOW_VMCS12_OFFSET,
    SIZE_WITH_SHADOW, SIZE_WITH_VMCS12, VMCS12_OFFSET, VmxHeader,
};

/// Why [`NestedStateBuilder::emit`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// The output buffer is smaller than the blob.
    BufferTooSmall {
        /// Bytes the blob needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "nested state needs {needed} bytes, the buffer has {available}")
            }
        }
    }
}

/// Builds a `kvm_nested_state` blob. Defaults: flags 0, format VMX, not in VMX operation (both
/// pointers [`crate::INVALID_GPA`]), no vmcs12.
///
/// An area `A` is anything that views as bytes: a typed vmcs12 (the runtime's `Vmcs12`), or a
/// byte slice; at most 4096 bytes of it are written. The natural size is 128, 4224 with a vmcs12,
/// 8320 with a shadow vmcs12 (a shadow without a vmcs12 gets an all-zero vmcs12 area).
/// [`NestedStateBuilder::declared_size`] overrides the `size` field; the blob is then that long (at
/// least 128 bytes), its areas cut or padded with zeros. Every byte the builder does not set (header
/// padding, the rest of each area) is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedStateBuilder<A> {
    flags: u16,
    format: u16,
    hdr: VmxHeader,
    vmcs12: Option<A>,
    shadow_vmcs12: Option<A>,
    declared_size: Option<u32>,
}

impl<A> Default for NestedStateBuilder<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> NestedStateBuilder<&'a [u8]> {
    /// A builder that re-emits `state`: its header fields, declared size and whatever it holds of
    /// each area. Byte for byte for every blob whose header padding is zero (bytes 26..28 and
    /// 40..128), e.g. anything emitted.
    pub fn from_state(state: &NestedState<'a>) -> Self {
        Self {
            flags: state.flags(),
            format: state.format(),
            hdr: state.vmx_header(),
            vmcs12: state.vmcs12_area(),
            shadow_vmcs12: state.shadow_vmcs12_area(),
            declared_size: Some(state.size()),
        }
    }
}

impl<A> NestedStateBuilder<A> {
    /// Not in VMX operation, no flags.
    pub const fn new() -> Self {
        Self {
            flags: 0,
            format: KVM_STATE_NESTED_FORMAT_VMX,
            hdr: VmxHeader::NOT_IN_VMX_OPERATION,
            vmcs12: None,
            shadow_vmcs12: None,
            declared_size: None,
        }
    }

    /// `flags`.
    pub const fn flags(mut self, flags: u16) -> Self {
        self.flags = flags;
        self
    }

    /// `format`.
    pub const fn format(mut self, format: u16) -> Self {
        self.format = format;
        self
    }

    /// The whole `hdr.vmx`.
    pub const fn vmx_header(mut self, hdr: VmxHeader) -> Self {
        self.hdr = hdr;
        self
    }

    /// `hdr.vmx.vmxon_pa`.
    pub const fn vmxon_pa(mut self, pa: u64) -> Self {
        self.hdr.vmxon_pa = pa;
        self
    }

    /// `hdr.vmx.vmcs12_pa`.
    pub const fn vmcs12_pa(mut self, pa: u64) -> Self {
        self.hdr.vmcs12_pa = pa;
        self
    }

    /// `hdr.vmx.smm.flags`.
    pub const fn smm_flags(mut self, flags: u16) -> Self {
        self.hdr.smm_flags = flags;
        self
    }

    /// `hdr.vmx.flags`.
    pub const fn vmx_flags(mut self, flags: u32) -> Self {
        self.hdr.vmx_flags = flags;
        self
    }

    /// `hdr.vmx.preemption_timer_deadline`.
    pub const fn preemption_timer_deadline(mut self, deadline: u64) -> Self {
        self.hdr.preemption_timer_deadline = deadline;
        self
    }

    /// The vmcs12 area (None: no area unless a shadow vmcs12 is set).
    pub fn vmcs12(mut self, vmcs12: Option<A>) -> Self {
        self.vmcs12 = vmcs12;
        self
    }

    /// The shadow vmcs12 area.
    pub fn shadow_vmcs12(mut self, shadow: Option<A>) -> Self {
        self.shadow_vmcs12 = shadow;
        self
    }

    /// Overrides the `size` field (None: the natural size).
    pub const fn declared_size(mut self, size: Option<u32>) -> Self {
        self.declared_size = size;
        self
    }

    /// The same blob with its areas converted, e.g. from borrowed bytes to typed copies.
    pub fn map_areas<B>(self, mut f: impl FnMut(A) -> B) -> NestedStateBuilder<B> {
        NestedStateBuilder {
            flags: self.flags,
            format: self.format,
            hdr: self.hdr,
            vmcs12: self.vmcs12.map(&mut f),
            shadow_vmcs12: self.shadow_vmcs12.map(&mut f),
            declared_size: self.declared_size,
        }
    }

    /// 128, 4224 or 8320 by the areas set.
    pub const fn natural_size(&self) -> usize {
        if self.shadow_vmcs12.is_some() {
            SIZE_WITH_SHADOW
        } else if self.vmcs12.is_some() {
            SIZE_WITH_VMCS12
        } else {
            HEADER_SIZE
        }
    }

    /// The value of the `size` field.
    pub fn size_field(&self) -> u32 {
        match self.declared_size {
            Some(s) => s,
            None => self.natural_size() as u32,
        }
    }

    /// Bytes [`Self::emit`] writes: the `size` field, at least 128.
    pub fn len(&self) -> usize {
        (self.size_field() as usize).max(HEADER_SIZE)
    }

    /// Never true: a blob has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl<A: AsRef<[u8]>> NestedStateBuilder<A> {
    /// Writes the blob to the start of `out` and returns its length ([`Self::len`]).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.len();
        let available = out.len();
        let Some(out) = out.get_mut(..len) else {
            return Err(EmitError::BufferTooSmall { needed: len, available });
        };
        out.fill(0);
        put(out, OFF_FLAGS, &self.flags.to_le_bytes());
        put(out, OFF_FORMAT, &self.format.to_le_bytes());
        put(out, OFF_SIZE, &self.size_field().to_le_bytes());
        put(out, OFF_VMXON_PA, &self.hdr.vmxon_pa.to_le_bytes());
        put(out, OFF_VMCS12_PA, &self.hdr.vmcs12_pa.to_le_bytes());
        put(out, OFF_SMM_FLAGS, &self.hdr.smm_flags.to_le_bytes());
        put(out, OFF_VMX_FLAGS, &self.hdr.vmx_flags.to_le_bytes());
        put(out, OFF_DEADLINE, &self.hdr.preemption_timer_deadline.to_le_bytes());
        for (area, off) in [(&self.vmcs12, VMCS12_OFFSET), (&self.shadow_vmcs12, SHADOW_VMCS12_OFFSET)] {
            if let Some(a) = area {
                let a = a.as_ref();
                put(out, off, a.get(..KVM_STATE_NESTED_VMX_VMCS_SIZE).unwrap_or(a));
            }
        }
        Ok(len)
    }
}

impl core::error::Error for EmitError {}
