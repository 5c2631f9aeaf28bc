//! One VMCS access abstraction for every backend: a software layout such as vmcs12, the software
//! VMCS model with hardware semantics ([`crate::soft::SoftVmcs`]), and the real VMCS through
//! VMREAD/VMWRITE. Generated copy routines are generic over it.

use core::fmt;

use crate::fields::{Access, Field, Width, Writable};

pub use crate::generated::instruction_errors::VmInstructionError;

/// Why a VMCS access failed. The numbered variants are VM-instruction errors (SDM Vol. 3C 31.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmcsError {
    /// VMREAD/VMWRITE from/to an unsupported VMCS component (VM-instruction error 12).
    UnsupportedField(u64),
    /// VMWRITE to a read-only VMCS component (VM-instruction error 13).
    ReadOnlyField(u64),
    /// No current VMCS (VMfailInvalid).
    NoCurrentVmcs,
    /// Another VMfailValid, with its VM-instruction error number.
    InstructionError(u32),
}

impl VmcsError {
    /// The VM-instruction error number a processor reports for this failure, if any.
    pub const fn instruction_error(self) -> Option<u32> {
        match self {
            VmcsError::UnsupportedField(_) => Some(VmInstructionError::UnsupportedComponent.number()),
            VmcsError::ReadOnlyField(_) => Some(VmInstructionError::VmwriteReadOnlyComponent.number()),
            VmcsError::NoCurrentVmcs => None,
            VmcsError::InstructionError(n) => Some(n),
        }
    }
}

/// E.g. `VM-instruction error 12: VMREAD/VMWRITE from/to unsupported VMCS component (encoding 0x2032)`.
impl fmt::Display for VmcsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmcsError::UnsupportedField(enc) => {
                write!(f, "{} (encoding {enc:#x})", VmInstructionError::UnsupportedComponent)
            }
            VmcsError::ReadOnlyField(enc) => {
                write!(f, "{} (encoding {enc:#x})", VmInstructionError::VmwriteReadOnlyComponent)
            }
            VmcsError::NoCurrentVmcs => f.write_str("no current VMCS (VMfailInvalid)"),
            VmcsError::InstructionError(n) => write!(f, "{}", VmInstructionError::from_number(n)),
        }
    }
}

impl core::error::Error for VmcsError {}

/// Reading a VMCS: raw by encoding with VMREAD semantics, or typed by field.
pub trait VmcsRead {
    /// VMREAD semantics: the value zero-extended from the field's width; a high-access encoding
    /// returns bits 63:32 of its 64-bit field.
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError>;

    /// Typed read.
    #[inline(always)]
    fn read<W: Width, A: Access>(&self, field: Field<W, A>) -> Result<W::Value, VmcsError>
    where
        Self: Sized,
    {
        self.read_raw(field.encoding() as u64).map(W::from_raw)
    }
}

/// Writing a VMCS: raw by encoding with VMWRITE semantics, or typed by field.
pub trait VmcsWrite {
    /// VMWRITE semantics: 16- and 32-bit fields keep the low bits of `value`; a high-access
    /// encoding writes the low 32 bits of `value` into bits 63:32. Backends that model hardware
    /// refuse read-only fields unless the processor allows it (IA32_VMX_MISC bit 29); software
    /// layouts, which L0 fills on VM exit, accept them.
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError>;

    /// Typed write, for fields VMWRITE may write.
    #[inline(always)]
    fn write<W: Width, A: Writable>(&mut self, field: Field<W, A>, value: W::Value) -> Result<(), VmcsError>
    where
        Self: Sized,
    {
        self.write_raw(field.encoding() as u64, value.into())
    }
}

impl<W: Width, A: Access> Field<W, A> {
    /// [`VmcsRead::read`] for any backend, unsized ones (`dyn VmcsRead`) included.
    #[inline(always)]
    pub fn read_from<B: VmcsRead + ?Sized>(self, vmcs: &B) -> Result<W::Value, VmcsError> {
        vmcs.read_raw(self.raw()).map(W::from_raw)
    }
}

impl<W: Width, A: Writable> Field<W, A> {
    /// [`VmcsWrite::write`] for any backend, unsized ones (`dyn VmcsWrite`) included.
    #[inline(always)]
    pub fn write_to<B: VmcsWrite + ?Sized>(self, vmcs: &mut B, value: W::Value) -> Result<(), VmcsError> {
        vmcs.write_raw(self.raw(), value.into())
    }
}

/// A layout with clean-field bits (the eVMCS's `hv_clean_fields`): a set bit says L1 did not change
/// that group since the last VM entry. Generated for layouts with a `[clean]` table; the copy
/// routines that read them with `clean = true` skip clean groups.
pub trait CleanFields {
    /// The clean-field bits.
    fn clean_fields(&self) -> u32;
}
