//! L0's loop. L1 runs on vmcs01 until it enters L2; L2 runs on vmcs02 until an exit goes to L1
//! (or the entry fails); then L1 continues on vmcs01 at its host RIP. With VMCS shadowing, the
//! shadow VMCS follows vmcs12: filled when vmcs12 changes under L1, drained before L0 reads it.

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, FpuState, GuestRegisters, VmxError, VmxOperation};
use vmcs::layouts::vmcs12_base::Vmcs12Base;
use vmcs::nested_state::VcpuContext;
use vmcs::{VmInstructionError, VmcsError, VmcsRead};
use vmcs_nested_vmx::caps::L1Caps;
use vmcs_nested_vmx::count::{Counted, Counts};
use vmcs_nested_vmx::migrate::MAX_STATE;
use vmcs_nested_vmx::msr_list::EntryMsrFailure;
use vmcs_nested_vmx::nested_ept::{self, Access, Ept02, EptFault};
use vmcs_nested_vmx::routing::{Exit, L0Keeps, Route, route};
use vmcs_nested_vmx::vmcs02::L0Policy;
use vmcs_nested_vmx::vmx::{INVALID_POINTER, Invalidation, NestedVmx, Outcome};

use crate::ept02::Pool;
use crate::l1exits::{self, Next};
use crate::l1mem::L1Memory;
use crate::l2::{self, L2Next};
use crate::loader::L1Start;
use crate::log;
use crate::meter::Meter;
use crate::msr::L0Msrs;
use crate::vcpu::Vcpu;
use crate::vmcs01;
use crate::vmcss::{Vmcss, Which};

/// MAXPHYADDR, from CPUID.80000008H:EAX bits 7:0 (36 without that leaf).
fn maxphyaddr() -> u8 {
    if core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0008 {
        core::arch::x86_64::__cpuid(0x8000_0008).eax as u8
    } else {
        36
    }
}

fn load_cr2(value: u64) {
    // SAFETY: CR2 only reports page-fault addresses; L0 never faults, so only L1 sees it.
    unsafe { core::arch::asm!("mov cr2, {}", in(reg) value, options(nostack)) };
}

/// What L0 keeps of an L2 exit: interrupts, NMIs and exceptions are L1's (it owns the machine's
/// interrupt controller).
const KEEPS: L0Keeps = L0Keeps { external_interrupts: false, nmis: false, exceptions_first: 0 };

/// What one exit of L1 leads to.
enum Step {
    Resume,
    /// A VMX instruction to emulate (the shadow VMCS may need draining first).
    Vmx(R),
}

/// What L1's VMX instruction leads to.
enum VmxNext {
    /// L1 continues after the instruction.
    Resume,
    /// L1's VMLAUNCH/VMRESUME failed as a VM exit: vmcs12 holds new exit information.
    EntryFailed,
    /// L2 is to be entered, with L1's EFER at the time.
    EnterL2 { launch: bool, l1_efer: u64 },
}

/// What to do after L2 stopped.
enum Pending {
    /// L1's nested state was saved and restored while L2 ran: rebuild vmcs02 from vmcs12 and
    /// enter L2 again (`run_pending` as the saved flags say).
    Rebuild { run_pending: bool },
    /// L2 exited to L1: load L1's host state from vmcs12.
    HostState,
    /// The processor refused vmcs02 with this VM-instruction error: L1's VMLAUNCH/VMRESUME fails.
    VmFail(VmInstructionError),
    /// The VM-entry MSR-load list failed at this entry (1-based): L1's entry fails with exit 34.
    MsrLoadFailed(u32),
}

pub struct L0<'a> {
    pub host: &'a VmxCaps,
    pub cpu: Vcpu,
    pub fpu: FpuState,
    pub nested: NestedVmx,
    pub policy: L0Policy,
    pub meter: Meter,
    /// vmcs01 links the shadow VMCS (L1 has a current VMCS and the processor shadows).
    shadow_active: bool,
    /// L2's EPT when vmcs12 enables EPT, built from L1's EPT12.
    ept02: Ept02<Pool>,
    /// INVEPT/INVVPID L1 asked for, done once no VMCS handle is out.
    invalidate: Option<Invalidation>,
    /// Nested-state round trips so far (port 0xF5).
    migrations: u32,
}

/// Enter the guest of `v`, with CR2 and the x87/SSE state switched.
fn enter(v: &mut CurrentVmcs, cpu: &mut Vcpu, fpu: &mut FpuState, resume: bool) -> Result<VmExitReason, VmxError> {
    if let Some(cr2) = cpu.cr2.take() {
        load_cr2(cr2);
    }
    // SAFETY: the VMCS's host state is this context (vmcs01::write_host_state); its guest runs in
    // L1's memory behind EPT, which maps none of L0's.
    unsafe { v.run(&mut cpu.regs, fpu, resume) }
}

fn or_fail<T>(r: Result<T, VmcsError>, what: &str) -> T {
    r.unwrap_or_else(|e| log::fail(format_args!("{what}: {e}")))
}

pub fn run(op: &mut VmxOperation, host: &VmxCaps, l1caps: L1Caps, eptp: u64, start: &L1Start) -> ! {
    let mut vm = Vmcss::new(op);
    let policy = or_fail(l2::policy(host, eptp), "vmcs02 controls");
    let mut l0 = L0 {
        host,
        cpu: Vcpu { regs: GuestRegisters::default(), cr2: None, maxphyaddr: maxphyaddr() },
        fpu: FpuState::initial(),
        nested: NestedVmx::new(l1caps),
        policy,
        meter: Meter::default(),
        shadow_active: false,
        ept02: Ept02::new(Pool),
        invalidate: None,
        migrations: 0,
    };
    let shadowing = host.has(Cap::Proc2VmcsShadowing);
    let bitmaps = l0.nested.shadow_bitmaps();
    vm.with(Which::Vmcs01, |v| {
        or_fail(vmcs01::setup(v, host, eptp, start, &mut l0.cpu.regs), "vmcs01 setup");
        if shadowing {
            or_fail(vmcs01::set_shadow_bitmaps(v, &bitmaps), "vmcs01 shadow bitmaps");
        }
    });
    if shadowing {
        l0log!("VMCS shadowing of L1's VMREAD/VMWRITE: on");
    }
    let (mut launched01, mut vmcs02_ready) = (false, false);
    loop {
        let (launch, l1_efer) = loop {
            match vm.with(Which::Vmcs01, |v| l0.l1_step(v, &mut launched01)) {
                Step::Resume => {}
                Step::Vmx(r) => {
                    if let Some(enter) = l0.vmx(&mut vm, r, shadowing) {
                        break enter;
                    }
                }
            }
        };
        let mut restored = None;
        let pending = loop {
            let first = !vmcs02_ready;
            let p = vm.with(Which::Vmcs02, |w| {
                if first {
                    or_fail(l2::init(w), "vmcs02 setup");
                }
                l0.run_l2(w, first, launch, l1_efer, restored)
            });
            // vmcs02 stays clear (VMLAUNCH next time) when its first entry did not happen.
            vmcs02_ready = !(first && matches!(p, Pending::VmFail(_) | Pending::MsrLoadFailed(_)));
            match p {
                Pending::Rebuild { run_pending } => {
                    // The destination's vmcs02 starts clear; the shadow holds the restored vmcs12.
                    vm.forget(Which::Vmcs02);
                    vmcs02_ready = false;
                    restored = Some(run_pending);
                    if l0.shadow_active {
                        l0.fill_shadow(&mut vm);
                    }
                }
                p => break p,
            }
        };
        l0.meter.reflect_l1 = vm.with(Which::Vmcs01, |v| {
            let mut c = Counted::new(v);
            match pending {
                Pending::Rebuild { .. } => {}
                Pending::HostState => {
                    or_fail(l0.nested.load_l1_host_state(&mut c), "loading L1's host state");
                    l0.load_exit_msrs(&mut c);
                }
                Pending::MsrLoadFailed(index) => {
                    or_fail(l0.nested.fail_entry(ENTRY_FAILED_MSR_LOADING, index.into()), "vmcs12");
                    or_fail(l0.nested.load_l1_host_state(&mut c), "loading L1's host state");
                    l0.load_exit_msrs(&mut c);
                }
                Pending::VmFail(e) => match l0.nested.fail_vmentry(&mut c, e) {
                    Outcome::ResumeL1 => {}
                    o => log::fail(format_args!("L1's failed VM entry: {o:?}")),
                },
            }
            c.counts()
        });
        if l0.shadow_active {
            // L1 reads the exit information (and L2's state) through the shadow.
            l0.meter.reflect_l1 = l0.meter.reflect_l1 + l0.fill_shadow(&mut vm);
        }
    }
}

/// VM exit 34 (VM-entry failure during MSR loading) with the entry-failure bit.
const ENTRY_FAILED_MSR_LOADING: u32 = 0x8000_0022;

impl L0<'_> {
    /// vmcs12's VM-exit MSR-load list into L1's MSRs (vmcs01 current, L1's host state loaded).
    fn load_exit_msrs(&self, v: &mut Counted<CurrentVmcs>) {
        if let Err(abort) = self.nested.load_exit_msrs(v, &L1Memory, &mut L0Msrs(self.nested.caps())) {
            log::fail(format_args!("L1's VMX abort {} (loading its MSRs on a VM exit): L1 shuts down", abort as u32));
        }
    }

    /// L2's exit goes to L1 (vmcs02 current): vmcs12's sync, then the VM-exit MSR-store list.
    fn sync_exit(&mut self, w: &Counted<CurrentVmcs>, l1_efer: u64) {
        or_fail(self.nested.sync_exit(w, true, l1_efer), "syncing vmcs12");
        if let Err(abort) = self.nested.store_exit_msrs(w, &mut L1Memory, &mut L0Msrs(self.nested.caps())) {
            log::fail(format_args!("L1's VMX abort {} (storing L2's MSRs on a VM exit): L1 shuts down", abort as u32));
        }
    }

    /// L1's INVEPT drops EPT02 (and the processor's translations through it); its INVVPID flushes
    /// VPID02, the tag every L2 runs with.
    fn flush(&mut self, vm: &Vmcss, inv: Invalidation) {
        match inv {
            Invalidation::EptSingle { .. } | Invalidation::EptAll => {
                self.ept02.reset(None);
                let _ = vm.op().invept(2, 0);
            }
            _ => {
                if let Some(vpid) = self.policy.vpid02 {
                    let _ = vm.op().invvpid(1, vpid, 0);
                }
            }
        }
    }

    fn fill_shadow(&mut self, vm: &mut Vmcss) -> Counts {
        vm.with(Which::Shadow, |s| {
            let mut c = Counted::new(s);
            or_fail(self.nested.fill_shadow(&mut c), "filling the shadow VMCS");
            c.counts()
        })
    }

    /// Emulate L1's VMX instruction `r`; Some((launch, L1's EFER)) when L2 is to be entered.
    fn vmx(&mut self, vm: &mut Vmcss, r: R, shadowing: bool) -> Option<(bool, u64)> {
        let mut drain = Counts::default();
        if self.shadow_active && matches!(r, R::Vmclear | R::Vmptrld | R::Vmlaunch | R::Vmresume | R::Vmxoff) {
            // These read (or release) vmcs12: L1's writes through the shadow come first.
            drain = vm.with(Which::Shadow, |s| {
                let c = Counted::new(s);
                or_fail(self.nested.drain_shadow(&c), "draining the shadow VMCS");
                c.counts()
            });
        }
        let before = self.nested.current_pointer();
        let out = vm.with(Which::Vmcs01, |v| {
            let mut c = Counted::new(v);
            let o = or_fail(self.handle_vmx(&mut c, r), "vmcs01 access");
            self.meter.l1_exit(c.counts() + drain);
            o
        });
        let (out, exited) = match out {
            VmxNext::Resume => (None, false),
            VmxNext::EntryFailed => (None, true),
            VmxNext::EnterL2 { launch, l1_efer } => (Some((launch, l1_efer)), false),
        };
        if let Some(inv) = self.invalidate.take() {
            self.flush(vm, inv);
        }
        let mut extra = Counts::default();
        if shadowing {
            let now = self.nested.current_pointer();
            if let Some((e, value)) = self.nested.take_shadow_write().filter(|_| self.shadow_active) {
                extra = extra
                    + vm.with(Which::Shadow, |s| {
                        let mut c = Counted::new(s);
                        or_fail(self.nested.write_shadow(&mut c, e, value), "writing through to the shadow VMCS");
                        c.counts()
                    });
            }
            if now == before && exited && self.shadow_active {
                // The entry failed as a VM exit: L1 reads its exit information through the shadow.
                extra = extra + self.fill_shadow(vm);
            }
            if now != before {
                let link = (now != INVALID_POINTER).then(|| Vmcss::phys(Which::Shadow));
                if link.is_some() {
                    extra = extra + self.fill_shadow(vm);
                }
                extra = extra
                    + vm.with(Which::Vmcs01, |v| {
                        let mut c = Counted::new(v);
                        or_fail(vmcs01::set_shadowing(&mut c, link), "vmcs01 shadowing");
                        c.counts()
                    });
                self.shadow_active = link.is_some();
            }
        }
        self.meter.l1 = self.meter.l1 + extra;
        out
    }

    /// Run L1 until its next exit and handle it.
    fn l1_step(&mut self, v: &mut CurrentVmcs, launched: &mut bool) -> Step {
        let reason = match enter(v, &mut self.cpu, &mut self.fpu, *launched) {
            Ok(r) => r,
            Err(e) => log::fail(format_args!("VM entry of L1: {e}")),
        };
        *launched = true;
        let mut c = Counted::new(&mut *v);
        let r = self.l1_exit(&mut c, reason);
        if !matches!(r, Ok(Step::Vmx(_))) {
            self.meter.l1_exit(c.counts());
        }
        or_fail(r, "vmcs01 access")
    }

    fn l1_exit(&mut self, v: &mut Counted<CurrentVmcs>, reason: VmExitReason) -> Result<Step, VmcsError> {
        if reason.entry_failure() {
            let q = v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(0);
            log::fail(format_args!("L1's VM entry failed: reason {:#x}, qualification {q:#x}", reason.bits()));
        }
        let next = match reason.basic() {
            Some(R::Cpuid) => l1exits::cpuid(v, &mut self.cpu)?,
            Some(R::MsrRead) => l1exits::msr(v, &mut self.cpu, self.nested.caps(), false)?,
            Some(R::MsrWrite) => l1exits::msr(v, &mut self.cpu, self.nested.caps(), true)?,
            Some(R::IoInstruction) => l1exits::io(v, &mut self.cpu)?,
            Some(R::CrAccess) => {
                l1exits::cr_access(v, &mut self.cpu, self.host, self.nested.caps(), self.nested.vmxon())?
            }
            Some(
                r @ (R::Vmxon
                | R::Vmxoff
                | R::Vmcall
                | R::Vmclear
                | R::Vmptrld
                | R::Vmptrst
                | R::Vmread
                | R::Vmwrite
                | R::Vmlaunch
                | R::Vmresume
                | R::Invept
                | R::Invvpid),
            ) => return Ok(Step::Vmx(r)),
            Some(R::TripleFault) => log::fail(format_args!("L1 triple-faulted at RIP {:#x}", rip(v))),
            Some(R::EptViolation) => {
                let gpa = v.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0);
                log::fail(format_args!("L1 accessed guest-physical {gpa:#x}, which maps nothing (RIP {:#x})", rip(v)))
            }
            _ => log::fail(format_args!("unexpected exit of L1: reason {:#x} at RIP {:#x}", reason.bits(), rip(v))),
        };
        match next {
            Next::Resume => Ok(Step::Resume),
            Next::Exit(status) => log::finish(status),
        }
    }

    fn handle_vmx(&mut self, v: &mut Counted<CurrentVmcs>, r: R) -> Result<VmxNext, VmcsError> {
        match self.nested.handle_exit(r, v, &mut self.cpu, &mut L1Memory) {
            Outcome::Invalidate(inv) => {
                self.invalidate = Some(inv);
                Ok(VmxNext::Resume)
            }
            Outcome::ResumeL1 => {
                if let (R::Vmlaunch | R::Vmresume, Some(f)) = (r, self.nested.last_entry_failure()) {
                    l0log!("L1's {r:?} fails: {f}");
                }
                Ok(VmxNext::Resume)
            }
            Outcome::EnterL2 { launch } => {
                Ok(VmxNext::EnterL2 { launch, l1_efer: v.read_raw(F::GUEST_IA32_EFER.raw())? })
            }
            Outcome::EntryFailed { reason, qualification } => {
                if let Some(f) = self.nested.last_entry_failure() {
                    l0log!("L1's VM entry fails: {f}");
                }
                self.nested.fail_entry(reason.bits(), qualification)?;
                self.nested.load_l1_host_state(v)?;
                self.load_exit_msrs(v);
                Ok(VmxNext::EntryFailed)
            }
            Outcome::Memory(e) => log::fail(format_args!("L1 used memory L0 cannot reach: {:#x}", e.gpa)),
            Outcome::Vmcs01(e) => Err(e),
            Outcome::NotVmxInstruction => log::fail(format_args!("{r:?}: not a VMX instruction")),
        }
    }

    /// Enter L2 for L1's VMLAUNCH/VMRESUME and run it until an exit goes to L1.
    /// `restored`: vmcs02 is rebuilt after a state restore, with this `run_pending`.
    fn run_l2(
        &mut self,
        w: &mut CurrentVmcs,
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
            let reason = match enter(w, &mut self.cpu, &mut self.fpu, resume) {
                Ok(r) => r,
                Err(VmxError::FailValid(e)) => {
                    l0log!("vmcs02 refused by the processor: {e}; L1's VM entry fails with error 7");
                    return Pending::VmFail(VmInstructionError::EntryInvalidControlFields);
                }
                Err(e) => log::fail(format_args!("VM entry of L2: {e}")),
            };
            resume = true;
            let mut c = Counted::new(&mut *w);
            let exit = or_fail(exit_facts(&c, reason, &self.cpu), "vmcs02 access");
            if route(&exit, self.nested.current().vmcs12.inner(), &L1Memory, &KEEPS) == Route::L1 {
                self.sync_exit(&c, l1_efer);
                self.meter.reflect_l2 = c.counts();
                self.meter.reflected(reason);
                return Pending::HostState;
            }
            let next = match reason.basic() {
                Some(R::EptViolation) if eptp12.is_some() => {
                    match self.ept_violation(&mut c, eptp12.unwrap_or(0), l1_efer) {
                        Some(pending) => return pending,
                        None => Ok(L2Next::Resume),
                    }
                }
                Some(R::IoInstruction) => l2::io(&mut c, &mut self.cpu),
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
}

impl L0<'_> {
    /// Save L1's nested state while L2 runs (vmcs02 current) and restore it into a fresh vCPU,
    /// every other migration through the older vmcs12_base layout; vmcs02 and EPT02 are rebuilt.
    fn migrate(&mut self, w: &Counted<CurrentVmcs>, l1_efer: u64) -> Pending {
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

    /// vmcs12's EPTP when it enables EPT for L2.
    fn nested_eptp12(&self) -> Option<u64> {
        let v12 = self.nested.current();
        let proc = v12.get(F::CPU_BASED_VM_EXEC_CONTROL.raw());
        let proc2 = if proc >> 31 & 1 == 1 { v12.get(F::SECONDARY_VM_EXEC_CONTROL.raw()) } else { 0 };
        (proc2 & vmcs::controls::SecondaryVmExecControl::ENABLE_EPT.bits() as u64 != 0)
            .then(|| v12.get(F::EPT_POINTER.raw()))
    }

    /// An EPT violation of L2 with nested EPT: EPT02 lacks the page. L0 walks EPT12: a page it
    /// gives goes into EPT02 and L2 resumes (None); what it refuses goes to L1 as exit 48 or 49.
    fn ept_violation(&mut self, w: &mut Counted<CurrentVmcs>, eptp12: u64, l1_efer: u64) -> Option<Pending> {
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
                    let _ = w.inner_mut().invept(1, self.ept02.eptp());
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
        self.meter.reflect_l2 = w.counts();
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

fn rip<V: VmcsRead>(v: &V) -> u64 {
    v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0)
}
