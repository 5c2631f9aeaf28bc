//! The VMX instruction handlers, one file per family, each in the order of checks KVM 7.2.8
//! applies (`nested.c`; the SDM's instruction pages give the same outcomes).

mod access;
mod invalidate;
mod launch;
mod pointer;
mod vmxon;

use vmcs::{VmcsRead, VmcsWrite};

use crate::operand::{InsnInfo, Operands};
use crate::vcpu::{GuestMemory, L1Cpu, Stop};

/// The instruction information of the exit.
fn insn_info<V: VmcsRead + VmcsWrite, C: L1Cpu, M: GuestMemory>(ops: &Operands<'_, V, C, M>) -> Result<InsnInfo, Stop> {
    Ok(InsnInfo(ops.l1.read(vmcs::fields::VMX_INSTRUCTION_INFO.raw())? as u32))
}
