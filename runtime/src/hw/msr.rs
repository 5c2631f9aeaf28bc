//! MSRs, CPUID and control registers: what entering VMX operation reads and sets.

use core::arch::asm;

use crate::caps::feature_control::{INDEX as IA32_FEATURE_CONTROL, LOCK, VMX_OUTSIDE_SMX};
use crate::caps::{Msr, VmxCaps};

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

/// Enable VMX outside SMX in IA32_FEATURE_CONTROL (and lock it) unless the firmware locked it
/// already; `false` when it is locked with VMX outside SMX disabled.
///
/// # Safety
/// CPL 0 on a processor that supports VMX (the MSR exists).
pub(super) unsafe fn enable_vmx_in_feature_control() -> bool {
    // SAFETY: the caller's promise.
    unsafe {
        let fc = rdmsr(IA32_FEATURE_CONTROL);
        if fc & LOCK == 0 {
            wrmsr(IA32_FEATURE_CONTROL, fc | LOCK | VMX_OUTSIDE_SMX);
        }
        fc & LOCK == 0 || fc & VMX_OUTSIDE_SMX != 0
    }
}

/// CR4.VMXE: VMXON requires it, and it must stay set during VMX operation.
pub(super) const CR4_VMXE: u64 = 1 << 13;

pub(super) fn read_cr0() -> u64 {
    let v;
    // SAFETY: reading CR0 has no side effect (CPL 0 is required by every caller of this module).
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nostack)) };
    v
}

pub(super) fn read_cr4() -> u64 {
    let v;
    // SAFETY: as read_cr0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nostack)) };
    v
}

/// MOV to CR0.
///
/// # Safety
/// CPL 0, and the new value is acceptable to the rest of the system.
pub(super) unsafe fn write_cr0(value: u64) {
    // SAFETY: the caller's promise.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack)) };
}

/// MOV to CR4.
///
/// # Safety
/// As [`write_cr0`].
pub(super) unsafe fn write_cr4(value: u64) {
    // SAFETY: the caller's promise.
    unsafe { asm!("mov cr4, {}", in(reg) value, options(nostack)) };
}
