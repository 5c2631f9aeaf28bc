//! VMX memory regions: the 4 KiB page VMXON and VMPTRLD name, and [`Vmcs`], a VMCS region with
//! its physical address and the state the SDM gives every VMCS (25.1: active or not, current or
//! not, launch state clear or launched).

use crate::restore::basic_revision_id;

/// A 4 KiB VMXON or VMCS region: the memory itself, aligned as VMXON and VMPTRLD require.
#[repr(C, align(4096))]
pub struct VmxRegion(pub [u8; 4096]);

impl VmxRegion {
    /// A zeroed region (the revision identifier is written when it is used).
    pub const fn new() -> Self {
        VmxRegion([0; 4096])
    }

    /// Bytes 0-3: the revision identifier, with bit 31 set for a shadow VMCS (SDM 25.2); bytes
    /// 4-7: the VMX-abort indicator, 0.
    pub(super) fn set_revision(&mut self, revision: u32, shadow: bool) {
        let id = basic_revision_id(revision as u64) | (shadow as u32) << 31;
        self.0[..4].copy_from_slice(&id.to_le_bytes());
        self.0[4..8].fill(0);
    }
}

impl Default for VmxRegion {
    fn default() -> Self {
        Self::new()
    }
}

/// A VMCS: its region, the region's physical address, and the state VMCLEAR, VMPTRLD and
/// VMLAUNCH give it as software can know it. Made by
/// [`VmxOperation::vmcs`](super::VmxOperation::vmcs) (revision identifier written, VMCLEAR) and
/// used through [`VmxOperation::load`](super::VmxOperation::load) and
/// [`VmxOperation::clear`](super::VmxOperation::clear).
///
/// The region is borrowed for `'static` (a static, or a leaked allocation): while a VMCS is
/// active the processor may write its region at any time until VMCLEAR, so the memory must never
/// be reused behind it, even when the `Vmcs` is dropped without VMCLEAR.
pub struct Vmcs {
    region: &'static mut VmxRegion,
    phys: u64,
    shadow: bool,
    /// Loaded by VMPTRLD and not cleared since: the processor may hold it and write its region.
    pub(super) active: bool,
    /// Launch state "launched": a VMLAUNCH entered the guest and no VMCLEAR came since.
    pub(super) launched: bool,
    /// HOST_RSP and HOST_RIP as the VM-entry code last wrote them into this VMCS.
    pub(super) host: HostCache,
}

/// What the VM-entry code knows of a VMCS's HOST_RSP and HOST_RIP: the values it last wrote (0:
/// unknown, never a value it writes), so that it VMWRITEs them only when they change (as KVM's
/// vmx_update_host_rsp does), and how many VMWRITEs it made. VMCLEAR keeps them (it writes the
/// VMCS's data into the region, VMPTRLD reads it back); any other VMWRITE of either field through
/// [`CurrentVmcs`](super::CurrentVmcs) forgets the field's value. The entry assembly reads and
/// writes it at these offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HostCache {
    /// Offset 0: HOST_RSP.
    pub(super) rsp: u64,
    /// Offset 8: HOST_RIP.
    pub(super) rip: u64,
    /// Offset 16: VMWRITEs of either field the entry code made.
    pub(super) writes: u64,
}

impl Vmcs {
    /// A VMCS over `region` as it is, clear and inactive, with no instruction: a region that
    /// VMCLEAR wrote (VMCLEAR leaves the launch state clear and the whole VMCS in the region),
    /// or a byte-for-byte copy of one.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`; the region holds an image that VMCLEAR
    /// wrote on this processor (and the revision identifier of this processor).
    pub unsafe fn from_cleared(region: &'static mut VmxRegion, phys: u64) -> Self {
        let shadow = region.0[3] & 0x80 != 0;
        Vmcs { region, phys, shadow, active: false, launched: false, host: HostCache::default() }
    }

    /// The region's physical address, as VMPTRLD and VMPTRST name it.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// A shadow VMCS (bit 31 of the revision identifier, SDM 25.10): VMREAD and VMWRITE in VMX
    /// non-root operation may read it; VM entry never enters it.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// Whether VMPTRLD loaded it and no VMCLEAR came since: an active VMCS's region belongs to
    /// the processor.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Its launch state is "launched": VMRESUME enters it, VMLAUNCH fails (VM-instruction error
    /// 4). "Clear" after VMCLEAR and until a VMLAUNCH enters the guest (a VMLAUNCH that fails, or
    /// ends in a VM-entry failure exit, leaves it clear).
    pub fn is_launched(&self) -> bool {
        self.launched
    }

    /// How many VMWRITEs of HOST_RSP and HOST_RIP VM entries into this VMCS made: each entry
    /// writes a field only when its value differs from what the VMCS holds (the stack pointer
    /// at the entry, the exit landing), so an L0 entering from the same place writes them once.
    pub fn host_state_writes(&self) -> u64 {
        self.host.writes
    }

    /// The region's bytes, when the VMCS is not active (after VMCLEAR the region holds the whole
    /// VMCS in the processor's format): e.g. to copy it into another region for
    /// [`Vmcs::from_cleared`]. `None` while active: the processor may be writing it.
    pub fn image(&self) -> Option<&[u8; 4096]> {
        (!self.active).then_some(&self.region.0)
    }

    pub(super) fn new(region: &'static mut VmxRegion, phys: u64, revision: u32, shadow: bool) -> Self {
        region.set_revision(revision, shadow);
        Vmcs { region, phys, shadow, active: false, launched: false, host: HostCache::default() }
    }
}
