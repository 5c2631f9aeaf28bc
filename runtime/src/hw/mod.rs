//! The real VMCS: VMX instructions through inline assembly (x86-64 only).
//!
//! Every VMX instruction is one `asm!` block that captures CF and ZF itself (`setc`/`setz`) and
//! never claims `preserves_flags`, `nomem` or `pure`. A failure is [`VmxError::FailInvalid`]
//! (CF = 1) or [`VmxError::FailValid`] (ZF = 1) with the VM-instruction error read from the
//! current VMCS at once and decoded ([`VmInstructionError`]).
//!
//! Types make misuse hard: [`VmxOperation::enter`] yields the token of VMX operation. A
//! [`Vmcs`] is a VMCS region with its physical address ([`VmxOperation::vmcs`] writes the
//! revision identifier and VMCLEARs it); [`VmxOperation::load`] makes it current (VMPTRLD,
//! skipped when it is current already) and lends the handle [`CurrentVmcs`], which implements
//! [`VmcsRead`](crate::VmcsRead) and [`VmcsWrite`](crate::VmcsWrite). The handle borrows the
//! token mutably, so one handle exists at a time and it always names the current VMCS; switching
//! VMCSs is loading another (the first stays active with its launch state, as the SDM's VMPTRLD
//! leaves it), and [`VmxOperation::clear`] VMCLEARs any of them. Each `Vmcs` follows its launch
//! state: VMCLEAR makes it clear, a VMLAUNCH that enters the guest makes it launched.
//!
//! ```no_run
//! use vmcs::hw::{VmxOperation, VmxRegion};
//! use vmcs::{VmcsRead, VmcsWrite, fields};
//!
//! static mut VMXON: VmxRegion = VmxRegion::new();
//! static mut VMCS01: VmxRegion = VmxRegion::new();
//! static mut VMCS02: VmxRegion = VmxRegion::new();
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SAFETY: each static is borrowed once; identity mapping: a region's physical address is
//! // its address.
//! let (vmxon, r01, r02) = unsafe { (&mut *&raw mut VMXON, &mut *&raw mut VMCS01, &mut *&raw mut VMCS02) };
//! let (p0, p1, p2) = (&raw const *vmxon as u64, &raw const *r01 as u64, &raw const *r02 as u64);
//! // SAFETY: CPL 0, one logical processor.
//! let mut op = unsafe { VmxOperation::enter(vmxon, p0) }.expect("VMXON");
//! // SAFETY: each physical address is its region's.
//! let mut vmcs01 = unsafe { op.vmcs(r01, p1) }?;
//! let mut vmcs02 = unsafe { op.vmcs(r02, p2) }?;
//!
//! op.load(&mut vmcs01)?.write(fields::GUEST_RIP, 0x1000)?;
//! let mut v = op.load(&mut vmcs02)?; // VMPTRLD: vmcs01 stays active, keeps its contents
//! v.write(fields::GUEST_RIP, 0x2000)?;
//! assert_eq!(v.current_vmcs_pointer()?, p2);
//! // vmcs01 cannot be loaded or cleared while `v` lives: `op` is borrowed.
//! assert_eq!(op.load(&mut vmcs01)?.read(fields::GUEST_RIP)?, 0x1000);
//! op.clear(&mut vmcs02)?; // launch state clear, VMREAD-able again only after a load
//! assert!(!vmcs02.is_launched() && !vmcs02.is_active());
//! # Ok(()) }
//! ```
//!
//! Using a VMCS while another's handle lives does not compile:
//!
//! ```compile_fail,E0499
//! # use vmcs::hw::{Vmcs, VmxOperation};
//! # fn f(op: &mut VmxOperation, vmcs01: &mut Vmcs, vmcs02: &mut Vmcs) -> Result<(), vmcs::hw::VmxError> {
//! let v02 = op.load(vmcs02)?;
//! op.clear(vmcs01)?; // `op` is borrowed by the handle of vmcs02
//! drop(v02);
//! # Ok(()) }
//! ```
//!
//! One concern a file: `insn` (the instructions), `error`, `msr` (MSRs, CPUID, control
//! registers), `region` (the regions and [`Vmcs`]), `operation` (the token: VMXON, VMPTRLD,
//! VMCLEAR), `vmcs` (the handle) and `guest` (the registers and the VM-entry assembly).

mod error;
mod guest;
mod insn;
mod msr;
mod operation;
mod region;
mod vmcs;

pub use crate::access::VmInstructionError;
pub use crate::exit::VmExitReason;
pub use error::{EnterError, VmxError};
pub use guest::{FpuState, GuestRegisters};
pub use msr::{rdmsr, read_vmx_caps, vmx_supported, wrmsr};
pub use operation::VmxOperation;
pub use region::{Vmcs, VmxRegion};
pub use vmcs::CurrentVmcs;
