//! MSRs on L1's and L2's behalf: where each lives ([`L0Msrs`], the nested-VMX core's
//! [`Msrs`] for vmcs12's MSR lists and L2's RDMSR/WRMSR), and RDMSR/WRMSR on the machine that
//! survive the #GP the processor raises for an MSR it lacks or a value it refuses (L0's #GP
//! handler resumes after the instruction when one of them is running).

use vmcs::caps::feature_control;
use vmcs::fields as F;
use vmcs::{VmcsRead, VmcsWrite};
use vmcs_nested_vmx::caps::L1Caps;
use vmcs_nested_vmx::vcpu::Msrs;

use crate::vcpu::FEATURE_CONTROL;
use crate::vmcs01::is_vmx_msr;

// #GP: with l0_msr_resume set, drop the error code and resume there; else report as any
// exception (the common stub for vector 13).
core::arch::global_asm!(
    r#"
    .section .text.l0_gp, "ax"
    .global l0_gp_stub
l0_gp_stub:
    cmp qword ptr [rip + l0_msr_resume], 0
    je 2f
    add rsp, 8
    push rax
    mov rax, [rip + l0_msr_resume]
    mov [rsp + 8], rax
    mov qword ptr [rip + l0_msr_resume], 0
    pop rax
    iretq
2:
    jmp isr_stubs + 13 * 16

    .section .data.l0_gp, "aw"
    .balign 8
    .global l0_msr_resume
l0_msr_resume: .quad 0
"#
);

unsafe extern "C" {
    fn l0_gp_stub();
}

/// Point #GP at the handler that lets [`wrmsr`] and [`rdmsr`] fail instead of L0.
pub fn install() {
    crate::cpu::set_idt_gate(13, l0_gp_stub as *const () as u64);
}

/// Run the instruction `$insn` (with these register operands) so that a #GP it raises resumes
/// after it: true when it completed. Unsafe: the instruction must be one L0 may execute.
macro_rules! gp_guarded {
    ($insn:literal, $($operands:tt)*) => {{
        let ok: u64;
        core::arch::asm!(
            "lea {t}, [rip + 2f]",
            "mov [rip + l0_msr_resume], {t}",
            $insn,
            "mov qword ptr [rip + l0_msr_resume], 0",
            "mov {ok}, 1",
            "jmp 3f",
            "2:",
            "xor {ok:e}, {ok:e}",
            "3:",
            t = out(reg) _,
            ok = out(reg) ok,
            $($operands)*
        );
        ok == 1
    }};
}

/// WRMSR on the machine: false where it raised #GP.
pub fn wrmsr(index: u32, value: u64) -> bool {
    // SAFETY: CPL 0; the MSRs L0 writes here are L1's or L2's, which run on this machine in L1's
    // place.
    unsafe { gp_guarded!("wrmsr", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32) }
}

/// RDMSR on the machine: None where it raised #GP.
pub fn rdmsr(index: u32) -> Option<u64> {
    let (lo, hi): (u32, u32);
    // SAFETY: CPL 0; RDMSR changes nothing.
    let ok = unsafe { gp_guarded!("rdmsr", in("ecx") index, out("eax") lo, out("edx") hi) };
    ok.then_some((hi as u64) << 32 | lo as u64)
}

/// The MSRs whose guest values a VMCS holds: the guest's live in its VMCS, not in the processor.
fn vmcs_msr(index: u32) -> Option<u64> {
    Some(match index {
        0x174 => F::GUEST_SYSENTER_CS.raw(),
        0x175 => F::GUEST_SYSENTER_ESP.raw(),
        0x176 => F::GUEST_SYSENTER_EIP.raw(),
        0x1d9 => F::GUEST_IA32_DEBUGCTL.raw(),
        0xc000_0080 => F::GUEST_IA32_EFER.raw(),
        0xc000_0100 => F::GUEST_FS_BASE.raw(),
        0xc000_0101 => F::GUEST_GS_BASE.raw(),
        _ => return None,
    })
}

/// L1's and L2's MSRs: the VMCS-switched ones in the context's VMCS, IA32_FEATURE_CONTROL and
/// the VMX capability MSRs as L0 emulates them (read-only), every other on the machine (L1 and
/// L2 share it, as they would share one processor).
pub struct L0Msrs<'a>(pub &'a L1Caps);

impl Msrs for L0Msrs<'_> {
    fn wrmsr<V: VmcsRead + VmcsWrite + ?Sized>(&mut self, vmcs: &mut V, index: u32, value: u64) -> bool {
        if let Some(field) = vmcs_msr(index) {
            return vmcs.write_raw(field, value).is_ok();
        }
        // Locked, or read-only.
        if index == feature_control::INDEX || is_vmx_msr(index) {
            return false;
        }
        wrmsr(index, value)
    }

    fn rdmsr<V: VmcsRead + ?Sized>(&mut self, vmcs: &V, index: u32) -> Option<u64> {
        if let Some(field) = vmcs_msr(index) {
            return vmcs.read_raw(field).ok();
        }
        if index == feature_control::INDEX {
            return Some(FEATURE_CONTROL);
        }
        if is_vmx_msr(index) {
            return self.0.rdmsr(index);
        }
        rdmsr(index)
    }
}
