//! L1's VMX state as a `KVM_GET_NESTED_STATE` blob (`vmcs::nested_state`, over the generated
//! vmcs12 shape), at any exit, L2 running or not, and restored from one with KVM's
//! `KVM_SET_NESTED_STATE` rules; and a vmcs12 carried through an older released layout with the
//! generated translators, as a restore into a vCPU of that layout does.
//!
//! Saving while L2 runs: with vmcs02 current, [`NestedVmx::sync_for_save`] brings L2's state into
//! vmcs12 (KVM's vmx_get_nested_state), then [`NestedVmx::save_state`] writes the blob. Restoring:
//! [`NestedVmx::restore_state`] checks the blob and takes its pointers and vmcs12 (every field
//! dirty); with L2 running, L0 then rebuilds vmcs02 by a nested entry whose `run_pending` the
//! saved flags give (KVM: a normal entry, vmcs12 dirty).

use vmcs::copy::{self, Tracked};
use vmcs::nested_state::{
    self, EmitError, INVALID_GPA, KVM_STATE_NESTED_GUEST_MODE, KVM_STATE_NESTED_RUN_PENDING, NestedStateBuilder,
    NestedStateError, VcpuContext,
};
use vmcs::translate::{TranslateInto, Translation};
use vmcs::{Layout, Vmcs12, VmcsError, VmcsRead};

use crate::current::{Current, REGION_SIZE};
use crate::exit_facts::ExitFacts;
use crate::hooks::L0Hooks;
use crate::vmcs02::L0Policy;
use crate::vmx::{INVALID_POINTER, NestedVmx};

/// The longest blob [`NestedVmx::save_state`] writes: the header and one vmcs12 area (no shadow
/// vmcs12: L1 is not offered VMCS shadowing for L2).
pub const MAX_STATE: usize = nested_state::HEADER_SIZE + REGION_SIZE;

/// What a restored state says L0 must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restored {
    /// L2 was running: rebuild vmcs02 from vmcs12 and enter L2.
    pub guest_mode: bool,
    /// A VMLAUNCH/VMRESUME was being emulated (the entry's event injection still to happen).
    pub run_pending: bool,
}

impl NestedVmx {
    /// With vmcs02 current: L2's state (when `in_l2`) and the rare fields into vmcs12, before
    /// saving (`copy::sync_for_save`).
    pub fn sync_for_save<V: VmcsRead + ?Sized>(
        &mut self,
        vmcs02: &V,
        in_l2: bool,
        l1_efer: u64,
    ) -> Result<(), VmcsError> {
        let caps = *self.caps.host();
        let policy = L0Policy::default();
        let pae_paging = crate::vmcs02::pae_paging(self.current.vmcs12.inner(), false, l1_efer);
        // L2's state as the last exit left it in vmcs02 (activity, DR7, EFER: read, not assumed).
        let facts = ExitFacts::unread(vmcs02);
        let mut hooks = L0Hooks {
            policy: &policy,
            l0_ept: true,
            l1_efer,
            run_pending: false,
            pae_paging,
            mem: None,
            exit: Some(&facts),
        };
        copy::sync_for_save(in_l2, &facts, &mut self.current.vmcs12, &caps, &mut hooks).map_err(|e| e.into_vmcs())
    }

    /// `KVM_GET_NESTED_STATE`: the blob for this vCPU in `out`; returns its length.
    pub fn save_state(&self, in_l2: bool, run_pending: bool, out: &mut [u8]) -> Result<usize, EmitError> {
        let Some(vmxon) = self.vmxon_ptr else {
            return NestedStateBuilder::<&[u8]>::new().emit(out);
        };
        let mut flags = 0;
        if in_l2 {
            flags |= KVM_STATE_NESTED_GUEST_MODE;
        }
        if run_pending {
            flags |= KVM_STATE_NESTED_RUN_PENDING;
        }
        let mut region = [0u8; REGION_SIZE];
        let current = self.current_ptr != INVALID_POINTER;
        if current {
            self.current.to_region(&mut region);
        }
        let vmcs12_pa = if current { self.current_ptr } else { INVALID_GPA };
        NestedStateBuilder::new()
            .flags(flags)
            .vmxon_pa(vmxon)
            .vmcs12_pa(vmcs12_pa)
            .vmcs12(current.then_some(&region[..]))
            .emit(out)
    }

    /// `KVM_SET_NESTED_STATE`: KVM's rules (`vmcs::nested_state::check`) for a vCPU like
    /// `vcpu`, then this vCPU takes the VMXON and current-VMCS pointers and vmcs12 (every group
    /// dirty, so the next entry copies everything).
    pub fn restore_state(&mut self, blob: &[u8], vcpu: &VcpuContext) -> Result<Restored, NestedStateError> {
        let state = nested_state::check(blob, vcpu)?;
        let hdr = state.vmx_header();
        self.vmxon_ptr = (hdr.vmxon_pa != INVALID_GPA).then_some(hdr.vmxon_pa);
        self.l1_lma = None;
        self.current_ptr = hdr.vmcs12_pa;
        if let Some(area) = state.vmcs12_area() {
            let mut region = [0u8; REGION_SIZE];
            let n = area.len().min(REGION_SIZE);
            region[..n].copy_from_slice(&area[..n]);
            self.current = Current::from_region(&region);
        }
        Ok(Restored {
            guest_mode: state.flags() & KVM_STATE_NESTED_GUEST_MODE != 0,
            run_pending: state.flags() & KVM_STATE_NESTED_RUN_PENDING != 0,
        })
    }

    /// Carry vmcs12 through the older layout `Old` and back (what a restore into a vCPU of that
    /// layout does with the generated translators): the encodings `Old` cannot hold are lost
    /// (reset to 0 here) and returned.
    pub fn through_layout<Old>(&mut self) -> Translation
    where
        Old: Layout + Default + TranslateInto<Vmcs12>,
        Vmcs12: TranslateInto<Old>,
    {
        let mut old = Old::default();
        let lost = self.current.vmcs12.inner().translate_into(&mut old);
        let mut back = Vmcs12::zeroed();
        old.translate_into(&mut back);
        self.current.vmcs12 = Tracked::new(back);
        lost
    }
}
