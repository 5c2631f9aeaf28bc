//! VMCS regions as an L1 juggles them: two current VMCSs in turn (VMPTRLD alone keeps each one's
//! contents), a cleared region copied byte for byte and loaded, and VMREAD/VMWRITE with memory
//! operands, including a destination and a source on a page L1's paging does not map (#PF), and
//! VMCALL in VMX root operation (VMfail 1).

use vmcs::fields as F;
use vmcs::hw::{Vmcs, VmxOperation, VmxRegion};
use vmcs::{VmcsRead, VmcsWrite};

use crate::check;

static mut A: VmxRegion = VmxRegion::new();
static mut B: VmxRegion = VmxRegion::new();
static mut C: VmxRegion = VmxRegion::new();

/// A linear address L1's page tables leave unmapped (the boot tables map 0..4 GiB; bit 47 set
/// makes it canonical and unmapped).
const UNMAPPED: u64 = 0xffff_8000_0000_0000;

// The #PF handler for the memory-operand checks: records CR2 and the error code, counts, and
// resumes at the address the check stored in l1t_pf_resume.
core::arch::global_asm!(
    r#"
    .section .text.l1t_pf, "ax"
    .global l1t_pf_stub
l1t_pf_stub:
    pop qword ptr [rip + l1t_pf_error]
    push rax
    mov rax, cr2
    mov [rip + l1t_pf_cr2], rax
    mov rax, [rip + l1t_pf_resume]
    mov [rsp + 8], rax
    inc qword ptr [rip + l1t_pf_count]
    pop rax
    iretq

    .section .data.l1t_pf, "aw"
    .balign 8
    .global l1t_pf_error, l1t_pf_cr2, l1t_pf_resume, l1t_pf_count
l1t_pf_error: .quad 0
l1t_pf_cr2: .quad 0
l1t_pf_resume: .quad 0
l1t_pf_count: .quad 0
"#
);

unsafe extern "C" {
    fn l1t_pf_stub();
    static l1t_pf_error: u64;
    static l1t_pf_cr2: u64;
    static l1t_pf_count: u64;
}

pub fn install_pf_handler() {
    crate::cpu::set_idt_gate(14, l1t_pf_stub as *const () as u64);
}

/// (page faults so far, CR2, error code) as the handler recorded them.
fn faults() -> (u64, u64, u64) {
    // SAFETY: written only by the handler, on this processor; read with volatile loads.
    unsafe {
        (
            core::ptr::read_volatile(&raw const l1t_pf_count),
            core::ptr::read_volatile(&raw const l1t_pf_cr2),
            core::ptr::read_volatile(&raw const l1t_pf_error),
        )
    }
}

fn phys<T>(p: *const T) -> u64 {
    p as u64
}

/// VMWRITE `field` from memory at `src`; returns RFLAGS after it (or where a #PF resumed).
fn vmwrite_mem(field: u64, src: u64) -> u64 {
    let flags: u64;
    // SAFETY: VMX root operation with a current VMCS; a #PF resumes at label 2.
    unsafe {
        core::arch::asm!(
            "lea rdx, [rip + 2f]",
            "mov [rip + l1t_pf_resume], rdx",
            "vmwrite {field}, qword ptr [{src}]",
            "2:",
            "pushfq",
            "pop {flags}",
            field = in(reg) field,
            src = in(reg) src,
            flags = lateout(reg) flags,
            out("rdx") _,
        );
    }
    flags
}

/// VMREAD `field` into memory at `dst`.
fn vmread_mem(field: u64, dst: u64) -> u64 {
    let flags: u64;
    // SAFETY: as vmwrite_mem; `dst` is L1 memory the check owns, or unmapped.
    unsafe {
        core::arch::asm!(
            "lea rdx, [rip + 2f]",
            "mov [rip + l1t_pf_resume], rdx",
            "vmread qword ptr [{dst}], {field}",
            "2:",
            "pushfq",
            "pop {flags}",
            field = in(reg) field,
            dst = in(reg) dst,
            flags = lateout(reg) flags,
            out("rdx") _,
        );
    }
    flags
}

const CF_ZF: u64 = 1 | 1 << 6;

pub fn juggle(op: &mut VmxOperation<'_>) {
    // SAFETY: single-threaded; each static region is borrowed once, identity-mapped.
    let (a, b, c) =
        unsafe { (crate::cpu::unique(&raw mut A), crate::cpu::unique(&raw mut B), crate::cpu::unique(&raw mut C)) };
    let (pa, pb, pc) = (phys(a as *const VmxRegion), phys(b as *const VmxRegion), phys(c as *const VmxRegion));
    let rip = F::GUEST_RIP.raw();
    // SAFETY: L1's static regions at their physical addresses, not the VMXON region.
    let (Ok(mut a), Ok(mut b)) = (unsafe { (op.vmcs(a, pa), op.vmcs(b, pb)) }) else {
        return check(false, format_args!("VMCLEAR of A and B"));
    };
    {
        let mut v = op.load(&mut a).expect("VMPTRLD A");
        let w = v.write_raw(rip, 0xaaaa).and(v.write_raw(F::GUEST_SMBASE.raw(), 0xa_0000));
        check(w.is_ok(), format_args!("VMWRITE GUEST_RIP and GUEST_SMBASE into A: {w:?}"));
    }
    {
        let mut v = op.load(&mut b).expect("VMPTRLD B");
        check(v.read_raw(rip) == Ok(0), format_args!("B starts clear: GUEST_RIP {:x?}", v.read_raw(rip)));
        let _ = v.write_raw(rip, 0xbbbb);
    }
    {
        let v = op.load(&mut a).expect("VMPTRLD A again");
        check(v.read_raw(rip) == Ok(0xaaaa), format_args!("A kept its GUEST_RIP: {:x?}", v.read_raw(rip)));
    }
    {
        let v = op.load(&mut b).expect("VMPTRLD B again");
        check(v.read_raw(rip) == Ok(0xbbbb), format_args!("B kept its GUEST_RIP: {:x?}", v.read_raw(rip)));
        let p = v.current_vmcs_pointer();
        check(p == Ok(pb), format_args!("VMPTRST = B: {p:x?}"));
    }
    // VMCLEAR A (current), copy its region byte for byte into C, and load C.
    let _ = op.load(&mut a).expect("VMPTRLD A for VMCLEAR");
    op.clear(&mut a).expect("VMCLEAR A");
    c.0.copy_from_slice(a.image().expect("A's image after VMCLEAR"));
    // SAFETY: C, at `pc`, holds a byte copy of the image VMCLEAR wrote for A.
    let mut c = unsafe { Vmcs::from_cleared(c, pc) };
    let mut v = op.load(&mut c).expect("VMPTRLD of the copy");
    let (r, s) = (v.read_raw(rip), v.read_raw(F::GUEST_SMBASE.raw()));
    check(
        r == Ok(0xaaaa) && s == Ok(0xa_0000),
        format_args!("the byte copy of cleared A: GUEST_RIP {r:x?}, GUEST_SMBASE {s:x?}"),
    );
    memory_operands(&mut v);
    vmcall_in_root(&v);
}

/// VMCALL in VMX root operation without an SMM monitor: VMfailValid(1) as the SDM says. (Bochs
/// 2.7 itself stops there, "VMCALL: not implemented yet"; L0 emulates L1's VMCALL.)
fn vmcall_in_root(v: &vmcs::hw::CurrentVmcs<'_>) {
    let flags: u64;
    // SAFETY: VMX root operation at CPL 0 with a current VMCS: VMCALL fails and falls through,
    // changing only RFLAGS.
    unsafe { core::arch::asm!("vmcall", "pushfq", "pop {f}", f = out(reg) flags) };
    let e = v.read(F::VM_INSTRUCTION_ERROR);
    check(
        flags & CF_ZF == 1 << 6 && e == Ok(1),
        format_args!("VMCALL in VMX root: flags {flags:#x}, error {e:?} (1; Bochs itself does not implement it)"),
    );
}

static mut SLOT: [u64; 2] = [0; 2];

fn memory_operands(v: &mut vmcs::hw::CurrentVmcs<'_>) {
    let slot = (&raw mut SLOT) as u64;
    let rsp = F::GUEST_RSP.raw();
    // SAFETY: single-threaded; SLOT is only used here.
    unsafe { core::ptr::write_volatile((&raw mut SLOT).cast::<u64>(), 0x1234_5678_9abc_def0) };
    let f = vmwrite_mem(rsp, slot);
    check(
        f & CF_ZF == 0 && v.read_raw(rsp) == Ok(0x1234_5678_9abc_def0),
        format_args!("VMWRITE from memory: flags {f:#x}, {:x?}", v.read_raw(rsp)),
    );
    let f = vmread_mem(F::GUEST_RIP.raw(), slot + 8);
    // SAFETY: as above.
    let got = unsafe { core::ptr::read_volatile(&raw const SLOT)[1] };
    check(f & CF_ZF == 0 && got == 0xaaaa, format_args!("VMREAD into memory: flags {f:#x}, {got:#x}"));
    let (n0, ..) = faults();
    let _ = vmread_mem(F::GUEST_RIP.raw(), UNMAPPED + 0x10);
    let (n1, cr2, ec) = faults();
    check(
        n1 == n0 + 1 && cr2 == UNMAPPED + 0x10 && ec == 2,
        format_args!(
            "VMREAD to an unmapped page: #PF {} CR2 {cr2:#x} error {ec:#x} (2: a write, not present)",
            n1 - n0
        ),
    );
    let _ = vmwrite_mem(rsp, UNMAPPED);
    let (n2, cr2, ec) = faults();
    check(
        n2 == n1 + 1 && cr2 == UNMAPPED && ec == 0 && v.read_raw(rsp) == Ok(0x1234_5678_9abc_def0),
        format_args!(
            "VMWRITE from an unmapped page: #PF CR2 {cr2:#x} error {ec:#x}, field unchanged {:x?}",
            v.read_raw(rsp)
        ),
    );
}
