//! A 32-bit L2 in PAE paging on L1's own EPT (nested EPT, the PDPTR path of seed 004): L1 gives
//! L2 EPT12 with a hole and a misconfigured entry, L2's PDPTEs in vmcs12, and checks the exits:
//! an EPT violation L1 then repairs (remapping the page to another of its pages, INVEPT), an EPT
//! misconfiguration, and vmcs12's PDPTRs after them.

use vmcs::caps::{Cap, Capabilities};
use vmcs::controls::{
    Controls, CpuBasedVmExecControl as Proc, PinBasedVmExecControl as Pin, SecondaryVmExecControl as Proc2,
    VmEntryControls as Entry, VmExitControls as Exit,
};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::{CurrentVmcs, GuestRegisters, VmxOperation, VmxRegion};
use vmcs::{VmcsRead, VmcsWrite};

use crate::{check, cpu};

core::arch::global_asm!(
    r#"
    .section .text.l2_pae, "ax"
    .code32
    .global l2p_entry
l2p_entry:
    mov eax, [0x300000]
    mov ebx, eax
    mov eax, 0x51
    vmcall
    mov eax, [0x800000]
    mov ebx, eax
    mov eax, 0x52
    vmcall
    mov esi, 0x13579bdf
    mov edi, 0x2468ace0
    mov dword ptr [0x310000], 0xfeedface
    out 0xf5, al
    out 0xf5, al
    mov ebx, [0x310000]
    mov eax, 0x53
    vmcall
    .global l2p_misconfig
l2p_misconfig:
    mov eax, [0xa00000]
    hlt
    .code64
"#
);

unsafe extern "C" {
    fn l2p_entry();
    static l2p_misconfig: u8;
}

#[repr(C, align(4096))]
struct Page([u64; 512]);
static mut EPT_PML4: Page = Page([0; 512]);
static mut EPT_PDPT: Page = Page([0; 512]);
static mut EPT_PD: Page = Page([0; 512]);
/// L2's page-directory-pointer table (32-byte aligned; here a page) and its page directory.
static mut L2_PDPT: Page = Page([0; 512]);
static mut L2_PD: Page = Page([0; 512]);
static mut L2_GDT: Page = Page([0; 512]);
static mut VMCS: VmxRegion = VmxRegion::new();

const MARKER_1: u64 = 0x30_0000;
/// Where L1 remaps L2's guest-physical 8 MiB once it saw the violation.
const REMAPPED: u64 = 0xc0_0000;
const RWX: u64 = 7;
const WB_LARGE: u64 = 6 << 3 | 1 << 7;

fn phys<T>(p: *const T) -> u64 {
    p as u64
}

/// EPT12: guest-physical 0..8 MiB identity (2 MiB pages), 8..10 MiB absent, 10..12 MiB write-only.
fn build_ept12() -> u64 {
    // SAFETY: single-threaded; the tables are written before L2 runs.
    let (pml4, pdpt, pd) =
        unsafe { (cpu::unique(&raw mut EPT_PML4), cpu::unique(&raw mut EPT_PDPT), cpu::unique(&raw mut EPT_PD)) };
    pml4.0[0] = phys(pdpt as *const Page) | RWX;
    pdpt.0[0] = phys(pd as *const Page) | RWX;
    for (i, e) in pd.0.iter_mut().enumerate().take(4) {
        *e = (i as u64) << 21 | RWX | WB_LARGE;
    }
    pd.0[5] = 5 << 21 | 2 | WB_LARGE;
    phys(pml4 as *const Page) | 3 << 3 | 6
}

/// L2's PAE tables: 0..1 GiB identity in 2 MiB pages; returns (CR3, the four PDPTEs).
fn build_l2_paging() -> (u64, [u64; 4]) {
    // SAFETY: as above.
    let (pdpt, pd) = unsafe { (cpu::unique(&raw mut L2_PDPT), cpu::unique(&raw mut L2_PD)) };
    for (i, e) in pd.0.iter_mut().enumerate() {
        *e = (i as u64) << 21 | 0x83;
    }
    pdpt.0[0] = phys(pd as *const Page) | 1;
    (phys(pdpt as *const Page), [pdpt.0[0], 0, 0, 0])
}

fn setup(v: &mut CurrentVmcs<'_>, caps: &vmcs::caps::VmxCaps) -> Result<[u64; 4], &'static str> {
    let (cr3, pdptes) = build_l2_paging();
    // SAFETY: single-threaded.
    let gdt = unsafe { cpu::unique(&raw mut L2_GDT) };
    gdt.0[1] = 0x00cf_9a00_0000_ffff;
    gdt.0[2] = 0x00cf_9200_0000_ffff;
    let pin = Pin::adjust(caps, Pin::empty(), Pin::empty()).map_err(|_| "pin controls")?;
    let proc = Proc::adjust(caps, Proc::HLT_EXITING | Proc::ACTIVATE_SECONDARY_CONTROLS, Proc::empty())
        .map_err(|_| "primary controls")?;
    let proc2 = Proc2::adjust(caps, Proc2::ENABLE_EPT, Proc2::empty()).map_err(|_| "secondary controls")?;
    let exit = Exit::adjust(caps, Exit::HOST_ADDRESS_SPACE_SIZE, Exit::empty()).map_err(|_| "exit controls")?;
    let entry = Entry::adjust(caps, Entry::empty(), Entry::empty()).map_err(|_| "entry controls")?;
    let ds = 0x10u64;
    let writes = [
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), pin.to_bits()),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc.to_bits()),
        (F::SECONDARY_VM_EXEC_CONTROL.raw(), proc2.to_bits()),
        (F::VM_EXIT_CONTROLS.raw(), exit.to_bits()),
        (F::VM_ENTRY_CONTROLS.raw(), entry.to_bits()),
        (F::EPT_POINTER.raw(), build_ept12()),
        (F::VMCS_LINK_POINTER.raw(), u64::MAX),
        (F::HOST_CR0.raw(), cpu::cr0()),
        (F::HOST_CR3.raw(), cpu::cr3()),
        (F::HOST_CR4.raw(), cpu::cr4()),
        (F::HOST_CS_SELECTOR.raw(), cpu::CODE_SEL as u64),
        (F::HOST_SS_SELECTOR.raw(), cpu::DATA_SEL as u64),
        (F::HOST_DS_SELECTOR.raw(), cpu::DATA_SEL as u64),
        (F::HOST_ES_SELECTOR.raw(), cpu::DATA_SEL as u64),
        (F::HOST_TR_SELECTOR.raw(), cpu::TSS_SEL as u64),
        (F::HOST_TR_BASE.raw(), cpu::tss_base()),
        (F::HOST_GDTR_BASE.raw(), cpu::gdt_base()),
        (F::HOST_IDTR_BASE.raw(), cpu::idt_base()),
        (F::GUEST_CR0.raw(), 0x8000_0031),
        (F::GUEST_CR3.raw(), cr3),
        (F::GUEST_CR4.raw(), 0x2020),
        (F::GUEST_PDPTR0.raw(), pdptes[0]),
        (F::GUEST_PDPTR1.raw(), pdptes[1]),
        (F::GUEST_PDPTR2.raw(), pdptes[2]),
        (F::GUEST_PDPTR3.raw(), pdptes[3]),
        (F::GUEST_DR7.raw(), 0x400),
        (F::GUEST_RIP.raw(), l2p_entry as *const () as u64),
        (F::GUEST_RFLAGS.raw(), 0x2),
        (F::GUEST_CS_SELECTOR.raw(), 0x08),
        (F::GUEST_CS_LIMIT.raw(), 0xffff_ffff),
        (F::GUEST_CS_AR_BYTES.raw(), 0xc09b),
        (F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000),
        (F::GUEST_TR_LIMIT.raw(), 0x67),
        (F::GUEST_TR_AR_BYTES.raw(), 0x8b),
        (F::GUEST_GDTR_BASE.raw(), phys(gdt as *const Page)),
        (F::GUEST_GDTR_LIMIT.raw(), 0x17),
        (F::GUEST_IDTR_LIMIT.raw(), 0),
    ];
    for (f, val) in writes {
        v.write_raw(f, val).map_err(|_| "a VMWRITE failed")?;
    }
    for (sel, limit, ar) in [
        (F::GUEST_ES_SELECTOR, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES),
        (F::GUEST_SS_SELECTOR, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES),
        (F::GUEST_DS_SELECTOR, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES),
        (F::GUEST_FS_SELECTOR, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES),
        (F::GUEST_GS_SELECTOR, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES),
    ] {
        let ok =
            v.write_raw(sel.raw(), ds).and(v.write_raw(limit.raw(), 0xffff_ffff)).and(v.write_raw(ar.raw(), 0xc093));
        ok.map_err(|_| "a segment VMWRITE failed")?;
    }
    Ok(pdptes)
}

fn enter(v: &mut CurrentVmcs<'_>, regs: &mut GuestRegisters, resume: bool, want: R, what: &str) -> bool {
    // SAFETY: the host state is this context; L2 runs in L1's memory through L1's EPT.
    let r = unsafe { if resume { v.resume(regs) } else { v.launch(regs) } };
    let ok = r.ok().and_then(|e| e.basic()) == Some(want);
    check(ok, format_args!("{what}: exit {:?} (want {})", r.map(|e| e.basic()), want.name()));
    ok
}

fn skip(v: &mut CurrentVmcs<'_>, len: u64) {
    let rip = v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0);
    let _ = v.write_raw(F::GUEST_RIP.raw(), rip + len);
}

pub fn run(op: &mut VmxOperation<'_>) {
    let caps = *op.caps();
    if !caps.has(Cap::Proc2EnableEpt) {
        check(false, format_args!("nested EPT: L1's capabilities have no EPT"));
        return;
    }
    // SAFETY: single-threaded; L1's own memory.
    unsafe {
        core::ptr::write_volatile(MARKER_1 as *mut u32, 0x1111_2222);
        core::ptr::write_volatile(REMAPPED as *mut u32, 0x3333_4444);
        core::ptr::write_volatile(0x80_0000 as *mut u32, 0x5555_6666);
    }
    // SAFETY: single-threaded; the region is borrowed once.
    let region = unsafe { cpu::unique(&raw mut VMCS) };
    let phys_region = region as *const VmxRegion as u64;
    // SAFETY: L1's static region at `phys_region`, not the VMXON region.
    let Ok(mut vmcs) = (unsafe { op.vmcs(region, phys_region) }) else {
        check(false, format_args!("VMCLEAR of the PAE L2's VMCS"));
        return;
    };
    let Ok(mut v) = op.load(&mut vmcs) else {
        check(false, format_args!("VMPTRLD of the PAE L2's VMCS"));
        return;
    };
    let pdptes = match setup(&mut v, &caps) {
        Ok(p) => p,
        Err(why) => {
            check(false, format_args!("PAE L2's VMCS: {why}"));
            return;
        }
    };
    let mut regs = GuestRegisters::default();
    if !enter(&mut v, &mut regs, false, R::Vmcall, "PAE L2 on nested EPT reads its memory") {
        return;
    }
    check(
        regs.rax == 0x51 && regs.rbx as u32 == 0x1111_2222,
        format_args!("L2 read {:#x} through its PAE paging and EPT12", regs.rbx),
    );
    let p0 = v.read_raw(F::GUEST_PDPTR0.raw());
    check(p0 == Ok(pdptes[0]), format_args!("vmcs12 GUEST_PDPTR0 after the exit: {p0:x?} (want {:#x})", pdptes[0]));
    skip(&mut v, 3);
    if !enter(&mut v, &mut regs, true, R::EptViolation, "a read of guest-physical 8 MiB, which EPT12 does not map") {
        return;
    }
    let (gpa, gla, q) = (
        v.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0),
        v.read_raw(F::GUEST_LINEAR_ADDRESS.raw()).unwrap_or(0),
        v.read_raw(F::EXIT_QUALIFICATION.raw()).unwrap_or(0),
    );
    check(
        gpa == 0x80_0000 && gla == 0x80_0000,
        format_args!("EPT violation at guest-physical {gpa:#x}, linear {gla:#x}"),
    );
    check(
        q & 0x1bf == 0x181,
        format_args!(
            "its qualification {q:#x}: a data read (bit 0), not present (5:3 = 0), linear address valid and translated (7, 8)"
        ),
    );
    // Map guest-physical 8 MiB to L1's page at 12 MiB, and INVEPT.
    // SAFETY: single-threaded; L2 is not running.
    unsafe { cpu::unique(&raw mut EPT_PD).0[4] = REMAPPED | RWX | WB_LARGE };
    let inv = v.invept(2, 0);
    check(inv.is_ok(), format_args!("INVEPT all-context: {inv:?}"));
    if !enter(&mut v, &mut regs, true, R::Vmcall, "the same read after L1 maps the page") {
        return;
    }
    check(
        regs.rax == 0x52 && regs.rbx as u32 == 0x3333_4444,
        format_args!("L2 read {:#x}: L1's page at 12 MiB, not its own 8 MiB", regs.rbx),
    );
    skip(&mut v, 3);
    // L2 sets registers and memory, then port 0xF5 twice: L0 saves the nested state while L2 runs
    // and restores it (the second time through the older vmcs12_base layout).
    if !enter(&mut v, &mut regs, true, R::Vmcall, "L2 after two nested-state round trips") {
        return;
    }
    check(
        regs.rax == 0x53
            && regs.rsi as u32 == 0x1357_9bdf
            && regs.rdi as u32 == 0x2468_ace0
            && regs.rbx as u32 == 0xfeed_face,
        format_args!(
            "L2's registers and memory intact: RSI {:#x}, RDI {:#x}, [0x310000] {:#x}",
            regs.rsi, regs.rdi, regs.rbx
        ),
    );
    let (cr3, p0) = (v.read_raw(F::GUEST_CR3.raw()), v.read_raw(F::GUEST_PDPTR0.raw()));
    check(
        p0 == Ok(pdptes[0]) && cr3.is_ok_and(|c| c != 0),
        format_args!("vmcs12 after the restores: CR3 {cr3:x?}, PDPTR0 {p0:x?}"),
    );
    skip(&mut v, 3);
    if !enter(&mut v, &mut regs, true, R::EptMisconfig, "a read of guest-physical 10 MiB, write-only in EPT12") {
        return;
    }
    let gpa = v.read_raw(F::GUEST_PHYSICAL_ADDRESS.raw()).unwrap_or(0);
    let rip = v.read_raw(F::GUEST_RIP.raw()).unwrap_or(0);
    let want = (&raw const l2p_misconfig) as u64;
    check(
        gpa == 0xa0_0000 && rip == want,
        format_args!("EPT misconfiguration at guest-physical {gpa:#x}, RIP {rip:#x}"),
    );
    skip(&mut v, 5);
    enter(&mut v, &mut regs, true, R::Hlt, "PAE L2's HLT");
}
