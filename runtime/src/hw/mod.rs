//! The real VMCS: VMX instructions through inline assembly (x86-64 only).
//!
//! Every VMX instruction is one `asm!` block that captures CF and ZF itself (`setc`/`setz`) and
//! never claims `preserves_flags`, `nomem` or `pure`. A failure is [`VmxError::FailInvalid`]
//! (CF = 1) or [`VmxError::FailValid`] (ZF = 1) with the VM-instruction error read from the
//! current VMCS at once and decoded ([`VmInstructionError`]).
//!
//! Types make misuse hard: [`VmxOperation::enter`] yields the token of VMX operation; loading a
//! VMCS through it ([`VmxOperation::load`]) yields the current-VMCS handle [`CurrentVmcs`], which
//! implements [`VmcsRead`](crate::VmcsRead) and [`VmcsWrite`](crate::VmcsWrite) and does VMCLEAR
//! when dropped. The token is borrowed mutably by the handle, so there is never more than one
//! current VMCS through this API.
//!
//! One concern a file: `insn` (the instructions), `error`, `msr` (MSRs, CPUID, control
//! registers), `operation` (VMXON region and token), `vmcs` (the handle) and `guest` (the
//! registers and the VM-entry assembly).

mod error;
mod guest;
mod insn;
mod msr;
mod operation;
mod vmcs;

pub use crate::access::VmInstructionError;
pub use crate::exit::VmExitReason;
pub use error::{EnterError, VmxError};
pub use guest::{FpuState, GuestRegisters};
pub use msr::{rdmsr, read_vmx_caps, vmx_supported, wrmsr};
pub use operation::{VmxOperation, VmxRegion};
pub use vmcs::CurrentVmcs;
