//! VMLAUNCH and VMRESUME: the VM-entry checks on vmcs12, generated from schema/checks.toml
//! (`vmcs::entry`, every rule of the SDM's tiers in order: VMfailInvalid, errors 26/4/5, controls
//! (7), host state (8), guest state (exit 33 with the qualification)), for the capabilities L1
//! has. Passing them hands L0 a nested entry to perform; L0 loads the VM-entry MSR-load list
//! itself after vmcs02 is prepared (msr_list.rs: exit 34 with the entry's number).
//!
//! While the last exit's rare guest state is still in vmcs02 (deferred, as KVM defers it), vmcs12
//! holds stale segments: the checks are then KVM's ([`entry::Selection::KVM_ENTRY`]: controls,
//! host state and the guest-state rules KVM checks in software, none of which reads a rare
//! field), and the processor's own checks of vmcs02 judge the rest of L2's state (a failure there
//! is exit 33 to L1, as with KVM). vmcs-gen's tests/kvm_entry.rs proves from the schema that none
//! of those rules reads a field the rare sync owes.

use vmcs::caps::{Cap, Capabilities, Msr};
use vmcs::entry::{self, EntryError, Facts, Outcome as Check};
use vmcs::exit::VmExitReason;
use vmcs::fields as F;
use vmcs::{VmInstructionError, VmcsRead, VmcsWrite};

use crate::operand::Operands;
use crate::vcpu::{CheckedMemory, GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, NestedVmx, Outcome};

/// Interruptibility bit 1: blocking by MOV SS.
const BLOCKING_BY_MOV_SS: u64 = 1 << 1;
/// IA32_EFER bits L1's processor implements: SCE, LME, LMA, NXE (Intel's, as KVM's
/// efer_reserved_bits leaves them for an Intel guest with NX).
const EFER_IMPLEMENTED: u64 = 1 | 1 << 8 | 1 << 10 | 1 << 11;
/// IA32_DEBUGCTL bits the SDM defines (LBR, BTF, TR, BTS, BTINT, BTS_OFF_OS/USR, the FREEZE bits,
/// uncore PMI, RTM debug).
const DEBUGCTL_DEFINED: u64 = 0xffc3;

impl NestedVmx {
    pub(crate) fn launch_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>, launch: bool) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        if let Some(done) = self.check_current(ops)? {
            return Ok(done);
        }
        let v12 = self.current.vmcs12.inner();
        let caps = self.caps.caps();
        let facts = Facts {
            maxphyaddr: ops.cpu.maxphyaddr(),
            linear_width: if caps.raw(Msr::Cr4Fixed1.index()) >> 12 & 1 == 1 { 57 } else { 48 },
            efer_lma: ops.l1.long_mode()?,
            in_smm: false,
            current_vmcs: self.current_ptr,
            efer_reserved: !EFER_IMPLEMENTED,
            debugctl_reserved: !DEBUGCTL_DEFINED,
            perf_global_ctrl_reserved: if caps.has(Cap::EntryLoadPerfGlobalCtrl) { 0 } else { u64::MAX },
            rtit_ctl_reserved: u64::MAX,
            rtm: false,
            sgx: false,
            sti_blocks_nmi_injection: false,
            vmlaunch: launch,
            launched: v12.launch_state != 0,
            current_is_shadow: v12.hdr >> 31 == 1,
            mov_ss_blocked: ops.l1.read(F::GUEST_INTERRUPTIBILITY_INFO.raw())? & BLOCKING_BY_MOV_SS != 0,
        };
        // MSR loading (26.4) comes after the guest state is loaded: L0's, entry by entry.
        let selection =
            if self.rare_pending() { entry::Selection::KVM_ENTRY } else { entry::Selection::BEFORE_MSR_LOADING };
        let result = entry::check_only(&self.current, caps, &facts, &CheckedMemory(&*ops.mem), selection);
        self.entry_failure = match result {
            Err(EntryError::Failed(f)) => Some(f),
            _ => None,
        };
        match result {
            Ok(()) => Ok(Done::Leave(Outcome::EnterL2 { launch })),
            Err(EntryError::Failed(f)) => Ok(match f.outcome() {
                Check::VmFailInvalid => Done::FailInvalid,
                Check::VmFailValid(n) => Done::Fail(VmInstructionError::from_number(n)),
                Check::EntryFailure { reason, qualification } => Done::Leave(Outcome::EntryFailed {
                    reason: VmExitReason::from_bits(reason | 1 << 31),
                    qualification: qualification as u64,
                }),
            }),
            // Every field the checks read is in the region (vmcs12 or its tail).
            Err(EntryError::Read(e)) => Err(Stop::Vmcs01(e.error)),
        }
    }
}
