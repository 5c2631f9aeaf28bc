//! L1's VMX operation: the state L0 keeps per vCPU and the dispatch of VMX-instruction exits to
//! the instruction handlers. Results follow the SDM (Vol. 3C 31.2, "Conventions"):
//! VMsucceed, VMfailInvalid, VMfailValid with the error number stored in the current vmcs12, or
//! an exception injected into L1 with flags and RIP untouched.

use vmcs::exit::{ExitReason, VmExitReason};
use vmcs::{VmInstructionError, VmcsError, VmcsRead, VmcsWrite, fields};

use crate::caps::L1Caps;
use crate::current::Current;
use crate::operand::Operands;
use crate::vcpu::{Fault, Guest, GuestMemory, L1Cpu, MemoryError, Stop};

/// The pointer value meaning "no current VMCS" (VMPTRST stores it).
pub const INVALID_POINTER: u64 = u64::MAX;

/// What L0 does after [`NestedVmx::handle_exit`] emulated an L1 VMX instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Resume L1: the instruction retired (flags set, RIP advanced) or raised an exception that
    /// vmcs01 now injects.
    ResumeL1,
    /// The instruction retired; L0 drops the cached translations named, then resumes L1.
    Invalidate(Invalidation),
    /// VMLAUNCH/VMRESUME passed the checks on vmcs12: build vmcs02 and run L2. RIP is not
    /// advanced (L1 sees the instruction complete at the next nested VM exit).
    EnterL2 {
        /// VMLAUNCH (else VMRESUME).
        launch: bool,
    },
    /// VMLAUNCH/VMRESUME failed a guest-state check: L1 continues at its host RIP with this exit
    /// reason (entry-failure bit set) and qualification in vmcs12, its host state loaded from vmcs12.
    EntryFailed {
        /// The exit reason, 33 or 34 with bit 31.
        reason: VmExitReason,
        /// The exit qualification.
        qualification: u64,
    },
    /// Nothing was done: the instruction needs L2's rare guest state, which the last nested exit
    /// left in vmcs02 (KVM's deferred rare sync). L0 calls [`NestedVmx::sync_rare`] with vmcs02
    /// current, then `handle_exit` again for the same exit.
    SyncRare,
    /// L1 touched memory L0 cannot serve (KVM returns an internal error to userspace).
    Memory(MemoryError),
    /// vmcs01 refused an access: an L0 bug.
    Vmcs01(VmcsError),
    /// Not a VMX-instruction exit.
    NotVmxInstruction,
}

/// An L1 VMREAD or VMWRITE: its field and operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldAccess {
    /// The field encoding L1 named (any `u64`).
    pub encoding: u64,
    /// VMWRITE (else VMREAD).
    pub write: bool,
    /// A memory operand (else a register).
    pub memory: bool,
}

/// A TLB invalidation L1 asked for with INVEPT or INVVPID, in L1's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// INVEPT single-context: mappings derived from this EPTP12.
    EptSingle {
        /// The EPTP12 of the descriptor.
        eptp: u64,
    },
    /// INVEPT all-context.
    EptAll,
    /// INVVPID individual-address.
    VpidAddress {
        /// L1's VPID of the descriptor.
        vpid: u16,
        /// The linear address.
        address: u64,
    },
    /// INVVPID single-context.
    VpidSingle {
        /// L1's VPID of the descriptor.
        vpid: u16,
    },
    /// INVVPID all-context.
    VpidAll,
    /// INVVPID single-context retaining globals.
    VpidSingleRetainingGlobals {
        /// L1's VPID of the descriptor.
        vpid: u16,
    },
}

/// How a handler completed.
pub(crate) enum Done {
    Succeed,
    FailInvalid,
    /// VMfail(n): VMfailValid(n) with a current VMCS, else VMfailInvalid.
    Fail(VmInstructionError),
    Invalidate(Invalidation),
    /// Not retired here: L0 takes over with this outcome (an entry of L2, an entry failure, a
    /// rare sync first).
    Leave(Outcome),
}

/// One vCPU's nested VMX state (KVM's `vmx->nested`).
#[derive(Clone)]
pub struct NestedVmx {
    pub(crate) caps: L1Caps,
    pub(crate) vmxon_ptr: Option<u64>,
    pub(crate) current_ptr: u64,
    pub(crate) current: Current,
    /// The VM-entry check the last VMLAUNCH/VMRESUME failed, for L0's diagnostics.
    pub(crate) entry_failure: Option<vmcs::entry::Failure>,
    /// The field of the last VMWRITE emulated (for the shadow VMCS's write-through).
    pub(crate) last_vmwrite: Option<u64>,
    /// The field and operand of the last VMREAD/VMWRITE emulated.
    pub(crate) last_access: Option<FieldAccess>,
    /// What the shadow VMCS holds ([`crate::shadow`]).
    pub(crate) shadow_cache: crate::shadow_cache::ShadowCache,
    /// L1's EFER.LMA in VMX operation, once known: it cannot change there (CR0.PG and PE are
    /// fixed to 1, EFER.LME cannot change with paging on, and the VM-entry checks make vmcs12's
    /// host address-space size L1's own mode, which [`Self::load_l1_host_state`] loads). So
    /// vmcs01's IA-32e-mode entry control is read once, not at every emulated instruction (KVM
    /// keeps EFER in its vCPU state). The L0 makes CR0 writes that would clear PE or PG exit.
    pub(crate) l1_lma: Option<bool>,
    /// vmcs02's activity state when L0 knows it: what it wrote there, or what the last exit of
    /// L2 saved (the sync copies it into vmcs12), so that an entry rewrites it only when it differs.
    pub(crate) vmcs02_activity: Option<u64>,
}

impl NestedVmx {
    /// A vCPU outside VMX operation whose capability MSRs are `caps`.
    pub fn new(caps: L1Caps) -> Self {
        NestedVmx {
            caps,
            vmxon_ptr: None,
            current_ptr: INVALID_POINTER,
            current: Current::from_region(&[0; crate::current::REGION_SIZE]),
            entry_failure: None,
            last_vmwrite: None,
            last_access: None,
            shadow_cache: Default::default(),
            l1_lma: None,
            vmcs02_activity: None,
        }
    }

    /// The capability MSRs L1 reads.
    pub fn caps(&self) -> &L1Caps {
        &self.caps
    }
    /// In VMX operation (after VMXON).
    pub fn vmxon(&self) -> bool {
        self.vmxon_ptr.is_some()
    }
    /// The VMXON region's address, in VMX operation.
    pub fn vmxon_pointer(&self) -> Option<u64> {
        self.vmxon_ptr
    }
    /// The current-VMCS pointer ([`INVALID_POINTER`] when none).
    pub fn current_pointer(&self) -> u64 {
        self.current_ptr
    }
    /// The cached current VMCS (meaningful while [`Self::current_pointer`] is valid).
    pub fn current(&self) -> &Current {
        &self.current
    }
    /// The cached current VMCS, for L0's own writes (exit information it synthesizes).
    pub fn current_mut(&mut self) -> &mut Current {
        &mut self.current
    }
    /// The field and operand of the last VMREAD/VMWRITE [`Self::handle_exit`] decoded.
    pub fn last_field_access(&self) -> Option<FieldAccess> {
        self.last_access
    }

    /// The VM-entry check (its rule, SDM section and outcome) the last failing VMLAUNCH/VMRESUME
    /// failed on vmcs12.
    pub fn last_entry_failure(&self) -> Option<vmcs::entry::Failure> {
        self.entry_failure
    }

    /// Emulate the VMX instruction (or VMCALL) L1 executed (basic exit reason `reason`, vmcs01
    /// current).
    pub fn handle_exit<V, C, M>(&mut self, reason: ExitReason, vmcs01: &mut V, cpu: &mut C, mem: &mut M) -> Outcome
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let mut ops = Operands { l1: Guest::with_long_mode(vmcs01, self.l1_lma), cpu, mem };
        self.last_access = None;
        let done = match reason {
            ExitReason::Vmxon => self.vmxon_insn(&mut ops),
            ExitReason::Vmxoff => self.vmxoff_insn(&mut ops),
            ExitReason::Vmcall => self.vmcall_insn(&mut ops),
            ExitReason::Vmclear => self.vmclear_insn(&mut ops),
            ExitReason::Vmptrld => self.vmptrld_insn(&mut ops),
            ExitReason::Vmptrst => self.vmptrst_insn(&mut ops),
            ExitReason::Vmread => self.vmread_insn(&mut ops),
            ExitReason::Vmwrite => self.vmwrite_insn(&mut ops),
            ExitReason::Vmlaunch => self.launch_insn(&mut ops, true),
            ExitReason::Vmresume => self.launch_insn(&mut ops, false),
            ExitReason::Invept => self.invept_insn(&mut ops),
            ExitReason::Invvpid => self.invvpid_insn(&mut ops),
            _ => return Outcome::NotVmxInstruction,
        };
        let outcome = done.and_then(|d| self.complete(&mut ops.l1, d));
        self.l1_lma = if self.vmxon() { ops.l1.known_long_mode() } else { None };
        match outcome {
            Ok(outcome) => outcome,
            Err(Stop::Fault(f)) => self.raise(&mut ops.l1, ops.cpu, f),
            Err(Stop::Memory(e)) => Outcome::Memory(e),
            Err(Stop::Vmcs01(e)) => Outcome::Vmcs01(e),
        }
    }

    fn raise<V: VmcsRead + VmcsWrite, C: L1Cpu>(&self, l1: &mut Guest<'_, V>, cpu: &mut C, f: Fault) -> Outcome {
        if let Some(cr2) = f.cr2 {
            cpu.set_cr2(cr2);
        }
        match l1.inject(f) {
            Ok(()) => Outcome::ResumeL1,
            Err(e) => Outcome::Vmcs01(e),
        }
    }

    fn complete<V: VmcsRead + VmcsWrite>(&mut self, l1: &mut Guest<'_, V>, done: Done) -> Result<Outcome, Stop> {
        let outcome = match done {
            Done::Leave(outcome) => return Ok(outcome),
            Done::Succeed => {
                l1.set_result_flags(false, false)?;
                Outcome::ResumeL1
            }
            Done::FailInvalid => {
                l1.set_result_flags(true, false)?;
                Outcome::ResumeL1
            }
            Done::Fail(_) if self.current_ptr == INVALID_POINTER => {
                l1.set_result_flags(true, false)?;
                Outcome::ResumeL1
            }
            Done::Fail(n) => {
                // The cached vmcs12 holds the error (the field is never shadowed).
                let _ = self.current.set(fields::VM_INSTRUCTION_ERROR.raw(), n.number() as u64);
                l1.set_result_flags(false, true)?;
                Outcome::ResumeL1
            }
            Done::Invalidate(inv) => {
                l1.set_result_flags(false, false)?;
                Outcome::Invalidate(inv)
            }
        };
        l1.skip_instruction()?;
        Ok(outcome)
    }

    /// Complete L1's VMLAUNCH/VMRESUME with VMfailValid(`error`) after all (the processor refused
    /// vmcs02 with a VM-instruction error: KVM's late VMfail, reported as error 7): flags, vmcs12's
    /// error field, RIP past the instruction. vmcs01 is current and untouched by the attempt.
    pub fn fail_vmentry<V: VmcsRead + VmcsWrite>(&mut self, vmcs01: &mut V, error: VmInstructionError) -> Outcome {
        match self.complete(&mut Guest::with_long_mode(vmcs01, self.l1_lma), Done::Fail(error)) {
            Ok(o) => o,
            Err(Stop::Vmcs01(e)) => Outcome::Vmcs01(e),
            Err(Stop::Memory(e)) => Outcome::Memory(e),
            // Completing an instruction never faults.
            Err(Stop::Fault(_)) => Outcome::Vmcs01(VmcsError::InstructionError(error.number())),
        }
    }

    /// `nested_vmx_check_permission`: #UD outside VMX operation, #GP(0) above CPL 0.
    pub(crate) fn check_permission<V, C, M>(&self, ops: &Operands<'_, V, C, M>) -> Result<(), Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        if self.vmxon_ptr.is_none() {
            return Err(Fault::ud().into());
        }
        if ops.l1.cpl()? > 0 {
            return Err(Fault::gp0().into());
        }
        Ok(())
    }

    /// The permission checks, then a current VMCS: VMfailInvalid (`Some`) without one, as VMREAD,
    /// VMWRITE, VMLAUNCH and VMRESUME require.
    pub(crate) fn check_current<V, C, M>(&self, ops: &Operands<'_, V, C, M>) -> Result<Option<Done>, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        self.check_permission(ops)?;
        Ok((self.current_ptr == INVALID_POINTER).then_some(Done::FailInvalid))
    }

    /// A 4 KiB-aligned address within L1's MAXPHYADDR (`page_address_valid`).
    pub(crate) fn page_address_valid<C: L1Cpu>(cpu: &C, gpa: u64) -> bool {
        gpa & 0xfff == 0 && gpa >> cpu.maxphyaddr().min(63) == 0
    }
}
