//! The real VMCS: VMX instructions through inline assembly (x86-64 only).
//!
//! Every VMX instruction is one `asm!` block that captures CF and ZF itself (`setc`/`setz`) and
//! never claims `preserves_flags`, `nomem` or `pure`. A failure is [`VmxError::FailInvalid`]
//! (CF = 1) or [`VmxError::FailValid`] (ZF = 1) with the VM-instruction error read from the
//! current VMCS at once and decoded ([`VmInstructionError`]).
//!
//! Types make misuse hard: [`VmxOperation::enter`] yields the token of VMX operation; loading a
//! VMCS through it ([`VmxOperation::load`]) yields the current-VMCS handle [`CurrentVmcs`], which
//! implements [`VmcsRead`] and [`VmcsWrite`] and does VMCLEAR when dropped. The token is borrowed
//! mutably by the handle, so there is never more than one current VMCS through this API.

use core::arch::asm;

use core::marker::PhantomData;

use core::fmt;

pub use crate::access::VmInstructionError;
use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::caps::{Msr, VmxCaps};
pub use crate::exit::VmExitReason;
use crate::fields;
use crate::restore::basic_revision_id;

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

// Field encodings come from the schema (generated `fields`): `raw()` is a const fn.
const VM_INSTRUCTION_ERROR: u64 = fields::VM_INSTRUCTION_ERROR.raw();
const VM_EXIT_REASON: u64 = fields::VM_EXIT_REASON.raw();
const HOST_RSP: u64 = fields::HOST_RSP.raw();
const HOST_RIP: u64 = fields::HOST_RIP.raw();

/// Why a VMX instruction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxError {
    /// VMfailInvalid (CF = 1): no current VMCS, or a failure before one exists (VMXON).
    FailInvalid,
    /// VMfailValid (ZF = 1) with the decoded VM-instruction error of the current VMCS.
    FailValid(VmInstructionError),
}

impl VmxError {
    /// As a [`VmcsError`] for an access to `encoding`.
    pub const fn into_vmcs_error(self, encoding: u64) -> VmcsError {
        match self {
            VmxError::FailInvalid => VmcsError::NoCurrentVmcs,
            VmxError::FailValid(VmInstructionError::UnsupportedComponent) => VmcsError::UnsupportedField(encoding),
            VmxError::FailValid(VmInstructionError::VmwriteReadOnlyComponent) => VmcsError::ReadOnlyField(encoding),
            VmxError::FailValid(e) => VmcsError::InstructionError(e.number()),
        }
    }
}

/// `VMfailInvalid`, or `VMfailValid: VM-instruction error 4: VMLAUNCH with non-clear VMCS`.
impl fmt::Display for VmxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmxError::FailInvalid => f.write_str("VMfailInvalid"),
            VmxError::FailValid(e) => write!(f, "VMfailValid: {e}"),
        }
    }
}

impl core::error::Error for VmxError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            VmxError::FailInvalid => None,
            VmxError::FailValid(e) => Some(e),
        }
    }
}

/// Why entering VMX operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnterError {
    /// CPUID.1:ECX.VMX[bit 5] = 0.
    VmxUnsupported,
    /// IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled.
    DisabledByFirmware,
    /// VMXON failed.
    Vmxon(VmxError),
}

impl fmt::Display for EnterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnterError::VmxUnsupported => f.write_str("the processor does not support VMX (CPUID.1:ECX bit 5)"),
            EnterError::DisabledByFirmware => f.write_str("IA32_FEATURE_CONTROL is locked with VMX disabled"),
            EnterError::Vmxon(e) => write!(f, "VMXON failed: {e}"),
        }
    }
}

impl core::error::Error for EnterError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            EnterError::Vmxon(e) => Some(e),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The instructions. Each is one asm! block that captures CF and ZF itself.

/// The failure a VMX instruction reported through CF/ZF, decoding VMfailValid at once.
#[inline(always)]
fn status(cf: u8, zf: u8) -> Result<(), VmxError> {
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
fn vmread(encoding: u64) -> Result<u64, VmxError> {
    let (value, cf, zf) = vmread_flags(encoding);
    status(cf, zf).map(|()| value)
}

/// VMWRITE `value` into the field `encoding` of the current VMCS.
#[inline(always)]
fn vmwrite(encoding: u64, value: u64) -> Result<(), VmxError> {
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
unsafe fn vmxon(phys: u64) -> Result<(), VmxError> {
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
unsafe fn vmxoff() -> Result<(), VmxError> {
    // SAFETY: the caller's promise.
    let (cf, zf) = unsafe { vmx_insn!("vmxoff",) };
    status(cf, zf)
}

/// VMCLEAR of the VMCS at physical address `phys`.
///
/// # Safety
/// In VMX root operation; `phys` is the physical address of a 4 KiB-aligned VMCS region that the
/// processor may write.
unsafe fn vmclear(phys: u64) -> Result<(), VmxError> {
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
unsafe fn vmptrld(phys: u64) -> Result<(), VmxError> {
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
fn vmptrst() -> Result<u64, VmxError> {
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
fn invept(kind: u64, eptp: u64) -> Result<(), VmxError> {
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
fn invvpid(kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
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

// ---------------------------------------------------------------------------------------------
// MSRs and control registers.

/// RDMSR.
///
/// # Safety
/// CPL 0 and MSR `index` exists (else #GP).
pub unsafe fn rdmsr(index: u32) -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: the caller's promise.
    unsafe { asm!("rdmsr", in("ecx") index, out("eax") lo, out("edx") hi, options(nostack)) };
    (hi as u64) << 32 | lo as u64
}

/// WRMSR.
///
/// # Safety
/// CPL 0, MSR `index` exists and `value` is valid for it and for everything that relies on it.
pub unsafe fn wrmsr(index: u32, value: u64) {
    // SAFETY: the caller's promise.
    unsafe { asm!("wrmsr", in("ecx") index, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack)) };
}

/// Does this processor support VMX (CPUID.1:ECX bit 5)?
pub fn vmx_supported() -> bool {
    let r = core::arch::x86_64::__cpuid(1);
    r.ecx >> 5 & 1 == 1
}

/// IA32_FEATURE_CONTROL (not a VMX capability MSR): bit 0 lock, bit 2 VMX outside SMX.
const IA32_FEATURE_CONTROL: u32 = 0x3a;
const CR4_VMXE: u64 = 1 << 13;

/// Read the capability MSRs the schema declares into a [`VmxCaps`], in schema order and only
/// those that exist ([`Msr::exists`] on the ones read before): an absent MSR faults, and reads
/// as 0 here.
///
/// # Safety
/// CPL 0 on a processor that supports VMX ([`vmx_supported`]).
pub unsafe fn read_vmx_caps() -> VmxCaps {
    let mut caps = VmxCaps::new();
    for msr in Msr::ALL {
        if msr.exists(&caps) {
            // SAFETY: the caller's promise, and the MSR exists by the capability bits the SDM names.
            caps.set(msr.index(), unsafe { rdmsr(msr.index()) });
        }
    }
    caps
}

fn read_cr0() -> u64 {
    let v;
    // SAFETY: reading CR0 has no side effect (CPL 0 is required by every caller of this module).
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nostack)) };
    v
}

fn read_cr4() -> u64 {
    let v;
    // SAFETY: as read_cr0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nostack)) };
    v
}

// ---------------------------------------------------------------------------------------------
// The typed API.

/// A 4 KiB VMXON or VMCS region.
#[repr(C, align(4096))]
pub struct VmxRegion(pub [u8; 4096]);

impl VmxRegion {
    pub const fn new() -> Self {
        VmxRegion([0; 4096])
    }

    fn set_revision(&mut self, revision: u32) {
        self.0[..4].copy_from_slice(&basic_revision_id(revision as u64).to_le_bytes());
        self.0[4..8].fill(0);
    }
}

impl Default for VmxRegion {
    fn default() -> Self {
        Self::new()
    }
}

/// The token of VMX operation on this logical processor: exists between VMXON and VMXOFF.
/// Not `Send`: VMX operation belongs to one logical processor.
pub struct VmxOperation<'r> {
    caps: VmxCaps,
    vmxon_phys: u64,
    old_cr4: u64,
    _region: PhantomData<&'r mut VmxRegion>,
    _not_send: PhantomData<*mut ()>,
}

impl<'r> VmxOperation<'r> {
    /// Enter VMX operation: enable it in IA32_FEATURE_CONTROL if unlocked, apply the CR0/CR4
    /// FIXED0/FIXED1 MSRs with CR4.VMXE, write the revision identifier (IA32_VMX_BASIC bits
    /// 30:0) into `region` and execute VMXON on it.
    ///
    /// # Safety
    /// CPL 0; `phys` is the physical address of `region` (identity mapping, or the caller's
    /// translation); nothing else on this logical processor uses VMX while the token lives; the
    /// code runs on one logical processor until the token is dropped; CR0/CR4 changes (e.g.
    /// CR0.NE, CR0.PE/PG fixed to 1) are acceptable to the rest of the system.
    pub unsafe fn enter(region: &'r mut VmxRegion, phys: u64) -> Result<Self, EnterError> {
        if !vmx_supported() {
            return Err(EnterError::VmxUnsupported);
        }
        // SAFETY: CPL 0 (caller), VMX supported (checked): the MSRs below exist.
        unsafe {
            let fc = rdmsr(IA32_FEATURE_CONTROL);
            if fc & 1 == 0 {
                wrmsr(IA32_FEATURE_CONTROL, fc | 1 | 4);
            } else if fc & 4 == 0 {
                return Err(EnterError::DisabledByFirmware);
            }
            let caps = read_vmx_caps();
            let old_cr4 = read_cr4();
            let fixed = |m: Msr| caps.raw(m.index());
            let cr0 = (read_cr0() | fixed(Msr::Cr0Fixed0)) & fixed(Msr::Cr0Fixed1);
            let cr4 = (old_cr4 | CR4_VMXE | fixed(Msr::Cr4Fixed0)) & fixed(Msr::Cr4Fixed1);
            asm!("mov cr0, {}", in(reg) cr0, options(nostack));
            asm!("mov cr4, {}", in(reg) cr4, options(nostack));
            region.set_revision(basic_revision_id(caps.raw(Msr::Basic.index())));
            if let Err(e) = vmxon(phys) {
                asm!("mov cr4, {}", in(reg) old_cr4, options(nostack));
                return Err(EnterError::Vmxon(e));
            }
            Ok(VmxOperation { caps, vmxon_phys: phys, old_cr4, _region: PhantomData, _not_send: PhantomData })
        }
    }

    /// The capability MSRs of this processor, read at VMXON.
    pub fn caps(&self) -> &VmxCaps {
        &self.caps
    }

    /// The VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub fn revision(&self) -> u32 {
        basic_revision_id(self.caps.raw(Msr::Basic.index()))
    }

    /// The physical address of the VMXON region.
    pub fn vmxon_phys(&self) -> u64 {
        self.vmxon_phys
    }

    /// Initialise `region` as a fresh VMCS (revision identifier, VMCLEAR) and make it current
    /// (VMPTRLD). The handle borrows the token: one current VMCS at a time through this API.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, which is not the VMXON region.
    pub unsafe fn load<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> Result<CurrentVmcs<'v>, VmxError> {
        region.set_revision(self.revision());
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe {
            vmclear(phys)?;
            vmptrld(phys)?;
        }
        Ok(CurrentVmcs { phys, _op: PhantomData, _region: PhantomData })
    }

    /// A handle for the VMCS that is current already (no instruction): how a hypervisor that
    /// switches VMCSs often keeps one current across calls without repeating VMPTRLD.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, and it is this processor's current VMCS (the
    /// last VMPTRLD loaded it and no VMCLEAR or VMPTRLD came since).
    pub unsafe fn assume_current<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> CurrentVmcs<'v> {
        let _ = region;
        CurrentVmcs { phys, _op: PhantomData, _region: PhantomData }
    }

    /// As [`Self::load`] for a shadow VMCS (revision identifier with bit 31 set, SDM 25.10): one
    /// that VMREAD/VMWRITE in VMX non-root operation read and write instead of exiting, when the
    /// current VMCS enables "VMCS shadowing" and names it in its VMCS link pointer. It can be
    /// current for VMREAD/VMWRITE, never entered.
    ///
    /// # Safety
    /// As [`Self::load`]; the processor supports VMCS shadowing.
    pub unsafe fn load_shadow<'v>(
        &'v mut self,
        region: &'v mut VmxRegion,
        phys: u64,
    ) -> Result<CurrentVmcs<'v>, VmxError> {
        region.set_revision(self.revision());
        region.0[3] |= 0x80;
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe {
            vmclear(phys)?;
            vmptrld(phys)?;
        }
        Ok(CurrentVmcs { phys, _op: PhantomData, _region: PhantomData })
    }

    /// Make a VMCS current again with VMPTRLD alone, keeping its contents and launch state: one
    /// that [`Self::load`] initialized and [`CurrentVmcs::set_aside`] put aside.
    ///
    /// # Safety
    /// `phys` is the physical address of `region`, which was loaded before on this processor and
    /// not cleared since (else its contents are undefined).
    pub unsafe fn reload<'v>(&'v mut self, region: &'v mut VmxRegion, phys: u64) -> Result<CurrentVmcs<'v>, VmxError> {
        let _ = region;
        // SAFETY: the caller's promise; VMX root operation holds while `self` lives.
        unsafe { vmptrld(phys)? };
        Ok(CurrentVmcs { phys, _op: PhantomData, _region: PhantomData })
    }

    /// VMPTRST: the current-VMCS pointer, `u64::MAX` when there is none.
    pub fn current_vmcs_pointer(&self) -> Result<u64, VmxError> {
        vmptrst()
    }

    /// INVEPT, single-context (1) or all-context (2).
    pub fn invept(&self, kind: u64, eptp: u64) -> Result<(), VmxError> {
        invept(kind, eptp)
    }

    /// INVVPID of `kind` (0 individual-address, 1 single-context, 2 all-context, 3 single-context
    /// retaining globals).
    pub fn invvpid(&self, kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
        invvpid(kind, vpid, address)
    }

    /// Leave VMX operation (VMXOFF) and restore CR4.
    pub fn exit(self) -> Result<(), VmxError> {
        let r = self.off();
        core::mem::forget(self);
        r
    }

    fn off(&self) -> Result<(), VmxError> {
        // SAFETY: VMX root operation holds while the token lives; no handle borrows it.
        unsafe {
            vmxoff()?;
            asm!("mov cr4, {}", in(reg) self.old_cr4, options(nostack));
        }
        Ok(())
    }
}

impl Drop for VmxOperation<'_> {
    fn drop(&mut self) {
        let _ = self.off();
    }
}

/// The guest's general registers, loaded before VM entry and saved at VM exit (RSP and RIP live
/// in the VMCS). Other state (XMM, x87, CR2, DRs) is not switched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// The x87/SSE state FXSAVE stores: 512 bytes, 16-byte aligned ([`CurrentVmcs::run`]).
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

/// The current VMCS, loaded through a [`VmxOperation`]. Dropping it does VMCLEAR.
pub struct CurrentVmcs<'v> {
    phys: u64,
    _op: PhantomData<&'v mut ()>,
    _region: PhantomData<&'v mut VmxRegion>,
}

impl CurrentVmcs<'_> {
    /// The VMCS's physical address.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// VMREAD with the instruction's own error.
    #[inline(always)]
    pub fn vmread(&self, encoding: u64) -> Result<u64, VmxError> {
        vmread(encoding)
    }

    /// VMWRITE with the instruction's own error.
    #[inline(always)]
    pub fn vmwrite(&mut self, encoding: u64, value: u64) -> Result<(), VmxError> {
        vmwrite(encoding, value)
    }

    /// VMPTRST: the current-VMCS pointer (this VMCS's physical address).
    pub fn current_vmcs_pointer(&self) -> Result<u64, VmxError> {
        vmptrst()
    }

    /// INVEPT (see [`VmxOperation::invept`]); with a current VMCS a failure is decoded.
    pub fn invept(&self, kind: u64, eptp: u64) -> Result<(), VmxError> {
        invept(kind, eptp)
    }

    /// INVVPID (see [`VmxOperation::invvpid`]).
    pub fn invvpid(&self, kind: u64, vpid: u16, address: u64) -> Result<(), VmxError> {
        invvpid(kind, vpid, address)
    }

    /// VMLAUNCH: enter the guest the VMCS describes; returns the exit-reason field at the next VM
    /// exit (a VM-entry failure reported as a VM exit has [`VmExitReason::entry_failure`] set).
    ///
    /// # Safety
    /// The VMCS's host state must describe this context (HOST_CR3, segment selectors, GDTR,
    /// IDTR, TR, FS/GS bases, EFER/PAT when loaded): HOST_RSP and HOST_RIP are set here. The guest
    /// may access whatever memory its paging (and EPT, if enabled) maps, and must not corrupt the
    /// host's memory, stack or page tables behind the compiler's back.
    pub unsafe fn launch(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { self.enter_guest(regs, core::ptr::null_mut(), false) }
    }

    /// VMRESUME: as [`CurrentVmcs::launch`] for a launched VMCS.
    ///
    /// # Safety
    /// As [`CurrentVmcs::launch`].
    pub unsafe fn resume(&mut self, regs: &mut GuestRegisters) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { self.enter_guest(regs, core::ptr::null_mut(), true) }
    }

    /// VMLAUNCH (`resume` false) or VMRESUME with the guest's x87/SSE state as well: `fpu` is
    /// loaded (FXRSTOR) just before the entry and saved (FXSAVE) right at the exit, before any
    /// compiled code can touch a vector register. For a hypervisor whose own code uses SSE between
    /// exits (Rust does); CR4.OSFXSR must be set.
    ///
    /// # Safety
    /// As [`CurrentVmcs::launch`]; `fpu` holds a valid FXSAVE image (e.g. one FXSAVE made).
    pub unsafe fn run(
        &mut self,
        regs: &mut GuestRegisters,
        fpu: &mut FpuState,
        resume: bool,
    ) -> Result<VmExitReason, VmxError> {
        // SAFETY: the caller's promise.
        unsafe { self.enter_guest(regs, fpu, resume) }
    }

    /// Stop using this handle without VMCLEAR: the VMCS stays active (not current once another
    /// is loaded) and keeps its launch state, for [`VmxOperation::reload`]. How an L0 switches
    /// between the VMCS running L1 and the one running L2.
    pub fn set_aside(self) {
        core::mem::forget(self);
    }

    unsafe fn enter_guest(
        &mut self,
        regs: &mut GuestRegisters,
        fpu: *mut FpuState,
        resume: bool,
    ) -> Result<VmExitReason, VmxError> {
        let cf: u64;
        let zf: u64;
        // SAFETY: the caller's promise. The block saves RBX and RBP (which Rust reserves), the
        // FPU-state pointer (R8, may be null) and the register pointer on the stack; HOST_RSP
        // points at them, HOST_RIP at the exit landing (label 2). Every other general register
        // and the vector registers (clobber_abi) are declared clobbered.
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
                "mov rax, {host_rsp}",
                "vmwrite rax, rsp",
                "lea rcx, [rip + 2f]",
                "mov rax, {host_rip}",
                "vmwrite rax, rcx",
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
                lateout("r9") _,
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
}

impl Drop for CurrentVmcs<'_> {
    fn drop(&mut self) {
        // SAFETY: `phys` was loaded by VmxOperation::load, whose caller promised it names a live
        // VMCS region borrowed for this handle's lifetime.
        let _ = unsafe { vmclear(self.phys) };
    }
}

impl VmcsRead for CurrentVmcs<'_> {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        vmread(encoding).map_err(|e| e.into_vmcs_error(encoding))
    }
}

impl VmcsWrite for CurrentVmcs<'_> {
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        vmwrite(encoding, value).map_err(|e| e.into_vmcs_error(encoding))
    }
}
