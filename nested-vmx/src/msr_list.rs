//! vmcs12's MSR lists (SDM 26.4, 27.4, 27.6; KVM's nested_vmx_load_msr and nested_vmx_store_msr,
//! nested.c:1100 and 1183): L0 processes them in software, through the MSR access only it has
//! ([`Msrs`]), at the points the processor would.
//!
//! - VM entry: after vmcs02 is prepared (vmcs02 current), [`NestedVmx::load_entry_msrs`] writes
//!   each entry of the VM-entry MSR-load list as L2's WRMSR. The first entry that fails ends the
//!   entry with exit reason 34 and its 1-based index as the qualification; the ones before it stay
//!   loaded ([`EntryMsrFailure`]). Not on a state restore (KVM does not reload them either).
//! - Nested VM exit: with vmcs02 current after vmcs12's sync, [`NestedVmx::store_exit_msrs`]
//!   stores L2's value of each MSR of the VM-exit MSR-store list at the entry's bytes 15:8; with
//!   vmcs01 current after L1's host state, [`NestedVmx::load_exit_msrs`] writes the VM-exit
//!   MSR-load list as L1's WRMSR (also after an entry failure). A failure there is a VMX abort
//!   ([`VmxAbort`]): the processor would shut down, KVM makes it a triple fault of L1.
//!
//! The entry checks are KVM's (the vmentry-checks reference, M1-M6): bits 63:32 of an entry are
//! reserved; the x2APIC MSRs (0x800-0x8ff) while L1's APIC is in x2APIC mode and the microcode
//! MSRs (IA32_BIOS_UPDT_TRIG 0x79, IA32_BIOS_SIGN_ID 0x8b) are never in a list; a load list may not
//! name IA32_FS_BASE, IA32_GS_BASE or IA32_SMM_MONITOR_CTL, a store list not IA32_SMBASE; a
//! list longer than IA32_VMX_MISC bits 27:25 allow (512 × (N + 1) entries) fails at the first
//! entry beyond. An entry L1's memory does not hold fails as an unreadable one.

use vmcs::caps::Msr;
use vmcs::controls::VmExitControls as Exit;
use vmcs::fields as F;
use vmcs::{VmcsRead, VmcsWrite};

use crate::vcpu::{GuestMemory, Msrs};
use crate::vmx::NestedVmx;

/// An MSR-list entry's size in L1 memory: index (bits 31:0), reserved (63:32), data (127:64).
pub const ENTRY_SIZE: u64 = 16;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const IA32_BIOS_UPDT_TRIG: u32 = 0x79;
const IA32_BIOS_SIGN_ID: u32 = 0x8b;
const IA32_SMM_MONITOR_CTL: u32 = 0x9b;
const IA32_SMBASE: u32 = 0x9e;
const IA32_FS_BASE: u32 = 0xc000_0100;
const IA32_GS_BASE: u32 = 0xc000_0101;

/// The VM-entry MSR-load list failed at this entry (1-based): VM exit 34 with it as the
/// qualification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMsrFailure(pub u32);

/// A VMX abort of L1 and its indicator (SDM 27.7): 1 saving guest MSRs, 4 loading host MSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxAbort {
    StoreMsr = 1,
    LoadMsr = 4,
}

/// One list: its guest-physical address and entry count, from vmcs12.
#[derive(Clone, Copy)]
struct List {
    addr: u64,
    count: u64,
}

/// `nested_vmx_msr_check_common`: what no list may hold.
fn common_ok(index: u32, reserved: u32, x2apic: bool) -> bool {
    reserved == 0 && !(x2apic && index >> 8 == 0x8) && index != IA32_BIOS_UPDT_TRIG && index != IA32_BIOS_SIGN_ID
}

/// An entry's first quadword: (MSR index, reserved bits 63:32).
fn header<M: GuestMemory + ?Sized>(mem: &M, at: u64) -> Option<(u32, u32)> {
    mem.read_u64(at).ok().map(|e| (e as u32, (e >> 32) as u32))
}

/// `f(entry address)` for each entry of `list` in order until one fails: Err(its 1-based index),
/// also for the first entry beyond `max`.
fn each_entry(list: List, max: u64, mut f: impl FnMut(u64) -> bool) -> Result<(), u32> {
    for i in 0..list.count {
        if i >= max || !f(list.addr.wrapping_add(i * ENTRY_SIZE)) {
            return Err(i as u32 + 1);
        }
    }
    Ok(())
}

fn x2apic<V: VmcsRead + ?Sized, X: Msrs>(vmcs: &V, msrs: &mut X) -> bool {
    msrs.rdmsr(vmcs, IA32_APIC_BASE).is_some_and(|b| b & APIC_BASE_X2APIC != 0)
}

/// Write a load list's entries as WRMSRs in the context of `vmcs` (vmcs02: L2's, vmcs01: L1's),
/// telling `written` each one done.
fn load_list<V, M, X>(
    list: List,
    max: u64,
    vmcs: &mut V,
    mem: &M,
    msrs: &mut X,
    mut written: impl FnMut(u32, u64),
) -> Result<(), u32>
where
    V: VmcsRead + VmcsWrite + ?Sized,
    M: GuestMemory,
    X: Msrs,
{
    let x2apic = x2apic(vmcs, msrs);
    each_entry(list, max, |at| {
        let Some((index, reserved)) = header(mem, at) else { return false };
        let allowed =
            common_ok(index, reserved, x2apic) && !matches!(index, IA32_FS_BASE | IA32_GS_BASE | IA32_SMM_MONITOR_CTL);
        let Ok(value) = mem.read_u64(at + 8) else { return false };
        let done = allowed && msrs.wrmsr(vmcs, index, value);
        if done {
            written(index, value);
        }
        done
    })
}

impl NestedVmx {
    fn list(&self, addr: u64, count: u64) -> List {
        let v12 = self.current.vmcs12.inner();
        List { addr: v12.read_raw(addr).unwrap_or(0), count: v12.read_raw(count).unwrap_or(0) }
    }

    /// The most entries a list may have: IA32_VMX_MISC bits 27:25 as L1 reads them.
    fn max_list_entries(&self) -> u64 {
        512 * ((self.caps.caps().raw(Msr::Misc.index()) >> 25 & 7) + 1)
    }

    /// The VM-entry MSR-load list into L2's MSRs (vmcs02 current, prepared for this entry).
    /// vmcs12 gets what [`Self::l2_wrmsr`] writes through.
    pub fn load_entry_msrs<V, M, X>(&mut self, vmcs02: &mut V, mem: &M, msrs: &mut X) -> Result<(), EntryMsrFailure>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory,
        X: Msrs,
    {
        let list = self.list(F::VM_ENTRY_MSR_LOAD_ADDR.raw(), F::VM_ENTRY_MSR_LOAD_COUNT.raw());
        let max = self.max_list_entries();
        load_list(list, max, vmcs02, mem, msrs, |index, value| self.l2_wrmsr(index, value)).map_err(EntryMsrFailure)
    }

    /// L0 performed L2's WRMSR of `index` (one L1 does not intercept, or an entry of the VM-entry
    /// MSR-load list): the MSRs vmcs12 keeps but a nested exit does not read back from vmcs02 are
    /// written through (KVM's vmx_set_msr in guest mode, vmx.c:2363-2474): SYSENTER_CS/ESP/EIP
    /// always, IA32_DEBUGCTL when vmcs12 saves debug controls, IA32_PAT when it saves PAT.
    pub fn l2_wrmsr(&mut self, index: u32, value: u64) {
        let exit = self.current.get(F::VM_EXIT_CONTROLS.raw());
        let field = match index {
            0x174 => F::GUEST_SYSENTER_CS.raw(),
            0x175 => F::GUEST_SYSENTER_ESP.raw(),
            0x176 => F::GUEST_SYSENTER_EIP.raw(),
            0x1d9 if exit & Exit::SAVE_DEBUG_CONTROLS.bits() as u64 != 0 => F::GUEST_IA32_DEBUGCTL.raw(),
            0x277 if exit & Exit::SAVE_IA32_PAT.bits() as u64 != 0 => F::GUEST_IA32_PAT.raw(),
            _ => return,
        };
        // vmcs02 holds the value already: nothing to copy at the next entry.
        let _ = self.current.vmcs12.write_untracked(field, value);
    }

    /// L2's MSRs into the VM-exit MSR-store list (vmcs02 current, after vmcs12's sync).
    pub fn store_exit_msrs<V, M, X>(&self, vmcs02: &V, mem: &mut M, msrs: &mut X) -> Result<(), VmxAbort>
    where
        V: VmcsRead + ?Sized,
        M: GuestMemory,
        X: Msrs,
    {
        let list = self.list(F::VM_EXIT_MSR_STORE_ADDR.raw(), F::VM_EXIT_MSR_STORE_COUNT.raw());
        let x2apic = x2apic(vmcs02, msrs);
        each_entry(list, self.max_list_entries(), |at| {
            let Some((index, reserved)) = header(mem, at) else { return false };
            if !common_ok(index, reserved, x2apic) || index == IA32_SMBASE {
                return false;
            }
            msrs.rdmsr(vmcs02, index).is_some_and(|value| mem.write(at + 8, &value.to_le_bytes()).is_ok())
        })
        .map_err(|_| VmxAbort::StoreMsr)
    }

    /// The VM-exit MSR-load list into L1's MSRs (vmcs01 current, after L1's host state).
    pub fn load_exit_msrs<V, M, X>(&self, vmcs01: &mut V, mem: &M, msrs: &mut X) -> Result<(), VmxAbort>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory,
        X: Msrs,
    {
        let list = self.list(F::VM_EXIT_MSR_LOAD_ADDR.raw(), F::VM_EXIT_MSR_LOAD_COUNT.raw());
        load_list(list, self.max_list_entries(), vmcs01, mem, msrs, |_, _| {}).map_err(|_| VmxAbort::LoadMsr)
    }
}
