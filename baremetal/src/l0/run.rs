//! L0's loop. L1 runs on vmcs01 until it enters L2; L2 runs on vmcs02 until an exit goes to L1
//! (or the entry fails); then L1 continues on vmcs01 at its host RIP. With VMCS shadowing, the
//! shadow VMCS follows vmcs12: filled when vmcs12 changes under L1, drained before L0 reads it.
//! This file holds the loop and L1's own exits; `vmx` L1's VMX instructions, `l2_exits` L2's run.

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, FpuState, GuestRegisters, VmxError, VmxOperation};
use vmcs::{VmInstructionError, VmcsError, VmcsRead};
use vmcs_nested_vmx::caps::L1Caps;
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::kvm_count::Kvm;
use vmcs_nested_vmx::nested_ept::Ept02;
use vmcs_nested_vmx::routing::L0Keeps;
use vmcs_nested_vmx::vmcs02::L0Policy;
use vmcs_nested_vmx::vmx::{Invalidation, NestedVmx, Outcome};

use crate::ept02::Pool;
use crate::l1exits::{self, Next};
use crate::l1mem::L1Memory;
use crate::l2;
use crate::loader::L1Start;
use crate::log;
use crate::meter::{L1Exit, Meter};
use crate::msr::L0Msrs;
use crate::vcpu::Vcpu;
use crate::vmcs01;
use crate::vmcss::{Vmcss, Which};

mod l2_exits;
mod vmx;

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
    /// vmcs12 first needs the rare guest state vmcs02 holds; then the instruction again.
    SyncRare,
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

/// Enter the guest of `v`, with CR2 and the x87/SSE state switched; the entry's own VMCS accesses
/// go to `meter`.
fn enter(
    v: &mut CurrentVmcs<'_>,
    cpu: &mut Vcpu,
    fpu: &mut FpuState,
    meter: &mut Meter,
    resume: bool,
) -> Result<VmExitReason, VmxError> {
    if let Some(cr2) = cpu.cr2.take() {
        load_cr2(cr2);
    }
    let before = v.host_state_writes();
    // SAFETY: the VMCS's host state is this context (vmcs01::write_host_state); its guest runs in
    // L1's memory behind EPT, which maps none of L0's.
    let r = unsafe { v.run(&mut cpu.regs, fpu, resume) };
    meter.entered(v.host_state_writes() - before);
    r
}

fn or_fail<T>(r: Result<T, VmcsError>, what: &str) -> T {
    r.unwrap_or_else(|e| log::fail(format_args!("{what}: {e}")))
}

pub fn run(op: &mut VmxOperation<'_>, host: &VmxCaps, l1caps: L1Caps, eptp: u64, start: &L1Start) -> ! {
    let mut vm = Vmcss::new(op);
    let policy = or_fail(l2::policy(host, eptp), "vmcs02 controls");
    let shadowing = host.has(Cap::Proc2VmcsShadowing);
    let mut l0 = L0 {
        host,
        cpu: Vcpu { regs: GuestRegisters::default(), cr2: None, maxphyaddr: maxphyaddr() },
        fpu: FpuState::initial(),
        nested: NestedVmx::new(l1caps),
        policy,
        meter: Meter::new(Kvm::new(host, shadowing)),
        shadow_active: false,
        ept02: Ept02::new(Pool),
        invalidate: None,
        migrations: 0,
    };
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
    fn load_exit_msrs(&self, v: &mut Counted<'_, CurrentVmcs<'_>>) {
        if let Err(abort) = self.nested.load_exit_msrs(v, &L1Memory, &mut L0Msrs(self.nested.caps())) {
            log::fail(format_args!("L1's VMX abort {} (loading its MSRs on a VM exit): L1 shuts down", abort as u32));
        }
    }

    /// Run L1 until its next exit and handle it.
    fn l1_step(&mut self, v: &mut CurrentVmcs<'_>, launched: &mut bool) -> Step {
        let reason = match enter(v, &mut self.cpu, &mut self.fpu, &mut self.meter, *launched) {
            Ok(r) => r,
            Err(e) => log::fail(format_args!("VM entry of L1: {e}")),
        };
        *launched = true;
        let mut c = Counted::new(&mut *v);
        let r = self.l1_exit(&mut c, reason);
        if !matches!(r, Ok(Step::Vmx(_))) {
            self.meter.l1_exit(c.counts(), L1Exit::Other);
        }
        or_fail(r, "vmcs01 access")
    }

    fn l1_exit(&mut self, v: &mut Counted<'_, CurrentVmcs<'_>>, reason: VmExitReason) -> Result<Step, VmcsError> {
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
}

fn rip<V: VmcsRead>(v: &V) -> u64 {
    v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0)
}
