//! How VMX instructions and entering VMX operation fail.

use core::fmt;

use crate::access::{VmInstructionError, VmcsError};

/// Why a VMX instruction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxError {
    /// VMfailInvalid (CF = 1): no current VMCS, or a failure before one exists (VMXON).
    FailInvalid,
    /// VMfailValid (ZF = 1) with the decoded VM-instruction error of the current VMCS.
    FailValid(VmInstructionError),
}

impl VmxError {
    /// As a [`VmcsError`] for an access to `encoding`.
    pub const fn into_vmcs_error(self, encoding: u64) -> VmcsError {
        match self {
            VmxError::FailInvalid => VmcsError::NoCurrentVmcs,
            VmxError::FailValid(VmInstructionError::UnsupportedComponent) => VmcsError::UnsupportedField(encoding),
            VmxError::FailValid(VmInstructionError::VmwriteReadOnlyComponent) => VmcsError::ReadOnlyField(encoding),
            VmxError::FailValid(e) => VmcsError::InstructionError(e.number()),
        }
    }
}

/// `VMfailInvalid`, or `VMfailValid: VM-instruction error 4: VMLAUNCH with non-clear VMCS`.
impl fmt::Display for VmxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmxError::FailInvalid => f.write_str("VMfailInvalid"),
            VmxError::FailValid(e) => write!(f, "VMfailValid: {e}"),
        }
    }
}

impl core::error::Error for VmxError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            VmxError::FailInvalid => None,
            VmxError::FailValid(e) => Some(e),
        }
    }
}

/// Why entering VMX operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnterError {
    /// CPUID.1:ECX.VMX[bit 5] = 0.
    VmxUnsupported,
    /// IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled.
    DisabledByFirmware,
    /// VMXON failed.
    Vmxon(VmxError),
}

impl fmt::Display for EnterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnterError::VmxUnsupported => f.write_str("the processor does not support VMX (CPUID.1:ECX bit 5)"),
            EnterError::DisabledByFirmware => f.write_str("IA32_FEATURE_CONTROL is locked with VMX disabled"),
            EnterError::Vmxon(e) => write!(f, "VMXON failed: {e}"),
        }
    }
}

impl core::error::Error for EnterError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EnterError::Vmxon(e) => Some(e),
            _ => None,
        }
    }
}
