//! The VMX instructions, each one `asm!` block that captures CF and ZF itself.

use core::arch::asm;

use super::error::VmxError;
use crate::access::VmInstructionError;
use crate::fields;

/// One VMX instruction as one `asm!` block that captures CF and ZF (`setc`/`setz`) itself, so no
/// flag state is assumed to survive: evaluates to `(cf, zf)`. Never `preserves_flags`, `nomem` or
/// `pure`: the instructions change flags and VMX state the compiler cannot see.
macro_rules! vmx_insn {
    ($insn:literal, $($operands:tt)*) => {{
        let cf: u8;
        let zf: u8;
        asm!($insn, "setc {cf}", "setz {zf}", $($operands)* cf = lateout(reg_byte) cf, zf = lateout(reg_byte) zf, options(nostack));
        (cf, zf)
    }};
}

// The VMCS field the instructions report through comes from the schema: `raw()` is a const fn.
const VM_INSTRUCTION_ERROR: u64 = fields::VM_INSTRUCTION_ERROR.raw();

/// The failure a VMX instruction reported through CF/ZF, decoding VMfailValid at once.
#[inline(always)]
pub(super) fn status(cf: u8, zf: u8) -> Result<(), VmxError> {
    if cf | zf == 0 { Ok(()) } else { Err(failure(cf)) }
}

#[cold]
#[inline(never)]
fn failure(cf: u8) -> VmxError {
    if cf != 0 {
        return VmxError::FailInvalid;
    }
    // VMfailValid: there is a current VMCS, whose VM-instruction error field says why.
    match vmread(VM_INSTRUCTION_ERROR) {
        Ok(n) => VmxError::FailValid(VmInstructionError::from_number(n as u32)),
        // Only possible if the current VMCS vanished in between; report it as such.
        Err(e) => e,
    }
}

/// VMREAD: the field `encoding` of the current VMCS.
#[inline(always)]
fn vmread_flags(encoding: u64) -> (u64, u8, u8) {
    let value: u64;
    // SAFETY: VMREAD reads the current VMCS into a register; it faults (#UD/#GP) outside VMX
    // root operation at CPL 0, which only happens if a caller broke VmxOperation's contract.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmread {value}, {encoding}",
            encoding = in(reg) encoding,
            value = lateout(reg) value,
        )
    };
    (value, cf, zf)
}

#[inline(always)]
pub(super) fn vmread(encoding: u64) -> Result<u64, VmxError> {
    let (value, cf, zf) = vmread_flags(encoding);
    status(cf, zf).map(|()| value)
}

/// VMWRITE `value` into the field `encoding` of the current VMCS.
#[inline(always)]
pub(super) fn vmwrite(encoding: u64, value: u64) -> Result<(), VmxError> {
    // SAFETY: as for VMREAD; VMWRITE changes only the current VMCS.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmwrite {encoding}, {value}",
            encoding = in(reg) encoding,
            value = in(reg) value,
        )
    };
    status(cf, zf)
}

/// VMXON with the VMXON region at physical address `phys`.
///
/// # Safety
/// CPL 0, CR0/CR4 satisfy the VMX fixed bits with CR4.VMXE = 1, and `phys` is the physical
/// address of a 4 KiB-aligned VMXON region holding the revision identifier that stays alive and
/// untouched until VMXOFF.
pub(super) unsafe fn vmxon(phys: u64) -> Result<(), VmxError> {
    // SAFETY: the caller's promise.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmxon qword ptr [{ptr}]",
            ptr = in(reg) &phys,
        )
    };
    // No current VMCS exists right after VMXON: VMfailValid (already in VMX operation) cannot be
    // decoded from a VMCS, so both failures map without reading one.
    if cf | zf == 0 {
        Ok(())
    } else if cf != 0 {
        Err(VmxError::FailInvalid)
    } else {
        Err(VmxError::FailValid(VmInstructionError::VmxonInVmxRoot))
    }
}

/// VMXOFF.
///
/// # Safety
/// In VMX root operation; the caller gives up every VMX resource.
pub(super) unsafe fn vmxoff() -> Result<(), VmxError> {
    // SAFETY: the caller's promise.
    let (cf, zf) = unsafe { vmx_insn!("vmxoff",) };
    status(cf, zf)
}

/// VMCLEAR of the VMCS at physical address `phys`.
///
/// # Safety
/// In VMX root operation; `phys` is the physical address of a 4 KiB-aligned VMCS region that the
/// processor may write.
pub(super) unsafe fn vmclear(phys: u64) -> Result<(), VmxError> {
    // SAFETY: the caller's promise.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmclear qword ptr [{ptr}]",
            ptr = in(reg) &phys,
        )
    };
    status(cf, zf)
}

/// VMPTRLD of the VMCS at physical address `phys`.
///
/// # Safety
/// In VMX root operation; `phys` is the physical address of a 4 KiB-aligned VMCS region that
/// stays alive until it is cleared.
pub(super) unsafe fn vmptrld(phys: u64) -> Result<(), VmxError> {
    // SAFETY: the caller's promise.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmptrld qword ptr [{ptr}]",
            ptr = in(reg) &phys,
        )
    };
    status(cf, zf)
}

/// VMPTRST: the current-VMCS pointer (all ones when there is none).
pub(super) fn vmptrst() -> Result<u64, VmxError> {
    let mut ptr: u64 = 0;
    // SAFETY: VMPTRST writes 8 bytes to `ptr`, a local; it requires VMX root operation, which
    // holds while a VmxOperation exists.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "vmptrst qword ptr [{ptr}]",
            ptr = in(reg) &mut ptr,
        )
    };
    status(cf, zf).map(|()| ptr)
}

/// The INVEPT/INVVPID descriptor (128 bits).
#[repr(C, align(16))]
struct InvDescriptor {
    low: u64,
    high: u64,
}

/// INVEPT of `kind` (1 single-context, 2 all-context) for `eptp`.
pub(super) fn invept(kind: u64, eptp: u64) -> Result<(), VmxError> {
    let desc = InvDescriptor { low: eptp, high: 0 };
    // SAFETY: INVEPT only invalidates cached translations; it requires VMX root operation.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "invept {kind}, xmmword ptr [{desc}]",
            kind = in(reg) kind,
            desc = in(reg) &desc,
        )
    };
    status(cf, zf)
}

/// INVVPID of `kind` (0 individual-address, 1 single-context, 2 all-context, 3 single-context
/// retaining globals) for `vpid` and `address`.
pub(super) fn invvpid(kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
    let desc = InvDescriptor { low: vpid as u64, high: address };
    // SAFETY: INVVPID only invalidates cached translations; it requires VMX root operation.
    let (cf, zf) = unsafe {
        vmx_insn!(
            "invvpid {kind}, xmmword ptr [{desc}]",
            kind = in(reg) kind,
            desc = in(reg) &desc,
        )
    };
    status(cf, zf)
}
