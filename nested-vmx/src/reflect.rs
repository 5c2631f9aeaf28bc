//! The nested VM exit (KVM's nested_vmx_vmexit, nested.c:5074): L2's state from vmcs02 into
//! vmcs12 with the exit information, then L1's state from vmcs12's host-state fields into vmcs01,
//! so that L1 continues at its host RIP as after a VM exit on the machine.
//!
//! Both go through the generated routines (`vmcs::copy::exit_to_vmcs12`, `sync_rare` and
//! `load_host_state`, KVM's sync_vmcs02_to_vmcs12, prepare_vmcs12 and load_vmcs12_host_state),
//! with this L0's hooks giving the exit facts as vmcs02 reported them. One departure from KVM's
//! constants, kept from the SDM (28.5.2): a null DS/ES/FS/GS/SS selector loads an unusable segment
//! (the hooks' access rights).
//!
//! The rare guest state (`copy::sync_rare`: segments, descriptor tables, pending debug
//! exceptions) stays in vmcs02 after the exit, as KVM defers it (`need_sync_vmcs02_to_vmcs12_rare`):
//! L0 copies it into vmcs12 only when something needs it there ([`NestedVmx::rare_pending`]):
//! L1's VMREAD of such a field, VMCLEAR or VMPTRLD releasing vmcs12 (both answer
//! [`crate::vmx::Outcome::SyncRare`] first), saving nested state. Until then VMLAUNCH/VMRESUME
//! checks vmcs12 as KVM does ([`vmcs::entry::Selection::KVM_ENTRY`]).

use vmcs::copy::{self, ExitKind};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::exit_facts::ExitFacts;
use crate::hooks::L0Hooks;
use crate::vmcs02::L0Policy;
use crate::vmx::NestedVmx;

fn get(v12: &Vmcs12, e: u64) -> u64 {
    v12.read_raw(e).unwrap_or(0)
}

impl NestedVmx {
    /// An exit of L2 that goes to L1 (or vmcs02's VM entry failing on guest state): vmcs02 is
    /// current; `l1_efer` is L1's EFER before the entry.
    pub fn sync_exit<V>(&mut self, vmcs02: &V, l0_ept: bool, l1_efer: u64) -> Result<(), VmcsError>
    where
        V: VmcsRead + ?Sized,
    {
        let caps = *self.caps.host();
        // Each exit fact read once, and only if a hook asks for it.
        let facts = ExitFacts::unread(vmcs02);
        let reason = facts.read_raw(F::VM_EXIT_REASON.raw())? as u32;
        let policy = L0Policy::default();
        let pae_paging = crate::vmcs02::pae_paging(self.current.vmcs12.inner(), false, l1_efer);
        let mut hooks =
            L0Hooks { policy: &policy, l0_ept, l1_efer, run_pending: false, pae_paging, mem: None, exit: Some(&facts) };
        let kind = if reason >> 31 == 1 { ExitKind::FailedEntry } else { ExitKind::Exit };
        copy::exit_to_vmcs12(kind, &facts, &mut self.current.vmcs12, &caps, &mut hooks).map_err(|e| e.into_vmcs())?;
        if kind == ExitKind::Exit {
            // The exit saved L2's activity state in vmcs02; the sync gave vmcs12 the same.
            self.vmcs02_activity = Some(get(self.current.vmcs12.inner(), F::GUEST_ACTIVITY_STATE.raw()));
        }
        Ok(())
    }

    /// Whether vmcs12's rare guest state is still in vmcs02 (a nested exit deferred it).
    pub fn rare_pending(&self) -> bool {
        self.current.vmcs12.lazy_pending()
    }

    /// The deferred rare guest state from vmcs02 (current) into vmcs12, keeping what L1 wrote
    /// since the exit (KVM's copy_vmcs02_to_vmcs12_rare); nothing when none is pending.
    pub fn sync_rare<V>(&mut self, vmcs02: &V) -> Result<(), VmcsError>
    where
        V: VmcsRead + ?Sized,
    {
        let caps = *self.caps.host();
        copy::sync_rare(vmcs02, &mut self.current.vmcs12, &caps)
    }

    /// A nested VM entry that fails after L0's checks (VM exit 33/34 with bit 31): vmcs12 gets
    /// only the reason and the qualification; launch state and the injected event stay.
    pub fn fail_entry(&mut self, reason: u32, qualification: u64) -> Result<(), VmcsError> {
        let v12 = self.current.vmcs12.inner_mut();
        v12.write_raw(F::VM_EXIT_REASON.raw(), reason as u64)?;
        v12.write_raw(F::EXIT_QUALIFICATION.raw(), qualification)
    }

    /// L1's state after the nested exit, from vmcs12's host-state fields into vmcs01 (current).
    /// CR0/CR4 go to both the guest field and the read shadow: vmcs12's host values satisfy
    /// L1's fixed bits (checked at entry), so whatever bits L0 owns read the same.
    pub fn load_l1_host_state<V>(&mut self, vmcs01: &mut V) -> Result<(), VmcsError>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
    {
        let v12 = self.current.vmcs12.inner();
        let caps = *self.caps.host();
        let policy = L0Policy::default();
        let mut hooks = L0Hooks {
            policy: &policy,
            l0_ept: true, // this L0 runs L1 on EPT
            l1_efer: vmcs01.read_raw(F::GUEST_IA32_EFER.raw()).unwrap_or(0),
            run_pending: false,
            pae_paging: false,
            mem: None,
            exit: None,
        };
        copy::load_host_state(v12, vmcs01, &caps, &mut hooks).map_err(|e| e.into_vmcs())?;
        // vmcs01's IA-32e mode entry control follows L1's EFER.LMA (KVM: vmx_set_efer).
        let ia32e = vmcs::controls::VmEntryControls::IA32E_MODE_GUEST.bits() as u64;
        let exit = get(v12, F::VM_EXIT_CONTROLS.raw()) as u32;
        let lma = if exit & vmcs::controls::VmExitControls::LOAD_IA32_EFER.bits() != 0 {
            get(v12, F::HOST_IA32_EFER.raw()) & crate::hooks::EFER_LMA != 0
        } else {
            exit & vmcs::controls::VmExitControls::HOST_ADDRESS_SPACE_SIZE.bits() != 0
        };
        // Known and unchanged: the control already says it.
        if self.l1_lma != Some(lma) {
            let entry01 = vmcs01.read_raw(F::VM_ENTRY_CONTROLS.raw())?;
            let want = entry01 & !ia32e | if lma { ia32e } else { 0 };
            if want != entry01 {
                vmcs01.write_raw(F::VM_ENTRY_CONTROLS.raw(), want)?;
            }
            self.l1_lma = Some(lma);
        }
        // What this L0 clears beyond KVM's list: no pending debug exception carried over (read
        // first: L1's VMLAUNCH/VMRESUME exit rarely saved one). vmcs01 also holds the active
        // state (an instruction ran) and no event to inject (every VM exit clears that valid
        // bit; L0 injects only into an L1 it resumes), so neither is written.
        if vmcs01.read_raw(F::GUEST_PENDING_DBG_EXCEPTIONS.raw())? != 0 {
            vmcs01.write_raw(F::GUEST_PENDING_DBG_EXCEPTIONS.raw(), 0)?;
        }
        Ok(())
    }
}
