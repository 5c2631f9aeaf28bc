//! The current-VMCS handle: VMREAD/VMWRITE, VM entry, and VMCLEAR when dropped.

use core::marker::PhantomData;

use super::error::VmxError;
use super::guest::{FpuState, GuestRegisters, enter_guest};
use super::insn::{invept, invvpid, vmclear, vmptrst, vmread, vmwrite};
use super::operation::VmxRegion;
use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::exit::VmExitReason;

/// The current VMCS, loaded through a [`VmxOperation`](super::VmxOperation). Dropping it does VMCLEAR.
pub struct CurrentVmcs<'v> {
    phys: u64,
    _op: PhantomData<&'v mut ()>,
    _region: PhantomData<&'v mut VmxRegion>,
}

impl CurrentVmcs<'_> {
    /// The handle for the VMCS at `phys`, which the caller has just made current.
    pub(super) fn new(phys: u64) -> Self {
        CurrentVmcs { phys, _op: PhantomData, _region: PhantomData }
    }

    /// The VMCS's physical address.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// VMREAD with the instruction's own error.
    #[inline(always)]
    pub fn vmread(&self, encoding: u64) -> Result<u64, VmxError> {
        vmread(encoding)
    }

    /// VMWRITE with the instruction's own error.
    #[inline(always)]
    pub fn vmwrite(&mut self, encoding: u64, value: u64) -> Result<(), VmxError> {
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
    /// IDTR, TR, FS/GS bases, EFER/PAT when loaded): HOST_RSP and HOST_RIP are set here. The guest
    /// may access whatever memory its paging (and EPT, if enabled) maps, and must not corrupt the
    /// host's memory, stack or page tables behind the compiler's back.
    pub unsafe fn launch(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { enter_guest(regs, core::ptr::null_mut(), false) }
    }

    /// VMRESUME: as [`CurrentVmcs::launch`] for a launched VMCS.
    ///
    /// # Safety
    /// As [`CurrentVmcs::launch`].
    pub unsafe fn resume(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { enter_guest(regs, core::ptr::null_mut(), true) }
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
        unsafe { enter_guest(regs, fpu, resume) }
    }

    /// Stop using this handle without VMCLEAR: the VMCS stays active (not current once another
    /// is loaded) and keeps its launch state, for [`VmxOperation::reload`](super::VmxOperation::reload). How an L0 switches
    /// between the VMCS running L1 and the one running L2.
    pub fn set_aside(self) {
        core::mem::forget(self);
    }
}

impl Drop for CurrentVmcs<'_> {
    fn drop(&mut self) {
        // SAFETY: `phys` was loaded by VmxOperation::load, whose caller promised it names a live
        // VMCS region borrowed for this handle's lifetime.
        let _ = unsafe { vmclear(self.phys) };
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
        vmwrite(encoding, value).map_err(|e| e.into_vmcs_error(encoding))
    }
}
