//! The checks. Where Bochs contradicts the SDM, the schema keeps the SDM and the contradiction is
//! a named exception here ([`EXCEPTIONS`]), printed as `exception: <name>: <why>`.

use vmcs::caps::{Cap, Msr, VmxCaps};
use vmcs::copy::{self, ExitKind, Tracked};
use vmcs::exit::ExitReason;
use vmcs::field::{FieldKind, FieldWidth};
use vmcs::fields;
use vmcs::hw::{CurrentVmcs, GuestRegisters, VmInstructionError, VmxError, VmxOperation, VmxRegion};
use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};

use crate::reflect::Reflect;
use crate::rt::{self, unique};

unsafe extern "C" {
    /// The guest the suite launches (boot.rs).
    fn guest_entry();
}

pub(crate) use crate::rt::{check, finish};

/// A known contradiction between Bochs 2.7 and the SDM for one field encoding.
struct Exception {
    name: &'static str,
    why: &'static str,
    /// Does it explain the behaviour seen for `encoding` on a CPU with `caps`?
    applies: fn(u32, &VmxCaps) -> bool,
}

/// Field-level contradictions: none on Bochs 2.7 (every model accepts exactly the fields the schema
/// makes exist; see the probe of all 2^15 encodings). VMCS_ENUM is handled where it is checked.
static EXCEPTIONS: &[Exception] = &[];

fn exception_for(encoding: u32, caps: &VmxCaps) -> Option<&'static Exception> {
    EXCEPTIONS.iter().find(|e| (e.applies)(encoding, caps))
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
    let mut op = match unsafe { VmxOperation::enter(vmxon, vmxon_phys) } {
        Ok(op) => op,
        Err(e) => {
            check(false, format_args!("vmxon: {e:?}"));
            finish()
        }
    };
    let caps = *op.caps();
    check(true, format_args!("vmxon: revision {:#x}", op.revision()));
    for m in Msr::ALL {
        println!("data: msr {:#x} ({}) = {:#018x}", m.index(), m.name(), caps.raw(m.index()));
    }

    // 2 and 3: every field on a VMCS that is never launched.
    let observed_max_index;
    let probe;
    {
        let sweep_phys = phys(sweep_region as *const VmxRegion);
        // SAFETY: the region is a live static, distinct from the VMXON region.
        let mut v = match unsafe { op.load(sweep_region, sweep_phys) } {
            Ok(v) => v,
            Err(e) => {
                check(false, format_args!("vmptrld: {e:?}"));
                finish()
            }
        };
        check(true, format_args!("vmclear+vmptrld {sweep_phys:#x}"));
        observed_max_index = field_sweep(&mut v, &caps);
        probe = encoding_probe(&v, &caps);
        read_only_fields(&mut v, &caps);
        unsupported_encoding(&mut v);
        // VMRESUME of a clear VMCS: error 5 before any field is checked.
        let mut regs = GuestRegisters::default();
        // SAFETY: the VMCS is clear, so the entry fails at once (launch state) and never runs a guest.
        let r = unsafe { v.resume(&mut regs) };
        check(
            r == Err(VmxError::FailValid(VmInstructionError::VmresumeNonLaunchedVmcs)),
            format_args!("vmresume of a clear VMCS: {r:?} (error 5)"),
        );
    }
    // VMCLEAR on drop: no current VMCS remains.
    let p = op.current_vmcs_pointer();
    check(p == Ok(u64::MAX), format_args!("vmptrst after drop (vmclear): {p:x?}"));

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
    {
        // SAFETY: as above.
        let mut v = match unsafe { op.load(guest_region, guest_phys) } {
            Ok(v) => v,
            Err(e) => {
                check(false, format_args!("vmptrld guest VMCS: {e:?}"));
                finish()
            }
        };
        let cur = v.current_vmcs_pointer();
        check(cur == Ok(guest_phys), format_args!("vmptrst = {cur:x?} (loaded {guest_phys:#x})"));
        guest(&mut v, &caps);
        inv_checks(&v, &caps);
    }
    crate::entry_diff::run(&mut op, &caps);
    match op.exit() {
        Ok(()) => check(true, format_args!("vmxoff")),
        Err(e) => check(false, format_args!("vmxoff: {e:?}")),
    }
    finish()
}

fn width_mask(w: FieldWidth) -> u64 {
    match w {
        FieldWidth::W16 => 0xffff,
        FieldWidth::W32 => 0xffff_ffff,
        FieldWidth::W64 | FieldWidth::Natural => u64::MAX,
    }
}

fn pattern(enc: u32) -> u64 {
    0x8877_6655_4433_2211 ^ (enc as u64).wrapping_mul(0x0001_0003_0005_0007)
}

const UNSUPPORTED: VmxError = VmxError::FailValid(VmInstructionError::UnsupportedComponent);

/// One line per schema field: VMREAD/VMWRITE success = `exists`, and the width round trip.
/// Returns the highest field index (encoding bits 9:1) the CPU accepted.
fn field_sweep(v: &mut CurrentVmcs, caps: &VmxCaps) -> u32 {
    let mut max_index = 0;
    for f in fields::ALL.iter() {
        let full = f.encoding as u64;
        let is64 = f.width == FieldWidth::W64;
        let mut problems: [Option<&str>; 4] = [None; 4];
        let mut np = 0;
        let mut note = |s: &'static str| {
            if np < problems.len() {
                problems[np] = Some(s);
                np += 1;
            }
        };
        let exists = fields::exists(full, caps);
        let r = v.vmread(full);
        if r.is_ok() != exists {
            note(if exists { "vmread failed on an existing field" } else { "vmread succeeded on an absent field" });
        }
        if let Err(e) = r
            && e != UNSUPPORTED
        {
            note("vmread failed with other than error 12");
        }
        if r.is_ok() {
            max_index = max_index.max(f.encoding >> 1 & 0x1ff);
        }
        if is64 {
            let hexists = fields::exists(full | 1, caps);
            let hr = v.vmread(full | 1);
            if hr.is_ok() != hexists {
                note("high vmread disagrees with exists");
            }
        }
        if f.kind != FieldKind::ReadOnly {
            let p = pattern(f.encoding);
            let w = v.vmwrite(full, p);
            if w.is_ok() != exists {
                note(if exists {
                    "vmwrite failed on an existing field"
                } else {
                    "vmwrite succeeded on an absent field"
                });
            }
            if let Err(e) = w
                && e != UNSUPPORTED
            {
                note("vmwrite failed with other than error 12");
            }
            if w.is_ok() {
                let want = p & width_mask(f.width);
                if v.vmread(full) != Ok(want) {
                    note("round trip differs from the width-truncated value");
                }
                if is64 {
                    if v.vmread(full | 1) != Ok(p >> 32) {
                        note("high read is not bits 63:32");
                    }
                    let p2 = pattern(!f.encoding);
                    if v.vmwrite(full | 1, p2).is_err() {
                        note("high vmwrite failed");
                    } else {
                        if v.vmread(full | 1) != Ok(p2 & 0xffff_ffff) {
                            note("high round trip differs");
                        }
                        if v.vmread(full) != Ok((p2 << 32) | (p & 0xffff_ffff)) {
                            note("high write did not set bits 63:32 only");
                        }
                    }
                }
            }
        }
        let ok = np == 0;
        let desc = format_args!(
            "field {} {:#06x}{} exists={}",
            f.name,
            f.encoding,
            if is64 { "+high" } else { "" },
            if exists { "yes" } else { "no" }
        );
        if ok {
            check(true, desc);
        } else if let Some(x) = exception_for(f.encoding, caps) {
            println!("exception: {}: {}", x.name, x.why);
            check(true, format_args!("{desc} (exception {})", x.name));
        } else {
            check(false, desc);
            for p in problems.iter().flatten() {
                println!("     - {p}");
            }
        }
    }
    max_index
}

struct Probe {
    max_index: u32,
}

/// VMREAD of every encoding with bits 63:15 and bit 12 clear: the set the CPU accepts must be the
/// set `fields::exists` computes. Encodings the schema does not know are reported as data.
fn encoding_probe(v: &CurrentVmcs, caps: &VmxCaps) -> Probe {
    let (mut accepted, mut extra, mut missing, mut max_index) = (0u32, 0u32, 0u32, 0u32);
    for enc in 0u32..0x8000 {
        if enc & 0x1000 != 0 {
            continue;
        }
        let ok = v.vmread(enc as u64).is_ok();
        let exists = fields::exists(enc as u64, caps);
        if ok {
            accepted += 1;
            max_index = max_index.max(enc >> 1 & 0x1ff);
        }
        if ok && !exists {
            extra += 1;
            println!("data: VMREAD accepts {enc:#06x}, which the schema does not make exist for these MSRs");
        } else if !ok && exists {
            missing += 1;
            println!("data: VMREAD rejects {enc:#06x}, which exists by the schema");
        }
    }
    check(
        extra == 0 && missing == 0,
        format_args!("all 2^15 encodings: {accepted} accepted, {extra} beyond the schema, {missing} missing"),
    );
    Probe { max_index }
}

/// VMWRITE to read-only fields: error 13 exactly when IA32_VMX_MISC bit 29 is clear.
fn read_only_fields(v: &mut CurrentVmcs, caps: &VmxCaps) {
    let misc29 = caps.has_cap(Cap::MiscVmwriteAnyField);
    println!("data: IA32_VMX_MISC bit 29 (VMWRITE to exit-information fields) = {}", misc29 as u8);
    for f in fields::ALL.iter().filter(|f| f.kind == FieldKind::ReadOnly) {
        let enc = f.encoding as u64;
        if !fields::exists(enc, caps) {
            continue;
        }
        let p = pattern(f.encoding);
        let r = v.vmwrite(enc, p);
        let ok = if misc29 {
            r.is_ok() && v.vmread(enc) == Ok(p & width_mask(f.width))
        } else {
            r == Err(VmxError::FailValid(VmInstructionError::VmwriteReadOnlyComponent))
        };
        check(ok, format_args!("read-only {} {:#06x}: vmwrite {:?} (misc bit 29 = {})", f.name, enc, r, misc29 as u8));
    }
    // Through the access trait: the error maps to ReadOnlyField when bit 29 is clear.
    let r = v.write_raw(fields::VM_EXIT_REASON.raw(), 0x12);
    let want = if misc29 { Ok(()) } else { Err(VmcsError::ReadOnlyField(0x4402)) };
    check(r == want, format_args!("VmcsWrite::write_raw(VM_EXIT_REASON): {r:?}"));
}

fn unsupported_encoding(v: &mut CurrentVmcs) {
    let r = v.vmread(0x7ffe);
    check(r == Err(UNSUPPORTED), format_args!("vmread 0x7ffe: {r:?} (error 12)"));
    let w = v.vmwrite(0x7ffe, 1);
    check(w == Err(UNSUPPORTED), format_args!("vmwrite 0x7ffe: {w:?} (error 12)"));
    let t = v.read_raw(0x7ffe);
    check(t == Err(VmcsError::UnsupportedField(0x7ffe)), format_args!("VmcsRead::read_raw(0x7ffe): {t:?}"));
    let e = v.vmread(0x4400);
    check(e == Ok(12), format_args!("VM-instruction error field after the failure: {e:?}"));
}

/// A typed VMREAD, kept out of line for the disassembly.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn typed_read_guest_rip(v: &CurrentVmcs) -> Result<u64, VmcsError> {
    v.read(fields::GUEST_RIP)
}

fn guest(v: &mut CurrentVmcs, caps: &VmxCaps) {
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
fn inv_checks(v: &CurrentVmcs, caps: &VmxCaps) {
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
