//! L2 on vmcs02: the nested entry, L2's exits routed to L1 or handled by L0 (EPT02's faults,
//! I/O and MSR accesses), and L1's nested state saved and restored while L2 runs.

use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, VmxError};
use vmcs::layouts::vmcs12_base::Vmcs12Base;
use vmcs::nested_state::VcpuContext;
use vmcs::{VmInstructionError, VmcsError, VmcsRead};
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::exit_facts::ExitFacts;
use vmcs_nested_vmx::migrate::MAX_STATE;
use vmcs_nested_vmx::msr_list::EntryMsrFailure;
use vmcs_nested_vmx::nested_ept::{self, Access, EptFault};
use vmcs_nested_vmx::routing::{Exit, Route, route};
use vmcs_nested_vmx::vmx::NestedVmx;

use super::{KEEPS, L0, Pending, enter, or_fail, rip};
use crate::l1mem::L1Memory;
use crate::l2::{self, L2Next};
use crate::log;
use crate::msr::L0Msrs;
use crate::vcpu::Vcpu;

impl L0<'_> {
    /// L2's exit goes to L1 (vmcs02 current): vmcs12's sync, then the VM-exit MSR-store list.
    pub(super) fn sync_exit<V: VmcsRead>(&mut self, w: &V, l1_efer: u64) {
        or_fail(self.nested.sync_exit(w, true, l1_efer), "syncing vmcs12");
        if let Err(abort) = self.nested.store_exit_msrs(w, &mut L1Memory, &mut L0Msrs(self.nested.caps())) {
            log::fail(format_args!("L1's VMX abort {} (storing L2's MSRs on a VM exit): L1 shuts down", abort as u32));
        }
    }

    /// Enter L2 for L1's VMLAUNCH/VMRESUME and run it until an exit goes to L1.
    /// `restored`: vmcs02 is rebuilt after a state restore, with this `run_pending`.
    pub(super) fn run_l2(
        &mut self,
        w: &mut CurrentVmcs<'_>,
        first: bool,
        launch: bool,
        l1_efer: u64,
        restored: Option<bool>,
    ) -> Pending {
        let eptp12 = self.nested_eptp12();
        if let Some(eptp12) = eptp12 {
            // EPT02 caches one EPTP12's translations: another EPTP12 starts afresh.
            if self.ept02.built_for != Some(eptp12) {
                self.ept02.reset(Some(eptp12));
                let _ = w.invept(1, self.ept02.eptp());
            }
        }
        let mut policy = self.policy;
        policy.ept02_pointer = Some(self.ept02.eptp());
        let mut c = Counted::new(&mut *w);
        let run_pending = restored.unwrap_or(true);
        if let Err(e) = self.nested.prepare_vmcs02_for(&mut c, &policy, l1_efer, &L1Memory, run_pending) {
            log::fail(format_args!("preparing vmcs02: {e:?}"));
        }
        // KVM does not load the list again on a state restore: it ran at the original entry.
        if restored.is_none() {
            let caps = *self.nested.caps();
            let entry_msrs = self.nested.load_entry_msrs(&mut c, &L1Memory, &mut L0Msrs(&caps));
            if let Err(EntryMsrFailure(index)) = entry_msrs {
                l0log!("L1's VM entry fails loading MSRs: entry {index} of its VM-entry MSR-load list");
                return Pending::MsrLoadFailed(index);
            }
        }
        self.meter.entry = c.counts();
        l2::flush_vpid02(w, self.host);
        if restored.is_none() {
            self.meter.nested_entry(launch);
        }
        let mut resume = !first;
        loop {
            let reason = match enter(w, &mut self.cpu, &mut self.fpu, &mut self.meter, resume) {
                Ok(r) => r,
                Err(VmxError::FailValid(e)) => {
                    l0log!("vmcs02 refused by the processor: {e}; L1's VM entry fails with error 7");
                    return Pending::VmFail(VmInstructionError::EntryInvalidControlFields);
                }
                Err(e) => log::fail(format_args!("VM entry of L2: {e}")),
            };
            resume = true;
            let mut c = Counted::new(&mut *w);
            // Routing and the nested exit read each exit fact once between them.
            let facts = ExitFacts::new(&c, reason);
            let exit = or_fail(exit_facts(&facts, reason, &self.cpu), "vmcs02 access");
            if route(&exit, self.nested.current().vmcs12.inner(), &L1Memory, &KEEPS) == Route::L1 {
                self.sync_exit(&facts, l1_efer);
                self.meter.reflect_l2 = c.counts();
                let error_code = reason.basic() == Some(R::ExceptionNmi) && exit.intr_info >> 11 & 1 == 1;
                self.meter.reflected(reason, self.pdptrs_synced(eptp12, l1_efer), error_code);
                return Pending::HostState;
            }
            if let (Some(R::EptViolation), Some(eptp12)) = (reason.basic(), eptp12) {
                if let Some(pending) = self.ept_violation(&facts, eptp12, l1_efer) {
                    return pending;
                }
                self.meter.l0_handled(reason, c.counts());
                continue;
            }
            let next = match reason.basic() {
                Some(R::IoInstruction) => l2::io(&mut c, &mut self.cpu, exit.qualification),
                Some(R::MsrRead) => l2::msr(&mut c, &mut self.cpu, &mut self.nested, false),
                Some(R::MsrWrite) => l2::msr(&mut c, &mut self.cpu, &mut self.nested, true),
                _ => Ok(L2Next::Unexpected),
            };
            self.meter.l0_handled(reason, c.counts());
            match or_fail(next, "vmcs02 access") {
                L2Next::Resume => {}
                L2Next::Exit(status) => log::finish(status),
                L2Next::Migrate => return self.migrate(&c, l1_efer),
                L2Next::Unexpected => {
                    let gpa = c.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0);
                    log::fail(format_args!(
                        "L2 exit L0 cannot handle: reason {:#x} at RIP {:#x} (guest-physical {gpa:#x})",
                        reason.bits(),
                        rip(&c)
                    ))
                }
            }
        }
    }

    /// Save L1's nested state while L2 runs (vmcs02 current) and restore it into a fresh vCPU,
    /// every other migration through the older vmcs12_base layout; vmcs02 and EPT02 are rebuilt.
    pub(super) fn migrate(&mut self, w: &Counted<'_, CurrentVmcs<'_>>, l1_efer: u64) -> Pending {
        or_fail(self.nested.sync_for_save(w, true, l1_efer), "syncing vmcs12 for saving");
        let mut blob = [0u8; MAX_STATE];
        let n =
            self.nested.save_state(true, false, &mut blob).unwrap_or_else(|e| log::fail(format_args!("saving: {e}")));
        let mut fresh = NestedVmx::new(*self.nested.caps());
        let vcpu = VcpuContext { has_vmx: true, in_smm: false, evmcs_enabled: false, maxphyaddr: self.cpu.maxphyaddr };
        let restored =
            fresh.restore_state(&blob[..n], &vcpu).unwrap_or_else(|e| log::fail(format_args!("restoring: {e}")));
        self.migrations += 1;
        if self.migrations.is_multiple_of(2) {
            let t = fresh.through_layout::<Vmcs12Base>();
            l0log!(
                "nested state saved while L2 runs ({n} bytes) and restored through layout vmcs12_base ({} fields it lacks dropped)",
                t.lost.len()
            );
        } else {
            l0log!("nested state saved while L2 runs ({n} bytes) and restored into a fresh vCPU");
        }
        self.nested = fresh;
        self.ept02.reset(None);
        Pending::Rebuild { run_pending: restored.run_pending }
    }

    /// Whether a nested exit gives vmcs12 L2's PDPTRs (nested EPT, L2 in PAE paging).
    fn pdptrs_synced(&self, eptp12: Option<u64>, l1_efer: u64) -> bool {
        eptp12.is_some() && vmcs_nested_vmx::vmcs02::pae_paging(self.nested.current().vmcs12.inner(), false, l1_efer)
    }

    /// vmcs12's EPTP when it enables EPT for L2.
    pub(super) fn nested_eptp12(&self) -> Option<u64> {
        let v12 = self.nested.current();
        let proc = v12.get(F::CPU_BASED_VM_EXEC_CONTROL.raw());
        let proc2 = if proc >> 31 & 1 == 1 { v12.get(F::SECONDARY_VM_EXEC_CONTROL.raw()) } else { 0 };
        (proc2 & vmcs::controls::SecondaryVmExecControl::ENABLE_EPT.bits() as u64 != 0)
            .then(|| v12.get(F::EPT_POINTER.raw()))
    }

    /// An EPT violation of L2 with nested EPT: EPT02 lacks the page. L0 walks EPT12: a page it
    /// gives goes into EPT02 and L2 resumes (None); what it refuses goes to L1 as exit 48 or 49.
    pub(super) fn ept_violation(
        &mut self,
        w: &ExitFacts<'_, Counted<'_, CurrentVmcs<'_>>>,
        eptp12: u64,
        l1_efer: u64,
    ) -> Option<Pending> {
        let gpa = or_fail(w.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()), "vmcs02 access");
        let q = or_fail(w.read_raw(F::EXIT_QUALIFICATION.raw()), "vmcs02 access");
        let access = Access::from_qualification(q);
        let (reason, qualification) = match nested_ept::walk(&L1Memory, eptp12, gpa, access, false, self.cpu.maxphyaddr)
        {
            Ok(t) => {
                let Some(hpa) = L1Memory::host_page(t.address & !0xfff) else {
                    log::fail(format_args!(
                        "L2's guest-physical {gpa:#x} is L1's {:#x}, where L1 has no memory",
                        t.address
                    ))
                };
                if self.ept02.map(gpa & !0xfff, hpa, t.permissions, t.memory_type).is_err() {
                    // Out of tables: start over; this access faults once more and is mapped then.
                    self.ept02.reset(Some(eptp12));
                    let _ = w.vmcs().inner().invept(1, self.ept02.eptp());
                }
                return None;
            }
            Err(EptFault::Violation { permissions }) => (48, nested_ept::violation_qualification(q, permissions)),
            Err(EptFault::Misconfig) => (49, 0),
            Err(EptFault::Memory(e)) => log::fail(format_args!("L1's EPT12 is outside its memory ({:#x})", e.gpa)),
        };
        self.sync_exit(w, l1_efer);
        let v12 = self.nested.current_mut();
        or_fail(v12.set(F::VM_EXIT_REASON.raw(), reason), "vmcs12");
        or_fail(v12.set(F::EXIT_QUALIFICATION.raw(), qualification), "vmcs12");
        or_fail(v12.set(F::GUEST_PHYSICAL_ADDRESS.raw(), gpa), "vmcs12");
        self.meter.reflect_l2 = w.vmcs().counts();
        self.meter.reflected(VmExitReason::from_bits(reason as u32), self.pdptrs_synced(Some(eptp12), l1_efer), false);
        Some(Pending::HostState)
    }
}

/// The facts routing needs from vmcs02, and the operand from L2's registers.
fn exit_facts<V: VmcsRead>(w: &V, reason: VmExitReason, cpu: &Vcpu) -> Result<Exit, VmcsError> {
    let basic = reason.basic();
    let needs_qualification = matches!(basic, Some(R::CrAccess | R::IoInstruction | R::Vmread | R::Vmwrite));
    let qualification = if needs_qualification { w.read_raw(F::EXIT_QUALIFICATION.raw())? } else { 0 };
    let (intr_info, intr_error_code) = if basic == Some(R::ExceptionNmi) {
        (w.read_raw(F::VM_EXIT_INTR_INFO.raw())? as u32, w.read_raw(F::VM_EXIT_INTR_ERROR_CODE.raw())? as u32)
    } else {
        (0, 0)
    };
    let insn_info =
        if matches!(basic, Some(R::Vmread | R::Vmwrite)) { w.read_raw(F::VMX_INSTRUCTION_INFO.raw())? } else { 0 };
    let operand = match basic.and_then(|b| Exit::operand_register(b, qualification, insn_info as u32)) {
        Some(4) => w.read_raw(F::GUEST_RSP.raw())?,
        Some(n) => vmcs_nested_vmx::vcpu::L1Cpu::gpr(cpu, n),
        None => 0,
    };
    Ok(Exit { reason, qualification, intr_info, intr_error_code, operand })
}
