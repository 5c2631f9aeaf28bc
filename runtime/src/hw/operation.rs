//! VMX operation: the VMXON region and the token that exists between VMXON and VMXOFF.

use core::marker::PhantomData;

use super::error::{EnterError, VmxError};
use super::insn::{invept, invvpid, vmclear, vmptrld, vmptrst, vmxoff, vmxon};
use super::msr::{
    CR4_VMXE, enable_vmx_in_feature_control, read_cr0, read_cr4, read_vmx_caps, vmx_supported, write_cr0, write_cr4,
};
use super::region::{Vmcs, VmxRegion};
use super::vmcs::CurrentVmcs;
use crate::caps::{Msr, VmxCaps};
use crate::restore::basic_revision_id;

/// The token of VMX operation on this logical processor: exists between VMXON and VMXOFF.
/// Not `Send`: VMX operation belongs to one logical processor.
pub struct VmxOperation<'r> {
    caps: VmxCaps,
    vmxon_phys: u64,
    /// The current-VMCS pointer as this token set it (`None`: no current VMCS). Every VMPTRLD
    /// and VMCLEAR of this API goes through the token, so it is what VMPTRST would say.
    current: Option<u64>,
    old_cr4: u64,
    _region: PhantomData<&'r mut VmxRegion>,
    _not_send: PhantomData<*mut ()>,
}

impl<'r> VmxOperation<'r> {
    /// Enter VMX operation: enable it in IA32_FEATURE_CONTROL if unlocked, apply the CR0/CR4
    /// FIXED0/FIXED1 MSRs with CR4.VMXE, write the revision identifier (IA32_VMX_BASIC bits
    /// 30:0) into `region` and execute VMXON on it.
    ///
    /// # Safety
    /// CPL 0; `phys` is the physical address of `region` (identity mapping, or the caller's
    /// translation); nothing else on this logical processor uses VMX while the token lives; the
    /// code runs on one logical processor until the token is dropped; CR0/CR4 changes (e.g.
    /// CR0.NE, CR0.PE/PG fixed to 1) are acceptable to the rest of the system.
    pub unsafe fn enter(region: &'r mut VmxRegion, phys: u64) -> Result<Self, EnterError> {
        if !vmx_supported() {
            return Err(EnterError::VmxUnsupported);
        }
        // SAFETY: CPL 0 (caller), VMX supported (checked): the MSRs below exist.
        unsafe {
            if !enable_vmx_in_feature_control() {
                return Err(EnterError::DisabledByFirmware);
            }
            let caps = read_vmx_caps();
            let old_cr4 = read_cr4();
            let fixed = |m: Msr| caps.raw(m.index());
            write_cr0((read_cr0() | fixed(Msr::Cr0Fixed0)) & fixed(Msr::Cr0Fixed1));
            write_cr4((old_cr4 | CR4_VMXE | fixed(Msr::Cr4Fixed0)) & fixed(Msr::Cr4Fixed1));
            region.set_revision(basic_revision_id(caps.raw(Msr::Basic.index())), false);
            if let Err(e) = vmxon(phys) {
                write_cr4(old_cr4);
                return Err(EnterError::Vmxon(e));
            }
            Ok(VmxOperation {
                caps,
                vmxon_phys: phys,
                current: None,
                old_cr4,
                _region: PhantomData,
                _not_send: PhantomData,
            })
        }
    }

    /// The capability MSRs of this processor, read at VMXON.
    pub fn caps(&self) -> &VmxCaps {
        &self.caps
    }

    /// The VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub fn revision(&self) -> u32 {
        basic_revision_id(self.caps.raw(Msr::Basic.index()))
    }

    /// The physical address of the VMXON region.
    pub fn vmxon_phys(&self) -> u64 {
        self.vmxon_phys
    }

    /// A fresh VMCS over `region`: the revision identifier written (bit 31 clear) and VMCLEAR,
    /// which initializes it (SDM 25.11.3): inactive, not current, launch state clear.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`.
    pub unsafe fn vmcs(&mut self, region: &'static mut VmxRegion, phys: u64) -> Result<Vmcs, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { self.fresh(region, phys, false) }
    }

    /// As [`Self::vmcs`] for a shadow VMCS (revision identifier with bit 31 set, SDM 25.10): one
    /// that VMREAD/VMWRITE in VMX non-root operation read and write instead of exiting, when the
    /// current VMCS enables "VMCS shadowing" and names it in its VMCS link pointer. Loading it
    /// fails (error 11) where the processor has no VMCS shadowing; it is never entered.
    ///
    /// # Safety
    /// As [`Self::vmcs`].
    pub unsafe fn shadow_vmcs(&mut self, region: &'static mut VmxRegion, phys: u64) -> Result<Vmcs, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { self.fresh(region, phys, true) }
    }

    unsafe fn fresh(&mut self, region: &'static mut VmxRegion, phys: u64, shadow: bool) -> Result<Vmcs, VmxError> {
        let mut vmcs = Vmcs::new(region, phys, self.revision(), shadow);
        // The region may have been current before (a static reused after its last `Vmcs`).
        vmcs.active = true;
        self.clear(&mut vmcs)?;
        Ok(vmcs)
    }

    /// Make `vmcs` the current VMCS, keeping its contents and launch state: VMPTRLD, or no
    /// instruction when it is current already. The handle borrows the token, so there is one
    /// handle at a time and it names the processor's current VMCS; dropping it executes nothing
    /// (the VMCS stays current and active until VMCLEAR or another VMPTRLD).
    pub fn load<'v>(&'v mut self, vmcs: &'v mut Vmcs) -> Result<CurrentVmcs<'v>, VmxError> {
        if self.current != Some(vmcs.phys()) {
            // SAFETY: `Vmcs` is made only for its region's physical address, holding the
            // revision identifier, and borrows the region for good (the processor may write it).
            unsafe { vmptrld(vmcs.phys())? };
            self.current = Some(vmcs.phys());
            vmcs.active = true;
        }
        Ok(CurrentVmcs::new(vmcs))
    }

    /// VMCLEAR `vmcs`, current or set aside: its data is written to its region, it is inactive
    /// and its launch state clear; if it was current, no VMCS is current afterwards (SDM 25.1).
    pub fn clear(&mut self, vmcs: &mut Vmcs) -> Result<(), VmxError> {
        // SAFETY: as in `load`.
        unsafe { vmclear(vmcs.phys())? };
        if self.current == Some(vmcs.phys()) {
            self.current = None;
        }
        vmcs.active = false;
        vmcs.launched = false;
        Ok(())
    }

    /// The physical address of the VMCS this token made current (by [`Self::load`]), `None`
    /// when there is none: what VMPTRST reports, without the instruction.
    pub fn current(&self) -> Option<u64> {
        self.current
    }

    /// VMPTRST: the current-VMCS pointer, `u64::MAX` when there is none.
    pub fn current_vmcs_pointer(&self) -> Result<u64, VmxError> {
        vmptrst()
    }

    /// INVEPT, single-context (1) or all-context (2).
    pub fn invept(&self, kind: u64, eptp: u64) -> Result<(), VmxError> {
        invept(kind, eptp)
    }

    /// INVVPID of `kind` (0 individual-address, 1 single-context, 2 all-context, 3 single-context
    /// retaining globals).
    pub fn invvpid(&self, kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
        invvpid(kind, vpid, address)
    }

    /// Leave VMX operation (VMXOFF) and restore CR4.
    pub fn exit(self) -> Result<(), VmxError> {
        let r = self.off();
        core::mem::forget(self);
        r
    }

    fn off(&self) -> Result<(), VmxError> {
        // SAFETY: VMX root operation holds while the token lives; no handle borrows it.
        unsafe {
            vmxoff()?;
            write_cr4(self.old_cr4);
        }
        Ok(())
    }
}

impl Drop for VmxOperation<'_> {
    fn drop(&mut self) {
        let _ = self.off();
    }
}
