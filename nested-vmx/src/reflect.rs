//! The nested VM exit (KVM's nested_vmx_vmexit, nested.c:5074): L2's state from vmcs02 into
//! vmcs12 with the exit information, then L1's state from vmcs12's host-state fields into vmcs01,
//! so that L1 continues at its host RIP as after a VM exit on the machine.
//!
//! vmcs02 -> vmcs12 goes through the generated `vmcs::copy::sync_rare`, `sync` and
//! `sync_exit_info`; until the copy-semantics issue's hooks land, the treatments that are not
//! plain copies are here: only the "IA-32e mode guest" bit of the entry controls comes back, the
//! launch state and the cleared valid bit of the injected event, and a failed entry changing only
//! the reason and qualification. The host-state load follows SDM Vol. 3C 28.5 (KVM's
//! load_vmcs12_host_state, nested.c:4801).

use vmcs::controls::{VmEntryControls as Entry, VmExitControls as Exit};
use vmcs::copy;
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::vmcs02::Conditions;
use crate::vmx::NestedVmx;

const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

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
        let before = *self.current.vmcs12.inner();
        let caps = *self.caps.caps();
        let reason = vmcs02.read_raw(F::VM_EXIT_REASON.raw())?;
        let cond = Conditions::new(&before, false, l0_ept, l1_efer);
        let v12 = self.current.vmcs12.inner_mut();
        copy::sync_rare(vmcs02, v12, &caps, &cond)?;
        copy::sync(vmcs02, v12, &caps, &cond)?;
        // vmcs02's entry controls are L0's merge: only L2's IA-32e mode comes back.
        let ia32e = Entry::IA32E_MODE_GUEST.bits() as u64;
        let entry = get(&before, F::VM_ENTRY_CONTROLS.raw()) & !ia32e | get(v12, F::VM_ENTRY_CONTROLS.raw()) & ia32e;
        v12.write_raw(F::VM_ENTRY_CONTROLS.raw(), entry)?;
        if reason >> 31 == 1 {
            // A VM-entry failure: only the reason and the qualification change (SDM 27.8).
            v12.write_raw(F::VM_EXIT_REASON.raw(), reason)?;
            v12.write_raw(F::EXIT_QUALIFICATION.raw(), vmcs02.read_raw(F::EXIT_QUALIFICATION.raw())?)?;
            return Ok(());
        }
        copy::sync_exit_info(vmcs02, v12, &caps, &cond)?;
        v12.launch_state = 1;
        // The event L1 injected was delivered (or is in the IDT-vectoring information).
        let intr = get(v12, F::VM_ENTRY_INTR_INFO_FIELD.raw());
        v12.write_raw(F::VM_ENTRY_INTR_INFO_FIELD.raw(), intr & !(1 << 31))
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
    pub fn load_l1_host_state<V>(&self, vmcs01: &mut V) -> Result<(), VmcsError>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
    {
        let v12 = self.current.vmcs12.inner();
        let h = |e: u64| get(v12, e);
        let exit = h(F::VM_EXIT_CONTROLS.raw());
        let host64 = exit & Exit::HOST_ADDRESS_SPACE_SIZE.bits() as u64 != 0;
        let efer = if exit & Exit::LOAD_IA32_EFER.bits() as u64 != 0 {
            h(F::HOST_IA32_EFER.raw())
        } else {
            let l1 = vmcs01.read_raw(F::GUEST_IA32_EFER.raw())?;
            if host64 { l1 | EFER_LMA | EFER_LME } else { l1 & !(EFER_LMA | EFER_LME) }
        };
        let ia32e = Entry::IA32E_MODE_GUEST.bits() as u64;
        let entry01 = vmcs01.read_raw(F::VM_ENTRY_CONTROLS.raw())? & !ia32e | if host64 { ia32e } else { 0 };
        let cs_ar = if host64 { 0xa09b } else { 0xc09b };
        let data = |sel: u64| if sel & !7 == 0 { 0x1_0000 } else { 0xc093 };
        let writes = [
            (F::GUEST_IA32_EFER.raw(), efer),
            (F::VM_ENTRY_CONTROLS.raw(), entry01),
            (F::GUEST_CR0.raw(), h(F::HOST_CR0.raw())),
            (F::CR0_READ_SHADOW.raw(), h(F::HOST_CR0.raw())),
            (F::GUEST_CR4.raw(), h(F::HOST_CR4.raw())),
            (F::CR4_READ_SHADOW.raw(), h(F::HOST_CR4.raw())),
            (F::GUEST_CR3.raw(), h(F::HOST_CR3.raw())),
            (F::GUEST_RSP.raw(), h(F::HOST_RSP.raw())),
            (F::GUEST_RIP.raw(), h(F::HOST_RIP.raw())),
            (F::GUEST_RFLAGS.raw(), 0x2),
            (F::GUEST_CS_SELECTOR.raw(), h(F::HOST_CS_SELECTOR.raw())),
            (F::GUEST_CS_BASE.raw(), 0),
            (F::GUEST_CS_LIMIT.raw(), 0xffff_ffff),
            (F::GUEST_CS_AR_BYTES.raw(), cs_ar),
            (F::GUEST_SS_SELECTOR.raw(), h(F::HOST_SS_SELECTOR.raw())),
            (F::GUEST_SS_BASE.raw(), 0),
            (F::GUEST_SS_LIMIT.raw(), 0xffff_ffff),
            // SS keeps DPL 0 even when unusable (SDM 28.5.2).
            (F::GUEST_SS_AR_BYTES.raw(), data(h(F::HOST_SS_SELECTOR.raw()))),
            (F::GUEST_DS_SELECTOR.raw(), h(F::HOST_DS_SELECTOR.raw())),
            (F::GUEST_DS_BASE.raw(), 0),
            (F::GUEST_DS_LIMIT.raw(), 0xffff_ffff),
            (F::GUEST_DS_AR_BYTES.raw(), data(h(F::HOST_DS_SELECTOR.raw()))),
            (F::GUEST_ES_SELECTOR.raw(), h(F::HOST_ES_SELECTOR.raw())),
            (F::GUEST_ES_BASE.raw(), 0),
            (F::GUEST_ES_LIMIT.raw(), 0xffff_ffff),
            (F::GUEST_ES_AR_BYTES.raw(), data(h(F::HOST_ES_SELECTOR.raw()))),
            (F::GUEST_FS_SELECTOR.raw(), h(F::HOST_FS_SELECTOR.raw())),
            (F::GUEST_FS_BASE.raw(), h(F::HOST_FS_BASE.raw())),
            (F::GUEST_FS_LIMIT.raw(), 0xffff_ffff),
            (F::GUEST_FS_AR_BYTES.raw(), data(h(F::HOST_FS_SELECTOR.raw()))),
            (F::GUEST_GS_SELECTOR.raw(), h(F::HOST_GS_SELECTOR.raw())),
            (F::GUEST_GS_BASE.raw(), h(F::HOST_GS_BASE.raw())),
            (F::GUEST_GS_LIMIT.raw(), 0xffff_ffff),
            (F::GUEST_GS_AR_BYTES.raw(), data(h(F::HOST_GS_SELECTOR.raw()))),
            (F::GUEST_TR_SELECTOR.raw(), h(F::HOST_TR_SELECTOR.raw())),
            (F::GUEST_TR_BASE.raw(), h(F::HOST_TR_BASE.raw())),
            (F::GUEST_TR_LIMIT.raw(), 0x67),
            (F::GUEST_TR_AR_BYTES.raw(), 0x8b),
            (F::GUEST_LDTR_SELECTOR.raw(), 0),
            (F::GUEST_LDTR_BASE.raw(), 0),
            (F::GUEST_LDTR_LIMIT.raw(), 0),
            (F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000),
            (F::GUEST_GDTR_BASE.raw(), h(F::HOST_GDTR_BASE.raw())),
            (F::GUEST_GDTR_LIMIT.raw(), 0xffff),
            (F::GUEST_IDTR_BASE.raw(), h(F::HOST_IDTR_BASE.raw())),
            (F::GUEST_IDTR_LIMIT.raw(), 0xffff),
            (F::GUEST_SYSENTER_CS.raw(), h(F::HOST_IA32_SYSENTER_CS.raw())),
            (F::GUEST_SYSENTER_ESP.raw(), h(F::HOST_IA32_SYSENTER_ESP.raw())),
            (F::GUEST_SYSENTER_EIP.raw(), h(F::HOST_IA32_SYSENTER_EIP.raw())),
            (F::GUEST_DR7.raw(), 0x400),
            (F::GUEST_IA32_DEBUGCTL.raw(), 0),
            (F::GUEST_INTERRUPTIBILITY_INFO.raw(), 0),
            (F::GUEST_ACTIVITY_STATE.raw(), 0),
            (F::GUEST_PENDING_DBG_EXCEPTIONS.raw(), 0),
            (F::VM_ENTRY_INTR_INFO_FIELD.raw(), 0),
        ];
        for (f, v) in writes {
            vmcs01.write_raw(f, v)?;
        }
        Ok(())
    }
}
