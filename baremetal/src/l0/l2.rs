//! L2 on vmcs02: its constant state, what L0 puts into it on every nested entry, and the exits of
//! L2 that L1 did not ask for, which L0 handles in L2's context (I/O and MSR accesses: vmcs02
//! makes every one exit, because L1's bitmaps hold L1 guest-physical addresses).

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::controls::VmExitControls as Exit;
use vmcs::controls::{CpuBasedVmExecControl as Proc, SecondaryVmExecControl as Proc2, VmEntryControls as Entry};
use vmcs::exit::IoQualification;
use vmcs::fields as F;
use vmcs::hw::CurrentVmcs;
use vmcs::{VmcsError, VmcsRead, VmcsWrite};
use vmcs_nested_vmx::vcpu::{Guest, Msrs};
use vmcs_nested_vmx::vmcs02::L0Policy;
use vmcs_nested_vmx::vmx::NestedVmx;

use crate::msr::L0Msrs;
use crate::vcpu::Vcpu;
use crate::vmcs01::{self, DEBUG_EXIT_PORT};

/// L0's test port: an L2 write to it (L1 not intercepting) saves L1's nested state and restores
/// it into a fresh vCPU, L2 running (scripts/nested-suite's L1 test kernel uses it).
pub const MIGRATE_PORT: u16 = 0xf5;

/// The VPID L2 runs with (L1 has VPID 1).
pub const VPID02: u16 = 2;

/// L0's part of every vmcs02.
pub fn policy(caps: &VmxCaps, eptp: u64) -> Result<L0Policy, VmcsError> {
    let exit = vmcs01::l0_exit_controls(caps).map_err(|_| VmcsError::InstructionError(7))?;
    let vpid = caps.has(Cap::Proc2EnableVpid);
    Ok(L0Policy {
        pin: 0,
        proc: Proc::UNCONDITIONAL_IO_EXITING.bits(),
        proc_clear: (Proc::USE_IO_BITMAPS | Proc::USE_MSR_BITMAPS).bits(),
        proc2: (Proc2::ENABLE_EPT | if vpid { Proc2::ENABLE_VPID } else { Proc2::empty() }).bits(),
        exit: exit.bits(),
        // Interrupts are L1's: when it wants them acknowledged at the exit, so does vmcs02.
        exit_from_l1: Exit::ACK_INTERRUPT_ON_EXIT.bits(),
        entry: Entry::LOAD_IA32_EFER.bits(),
        ept_pointer: Some(eptp),
        vpid02: vpid.then_some(VPID02),
        ept02_pointer: None,
    })
}

/// What no nested entry changes in vmcs02 (KVM's prepare_vmcs02_constant_state).
pub fn init(w: &mut CurrentVmcs<'_>) -> Result<(), VmcsError> {
    vmcs01::write_host_state(w)?;
    for f in [F::CR3_TARGET_COUNT, F::VM_EXIT_MSR_STORE_COUNT, F::VM_EXIT_MSR_LOAD_COUNT, F::VM_ENTRY_MSR_LOAD_COUNT] {
        w.write_raw(f.raw(), 0)?;
    }
    Ok(())
}

/// L2's TLB entries are tagged with VPID02; without a VPID of its own in vmcs12, L1 expects
/// every VM entry to start with a clean TLB for L2 (SDM 29.4.3), so L0 flushes that tag.
pub fn flush_vpid02(w: &CurrentVmcs<'_>, caps: &VmxCaps) {
    if caps.has(Cap::VpidInvvpidSingleContext) {
        let _ = w.invvpid(1, VPID02, 0);
    } else if caps.has(Cap::VpidInvvpidAllContext) {
        let _ = w.invvpid(2, 0, 0);
    }
}

/// What an L2 exit that L0 keeps leads to.
pub enum L2Next {
    Resume,
    /// L2 wrote `status` to port 0xF4.
    Exit(u8),
    /// L2 wrote port 0xF5: L0 saves L1's nested state and restores it (a migration round trip).
    Migrate,
    /// Not an exit L0 handles for L2.
    Unexpected,
}

/// RDMSR/WRMSR of L2 that L1 does not intercept: as on L1's machine ([`L0Msrs`]), #GP where the
/// machine or L0's emulation refuses it; vmcs12 gets what it keeps of a write
/// (`NestedVmx::l2_wrmsr`).
pub fn msr<V: VmcsRead + VmcsWrite>(
    w: &mut V,
    cpu: &mut Vcpu,
    nested: &mut NestedVmx,
    write: bool,
) -> Result<L2Next, VmcsError> {
    let index = cpu.regs.rcx as u32;
    let mut msrs = L0Msrs(nested.caps());
    let done = if write {
        let value = cpu.regs.rdx << 32 | cpu.regs.rax & 0xffff_ffff;
        let done = msrs.wrmsr(w, index, value);
        if done {
            nested.l2_wrmsr(index, value);
        }
        done
    } else {
        msrs.rdmsr(w, index).map(|v| (cpu.regs.rax, cpu.regs.rdx) = (v & 0xffff_ffff, v >> 32)).is_some()
    };
    let mut l2 = Guest::new(w);
    if done {
        l2.skip_instruction()?
    } else {
        l2.inject(vmcs_nested_vmx::vcpu::Fault::gp0())?
    }
    Ok(L2Next::Resume)
}

/// IN/OUT of L2 that L1 does not intercept (`qualification`: the exit's, as routing read it):
/// performed on the machine (port 0xF4 ends the run).
pub fn io<V: VmcsRead + VmcsWrite>(w: &mut V, cpu: &mut Vcpu, qualification: u64) -> Result<L2Next, VmcsError> {
    let q = IoQualification::from_bits(qualification);
    if q.string() {
        return Ok(L2Next::Unexpected);
    }
    let port = q.port();
    let size = q.size_raw() + 1;
    if port == DEBUG_EXIT_PORT && !q.input() {
        return Ok(L2Next::Exit(cpu.regs.rax as u8));
    }
    if port == MIGRATE_PORT && !q.input() {
        Guest::new(w).skip_instruction()?;
        return Ok(L2Next::Migrate);
    }
    // SAFETY: the port access L2 makes, as it would on L1's machine.
    unsafe {
        match (q.input(), size) {
            (false, 1) => core::arch::asm!("out dx, al", in("dx") port, in("al") cpu.regs.rax as u8),
            (false, 2) => core::arch::asm!("out dx, ax", in("dx") port, in("ax") cpu.regs.rax as u16),
            (false, _) => core::arch::asm!("out dx, eax", in("dx") port, in("eax") cpu.regs.rax as u32),
            (true, 1) => {
                let v: u8;
                core::arch::asm!("in al, dx", in("dx") port, out("al") v);
                cpu.regs.rax = cpu.regs.rax & !0xff | v as u64;
            }
            (true, 2) => {
                let v: u16;
                core::arch::asm!("in ax, dx", in("dx") port, out("ax") v);
                cpu.regs.rax = cpu.regs.rax & !0xffff | v as u64;
            }
            (true, _) => {
                let v: u32;
                core::arch::asm!("in eax, dx", in("dx") port, out("eax") v);
                cpu.regs.rax = v as u64;
            }
        }
    }
    Guest::new(w).skip_instruction()?;
    Ok(L2Next::Resume)
}
