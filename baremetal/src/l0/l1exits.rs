//! The exits of L1 that L0 handles itself: CPUID, the MSRs it emulates, port 0xF4, and the CR0/CR4
//! writes that touch the bits it owns. VMX instructions go to the nested-VMX core instead.

use vmcs::caps::{Cap, Msr, VmxCaps, feature_control};
use vmcs::exit::{CrAccessQualification, CrAccessType, IoQualification};
use vmcs::fields as F;
use vmcs::{VmcsError, VmcsRead, VmcsWrite};
use vmcs_nested_vmx::caps::L1Caps;
use vmcs_nested_vmx::vcpu::{CR0_PE, CR0_PG, CR4_PAE, Fault, Guest, GuestMemory};

use crate::l1mem::L1Memory;
use crate::vcpu::{FEATURE_CONTROL, Vcpu};
use crate::vmcs01::{CR0_NE, CR4_VMXE, DEBUG_EXIT_PORT, is_vmx_msr};

/// What the exit leads to.
pub enum Next {
    /// Resume L1.
    Resume,
    /// L1 wrote `status` to port 0xF4.
    Exit(u8),
}

const CPUID_HYPERVISOR: u32 = 1 << 31;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const ENTRY_IA32E: u64 = 1 << Cap::EntryIa32eModeGuest.bit();

fn skip<V: VmcsRead + VmcsWrite>(v: &mut V) -> Result<Next, VmcsError> {
    Guest::new(v).skip_instruction()?;
    Ok(Next::Resume)
}

fn fault<V: VmcsRead + VmcsWrite>(v: &mut V, f: Fault) -> Result<Next, VmcsError> {
    Guest::new(v).inject(f)?;
    Ok(Next::Resume)
}

/// CPUID: the host's answer, with the "hypervisor present" bit.
pub fn cpuid<V: VmcsRead + VmcsWrite>(v: &mut V, cpu: &mut Vcpu) -> Result<Next, VmcsError> {
    let (leaf, sub) = (cpu.regs.rax as u32, cpu.regs.rcx as u32);
    let mut r = core::arch::x86_64::__cpuid_count(leaf, sub);
    if leaf == 1 {
        r.ecx |= CPUID_HYPERVISOR;
    }
    cpu.regs.rax = r.eax as u64;
    cpu.regs.rbx = r.ebx as u64;
    cpu.regs.rcx = r.ecx as u64;
    cpu.regs.rdx = r.edx as u64;
    skip(v)
}

/// RDMSR/WRMSR of an MSR the bitmap sends to L0: the emulated ones, or one outside the bitmap's
/// ranges, which this L1 does not have (#GP).
pub fn msr<V: VmcsRead + VmcsWrite>(v: &mut V, cpu: &mut Vcpu, caps: &L1Caps, write: bool) -> Result<Next, VmcsError> {
    let index = cpu.regs.rcx as u32;
    let value = match index {
        _ if write => None,
        feature_control::INDEX => Some(FEATURE_CONTROL),
        i if is_vmx_msr(i) => caps.rdmsr(i),
        _ => None,
    };
    match value {
        Some(x) => {
            cpu.regs.rax = x & 0xffff_ffff;
            cpu.regs.rdx = x >> 32;
            skip(v)
        }
        // The capability MSRs are read-only and IA32_FEATURE_CONTROL is locked.
        None => fault(v, Fault::gp0()),
    }
}

/// Port I/O L0 intercepts: only port 0xF4, which ends the run.
pub fn io<V: VmcsRead + VmcsWrite>(v: &mut V, cpu: &mut Vcpu) -> Result<Next, VmcsError> {
    let q = IoQualification::from_bits(v.read_raw(F::EXIT_QUALIFICATION.raw())?);
    if q.port() == DEBUG_EXIT_PORT && !q.input() && !q.string() {
        return Ok(Next::Exit(cpu.regs.rax as u8));
    }
    if q.input() && !q.string() {
        // Nothing answers on port 0xF4 on this machine.
        cpu.regs.rax |= 0xff;
    }
    skip(v)
}

/// MOV to CR0/CR4 that changes a bit L0 owns (CR0.NE, CR4.VMXE, bits the processor forbids):
/// L1's value goes to the read shadow and, with the owned bits forced, to the processor.
/// Enabling or disabling paging with EFER.LME set also switches IA-32e mode, as the processor
/// would have; PAE paging reloads the PDPTEs.
pub fn cr_access<V: VmcsRead + VmcsWrite>(
    v: &mut V,
    cpu: &mut Vcpu,
    host: &VmxCaps,
    caps: &L1Caps,
    vmxon: bool,
) -> Result<Next, VmcsError> {
    let q = CrAccessQualification::from_bits(v.read_raw(F::EXIT_QUALIFICATION.raw())?);
    if q.access_type() != CrAccessType::MovToCr || !(q.cr() == 0 || q.cr() == 4) {
        return Err(VmcsError::InstructionError(0));
    }
    let l1 = Guest::new(&mut *v);
    let mut value = if q.gpr() == 4 { l1.read(F::GUEST_RSP.raw())? } else { cpu.reg(q.gpr()).map_or(0, |r| *r) };
    if !l1.mode64()? {
        value &= 0xffff_ffff;
    }
    let l1caps = caps.caps();
    let (cr0, cr4) = if q.cr() == 0 { (value, l1.cr4()?) } else { (l1.cr0()?, value) };
    // What the processor would refuse with #GP, and in VMX operation the fixed bits L1's MSRs name.
    let fixed = |v: u64, f0: u64, f1: u64| v & f0 == f0 && v & !f1 == 0;
    let bad = value >> 32 != 0
        || (cr0 & CR0_PG != 0 && cr0 & CR0_PE == 0)
        || cr4 & !host.raw(Msr::Cr4Fixed1.index()) != 0
        || (vmxon
            && !(fixed(cr0, l1caps.raw(Msr::Cr0Fixed0.index()), l1caps.raw(Msr::Cr0Fixed1.index()))
                && fixed(cr4, l1caps.raw(Msr::Cr4Fixed0.index()), l1caps.raw(Msr::Cr4Fixed1.index()))));
    if bad {
        return fault(v, Fault::gp0());
    }
    let mut efer = v.read_raw(F::GUEST_IA32_EFER.raw())?;
    let mut entry = v.read_raw(F::VM_ENTRY_CONTROLS.raw())?;
    if q.cr() == 0 {
        let was_paging = v.read_raw(F::CR0_READ_SHADOW.raw())? & CR0_PG != 0;
        let paging = cr0 & CR0_PG != 0;
        if !was_paging && paging && efer & EFER_LME != 0 {
            if cr4 & CR4_PAE == 0 {
                return fault(v, Fault::gp0());
            }
            efer |= EFER_LMA;
            entry |= ENTRY_IA32E;
        } else if was_paging && !paging && efer & EFER_LMA != 0 {
            efer &= !EFER_LMA;
            entry &= !ENTRY_IA32E;
        }
        v.write_raw(F::GUEST_IA32_EFER.raw(), efer)?;
        v.write_raw(F::VM_ENTRY_CONTROLS.raw(), entry)?;
        v.write_raw(F::CR0_READ_SHADOW.raw(), cr0)?;
        v.write_raw(F::GUEST_CR0.raw(), cr0 | CR0_NE)?;
    } else {
        v.write_raw(F::CR4_READ_SHADOW.raw(), cr4)?;
        v.write_raw(F::GUEST_CR4.raw(), cr4 | CR4_VMXE)?;
    }
    if cr0 & CR0_PG != 0 && cr4 & CR4_PAE != 0 && efer & EFER_LMA == 0 {
        // PAE paging: the processor takes the PDPTEs from the VMCS at entry.
        let cr3 = v.read_raw(F::GUEST_CR3.raw())? & 0xffff_ffe0;
        let pdptrs = [F::GUEST_PDPTR0, F::GUEST_PDPTR1, F::GUEST_PDPTR2, F::GUEST_PDPTR3];
        for (i, f) in pdptrs.iter().enumerate() {
            let e = L1Memory.read_u64(cr3 + 8 * i as u64).unwrap_or(0);
            v.write_raw(f.raw(), e)?;
        }
    }
    skip(v)
}
