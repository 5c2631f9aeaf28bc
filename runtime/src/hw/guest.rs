//! Entering the guest: the registers VM entry loads and VM exit saves, and the one `asm!` block
//! that runs VMLAUNCH/VMRESUME and lands at the next VM exit.

use core::arch::asm;

use super::error::VmxError;
use super::insn::{status, vmread};
use super::region::HostCache;
use crate::exit::VmExitReason;
use crate::fields;

// Field encodings come from the schema (generated `fields`): `raw()` is a const fn.
const VM_EXIT_REASON: u64 = fields::VM_EXIT_REASON.raw();
const HOST_RSP: u64 = fields::HOST_RSP.raw();
const HOST_RIP: u64 = fields::HOST_RIP.raw();

/// The guest's general registers, loaded before VM entry and saved at VM exit (RSP and RIP live
/// in the VMCS). Other state (XMM, x87, CR2, DRs) is not switched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegisters {
    /// RAX.
    pub rax: u64,
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// RBP.
    pub rbp: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
}

/// The x87/SSE state FXSAVE stores: 512 bytes, 16-byte aligned ([`CurrentVmcs::run`](super::CurrentVmcs::run)).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after FNINIT with MXCSR at its reset value 0x1f80 (every SIMD exception masked)
    /// and the x87 control word 0x37f: what a processor holds at power-up, for a guest's first entry.
    pub const fn initial() -> Self {
        let mut b = [0u8; 512];
        b[0] = 0x7f; // FCW 0x037f
        b[1] = 0x03;
        b[24] = 0x80; // MXCSR 0x1f80
        b[25] = 0x1f;
        FpuState(b)
    }
}

/// VMLAUNCH (`resume` false) or VMRESUME on the current VMCS, loading `fpu` first and saving it
/// at the exit when it is not null; the exit-reason field at the next VM exit. HOST_RSP and
/// HOST_RIP are written only where they differ from `host`, the current VMCS's cache (updated).
///
/// # Safety
/// As [`super::CurrentVmcs::launch`] (and [`super::CurrentVmcs::run`] for `fpu`), with a
/// current VMCS whose HOST_RSP/HOST_RIP are those `host` names, where it names them.
pub(super) unsafe fn enter_guest(
    regs: &mut GuestRegisters,
    fpu: *mut FpuState,
    host: &mut HostCache,
    resume: bool,
) -> Result<VmExitReason, VmxError> {
    let cf: u64;
    let zf: u64;
    // SAFETY: the caller's promise. The block saves RBX and RBP (which Rust reserves), the
    // FPU-state pointer (R8, may be null) and the register pointer on the stack; HOST_RSP
    // points at them, HOST_RIP at the exit landing (label 2), each written only when it differs
    // from the cache (R9: rsp, rip, writes at 0, 8, 16): the landing's address is compared too,
    // since inlining may copy this block. Every other general register and the vector registers
    // (clobber_abi) are declared clobbered.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "push r8",
            "push rdi",
            "test r8, r8",
            "jz 6f",
            "fxrstor64 [r8]",
            "6:",
            "cmp rsp, [r9]",
            "je 8f",
            "mov rax, {host_rsp}",
            "vmwrite rax, rsp",
            "mov [r9], rsp",
            "inc qword ptr [r9 + 16]",
            "8:",
            "lea rcx, [rip + 2f]",
            "cmp rcx, [r9 + 8]",
            "je 9f",
            "mov rax, {host_rip}",
            "vmwrite rax, rcx",
            "mov [r9 + 8], rcx",
            "inc qword ptr [r9 + 16]",
            "9:",
            "test sil, sil",
            "mov rax, [rdi + 0]",
            "mov rbx, [rdi + 8]",
            "mov rcx, [rdi + 16]",
            "mov rdx, [rdi + 24]",
            "mov rsi, [rdi + 32]",
            "mov rbp, [rdi + 48]",
            "mov r8, [rdi + 56]",
            "mov r9, [rdi + 64]",
            "mov r10, [rdi + 72]",
            "mov r11, [rdi + 80]",
            "mov r12, [rdi + 88]",
            "mov r13, [rdi + 96]",
            "mov r14, [rdi + 104]",
            "mov r15, [rdi + 112]",
            "mov rdi, [rdi + 40]",
            "jnz 3f",
            "vmlaunch",
            "jmp 4f",
            "3:",
            "vmresume",
            "4:",
            // VM entry failed (VMfailInvalid/VMfailValid): the host context was never left.
            "setc cl",
            "setz dl",
            "movzx ecx, cl",
            "movzx edx, dl",
            "pop rdi",
            "pop r8",
            "pop rbx",
            "pop rbp",
            "jmp 5f",
            // VM exit: RSP = HOST_RSP, the stack holds [regs, fpu, rbx, rbp].
            "2:",
            "xchg rdi, [rsp]",
            "mov [rdi + 0], rax",
            "mov [rdi + 8], rbx",
            "mov [rdi + 16], rcx",
            "mov [rdi + 24], rdx",
            "mov [rdi + 32], rsi",
            "mov [rdi + 48], rbp",
            "mov [rdi + 56], r8",
            "mov [rdi + 64], r9",
            "mov [rdi + 72], r10",
            "mov [rdi + 80], r11",
            "mov [rdi + 88], r12",
            "mov [rdi + 96], r13",
            "mov [rdi + 104], r14",
            "mov [rdi + 112], r15",
            "pop rax",
            "mov [rdi + 40], rax",
            "pop r8",
            "test r8, r8",
            "jz 7f",
            "fxsave64 [r8]",
            "7:",
            "pop rbx",
            "pop rbp",
            "xor ecx, ecx",
            "xor edx, edx",
            "5:",
            host_rsp = const HOST_RSP,
            host_rip = const HOST_RIP,
            inout("rdi") regs as *mut GuestRegisters => _,
            inout("rsi") resume as u64 => _,
            lateout("rcx") cf,
            lateout("rdx") zf,
            lateout("rax") _,
            inout("r8") fpu => _,
            inout("r9") host as *mut HostCache => _,
            lateout("r10") _,
            lateout("r11") _,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("C"),
        );
    }
    status(cf as u8, zf as u8)?;
    Ok(VmExitReason::from_bits(vmread(VM_EXIT_REASON)? as u32))
}
