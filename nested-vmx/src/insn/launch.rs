//! VMLAUNCH and VMRESUME: the checks before any state is loaded, then the VM-entry checks on
//! vmcs12 ([`crate::entry_checks`]). Passing them hands L0 a nested entry to perform.

use vmcs::VmInstructionError as E;
use vmcs::exit::{ExitReason, VmExitReason};
use vmcs::fields as F;
use vmcs::{VmcsRead, VmcsWrite};

use crate::entry_checks::{self, EntryCheck};
use crate::operand::Operands;
use crate::vcpu::{GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, INVALID_POINTER, NestedVmx};

/// Interruptibility bit 1: blocking by MOV SS.
const BLOCKING_BY_MOV_SS: u64 = 1 << 1;

impl NestedVmx {
    pub(crate) fn launch_insn<V, C, M>(&mut self, ops: &mut Operands<V, C, M>, launch: bool) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        self.check_permission(ops)?;
        if self.current_ptr == INVALID_POINTER {
            return Ok(Done::FailInvalid);
        }
        let v12 = *self.current.vmcs12.inner();
        // A shadow VMCS cannot be launched: VMfailInvalid, not VMfailValid.
        if v12.hdr >> 31 == 1 {
            return Ok(Done::FailInvalid);
        }
        if ops.l1.read(F::GUEST_INTERRUPTIBILITY_INFO.raw())? & BLOCKING_BY_MOV_SS != 0 {
            return Ok(Done::Fail(E::EntryEventsBlockedByMovSs));
        }
        let launched = v12.launch_state != 0;
        if launch && launched {
            return Ok(Done::Fail(E::VmlaunchNonClearVmcs));
        }
        if !launch && !launched {
            return Ok(Done::Fail(E::VmresumeNonLaunchedVmcs));
        }
        let l1_long_mode = ops.l1.long_mode()?;
        match entry_checks::check(&v12, self.caps.caps(), l1_long_mode, ops.cpu.maxphyaddr()) {
            EntryCheck::Pass => Ok(Done::EnterL2 { launch }),
            EntryCheck::InvalidControls(_) => Ok(Done::Fail(E::EntryInvalidControlFields)),
            EntryCheck::InvalidHostState(_) => Ok(Done::Fail(E::EntryInvalidHostStateFields)),
            EntryCheck::InvalidGuestState { qualification, .. } => {
                let reason = VmExitReason::from_bits(0).with_basic(ExitReason::InvalidState).with_entry_failure(true);
                Ok(Done::EntryFailed { reason, qualification })
            }
        }
    }
}
