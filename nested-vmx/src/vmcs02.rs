//! The nested VM entry: vmcs02, the VMCS that runs L2, from vmcs12 (KVM's prepare_vmcs02_early /
//! prepare_vmcs02, nested.c:2434 and 2763).
//!
//! The state moves through the generated routines (`vmcs::copy::nested_entry`, with L1's VMWRITEs
//! tracked per field); what KVM computes rather than copies comes from this L0's hooks
//! ([`crate::hooks::L0Hooks`]): L0's controls merged with L1's ([`L0Policy`]), the VPID and EPT
//! pointer L2 runs with, the EFER L2 gets ([`l2_efer`]), the PAE PDPTEs L2's CR3 names when L2 runs
//! on L0's EPT. vmcs02's VM-exit controls are L0's (set here, outside the schema's sets).

use vmcs::copy;
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsRead, VmcsWrite};

use crate::hooks::{EFER_LMA, L0Hooks};
pub use crate::hooks::{L0Policy, PrepareError, l2_efer};
use crate::vcpu::GuestMemory;
use crate::vmx::NestedVmx;

fn get(v12: &Vmcs12, e: u64) -> u64 {
    v12.read_raw(e).unwrap_or(0)
}

/// Whether L2 enters in PAE paging: vmcs12's CR0.PG and CR4.PAE with the EFER L2 gets (not L1's mode).
pub fn pae_paging(v12: &Vmcs12, run_pending: bool, l1_efer: u64) -> bool {
    let (cr0, cr4) = (get(v12, F::GUEST_CR0.raw()), get(v12, F::GUEST_CR4.raw()));
    let entry = get(v12, F::VM_ENTRY_CONTROLS.raw()) as u32;
    let lma = l2_efer(entry, get(v12, F::GUEST_IA32_EFER.raw()), run_pending, l1_efer) & EFER_LMA != 0;
    cr0 >> 31 & 1 == 1 && cr4 >> 5 & 1 == 1 && !lma
}

impl NestedVmx {
    /// Fill vmcs02 for L1's VMLAUNCH/VMRESUME of the current vmcs12; `l1_efer` is L1's EFER.
    /// vmcs02 must already hold L0's constant state (host state, MSR-list counts 0, CR3-target
    /// count 0). What L1 changed since the last entry is copied.
    pub fn prepare_vmcs02<V, M>(
        &mut self,
        vmcs02: &mut V,
        policy: &L0Policy,
        l1_efer: u64,
        mem: &M,
    ) -> Result<(), PrepareError>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory,
    {
        self.prepare_vmcs02_for(vmcs02, policy, l1_efer, mem, true)
    }

    /// As [`Self::prepare_vmcs02`] with KVM's `run_pending` given: false rebuilds vmcs02 for an L2
    /// that was running when its state was saved (no event injection, no pending-run state).
    pub fn prepare_vmcs02_for<V, M>(
        &mut self,
        vmcs02: &mut V,
        policy: &L0Policy,
        l1_efer: u64,
        mem: &M,
        run_pending: bool,
    ) -> Result<(), PrepareError>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory,
    {
        let v12 = *self.current.vmcs12.inner();
        let caps = *self.caps.host();
        let mut hooks = L0Hooks {
            policy,
            l0_ept: policy.ept_pointer.is_some(),
            l1_efer,
            run_pending,
            pae_paging: pae_paging(&v12, run_pending, l1_efer),
            mem: Some(mem),
            exit: None,
        };
        copy::nested_entry(&mut self.current.vmcs12, vmcs02, &caps, &mut hooks)?;
        // vmcs02's exit controls: L0's (the exit goes to L0), and the ones of L1's L0 passes on.
        let exit = policy.exit as u64 | get(&v12, F::VM_EXIT_CONTROLS.raw()) & policy.exit_from_l1 as u64;
        vmcs02.write_raw(F::VM_EXIT_CONTROLS.raw(), exit)?;
        // L1's HLT or wait-for-SIPI activity: this L0 lets the processor run L2 in it (KVM halts
        // the vCPU instead and enters vmcs02 active). Written when vmcs02 may hold another.
        let activity = get(&v12, F::GUEST_ACTIVITY_STATE.raw());
        if self.vmcs02_activity != Some(activity) {
            vmcs02.write_raw(F::GUEST_ACTIVITY_STATE.raw(), activity)?;
            self.vmcs02_activity = Some(activity);
        }
        Ok(())
    }
}
