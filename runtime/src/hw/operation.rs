//! VMX operation: the VMXON region and the token that exists between VMXON and VMXOFF.

use core::marker::PhantomData;

use super::error::{EnterError, VmxError};
use super::insn::{invept, invvpid, vmclear, vmptrld, vmptrst, vmxoff, vmxon};
use super::msr::{
    CR4_VMXE, enable_vmx_in_feature_control, read_cr0, read_cr4, read_vmx_caps, vmx_supported, write_cr0, write_cr4,
};
use super::vmcs::CurrentVmcs;
use crate::caps::{Msr, VmxCaps};
use crate::restore::basic_revision_id;

/// A 4 KiB VMXON or VMCS region.
#[repr(C, align(4096))]
pub struct VmxRegion(pub [u8; 4096]);

impl VmxRegion {
    /// A zeroed region (the revision identifier is written when it is used).
    pub const fn new() -> Self {
        VmxRegion([0; 4096])
    }

    fn set_revision(&mut self, revision: u32) {
        self.0[..4].copy_from_slice(&basic_revision_id(revision as u64).to_le_bytes());
        self.0[4..8].fill(0);
    }
}

impl Default for VmxRegion {
    fn default() -> Self {
        Self::new()
    }
}

/// The token of VMX operation on this logical processor: exists between VMXON and VMXOFF.
/// Not `Send`: VMX operation belongs to one logical processor.
pub struct VmxOperation<'r> {
    caps: VmxCaps,
    vmxon_phys: u64,
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
            region.set_revision(basic_revision_id(caps.raw(Msr::Basic.index())));
            if let Err(e) = vmxon(phys) {
                write_cr4(old_cr4);
                return Err(EnterError::Vmxon(e));
            }
            Ok(VmxOperation { caps, vmxon_phys: phys, old_cr4, _region: PhantomData, _not_send: PhantomData })
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

    /// Initialise `region` as a fresh VMCS (revision identifier, VMCLEAR) and make it current
    /// (VMPTRLD). The handle borrows the token: one current VMCS at a time through this API.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, which is not the VMXON region.
    pub unsafe fn load<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> Result<CurrentVmcs<'v>, VmxError> {
        region.set_revision(self.revision());
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe {
            vmclear(phys)?;
            vmptrld(phys)?;
        }
        Ok(CurrentVmcs::new(phys))
    }

    /// A handle for the VMCS that is current already (no instruction): how a hypervisor that
    /// switches VMCSs often keeps one current across calls without repeating VMPTRLD.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, and it is this processor's current VMCS (the
    /// last VMPTRLD loaded it and no VMCLEAR or VMPTRLD came since).
    pub unsafe fn assume_current<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> CurrentVmcs<'v> {
        let _ = region;
        CurrentVmcs::new(phys)
    }

    /// As [`Self::load`] for a shadow VMCS (revision identifier with bit 31 set, SDM 25.10): one
    /// that VMREAD/VMWRITE in VMX non-root operation read and write instead of exiting, when the
    /// current VMCS enables "VMCS shadowing" and names it in its VMCS link pointer. It can be
    /// current for VMREAD/VMWRITE, never entered.
    ///
    /// # Safety
    /// As [`Self::load`]; the processor supports VMCS shadowing.
    pub unsafe fn load_shadow<'v>(
        &'v mut self,
        region: &'v mut VmxRegion,
        phys: u64,
    ) -> Result<CurrentVmcs<'v>, VmxError> {
        region.set_revision(self.revision());
        region.0[3] |= 0x80;
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe {
            vmclear(phys)?;
            vmptrld(phys)?;
        }
        Ok(CurrentVmcs::new(phys))
    }

    /// Make a VMCS current again with VMPTRLD alone, keeping its contents and launch state: one
    /// that [`Self::load`] initialized and [`CurrentVmcs::set_aside`] put aside.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, which was loaded before on this processor and
    /// not cleared since (else its contents are undefined).
    pub unsafe fn reload<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> Result<CurrentVmcs<'v>, VmxError> {
        let _ = region;
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe { vmptrld(phys)? };
        Ok(CurrentVmcs::new(phys))
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
