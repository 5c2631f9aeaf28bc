//! L0's loop. L1 runs on vmcs01 until it enters L2; L2 runs on vmcs02 until an exit goes to L1
//! (or the entry fails); then L1 continues on vmcs01 at its host RIP. One VMCS is current at a
//! time: the other is set aside (not cleared) and reloaded with VMPTRLD.

use vmcs::caps::VmxCaps;
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, FpuState, GuestRegisters, VmxError, VmxOperation, VmxRegion};
use vmcs::{VmInstructionError, VmcsError, VmcsRead};
use vmcs_nested_vmx::caps::L1Caps;
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::routing::{Exit, L0Keeps, Route, route};
use vmcs_nested_vmx::vmcs02::L0Policy;
use vmcs_nested_vmx::vmx::{NestedVmx, Outcome};

use crate::l1exits::{self, Next};
use crate::l1mem::L1Memory;
use crate::l2::{self, L2Next};
use crate::loader::L1Start;
use crate::log;
use crate::meter::Meter;
use crate::vcpu::Vcpu;
use crate::vmcs01;

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

/// Why L1 stopped running.
enum L1Stop {
    /// VMLAUNCH/VMRESUME passed the checks on vmcs12.
    EnterL2 { launch: bool, l1_efer: u64 },
}

/// What to do to vmcs01 before L1 runs again.
enum Pending {
    /// L2 exited to L1: load L1's host state from vmcs12.
    HostState,
    /// The processor refused vmcs02 with this VM-instruction error: L1's VMLAUNCH/VMRESUME fails.
    VmFail(VmInstructionError),
}

pub struct L0<'a> {
    pub host: &'a VmxCaps,
    pub cpu: Vcpu,
    pub fpu: FpuState,
    pub nested: NestedVmx,
    pub policy: L0Policy,
    pub meter: Meter,
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

pub fn run(
    op: &mut VmxOperation,
    r01: &mut VmxRegion,
    r02: &mut VmxRegion,
    host: &VmxCaps,
    l1caps: L1Caps,
    eptp: u64,
    start: &L1Start,
) -> ! {
    let (p01, p02) = (r01 as *const VmxRegion as u64, r02 as *const VmxRegion as u64);
    let policy = l2::policy(host, eptp).unwrap_or_else(|e| log::fail(format_args!("vmcs02 controls: {e}")));
    let mut l0 = L0 {
        host,
        cpu: Vcpu { regs: GuestRegisters::default(), cr2: None, maxphyaddr: maxphyaddr() },
        fpu: FpuState::initial(),
        nested: NestedVmx::new(l1caps),
        policy,
        meter: Meter::default(),
    };
    // SAFETY: L0's static regions, identity-mapped, not the VMXON region.
    let mut v = unsafe { op.load(r01, p01) }.unwrap_or_else(|e| log::fail(format_args!("VMPTRLD vmcs01: {e}")));
    if let Err(e) = vmcs01::setup(&mut v, host, eptp, start, &mut l0.cpu.regs) {
        log::fail(format_args!("vmcs01 setup: {e}"));
    }
    let mut launched01 = false;
    let mut vmcs02_ready = false;
    loop {
        let L1Stop::EnterL2 { launch, l1_efer } = l0.run_l1(&mut v, &mut launched01);
        v.set_aside();
        let mut w = if vmcs02_ready {
            // SAFETY: vmcs02 was loaded and set aside before, never cleared.
            unsafe { op.reload(r02, p02) }
        } else {
            // SAFETY: as for vmcs01.
            unsafe { op.load(r02, p02) }
        }
        .unwrap_or_else(|e| log::fail(format_args!("VMPTRLD vmcs02: {e}")));
        if !vmcs02_ready {
            l2::init(&mut w).unwrap_or_else(|e| log::fail(format_args!("vmcs02 setup: {e}")));
        }
        let pending = l0.run_l2(&mut w, !vmcs02_ready, launch, l1_efer);
        vmcs02_ready = true;
        w.set_aside();
        // SAFETY: vmcs01 was loaded and set aside, never cleared.
        v = unsafe { op.reload(r01, p01) }.unwrap_or_else(|e| log::fail(format_args!("VMPTRLD vmcs01: {e}")));
        let mut c = Counted::new(&mut v);
        let done = match pending {
            Pending::HostState => l0.nested.load_l1_host_state(&mut c),
            Pending::VmFail(e) => match l0.nested.fail_vmentry(&mut c, e) {
                Outcome::ResumeL1 => Ok(()),
                o => log::fail(format_args!("L1's failed VM entry: {o:?}")),
            },
        };
        l0.meter.reflect_l1 = c.counts();
        if let Err(e) = done {
            log::fail(format_args!("loading L1's host state: {e}"));
        }
    }
}

impl L0<'_> {
    /// Run L1 until it enters L2.
    fn run_l1(&mut self, v: &mut CurrentVmcs, launched: &mut bool) -> L1Stop {
        loop {
            let reason = match enter(v, &mut self.cpu, &mut self.fpu, *launched) {
                Ok(r) => r,
                Err(e) => log::fail(format_args!("VM entry of L1: {e}")),
            };
            *launched = true;
            let mut c = Counted::new(&mut *v);
            let r = self.l1_exit(&mut c, reason);
            self.meter.l1_exit(c.counts());
            match r {
                Ok(None) => {}
                Ok(Some(stop)) => return stop,
                Err(e) => log::fail(format_args!("vmcs01 access: {e}")),
            }
        }
    }

    fn l1_exit(&mut self, v: &mut Counted<CurrentVmcs>, reason: VmExitReason) -> Result<Option<L1Stop>, VmcsError> {
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
                | R::Vmclear
                | R::Vmptrld
                | R::Vmptrst
                | R::Vmread
                | R::Vmwrite
                | R::Vmlaunch
                | R::Vmresume
                | R::Invept
                | R::Invvpid),
            ) => match self.nested.handle_exit(r, v, &mut self.cpu, &mut L1Memory) {
                Outcome::ResumeL1 | Outcome::Invalidate(_) => {
                    if let (R::Vmlaunch | R::Vmresume, Some(f)) = (r, self.nested.last_entry_failure()) {
                        l0log!("L1's {r:?} fails: {f}");
                    }
                    Next::Resume
                }
                Outcome::EnterL2 { launch } => {
                    let l1_efer = v.read_raw(F::GUEST_IA32_EFER.raw())?;
                    return Ok(Some(L1Stop::EnterL2 { launch, l1_efer }));
                }
                Outcome::EntryFailed { reason, qualification } => {
                    if let Some(f) = self.nested.last_entry_failure() {
                        l0log!("L1's VM entry fails: {f}");
                    }
                    self.nested.fail_entry(reason.bits(), qualification)?;
                    self.nested.load_l1_host_state(v)?;
                    Next::Resume
                }
                Outcome::Memory(e) => log::fail(format_args!("L1 used memory L0 cannot reach: {:#x}", e.gpa)),
                Outcome::Vmcs01(e) => return Err(e),
                Outcome::NotVmxInstruction => log::fail(format_args!("{r:?}: not a VMX instruction")),
            },
            Some(R::TripleFault) => log::fail(format_args!("L1 triple-faulted at RIP {:#x}", rip(v))),
            Some(R::EptViolation) => {
                let gpa = v.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0);
                log::fail(format_args!("L1 accessed guest-physical {gpa:#x}, which maps nothing (RIP {:#x})", rip(v)))
            }
            _ => log::fail(format_args!("unexpected exit of L1: reason {:#x} at RIP {:#x}", reason.bits(), rip(v))),
        };
        match next {
            Next::Resume => Ok(None),
            Next::Exit(status) => log::finish(status),
        }
    }

    /// Enter L2 for L1's VMLAUNCH/VMRESUME and run it until an exit goes to L1.
    fn run_l2(&mut self, w: &mut CurrentVmcs, first: bool, launch: bool, l1_efer: u64) -> Pending {
        let mut c = Counted::new(&mut *w);
        if let Err(e) = self.nested.prepare_vmcs02(&mut c, &self.policy, l1_efer, &L1Memory) {
            log::fail(format_args!("preparing vmcs02: {e:?}"));
        }
        self.meter.entry = c.counts();
        l2::flush_vpid02(w, self.host);
        self.meter.nested_entry(launch);
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
            let exit = match exit_facts(&c, reason, &self.cpu) {
                Ok(e) => e,
                Err(e) => log::fail(format_args!("vmcs02 access: {e}")),
            };
            if route(&exit, self.nested.current().vmcs12.inner(), &L1Memory, &KEEPS) == Route::L1 {
                if let Err(e) = self.nested.sync_exit(&c, true, l1_efer) {
                    log::fail(format_args!("syncing vmcs12: {e}"));
                }
                self.meter.reflect_l2 = c.counts();
                self.meter.reflected(reason);
                return Pending::HostState;
            }
            let next = match reason.basic() {
                Some(R::IoInstruction) => l2::io(&mut c, &mut self.cpu),
                Some(R::MsrRead) => l2::msr(&mut c, &mut self.cpu, self.nested.caps(), false),
                Some(R::MsrWrite) => l2::msr(&mut c, &mut self.cpu, self.nested.caps(), true),
                _ => Ok(L2Next::Unexpected),
            };
            self.meter.l0_handled(reason, c.counts());
            match next {
                Ok(L2Next::Resume) => {}
                Ok(L2Next::Exit(status)) => log::finish(status),
                Ok(L2Next::Unexpected) => {
                    let gpa = c.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0);
                    log::fail(format_args!(
                        "L2 exit L0 cannot handle: reason {:#x} at RIP {:#x} (guest-physical {gpa:#x})",
                        reason.bits(),
                        rip(&c)
                    ))
                }
                Err(e) => log::fail(format_args!("vmcs02 access: {e}")),
            }
        }
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
