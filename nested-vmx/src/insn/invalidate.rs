//! INVEPT and INVVPID: the capability #UD, the type, the 128-bit descriptor, error 28.

use vmcs::VmInstructionError;
use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::{VmcsRead, VmcsWrite};

use super::insn_info;
use crate::operand::Operands;
use crate::vcpu::{Fault, GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, Invalidation, NestedVmx};

const INVALID: VmInstructionError = VmInstructionError::InvalidInveptInvvpidOperand;

impl NestedVmx {
    pub(crate) fn invept_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let caps = *self.caps.caps();
        // Without the capability the instruction does not exist: #UD before any other check.
        if !(caps.has(Cap::Proc2EnableEpt) && caps.has(Cap::EptInvept)) {
            return Err(Fault::ud().into());
        }
        self.check_permission(ops)?;
        let info = insn_info(ops)?;
        let kind = ops.read_reg(info.reg2())?;
        let supported = match kind {
            1 => caps.has(Cap::EptInveptSingleContext),
            2 => caps.has(Cap::EptInveptAllContext),
            _ => false,
        };
        if !supported {
            return Ok(Done::Fail(INVALID));
        }
        // The descriptor is read even for all-context.
        let mut desc = [0u8; 16];
        ops.read_mem(info, &mut desc)?;
        let eptp = u64::from_le_bytes(desc[..8].try_into().unwrap_or([0; 8]));
        if kind == 2 {
            return Ok(Done::Invalidate(Invalidation::EptAll));
        }
        if !eptp_valid(&caps, eptp, ops.cpu.maxphyaddr()) {
            return Ok(Done::Fail(INVALID));
        }
        Ok(Done::Invalidate(Invalidation::EptSingle { eptp }))
    }

    pub(crate) fn invvpid_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let caps = *self.caps.caps();
        if !(caps.has(Cap::Proc2EnableVpid) && caps.has(Cap::VpidInvvpid)) {
            return Err(Fault::ud().into());
        }
        self.check_permission(ops)?;
        let info = insn_info(ops)?;
        let kind = ops.read_reg(info.reg2())?;
        let supported = match kind {
            0 => caps.has(Cap::VpidInvvpidIndividualAddress),
            1 => caps.has(Cap::VpidInvvpidSingleContext),
            2 => caps.has(Cap::VpidInvvpidAllContext),
            3 => caps.has(Cap::VpidInvvpidSingleContextRetainingGlobals),
            _ => false,
        };
        if !supported {
            return Ok(Done::Fail(INVALID));
        }
        let mut desc = [0u8; 16];
        ops.read_mem(info, &mut desc)?;
        let low = u64::from_le_bytes(desc[..8].try_into().unwrap_or([0; 8]));
        let address = u64::from_le_bytes(desc[8..].try_into().unwrap_or([0; 8]));
        // Descriptor bits 63:16 are reserved; only all-context may name VPID 0.
        if low >> 16 != 0 || (kind != 2 && low == 0) {
            return Ok(Done::Fail(INVALID));
        }
        let vpid = low as u16;
        let inv = match kind {
            0 if !canonical48(address) => return Ok(Done::Fail(INVALID)),
            0 => Invalidation::VpidAddress { vpid, address },
            1 => Invalidation::VpidSingle { vpid },
            2 => Invalidation::VpidAll,
            _ => Invalidation::VpidSingleRetainingGlobals { vpid },
        };
        Ok(Done::Invalidate(inv))
    }
}

fn canonical48(a: u64) -> bool {
    ((a << 16) as i64 >> 16) as u64 == a
}

/// `nested_vmx_check_eptp`: memory type, walk length, reserved bits, A/D, against L1's caps.
fn eptp_valid(caps: &VmxCaps, eptp: u64, maxphyaddr: u8) -> bool {
    let memtype_ok = match eptp & 7 {
        0 => caps.has(Cap::EptMemtypeUc),
        6 => caps.has(Cap::EptMemtypeWb),
        _ => false,
    };
    let walk_ok = match eptp >> 3 & 7 {
        3 => caps.has(Cap::EptPageWalk4),
        4 => caps.has(Cap::EptPageWalk5),
        _ => false,
    };
    let ad_ok = eptp >> 6 & 1 == 0 || caps.has(Cap::EptAccessedDirty);
    memtype_ok && walk_ok && ad_ok && eptp >> 7 & 0x1f == 0 && eptp >> maxphyaddr.min(63) == 0
}
