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
//! A load list's entries are checked by the generated VM-entry checker (`vmcs::entry`, the
//! MSR-loading rules of checks.toml, M1-M6: reserved bits 63:32, IA32_FS_BASE/GS_BASE, the x2APIC
//! MSRs 0x800-0x8ff, IA32_SMM_MONITOR_CTL outside SMM, the microcode MSRs, a WRMSR that would
//! fault), whose last check L0 answers by performing the WRMSR; KVM applies the same checks to
//! the VM-exit MSR-load list (nested_vmx_load_msr), and so does this L0. A store list may not hold
//! reserved bits, an x2APIC MSR in x2APIC mode, a microcode MSR or IA32_SMBASE (KVM's
//! nested_vmx_store_msr_check; not VM-entry checks, so not in the schema). A list longer than
//! IA32_VMX_MISC bits 27:25 allow (512 × (N + 1) entries) fails at the first entry beyond, as
//! KVM's does. An entry L1's memory does not hold fails as an unreadable one.

use core::cell::{Cell, RefCell};

use vmcs::caps::{Msr, VmxCaps};
use vmcs::controls::VmExitControls as Exit;
use vmcs::entry::{self, EntryError, Facts, Outcome, Selection, Tier};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::vcpu::{CheckedMemory, GuestMemory, Msrs};
use crate::vmx::NestedVmx;

/// An MSR-list entry's size in L1 memory: index (bits 31:0), reserved (63:32), data (127:64).
pub const ENTRY_SIZE: u64 = 16;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const IA32_BIOS_UPDT_TRIG: u32 = 0x79;
const IA32_BIOS_SIGN_ID: u32 = 0x8b;
const IA32_SMBASE: u32 = 0x9e;

/// The VM-entry MSR-load list failed at this entry (1-based): VM exit 34 with it as the
/// qualification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMsrFailure(pub u32);

/// A VMX abort of L1 and its indicator (SDM 27.7): 1 saving guest MSRs, 4 loading host MSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxAbort {
    /// Storing an MSR of the VM-exit MSR-store list failed.
    StoreMsr = 1,
    /// Loading an MSR of the VM-exit MSR-load list failed.
    LoadMsr = 4,
}

/// One list: its guest-physical address and entry count, from vmcs12.
#[derive(Clone, Copy)]
struct List {
    addr: u64,
    count: u64,
}

/// `nested_vmx_msr_check_common`, for the store list.
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

/// vmcs12 with a load list in the VM-entry MSR-load fields, where the generated checks read it.
struct AsEntryList<'a> {
    vmcs12: &'a Vmcs12,
    list: List,
}

impl VmcsRead for AsEntryList<'_> {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        match encoding {
            e if e == F::VM_ENTRY_MSR_LOAD_ADDR.raw() => Ok(self.list.addr),
            e if e == F::VM_ENTRY_MSR_LOAD_COUNT.raw() => Ok(self.list.count),
            e => self.vmcs12.read_raw(e),
        }
    }
}

/// L1 memory for the MSR-loading checks, whose last one ("would WRMSR fault?") L0 answers by
/// making it in the context of `vmcs` (vmcs02: L2's, vmcs01: L1's); `written` hears of each one
/// done. The checks go entry by entry, so the entries before a failing one stay loaded. An entry
/// whose data L1's memory does not hold fails without a WRMSR (its header would have failed the
/// reserved-bits check already).
struct Loading<'a, V: ?Sized, M: ?Sized, X, W> {
    vmcs: RefCell<&'a mut V>,
    mem: &'a M,
    msrs: RefCell<&'a mut X>,
    written: RefCell<W>,
    unreadable: Cell<bool>,
}

impl<V, M, X, W> entry::GuestMemory for Loading<'_, V, M, X, W>
where
    V: VmcsRead + VmcsWrite + ?Sized,
    M: GuestMemory + ?Sized,
    X: Msrs,
    W: FnMut(u32, u64),
{
    fn read(&self, address: u64, bytes: u32) -> Option<u64> {
        let v = entry::GuestMemory::read(&CheckedMemory(self.mem), address, bytes);
        self.unreadable.set(self.unreadable.get() || v.is_none());
        v
    }

    fn wrmsr_faults(&self, index: u32, value: u64) -> bool {
        if self.unreadable.replace(false) {
            return true;
        }
        let done = self.msrs.borrow_mut().wrmsr(&mut **self.vmcs.borrow_mut(), index, value);
        if done {
            (self.written.borrow_mut())(index, value);
        }
        !done
    }
}

/// The facts the MSR-loading checks read: outside SMM (SMM_MONITOR_CTL may not be loaded).
const OUTSIDE_SMM: Facts = Facts {
    maxphyaddr: 0,
    linear_width: 0,
    efer_lma: false,
    in_smm: false,
    current_vmcs: u64::MAX,
    efer_reserved: 0,
    debugctl_reserved: 0,
    perf_global_ctrl_reserved: 0,
    rtit_ctl_reserved: 0,
    rtm: false,
    sgx: false,
    sti_blocks_nmi_injection: false,
    vmlaunch: false,
    launched: false,
    current_is_shadow: false,
    mov_ss_blocked: false,
};

/// What a load list is checked against: L1's vmcs12 and capabilities, and the most entries a
/// list may have.
struct Lists<'a> {
    vmcs12: &'a Vmcs12,
    caps: &'a VmxCaps,
    max: u64,
}

impl Lists<'_> {
    /// Load `list` through the generated MSR-loading checks: Err(1-based index) of the entry that
    /// fails, also the first beyond `max`.
    fn load<V, M, X>(
        &self,
        list: List,
        vmcs: &mut V,
        mem: &M,
        msrs: &mut X,
        written: impl FnMut(u32, u64),
    ) -> Result<(), u32>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory,
        X: Msrs,
    {
        let view = AsEntryList { vmcs12: self.vmcs12, list };
        let loading = Loading {
            vmcs: RefCell::new(vmcs),
            mem,
            msrs: RefCell::new(msrs),
            written: RefCell::new(written),
            unreadable: Cell::new(false),
        };
        match entry::check_only(&view, self.caps, &OUTSIDE_SMM, &loading, Selection::tiers(&[Tier::MsrLoad])) {
            Err(EntryError::Failed(f)) => match f.outcome() {
                Outcome::EntryFailure { qualification, .. } => Err(qualification),
                // The MSR-loading rules fail only as exit 34.
                _ => Err(1),
            },
            // vmcs12 holds both fields the view reads from it.
            Err(EntryError::Read(_)) => Err(1),
            Ok(()) if list.count > self.max => Err(self.max as u32 + 1),
            Ok(()) => Ok(()),
        }
    }
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
        // The checks read a copy: each WRMSR done may write through into vmcs12.
        let (vmcs12, caps) = (*self.current.vmcs12.inner(), *self.caps.caps());
        let lists = Lists { vmcs12: &vmcs12, caps: &caps, max: self.max_list_entries() };
        lists.load(list, vmcs02, mem, msrs, |index, value| self.l2_wrmsr(index, value)).map_err(EntryMsrFailure)
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
        let lists = Lists { vmcs12: self.current.vmcs12.inner(), caps: self.caps.caps(), max: self.max_list_entries() };
        lists.load(list, vmcs01, mem, msrs, |_, _| {}).map_err(|_| VmxAbort::LoadMsr)
    }
}
