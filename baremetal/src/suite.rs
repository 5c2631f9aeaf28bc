//! The checks. Where Bochs contradicts the SDM, the schema keeps the SDM and the contradiction is
//! a named exception where it is checked, printed as `exception: <name>: <why>` (on Bochs 2.7
//! only IA32_VMX_VMCS_ENUM; every model accepts exactly the fields the schema makes exist, see
//! the probe of all 2^15 encodings in `sweep`).

use vmcs::caps::{Cap, Msr, VmxCaps};
use vmcs::copy::{self, ExitKind, Tracked};
use vmcs::exit::ExitReason;
use vmcs::fields;
use vmcs::hw::{CurrentVmcs, GuestRegisters, VmInstructionError, VmxError, VmxOperation, VmxRegion};
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::reflect::Reflect;
use crate::rt::{self, unique};
use crate::sweep;

unsafe extern "C" {
    /// The guest the suite launches (boot.rs).
    fn guest_entry();
}

pub(crate) use crate::rt::{check, finish};

/// The value of a step the rest of the suite needs, or the failed check and the end of the run.
fn or_finish<T, E: core::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| {
        check(false, format_args!("{what}: {e:?}"));
        finish()
    })
}

static mut VMXON_REGION: VmxRegion = VmxRegion::new();
static mut VMCS_SWEEP: VmxRegion = VmxRegion::new();
static mut VMCS_GUEST: VmxRegion = VmxRegion::new();
// SAFETY: all-zero is a valid Tracked<Vmcs12> (integers and a bool); it lives in BSS.
static mut VMCS12: Tracked<Vmcs12> = unsafe { core::mem::zeroed() };
#[repr(C, align(16))]
struct Stack([u8; 8192]);
static mut GUEST_STACK: Stack = Stack([0; 8192]);

/// The identity-mapped physical address of a static region.
fn phys<T>(p: *const T) -> u64 {
    p as u64
}

pub fn run() -> ! {
    // SAFETY: single-threaded; each static region is borrowed once, identity-mapped (phys = virt).
    let (vmxon, sweep_region, guest_region) =
        unsafe { (unique(&raw mut VMXON_REGION), unique(&raw mut VMCS_SWEEP), unique(&raw mut VMCS_GUEST)) };
    let vmxon_phys = phys(vmxon as *const VmxRegion);
    // SAFETY: CPL 0, identity mapping, one logical processor, nothing else uses VMX.
    let mut op = or_finish(unsafe { VmxOperation::enter(vmxon, vmxon_phys) }, "vmxon");
    let caps = *op.caps();
    check(true, format_args!("vmxon: revision {:#x}", op.revision()));
    for m in Msr::ALL {
        println!("data: msr {:#x} ({}) = {:#018x}", m.index(), m.name(), caps.raw(m.index()));
    }

    // 2 and 3: every field on a VMCS that is never launched.
    let observed_max_index;
    let probe;
    let sweep_phys = phys(sweep_region as *const VmxRegion);
    // SAFETY: the region is a live static at `sweep_phys`, distinct from the VMXON region.
    let mut sweep = or_finish(unsafe { op.vmcs(sweep_region, sweep_phys) }, "vmclear");
    {
        let mut v = or_finish(op.load(&mut sweep), "vmptrld");
        check(true, format_args!("vmclear+vmptrld {sweep_phys:#x}"));
        observed_max_index = sweep::field_sweep(&mut v, &caps);
        probe = sweep::encoding_probe(&v, &caps);
        sweep::read_only_fields(&mut v, &caps);
        sweep::unsupported_encoding(&mut v);
        // VMRESUME of a clear VMCS: error 5 before any field is checked.
        let mut regs = GuestRegisters::default();
        // SAFETY: the VMCS is clear, so the entry fails at once (launch state) and never runs a guest.
        let r = unsafe { v.resume(&mut regs) };
        check(
            r == Err(VmxError::FailValid(VmInstructionError::VmresumeNonLaunchedVmcs)),
            format_args!("vmresume of a clear VMCS: {r:?} (error 5)"),
        );
    }
    // VMCLEAR of the current VMCS: none is current afterwards.
    or_finish(op.clear(&mut sweep), "vmclear of the current VMCS");
    let p = op.current_vmcs_pointer();
    check(p == Ok(u64::MAX), format_args!("vmptrst after vmclear: {p:x?}"));

    // 1: VMCS_ENUM.
    let ours = fields::vmcs_enum(&caps);
    let msr = caps.raw(Msr::VmcsEnum.index());
    println!(
        "data: vmcs_enum computed {ours:#x}, IA32_VMX_VMCS_ENUM {msr:#x}, highest index accepted: schema fields {observed_max_index:#x}, any encoding {:#x}",
        probe.max_index
    );
    if ours != msr {
        println!(
            "data: vmcs_enum disagreement: computed {ours:#x} != msr {msr:#x} (SDM: bits 9:1 = highest index of any supported field)"
        );
        if msr >> 1 & 0x1ff > probe.max_index as u64 {
            println!(
                "exception: vmcs-enum-msr: Bochs 2.7 reports IA32_VMX_VMCS_ENUM {msr:#x} on every model, but VMREAD accepts no encoding with index above {:#x} (all 2^15 encodings probed); by the SDM the value is {:#x}",
                probe.max_index,
                (probe.max_index as u64) << 1
            );
        }
    }
    check(
        ours == (probe.max_index as u64) << 1 && observed_max_index == probe.max_index,
        format_args!("vmcs_enum {ours:#x} = highest index VMREAD accepts ({:#x}) << 1", probe.max_index),
    );

    // 4: a guest.
    let guest_phys = phys(guest_region as *const VmxRegion);
    // SAFETY: as above.
    let mut guest_vmcs = or_finish(unsafe { op.vmcs(guest_region, guest_phys) }, "vmclear guest VMCS");
    {
        let mut v = or_finish(op.load(&mut guest_vmcs), "vmptrld guest VMCS");
        let cur = v.current_vmcs_pointer();
        check(cur == Ok(guest_phys), format_args!("vmptrst = {cur:x?} (loaded {guest_phys:#x})"));
        guest(&mut v, &caps);
        inv_checks(&v, &caps);
    }
    // 5: the guest VMCS and the sweep's in turn.
    crate::switch::run(&mut op, &mut guest_vmcs, &mut sweep, guest_entry as *const () as u64);
    crate::host_cache::run(&mut op, &mut guest_vmcs, guest_entry as *const () as u64);
    crate::entry_diff::run(&mut op, &caps);
    match op.exit() {
        Ok(()) => check(true, format_args!("vmxoff")),
        Err(e) => check(false, format_args!("vmxoff: {e:?}")),
    }
    finish()
}

/// A typed VMREAD, kept out of line for the disassembly.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn typed_read_guest_rip(v: &CurrentVmcs<'_>) -> Result<u64, VmcsError> {
    v.read(fields::GUEST_RIP)
}

fn guest(v: &mut CurrentVmcs<'_>, caps: &VmxCaps) {
    use vmcs::controls::{Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin};
    use vmcs::controls::{VmEntryControls as Entry, VmExitControls as Exit};
    let tru = Msr::TrueProc.exists(caps);
    let exiting = Proc::HLT_EXITING | Proc::UNCONDITIONAL_IO_EXITING | Proc::CR3_LOAD_EXITING;
    let controls = (
        Pin::adjust(caps, Pin::empty(), Pin::empty()),
        Proc::adjust(caps, exiting, Proc::empty()),
        Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE, Exit::empty()),
        Entry::adjust(caps, Entry::IA32E_MODE_GUEST, Entry::empty()),
    );
    let (Ok(pin), Ok(proc), Ok(exit), Ok(entry)) = controls else {
        check(false, format_args!("controls {controls:?}"));
        return;
    };
    check(
        proc.contains(exiting) && Proc::allowed(caps).permits(proc),
        format_args!("controls pin {pin} proc {proc} exit {exit} entry {entry} (TRUE MSRs: {tru})"),
    );
    let (cr0, cr3, cr4) = (rt::cr0(), rt::cr3(), rt::cr4());
    let gdt = rt::gdt_base();
    let idt = rt::idt_base();
    let tss = rt::tss_base();
    let rip = guest_entry as *const () as u64;
    // A static stack only the guest uses.
    let rsp = (&raw mut GUEST_STACK) as u64 + 8192;
    let (cs, ds, tr) = (rt::CODE_SEL, rt::DATA_SEL, rt::TSS_SEL);
    let mut failures = 0;
    let mut count = 0;
    let mut w = |enc: u64, val: u64| {
        count += 1;
        if let Err(e) = v.write_raw(enc, val) {
            failures += 1;
            println!("     vmwrite {enc:#x} = {val:#x}: {e:?}");
        }
    };
    use vmcs::fields as F;
    w(Pin::FIELD.raw(), pin.bits() as u64);
    w(Proc::FIELD.raw(), proc.bits() as u64);
    w(Exit::FIELD.raw(), exit.bits() as u64);
    w(Entry::FIELD.raw(), entry.bits() as u64);
    for f in [
        F::EXCEPTION_BITMAP,
        F::PAGE_FAULT_ERROR_CODE_MASK,
        F::PAGE_FAULT_ERROR_CODE_MATCH,
        F::CR3_TARGET_COUNT,
        F::VM_EXIT_MSR_STORE_COUNT,
        F::VM_EXIT_MSR_LOAD_COUNT,
        F::VM_ENTRY_MSR_LOAD_COUNT,
        F::VM_ENTRY_INTR_INFO_FIELD,
        F::GUEST_INTERRUPTIBILITY_INFO,
        F::GUEST_ACTIVITY_STATE,
        F::GUEST_SYSENTER_CS,
        F::HOST_IA32_SYSENTER_CS,
    ] {
        w(f.raw(), 0);
    }
    for f in [F::CR0_GUEST_HOST_MASK, F::CR4_GUEST_HOST_MASK, F::CR0_READ_SHADOW, F::CR4_READ_SHADOW] {
        w(f.raw(), 0);
    }
    w(F::VMCS_LINK_POINTER.raw(), u64::MAX);
    // Host state: this context.
    w(F::HOST_CR0.raw(), cr0);
    w(F::HOST_CR3.raw(), cr3);
    w(F::HOST_CR4.raw(), cr4);
    for f in [F::HOST_ES_SELECTOR, F::HOST_SS_SELECTOR, F::HOST_DS_SELECTOR, F::HOST_FS_SELECTOR, F::HOST_GS_SELECTOR] {
        w(f.raw(), ds as u64);
    }
    w(F::HOST_CS_SELECTOR.raw(), cs as u64);
    w(F::HOST_TR_SELECTOR.raw(), tr as u64);
    w(F::HOST_FS_BASE.raw(), 0);
    w(F::HOST_GS_BASE.raw(), 0);
    w(F::HOST_TR_BASE.raw(), tss);
    w(F::HOST_GDTR_BASE.raw(), gdt);
    w(F::HOST_IDTR_BASE.raw(), idt);
    w(F::HOST_IA32_SYSENTER_ESP.raw(), 0);
    w(F::HOST_IA32_SYSENTER_EIP.raw(), 0);
    // Guest state: the same address space, GDT, IDT and TSS.
    w(F::GUEST_CR0.raw(), cr0);
    w(F::GUEST_CR3.raw(), cr3);
    w(F::GUEST_CR4.raw(), cr4);
    w(F::GUEST_DR7.raw(), 0x400);
    w(F::GUEST_RSP.raw(), rsp);
    w(F::GUEST_RIP.raw(), rip);
    w(F::GUEST_RFLAGS.raw(), 0x2);
    w(F::GUEST_PENDING_DBG_EXCEPTIONS.raw(), 0);
    w(F::GUEST_SYSENTER_ESP.raw(), 0);
    w(F::GUEST_SYSENTER_EIP.raw(), 0);
    w(F::GUEST_IA32_DEBUGCTL.raw(), 0);
    let segs = [
        (F::GUEST_ES_SELECTOR, F::GUEST_ES_BASE, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES, ds, 0xc093u64),
        (F::GUEST_CS_SELECTOR, F::GUEST_CS_BASE, F::GUEST_CS_LIMIT, F::GUEST_CS_AR_BYTES, cs, 0xa09b),
        (F::GUEST_SS_SELECTOR, F::GUEST_SS_BASE, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES, ds, 0xc093),
        (F::GUEST_DS_SELECTOR, F::GUEST_DS_BASE, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES, ds, 0xc093),
        (F::GUEST_FS_SELECTOR, F::GUEST_FS_BASE, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES, ds, 0xc093),
        (F::GUEST_GS_SELECTOR, F::GUEST_GS_BASE, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES, ds, 0xc093),
    ];
    for (sel, base, limit, ar, s, a) in segs {
        w(sel.raw(), s as u64);
        w(base.raw(), 0);
        w(limit.raw(), 0xffff_ffff);
        w(ar.raw(), a);
    }
    w(F::GUEST_LDTR_SELECTOR.raw(), 0);
    w(F::GUEST_LDTR_BASE.raw(), 0);
    w(F::GUEST_LDTR_LIMIT.raw(), 0);
    w(F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000);
    w(F::GUEST_TR_SELECTOR.raw(), tr as u64);
    w(F::GUEST_TR_BASE.raw(), tss);
    w(F::GUEST_TR_LIMIT.raw(), 103);
    w(F::GUEST_TR_AR_BYTES.raw(), 0x8b);
    w(F::GUEST_GDTR_BASE.raw(), gdt);
    w(F::GUEST_GDTR_LIMIT.raw(), rt::GDT_LIMIT as u64);
    w(F::GUEST_IDTR_BASE.raw(), idt);
    w(F::GUEST_IDTR_LIMIT.raw(), rt::IDT_LIMIT as u64);
    check(failures == 0, format_args!("guest setup: {count} vmwrites, {failures} failed"));

    let mut regs = GuestRegisters { rbx: 0x1111, r15: 0xf15, ..Default::default() };
    // SAFETY: the host state above is this context; the guest runs VMCALL then HLT on its own stack.
    let r = unsafe { v.launch(&mut regs) };
    let vmcall = ExitReason::Vmcall;
    check(
        matches!(r, Ok(e) if e.basic() == Some(vmcall) && !e.entry_failure()),
        format_args!("vmlaunch: exit {r:?} ({vmcall})"),
    );
    if r.is_err() {
        return;
    }
    check(regs.rbx == 0x1111 && regs.r15 == 0xf15, format_args!("guest registers survive the exit: {regs:x?}"));
    // Reflect the exit into a vmcs12 as an L0 would: the generated exit steps over this VMCS.
    // SAFETY: single-threaded; VMCS12 is used only here.
    let v12 = unsafe { unique(&raw mut VMCS12) };
    *v12 = Tracked::new(Vmcs12::zeroed());
    // The suite set this VMCS up itself, as a nested entry would have: nothing in vmcs12 is newer.
    for bit in 0..copy::DIRTY_BITS {
        v12.clean(bit);
    }
    let mut hooks = Reflect {
        reason: r.map_or(0, |e| e.bits()),
        qualification: v.read(fields::EXIT_QUALIFICATION).unwrap_or(0),
        instruction_len: v.read(fields::VM_EXIT_INSTRUCTION_LEN).unwrap_or(0),
        dr7: v.read(fields::GUEST_DR7).unwrap_or(0),
        efer: 0,
    };
    let s1 = copy::exit_to_vmcs12(ExitKind::Exit, &*v, v12, caps, &mut hooks);
    let s2 = copy::sync_rare(&*v, v12, caps);
    check(s1.is_ok() && s2.is_ok(), format_args!("copy::exit_to_vmcs12 {s1:?}, copy::sync_rare {s2:?}"));
    let reason = v12.read(fields::VM_EXIT_REASON);
    let len = v12.read(fields::VM_EXIT_INSTRUCTION_LEN);
    let grip = v12.read(fields::GUEST_RIP);
    check(reason == Ok(vmcall.number().into()), format_args!("vmcs12 exit reason {reason:?} ({vmcall})"));
    check(len == Ok(3), format_args!("vmcs12 instruction length {len:?} (3)"));
    check(grip == Ok(rip), format_args!("vmcs12 guest RIP {grip:x?} ({rip:#x})"));
    let ar = v12.read(fields::GUEST_CS_AR_BYTES);
    check(ar == Ok(0xa09b), format_args!("vmcs12 guest CS access rights {ar:x?} (0xa09b)"));
    let entry = v12.read(fields::VM_ENTRY_CONTROLS);
    check(entry == Ok(1 << 9), format_args!("vmcs12 entry controls {entry:x?}: only IA-32e mode from vmcs02"));
    let got = v12.read(fields::GUEST_TR_SELECTOR);
    check(got == Ok(tr), format_args!("vmcs12 guest TR selector {got:x?} (lazily synced, {tr:#x})"));
    let hw_rip = typed_read_guest_rip(v);
    check(hw_rip == Ok(rip), format_args!("typed VMREAD GUEST_RIP {hw_rip:x?}"));
    let after_vmcall = rip + len.unwrap_or(0) as u64;
    let wr = v.write(fields::GUEST_RIP, after_vmcall);
    check(wr.is_ok(), format_args!("advance guest RIP to {after_vmcall:#x}: {wr:?}"));
    let next = crate::exits::io_and_cr_exits(v, &mut regs);
    // SAFETY: as for the launch.
    let r = unsafe { v.resume(&mut regs) };
    let hlt = ExitReason::Hlt;
    check(matches!(r, Ok(e) if e.basic() == Some(hlt)), format_args!("vmresume: exit {r:?} ({hlt})"));
    let at = v.read(fields::GUEST_RIP);
    check(at == Ok(next + 1) || at == Ok(next), format_args!("guest RIP at HLT exit {at:x?}"));
    // SAFETY: the VMCS is launched: VMLAUNCH fails before entering the guest.
    let r = unsafe { v.launch(&mut regs) };
    check(
        r == Err(VmxError::FailValid(VmInstructionError::VmlaunchNonClearVmcs)),
        format_args!("vmlaunch of a launched VMCS: {r:?} (error 4)"),
    );
    let e = v.read(fields::VM_INSTRUCTION_ERROR);
    let want = VmInstructionError::VmlaunchNonClearVmcs.number();
    check(e == Ok(want), format_args!("VM_INSTRUCTION_ERROR after it: {e:?} ({want})"));
}

/// INVEPT/INVVPID where the CPU has them (IA32_VMX_EPT_VPID_CAP), with a current VMCS.
fn inv_checks(v: &CurrentVmcs<'_>, caps: &VmxCaps) {
    println!("data: IA32_VMX_EPT_VPID_CAP {:#x}", caps.raw(Msr::EptVpid.index()));
    let invalid = Err(VmxError::FailValid(VmInstructionError::InvalidInveptInvvpidOperand));
    if caps.has_cap(Cap::EptInvept) {
        if caps.has_cap(Cap::EptInveptAllContext) {
            let r = v.invept(2, 0);
            check(r.is_ok(), format_args!("invept all-context: {r:?}"));
        }
        let r = v.invept(0, 0);
        check(r == invalid, format_args!("invept type 0: {r:?} (error 28)"));
    } else {
        println!("data: no INVEPT on this model");
    }
    if caps.has_cap(Cap::VpidInvvpid) {
        if caps.has_cap(Cap::VpidInvvpidAllContext) {
            let r = v.invvpid(2, 0, 0);
            check(r.is_ok(), format_args!("invvpid all-context: {r:?}"));
        }
        let r = v.invvpid(4, 1, 0);
        check(r == invalid, format_args!("invvpid type 4: {r:?} (error 28)"));
    } else {
        println!("data: no INVVPID on this model");
    }
}
