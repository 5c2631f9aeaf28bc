//! The nested VM entry: vmcs02, the VMCS that runs L2, from vmcs12 (KVM's prepare_vmcs02_early /
//! prepare_vmcs02, nested.c:2434 and 2763).
//!
//! The state moves through the generated copy routines (`vmcs::copy::prepare_rare`, with L1's
//! dirty groups, and `vmcs::copy::prepare`). What is not a plain copy is computed here, in one
//! function per treatment, until the copy-semantics issue's hooks replace them:
//! [`merge_controls`] (L0's controls with L1's), the VPID and EPT pointer L2 runs with, the EFER L2
//! gets ([`l2_efer`]), the event-injection fields of a VMLAUNCH/VMRESUME, and the PAE PDPTEs L2's
//! CR3 names when L2 runs on L0's EPT.

use vmcs::controls::{CpuBasedVmExecControl as Proc, SecondaryVmExecControl as Proc2, VmEntryControls as Entry};
use vmcs::copy::{self, CopyPredicates};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::vcpu::{GuestMemory, MemoryError};
use crate::vmx::NestedVmx;

/// What L0 puts into every vmcs02, whatever L1 asks.
#[derive(Clone, Copy, Debug, Default)]
pub struct L0Policy {
    /// Controls L0 sets on top of L1's.
    pub pin: u32,
    pub proc: u32,
    pub proc2: u32,
    /// Primary controls L0 takes out of L1's (e.g. the I/O and MSR bitmaps, whose addresses are
    /// L1's guest-physical ones: L0 routes those exits itself).
    pub proc_clear: u32,
    /// vmcs02's VM-exit controls are L0's (the exit goes to L0), plus these ones of L1's.
    pub exit: u32,
    pub exit_from_l1: u32,
    /// VM-entry controls L0 adds; "IA-32e mode guest" always follows L2's EFER.LMA.
    pub entry: u32,
    /// The EPT L2 runs on when vmcs12 has none (L0's EPT for L1's memory).
    pub ept_pointer: Option<u64>,
    /// The VPID L2 runs with (L0's, never L1's).
    pub vpid02: Option<u16>,
}

/// Why a nested entry cannot be prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepareError {
    Vmcs(VmcsError),
    Memory(MemoryError),
    /// vmcs12 uses VM-entry or VM-exit MSR lists, which this L0 does not process yet.
    MsrLists,
}

impl From<VmcsError> for PrepareError {
    fn from(e: VmcsError) -> Self {
        PrepareError::Vmcs(e)
    }
}

const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

fn get(v12: &Vmcs12, e: u64) -> u64 {
    v12.read_raw(e).unwrap_or(0)
}

/// The conditions of the generated copy routines, from vmcs12 and L0's setup.
pub struct Conditions {
    run_pending: bool,
    entry: u64,
    exit: u64,
    proc: u64,
    proc2: u64,
    l0_ept: bool,
    pae_paging: bool,
}

impl Conditions {
    pub fn new(v12: &Vmcs12, run_pending: bool, l0_ept: bool, l1_efer: u64) -> Self {
        let proc = get(v12, F::CPU_BASED_VM_EXEC_CONTROL.raw());
        let proc2 = if proc & Proc::ACTIVATE_SECONDARY_CONTROLS.bits() as u64 != 0 {
            get(v12, F::SECONDARY_VM_EXEC_CONTROL.raw())
        } else {
            0
        };
        let (cr0, cr4) = (get(v12, F::GUEST_CR0.raw()), get(v12, F::GUEST_CR4.raw()));
        // Judged on the state L2 is about to get (its CR0, CR4 and EFER), not on L1's mode.
        let lma = l2_efer(v12, run_pending, l1_efer) & EFER_LMA != 0;
        Conditions {
            run_pending,
            entry: get(v12, F::VM_ENTRY_CONTROLS.raw()),
            exit: get(v12, F::VM_EXIT_CONTROLS.raw()),
            proc,
            proc2,
            l0_ept,
            pae_paging: cr0 >> 31 & 1 == 1 && cr4 >> 5 & 1 == 1 && !lma,
        }
    }
    pub fn pae_paging(&self) -> bool {
        self.pae_paging
    }
}

macro_rules! bit {
    ($v:expr, $c:expr) => {
        $v & ($c.bits() as u64) != 0
    };
}

impl CopyPredicates for Conditions {
    fn run_pending(&self) -> bool {
        self.run_pending
    }
    fn load_debug_controls(&self) -> bool {
        bit!(self.entry, Entry::LOAD_DEBUG_CONTROLS)
    }
    fn save_debug_controls(&self) -> bool {
        bit!(self.exit, vmcs::controls::VmExitControls::SAVE_DEBUG_CONTROLS)
    }
    fn load_ia32_pat(&self) -> bool {
        bit!(self.entry, Entry::LOAD_IA32_PAT)
    }
    fn load_ia32_efer(&self) -> bool {
        bit!(self.entry, Entry::LOAD_IA32_EFER)
    }
    fn save_ia32_efer(&self) -> bool {
        bit!(self.exit, vmcs::controls::VmExitControls::SAVE_IA32_EFER)
    }
    fn load_bndcfgs(&self) -> bool {
        false
    }
    fn load_cet_state(&self) -> bool {
        bit!(self.entry, Entry::LOAD_CET_STATE)
    }
    fn load_perf_global_ctrl(&self) -> bool {
        false
    }
    fn guest_ibt_or_shstk(&self) -> bool {
        false
    }
    fn guest_shstk(&self) -> bool {
        false
    }
    fn nested_xsaves(&self) -> bool {
        bit!(self.proc2, Proc2::ENABLE_XSAVES)
    }
    fn pfec_from_vmcs12(&self) -> bool {
        // L0 never intercepts #PF for itself (it runs L2 on EPT).
        true
    }
    fn host_apicv(&self) -> bool {
        false
    }
    fn tsc_offsetting(&self) -> bool {
        bit!(self.proc, Proc::USE_TSC_OFFSETTING)
    }
    fn tsc_scaling(&self) -> bool {
        bit!(self.proc2, Proc2::USE_TSC_SCALING)
    }
    fn nested_ept(&self) -> bool {
        bit!(self.proc2, Proc2::ENABLE_EPT)
    }
    fn l0_ept(&self) -> bool {
        self.l0_ept
    }
    fn pae_paging(&self) -> bool {
        self.pae_paging
    }
    fn nested_vid(&self) -> bool {
        bit!(self.proc2, Proc2::VIRTUAL_INTERRUPT_DELIVERY)
    }
    fn save_preemption_timer(&self) -> bool {
        false
    }
}

/// L2's EFER (KVM's nested_vmx_calc_efer): vmcs12's on VMLAUNCH/VMRESUME with "load IA32_EFER",
/// else L1's with LMA and LME following "IA-32e mode guest".
pub fn l2_efer(v12: &Vmcs12, run_pending: bool, l1_efer: u64) -> u64 {
    let entry = get(v12, F::VM_ENTRY_CONTROLS.raw());
    if run_pending && bit!(entry, Entry::LOAD_IA32_EFER) {
        return get(v12, F::GUEST_IA32_EFER.raw());
    }
    if bit!(entry, Entry::IA32E_MODE_GUEST) { l1_efer | EFER_LMA | EFER_LME } else { l1_efer & !(EFER_LMA | EFER_LME) }
}

/// vmcs02's controls: L1's with L0's merged in (pin, primary, secondary, exit, entry).
pub fn merge_controls(v12: &Vmcs12, policy: &L0Policy, efer: u64) -> [(u64, u64); 5] {
    let pin = get(v12, F::PIN_BASED_VM_EXEC_CONTROL.raw()) | policy.pin as u64;
    let proc12 = get(v12, F::CPU_BASED_VM_EXEC_CONTROL.raw());
    let proc2_12 =
        if bit!(proc12, Proc::ACTIVATE_SECONDARY_CONTROLS) { get(v12, F::SECONDARY_VM_EXEC_CONTROL.raw()) } else { 0 };
    let proc2 = proc2_12 | policy.proc2 as u64;
    let mut proc = (proc12 | policy.proc as u64) & !(policy.proc_clear as u64);
    if proc2 != 0 {
        proc |= Proc::ACTIVATE_SECONDARY_CONTROLS.bits() as u64;
    }
    let exit = policy.exit as u64 | get(v12, F::VM_EXIT_CONTROLS.raw()) & policy.exit_from_l1 as u64;
    let ia32e = Entry::IA32E_MODE_GUEST.bits() as u64;
    let entry = (get(v12, F::VM_ENTRY_CONTROLS.raw()) | policy.entry as u64) & !ia32e
        | if efer & EFER_LMA != 0 { ia32e } else { 0 };
    [
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc),
        (F::SECONDARY_VM_EXEC_CONTROL.raw(), proc2),
        (F::VM_EXIT_CONTROLS.raw(), exit),
        (F::VM_ENTRY_CONTROLS.raw(), entry),
    ]
}

impl NestedVmx {
    /// Fill vmcs02 for L1's VMLAUNCH/VMRESUME of the current vmcs12; `l1_efer` is L1's EFER.
    /// vmcs02 must already hold L0's constant state (host state, MSR-list counts 0, CR3-target
    /// count 0). L1's dirty groups are consumed.
    pub fn prepare_vmcs02<V, M>(
        &mut self,
        vmcs02: &mut V,
        policy: &L0Policy,
        l1_efer: u64,
        mem: &M,
    ) -> Result<(), PrepareError>
    where
        V: VmcsRead + VmcsWrite + ?Sized,
        M: GuestMemory + ?Sized,
    {
        let v12 = *self.current.vmcs12.inner();
        for count in [F::VM_ENTRY_MSR_LOAD_COUNT, F::VM_EXIT_MSR_LOAD_COUNT, F::VM_EXIT_MSR_STORE_COUNT] {
            if get(&v12, count.raw()) != 0 {
                return Err(PrepareError::MsrLists);
            }
        }
        let caps = *self.caps.caps();
        let cond = Conditions::new(&v12, true, policy.ept_pointer.is_some(), l1_efer);
        copy::prepare_rare(&mut self.current.vmcs12, vmcs02, &caps, &cond)?;
        copy::prepare(self.current.vmcs12.inner(), vmcs02, &caps, &cond)?;
        let efer = l2_efer(&v12, true, l1_efer);
        for (field, value) in merge_controls(&v12, policy, efer) {
            vmcs02.write_raw(field, value)?;
        }
        vmcs02.write_raw(F::GUEST_IA32_EFER.raw(), efer)?;
        if let Some(vpid) = policy.vpid02 {
            vmcs02.write_raw(F::VIRTUAL_PROCESSOR_ID.raw(), vpid as u64)?;
        }
        if !cond.nested_ept()
            && let Some(eptp) = policy.ept_pointer
        {
            vmcs02.write_raw(F::EPT_POINTER.raw(), eptp)?;
        }
        vmcs02.write_raw(F::VMCS_LINK_POINTER.raw(), u64::MAX)?;
        // The event L1 injects, and L2's blocking and activity: only on VMLAUNCH/VMRESUME.
        for f in [
            F::VM_ENTRY_INTR_INFO_FIELD.raw(),
            F::VM_ENTRY_EXCEPTION_ERROR_CODE.raw(),
            F::VM_ENTRY_INSTRUCTION_LEN.raw(),
            F::GUEST_INTERRUPTIBILITY_INFO.raw(),
            F::GUEST_ACTIVITY_STATE.raw(),
        ] {
            vmcs02.write_raw(f, get(&v12, f))?;
        }
        if cond.pae_paging() && !cond.nested_ept() && policy.ept_pointer.is_some() {
            // L2 runs on L0's EPT in PAE paging: the processor takes its PDPTEs from vmcs02, so
            // they come from L2's CR3 in L1's memory (KVM: nested_vmx_load_cr3).
            let cr3 = get(&v12, F::GUEST_CR3.raw()) & 0xffff_ffe0;
            let pdptrs = [F::GUEST_PDPTR0, F::GUEST_PDPTR1, F::GUEST_PDPTR2, F::GUEST_PDPTR3];
            for (i, f) in pdptrs.iter().enumerate() {
                let e = mem.read_u64(cr3 + 8 * i as u64).map_err(PrepareError::Memory)?;
                vmcs02.write_raw(f.raw(), e)?;
            }
        }
        Ok(())
    }
}
