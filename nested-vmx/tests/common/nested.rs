//! A nested entry and exit on SoftVmcs backends, for the transition tests: L0's policy, an L1
//! with a launchable vmcs12, vmcs02 prepared for its VMLAUNCH/VMRESUME, an exit of L2.

use vmcs::VmcsWrite;
use vmcs::controls::{
    CpuBasedVmExecControl as Proc, SecondaryVmExecControl as Proc2, VmEntryControls as Entry, VmExitControls as Exit,
};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs_nested_vmx::vmcs02::L0Policy;
use vmcs_nested_vmx::vmx::Outcome;

use super::*;

pub const EPTP01: u64 = 0x5_0000 | 3 << 3 | 6;
pub const HOST_RIP12: u64 = 0x10_2000;

pub fn policy() -> L0Policy {
    L0Policy {
        pin: 0,
        proc: Proc::UNCONDITIONAL_IO_EXITING.bits(),
        proc_clear: (Proc::USE_IO_BITMAPS | Proc::USE_MSR_BITMAPS).bits(),
        proc2: (Proc2::ENABLE_EPT | Proc2::ENABLE_VPID).bits(),
        exit: (Exit::HOST_ADDRESS_SPACE_SIZE | Exit::SAVE_IA32_EFER | Exit::LOAD_IA32_EFER).bits(),
        exit_from_l1: Exit::ACK_INTERRUPT_ON_EXIT.bits(),
        entry: Entry::LOAD_IA32_EFER.bits(),
        ept_pointer: Some(EPTP01),
        vpid02: Some(2),
        ept02_pointer: None,
    }
}

pub fn vmcs02() -> SoftVmcs {
    SoftVmcs::new(&bochs_caps("corei7_skylake_x"))
}

/// L1 in VMX operation with a launchable vmcs12 (guest RIP 0x4000, L1 using I/O bitmaps).
pub fn ready() -> World {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    valid_vmcs12(&mut w);
    let proc = adjust(&w, 0x48e, (Proc::HLT_EXITING | Proc::USE_IO_BITMAPS).bits() as u64);
    for (f, v) in [
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc),
        (F::IO_BITMAP_A.raw(), 0x10_0000),
        (F::IO_BITMAP_B.raw(), 0x10_1000),
        (F::GUEST_RIP.raw(), 0x4000),
        (F::GUEST_RSP.raw(), 0x9000),
        (F::GUEST_CS_SELECTOR.raw(), 0x8),
        (F::HOST_RSP.raw(), 0x7000),
    ] {
        assert_eq!(vmwrite(&mut w, f, v), InsnResult::Succeed, "{f:#x}");
    }
    w.set(F::GUEST_IA32_EFER.raw(), 0xd01); // L1: SCE | LME | LMA | NXE
    w
}

pub fn enter(w: &mut World, launch: bool) -> SoftVmcs {
    let reason = if launch { R::Vmlaunch } else { R::Vmresume };
    assert_eq!(w.exec(reason, 0, 0), Outcome::EnterL2 { launch });
    let mut v02 = vmcs02();
    let efer = w.get(F::GUEST_IA32_EFER.raw());
    w.nested.prepare_vmcs02(&mut v02, &policy(), efer, &w.mem).unwrap();
    v02
}

/// L2 exits with `reason` after running to `rip`.
pub fn l2_exit(v02: &mut SoftVmcs, reason: u32, rip: u64) {
    for (f, v) in [
        (F::VM_EXIT_REASON.raw(), reason as u64),
        (F::VM_EXIT_INSTRUCTION_LEN.raw(), 3),
        (F::EXIT_QUALIFICATION.raw(), 0x55),
        (F::GUEST_RIP.raw(), rip),
        (F::GUEST_RFLAGS.raw(), 0x46),
    ] {
        v02.write_raw(f, v).unwrap();
    }
}
