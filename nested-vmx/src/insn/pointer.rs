//! VMCLEAR, VMPTRLD and VMPTRST: the current-VMCS pointer and the cached vmcs12.

use vmcs::VmInstructionError as E;
use vmcs::caps::{Cap, Capabilities};
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite};

use super::insn_info;
use crate::current::{Current, REGION_SIZE};
use crate::operand::Operands;
use crate::vcpu::{GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, INVALID_POINTER, NestedVmx, Outcome};

/// Offset of `launch_state` in the vmcs12 layout (the region's third dword).
const LAUNCH_STATE_OFFSET: u64 = 8;
/// Header bit 31: the region is a shadow VMCS.
const HDR_SHADOW: u32 = 1 << 31;

impl NestedVmx {
    /// Write the cached vmcs12 back to L1 memory and forget it (`nested_release_vmcs12`). Write
    /// errors are ignored, as KVM ignores them.
    pub(crate) fn release_current<M: GuestMemory>(&mut self, mem: &mut M) {
        if self.current_ptr == INVALID_POINTER {
            return;
        }
        let mut region = [0u8; REGION_SIZE];
        self.current.to_region(&mut region);
        let _ = mem.write(self.current_ptr, &region);
        self.current_ptr = INVALID_POINTER;
    }

    /// VMCLEAR's and VMPTRLD's common start: the permission checks, then the operand, which must
    /// be a page address within the physical-address width (else `invalid`) and not the VMXON
    /// pointer (else `vmxon`).
    fn vmcs_pointer<V, C, M>(
        &self,
        ops: &mut Operands<'_, V, C, M>,
        invalid: E,
        vmxon: E,
    ) -> Result<Result<u64, E>, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        self.check_permission(ops)?;
        let ptr = ops.read_pointer(insn_info(ops)?)?;
        Ok(if !Self::page_address_valid(ops.cpu, ptr) {
            Err(invalid)
        } else if Some(ptr) == self.vmxon_ptr {
            Err(vmxon)
        } else {
            Ok(ptr)
        })
    }

    pub(crate) fn vmclear_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let ptr = match self.vmcs_pointer(ops, E::VmclearInvalidAddress, E::VmclearVmxonPointer)? {
            Ok(ptr) => ptr,
            Err(e) => return Ok(Done::Fail(e)),
        };
        if ptr == self.current_ptr {
            if self.rare_pending() {
                return Ok(Done::Leave(Outcome::SyncRare));
            }
            self.release_current(ops.mem);
        }
        // Launch state "clear", in L1 memory; no revision check (SDM: VMCLEAR does not read it).
        let _ = ops.mem.write(ptr + LAUNCH_STATE_OFFSET, &0u32.to_le_bytes());
        Ok(Done::Succeed)
    }

    pub(crate) fn vmptrld_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let ptr = match self.vmcs_pointer(ops, E::VmptrldInvalidAddress, E::VmptrldVmxonPointer)? {
            Ok(ptr) => ptr,
            Err(e) => return Ok(Done::Fail(e)),
        };
        if ptr == self.current_ptr {
            // Already current: memory is not re-read.
            return Ok(Done::Succeed);
        }
        let Ok(hdr) = ops.mem.read_u32(ptr) else { return Ok(Done::Fail(E::VmptrldIncorrectRevision)) };
        let shadow_ok = self.caps.caps().has(Cap::Proc2VmcsShadowing);
        if hdr & !HDR_SHADOW != Vmcs12::REVISION || (hdr & HDR_SHADOW != 0 && !shadow_ok) {
            return Ok(Done::Fail(E::VmptrldIncorrectRevision));
        }
        if self.current_ptr != INVALID_POINTER && self.rare_pending() {
            return Ok(Done::Leave(Outcome::SyncRare));
        }
        self.release_current(ops.mem);
        let mut region = [0u8; REGION_SIZE];
        if ops.mem.read(ptr, &mut region).is_err() {
            return Ok(Done::Fail(E::VmptrldIncorrectRevision));
        }
        self.current = Current::from_region(&region);
        self.current_ptr = ptr;
        Ok(Done::Succeed)
    }

    pub(crate) fn vmptrst_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        self.check_permission(ops)?;
        let info = insn_info(ops)?;
        ops.write_mem(info, &self.current_ptr.to_le_bytes())?;
        Ok(Done::Succeed)
    }
}
