//! The current-VMCS handle: VMREAD/VMWRITE and VM entry on the VMCS the processor has current.

use core::marker::PhantomData;

use super::error::VmxError;
use super::guest::{FpuState, GuestRegisters, enter_guest};
use super::insn::{invept, invvpid, vmptrst, vmread, vmwrite};
use super::region::Vmcs;
use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::exit::VmExitReason;
use crate::fields;

const HOST_RSP: u64 = fields::HOST_RSP.raw();
const HOST_RIP: u64 = fields::HOST_RIP.raw();

/// The current VMCS, from [`VmxOperation::load`](super::VmxOperation::load): it borrows the
/// token of VMX operation and the [`Vmcs`], so while it lives no other VMCS can be made current
/// or cleared through this API. Dropping it executes nothing.
pub struct CurrentVmcs<'v> {
    vmcs: &'v mut Vmcs,
    _op: PhantomData<&'v mut ()>,
}

impl<'v> CurrentVmcs<'v> {
    /// The handle for `vmcs`, which the caller has just made current.
    pub(super) fn new(vmcs: &'v mut Vmcs) -> Self {
        CurrentVmcs { vmcs, _op: PhantomData }
    }
}

impl CurrentVmcs<'_> {
    /// The VMCS's physical address.
    pub fn phys(&self) -> u64 {
        self.vmcs.phys()
    }

    /// Its launch state is "launched" ([`Vmcs::is_launched`]).
    pub fn is_launched(&self) -> bool {
        self.vmcs.launched
    }

    /// The VMWRITEs of HOST_RSP and HOST_RIP VM entries made so far ([`Vmcs::host_state_writes`]).
    pub fn host_state_writes(&self) -> u64 {
        self.vmcs.host.writes
    }

    /// A VMWRITE of HOST_RSP or HOST_RIP by anyone but the entry code: the next entry writes it.
    #[inline(always)]
    fn forget_host(&mut self, encoding: u64) {
        match encoding {
            HOST_RSP => self.vmcs.host.rsp = 0,
            HOST_RIP => self.vmcs.host.rip = 0,
            _ => {}
        }
    }

    /// The launch state after an entry attempt: a VMLAUNCH that reached the guest (a VM exit
    /// that is not a VM-entry failure) makes it "launched" (SDM 26.1, 26.8).
    fn entered(&mut self, launch: bool, r: Result<VmExitReason, VmxError>) -> Result<VmExitReason, VmxError> {
        if launch && matches!(r, Ok(e) if !e.entry_failure()) {
            self.vmcs.launched = true;
        }
        r
    }

    /// VMREAD with the instruction's own error.
    #[inline(always)]
    pub fn vmread(&self, encoding: u64) -> Result<u64, VmxError> {
        vmread(encoding)
    }

    /// VMWRITE with the instruction's own error.
    #[inline(always)]
    pub fn vmwrite(&mut self, encoding: u64, value: u64) -> Result<(), VmxError> {
        self.forget_host(encoding);
        vmwrite(encoding, value)
    }

    /// VMPTRST: the current-VMCS pointer (this VMCS's physical address).
    pub fn current_vmcs_pointer(&self) -> Result<u64, VmxError> {
        vmptrst()
    }

    /// INVEPT (see [`VmxOperation::invept`](super::VmxOperation::invept)); with a current VMCS a failure is decoded.
    pub fn invept(&self, kind: u64, eptp: u64) -> Result<(), VmxError> {
        invept(kind, eptp)
    }

    /// INVVPID (see [`VmxOperation::invvpid`](super::VmxOperation::invvpid)).
    pub fn invvpid(&self, kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
        invvpid(kind, vpid, address)
    }

    /// VMLAUNCH: enter the guest the VMCS describes; returns the exit-reason field at the next VM
    /// exit (a VM-entry failure reported as a VM exit has [`VmExitReason::entry_failure`] set).
    ///
    /// # Safety
    /// The VMCS's host state must describe this context (HOST_CR3, segment selectors, GDTR,
    /// IDTR, TR, FS/GS bases, EFER/PAT when loaded): HOST_RSP and HOST_RIP are set here (written
    /// only when they differ from what this VMCS holds: its own writes are remembered, VMCLEAR
    /// keeps them, a VMWRITE of either through this handle makes the entry write it). The guest
    /// may access whatever memory its paging (and EPT, if enabled) maps, and must not corrupt the
    /// host's memory, stack or page tables behind the compiler's back.
    pub unsafe fn launch(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        let r = unsafe { enter_guest(regs, core::ptr::null_mut(), &mut self.vmcs.host, false) };
        self.entered(true, r)
    }

    /// VMRESUME: as [`CurrentVmcs::launch`] for a launched VMCS.
    ///
    /// # Safety
    /// As [`CurrentVmcs::launch`].
    pub unsafe fn resume(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { enter_guest(regs, core::ptr::null_mut(), &mut self.vmcs.host, true) }
    }

    /// VMLAUNCH (`resume` false) or VMRESUME with the guest's x87/SSE state as well: `fpu` is
    /// loaded (FXRSTOR) just before the entry and saved (FXSAVE) right at the exit, before any
    /// compiled code can touch a vector register. For a hypervisor whose own code uses SSE between
    /// exits (Rust does); CR4.OSFXSR must be set.
    ///
    /// # Safety
    /// As [`CurrentVmcs::launch`]; `fpu` holds a valid FXSAVE image (e.g. one FXSAVE made).
    pub unsafe fn run(
        &mut self,
        regs: &mut GuestRegisters,
        fpu: &mut FpuState,
        resume: bool,
    ) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        let r = unsafe { enter_guest(regs, fpu, &mut self.vmcs.host, resume) };
        self.entered(!resume, r)
    }
}

impl VmcsRead for CurrentVmcs<'_> {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        vmread(encoding).map_err(|e| e.into_vmcs_error(encoding))
    }
}

impl VmcsWrite for CurrentVmcs<'_> {
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.forget_host(encoding);
        vmwrite(encoding, value).map_err(|e| e.into_vmcs_error(encoding))
    }
}
