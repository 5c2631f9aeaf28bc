//! Nested VM entry and exit on SoftVmcs backends: vmcs02 from vmcs12 with L0's controls merged,
//! an L2 exit synced back into vmcs12 with its exit information, L1's host state into vmcs01,
//! round trips with dirty tracking, entry failures.

mod common;

use common::nested::*;
use common::*;
use vmcs::controls::{
    CpuBasedVmExecControl as Proc, SecondaryVmExecControl as Proc2, VmEntryControls as Entry, VmExitControls as Exit,
};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{VmInstructionError, VmcsRead, VmcsWrite};
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::msr_list::{EntryMsrFailure, VmxAbort};
use vmcs_nested_vmx::vcpu::Msrs;
use vmcs_nested_vmx::vmx::Outcome;

#[test]
fn vmcs02_merges_l0_and_l1() {
    let mut w = ready();
    let v02 = enter(&mut w, true);
    let g = |f: u64| v02.read_raw(f).unwrap();
    let proc = g(F::CPU_BASED_VM_EXEC_CONTROL.raw()) as u32;
    assert!(proc & Proc::HLT_EXITING.bits() != 0, "L1's control");
    assert!(proc & Proc::UNCONDITIONAL_IO_EXITING.bits() != 0, "L0's control");
    assert_eq!(proc & Proc::USE_IO_BITMAPS.bits(), 0, "L1's bitmaps hold guest-physical addresses");
    assert!(proc & Proc::ACTIVATE_SECONDARY_CONTROLS.bits() != 0);
    assert_eq!(g(F::SECONDARY_VM_EXEC_CONTROL.raw()) as u32, (Proc2::ENABLE_EPT | Proc2::ENABLE_VPID).bits());
    assert_eq!(g(F::EPT_POINTER.raw()), EPTP01, "L2 runs on L0's EPT for L1");
    assert_eq!(g(F::VIRTUAL_PROCESSOR_ID.raw()), 2);
    assert_eq!(g(F::VM_EXIT_CONTROLS.raw()) as u32, policy().exit, "exits go to L0");
    let entry = g(F::VM_ENTRY_CONTROLS.raw()) as u32;
    assert!(entry & Entry::IA32E_MODE_GUEST.bits() != 0 && entry & Entry::LOAD_IA32_EFER.bits() != 0);
    // L1 has no "load IA32_EFER": L2's EFER is L1's with LMA/LME from "IA-32e mode guest".
    assert_eq!(g(F::GUEST_IA32_EFER.raw()), 0xd01);
    assert_eq!((g(F::GUEST_RIP.raw()), g(F::GUEST_RSP.raw())), (0x4000, 0x9000));
    assert_eq!(g(F::GUEST_CS_SELECTOR.raw()), 8);
    assert_eq!(g(F::VMCS_LINK_POINTER.raw()), u64::MAX);
    assert_eq!(g(F::GUEST_CR0.raw()), 0x8000_0031);
}

#[test]
fn a_32_bit_l2_gets_efer_without_lma_and_its_pae_pdptes() {
    let mut w = ready();
    let entry = adjust(&w, 0x490, 0);
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_CONTROLS.raw(), entry), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::GUEST_CR3.raw(), 0x8_0000), InsnResult::Succeed);
    for i in 0..4 {
        w.mem.put64(0x8_0000 + 8 * i, 0x9_0001 + 0x1000 * i);
    }
    let v02 = enter(&mut w, true);
    assert_eq!(v02.read_raw(F::GUEST_IA32_EFER.raw()), Ok(0x801), "L1's SCE and NXE, LMA and LME cleared");
    assert_eq!(v02.read_raw(F::VM_ENTRY_CONTROLS.raw()).unwrap() as u32 & Entry::IA32E_MODE_GUEST.bits(), 0);
    let pdptrs = [F::GUEST_PDPTR0, F::GUEST_PDPTR1, F::GUEST_PDPTR2, F::GUEST_PDPTR3];
    for (i, f) in pdptrs.iter().enumerate() {
        assert_eq!(v02.read_raw(f.raw()), Ok(0x9_0001 + 0x1000 * i as u64), "PDPTE {i}");
    }
}

#[test]
fn an_exit_to_l1_syncs_vmcs12_and_loads_l1s_host_state() {
    let mut w = ready();
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_INTR_INFO_FIELD.raw(), 1 << 31 | 3 << 8 | 6), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::HOST_ES_SELECTOR.raw(), 0), InsnResult::Succeed);
    let mut v02 = enter(&mut w, true);
    l2_exit(&mut v02, R::Vmcall.number() as u32, 0x4010);
    let l1_entry = w.nested.current().get(F::VM_ENTRY_CONTROLS.raw());
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    let v12 = |w: &World, f: u64| w.nested.current().get(f);
    assert_eq!(v12(&w, F::VM_EXIT_REASON.raw()), 18);
    assert_eq!(v12(&w, F::VM_EXIT_INSTRUCTION_LEN.raw()), 3);
    assert_eq!(v12(&w, F::EXIT_QUALIFICATION.raw()), 0x55);
    assert_eq!(v12(&w, F::GUEST_RIP.raw()), 0x4010);
    assert_eq!(v12(&w, F::GUEST_RFLAGS.raw()), 0x46);
    assert_eq!(v12(&w, F::VM_ENTRY_CONTROLS.raw()), l1_entry, "L0's merged entry controls do not leak into vmcs12");
    assert_eq!(v12(&w, F::VM_ENTRY_INTR_INFO_FIELD.raw()), 3 << 8 | 6, "the injected event's valid bit is cleared");
    assert_eq!({ w.nested.current().vmcs12.inner().launch_state }, 1);
    // L1 continues at its host RIP.
    w.nested.load_l1_host_state(&mut w.vmcs01).unwrap();
    let g = |f: u64| w.get(f);
    assert_eq!((g(F::GUEST_RIP.raw()), g(F::GUEST_RSP.raw())), (HOST_RIP12, 0x7000));
    assert_eq!(g(F::GUEST_RFLAGS.raw()), 2);
    assert_eq!((g(F::GUEST_CS_SELECTOR.raw()), g(F::GUEST_CS_AR_BYTES.raw())), (8, 0xa09b));
    assert_eq!((g(F::GUEST_SS_SELECTOR.raw()), g(F::GUEST_SS_AR_BYTES.raw())), (0x10, 0xc093));
    assert_eq!(g(F::GUEST_ES_AR_BYTES.raw()), 0x1_0000, "a null selector is unusable");
    assert_eq!(
        (g(F::GUEST_TR_SELECTOR.raw()), g(F::GUEST_TR_LIMIT.raw()), g(F::GUEST_TR_AR_BYTES.raw())),
        (0x18, 0x67, 0x8b)
    );
    assert_eq!(g(F::GUEST_LDTR_AR_BYTES.raw()), 0x1_0000);
    assert_eq!((g(F::GUEST_GDTR_LIMIT.raw()), g(F::GUEST_IDTR_LIMIT.raw())), (0xffff, 0xffff));
    assert_eq!(g(F::GUEST_DR7.raw()), 0x400);
    assert_eq!((g(F::GUEST_CR0.raw()), g(F::CR0_READ_SHADOW.raw())), (0x8000_0031, 0x8000_0031));
    assert_eq!(g(F::GUEST_CR3.raw()), CR3_64);
    assert_eq!(g(F::GUEST_IA32_EFER.raw()) & 0x500, 0x500, "64-bit host: LMA and LME");
    assert!(g(F::VM_ENTRY_CONTROLS.raw()) & Entry::IA32E_MODE_GUEST.bits() as u64 != 0);
    // L1 reads the exit through VMREAD, and VMRESUME (launched now) enters again.
    assert_eq!(vmread(&mut w, F::VM_EXIT_REASON.raw()), Ok(18));
    w.set(F::VM_ENTRY_CONTROLS.raw(), 1 << 9);
    assert_eq!(w.exec(R::Vmresume, 0, 0), Outcome::EnterL2 { launch: false });
}

#[test]
fn dirty_groups_decide_what_the_next_entry_recopies() {
    let mut w = ready();
    let mut v02 = enter(&mut w, true);
    l2_exit(&mut v02, R::Cpuid.number() as u32, 0x4002);
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    let again = |w: &mut World, v02: &mut SoftVmcs| {
        let o = w.exec(R::Vmresume, 0, 0);
        assert_eq!(o, Outcome::EnterL2 { launch: false }, "{:?}", w.nested.last_entry_failure().map(|f| f.rule.name()));
        let mut c = Counted::new(v02);
        w.nested.prepare_vmcs02(&mut c, &policy(), 0xd01, &w.mem).unwrap();
        c.counts().writes
    };
    let clean = again(&mut w, &mut v02);
    // L1 rewrites one guest segment selector: that group is copied again, and its value arrives.
    assert_eq!(vmwrite(&mut w, F::GUEST_ES_SELECTOR.raw(), 0x20), InsnResult::Succeed);
    let dirty = again(&mut w, &mut v02);
    assert!(dirty > clean, "segments recopied: {dirty} > {clean} VMWRITEs");
    assert_eq!(v02.read_raw(F::GUEST_ES_SELECTOR.raw()), Ok(0x20));
}

#[test]
fn a_failed_entry_changes_only_reason_and_qualification() {
    let mut w = ready();
    assert_eq!(vmwrite(&mut w, F::GUEST_RFLAGS.raw(), 0), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_INTR_INFO_FIELD.raw(), 1 << 31 | 3 << 8 | 6), InsnResult::Succeed);
    let Outcome::EntryFailed { reason, qualification } = w.exec(R::Vmlaunch, 0, 0) else { panic!("entry passed") };
    w.nested.fail_entry(reason.bits(), qualification).unwrap();
    w.nested.load_l1_host_state(&mut w.vmcs01).unwrap();
    assert_eq!(w.nested.current().get(F::VM_EXIT_REASON.raw()), 0x8000_0021);
    assert_eq!({ w.nested.current().vmcs12.inner().launch_state }, 0, "still clear: VMLAUNCH may be retried");
    assert_eq!(w.nested.current().get(F::VM_ENTRY_INTR_INFO_FIELD.raw()) >> 31, 1, "the event stays pending");
    assert_eq!(w.get(F::GUEST_RIP.raw()), HOST_RIP12);
    // The processor rejecting vmcs02's guest state is the same for L1.
    let mut w = ready();
    let mut v02 = enter(&mut w, true);
    l2_exit(&mut v02, 0x8000_0021, 0x4000);
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    assert_eq!(w.nested.current().get(F::VM_EXIT_REASON.raw()), 0x8000_0021);
    assert_eq!(w.nested.current().get(F::VM_EXIT_INSTRUCTION_LEN.raw()), 0, "no other exit information");
    assert_eq!({ w.nested.current().vmcs12.inner().launch_state }, 0);
}

#[test]
fn a_vmcs02_the_processor_refuses_is_l1s_vmfail_7() {
    let mut w = ready();
    let _ = enter(&mut w, true);
    assert_eq!(w.nested.fail_vmentry(&mut w.vmcs01, VmInstructionError::EntryInvalidControlFields), Outcome::ResumeL1);
    assert_eq!(w.result(), InsnResult::FailValid(7));
}

/// L0's MSRs for the list tests: SYSENTER_ESP lives in the context's VMCS, the others in a map;
/// an MSR in `gp` raises #GP.
#[derive(Default)]
struct FakeMsrs {
    machine: std::collections::BTreeMap<u32, u64>,
    gp: Vec<u32>,
    writes: Vec<(u32, u64)>,
}

impl Msrs for FakeMsrs {
    fn wrmsr<V: VmcsRead + VmcsWrite + ?Sized>(&mut self, vmcs: &mut V, index: u32, value: u64) -> bool {
        if self.gp.contains(&index) {
            return false;
        }
        self.writes.push((index, value));
        if index == 0x175 {
            return vmcs.write_raw(F::GUEST_SYSENTER_ESP.raw(), value).is_ok();
        }
        self.machine.insert(index, value);
        true
    }
    fn rdmsr<V: VmcsRead + ?Sized>(&mut self, vmcs: &V, index: u32) -> Option<u64> {
        if self.gp.contains(&index) {
            return None;
        }
        if index == 0x175 {
            return vmcs.read_raw(F::GUEST_SYSENTER_ESP.raw()).ok();
        }
        Some(self.machine.get(&index).copied().unwrap_or(0))
    }
}

const ENTRY_LIST: u64 = 0x30_1000;
const STORE_LIST: u64 = 0x30_2000;
const EXIT_LIST: u64 = 0x30_3000;
const KERNEL_GS_BASE: u32 = 0xc000_0102;

fn put_list(w: &mut World, at: u64, entries: &[(u32, u32, u64)]) {
    for (i, &(index, reserved, data)) in entries.iter().enumerate() {
        let e = at + 16 * i as u64;
        w.mem.put64(e, (reserved as u64) << 32 | index as u64);
        w.mem.put64(e + 8, data);
    }
}

fn use_lists(w: &mut World, entry: u64, store: u64, exit: u64) {
    for (f, v) in [
        (F::VM_ENTRY_MSR_LOAD_ADDR.raw(), ENTRY_LIST),
        (F::VM_ENTRY_MSR_LOAD_COUNT.raw(), entry),
        (F::VM_EXIT_MSR_STORE_ADDR.raw(), STORE_LIST),
        (F::VM_EXIT_MSR_STORE_COUNT.raw(), store),
        (F::VM_EXIT_MSR_LOAD_ADDR.raw(), EXIT_LIST),
        (F::VM_EXIT_MSR_LOAD_COUNT.raw(), exit),
    ] {
        assert_eq!(vmwrite(w, f, v), InsnResult::Succeed, "{f:#x}");
    }
}

#[test]
fn msr_lists_load_l2s_msrs_store_them_at_exit_and_load_l1s() {
    let mut w = ready();
    put_list(&mut w, ENTRY_LIST, &[(KERNEL_GS_BASE, 0, 0x1111), (0x175, 0, 0x5000)]);
    put_list(&mut w, STORE_LIST, &[(KERNEL_GS_BASE, 0, 0), (0x175, 0, 0)]);
    put_list(&mut w, EXIT_LIST, &[(KERNEL_GS_BASE, 0, 0x7777)]);
    use_lists(&mut w, 2, 2, 1);
    let mut v02 = enter(&mut w, true);
    let mut msrs = FakeMsrs::default();
    assert_eq!(w.nested.load_entry_msrs(&mut v02, &w.mem, &mut msrs), Ok(()));
    assert_eq!(msrs.writes, [(KERNEL_GS_BASE, 0x1111), (0x175, 0x5000)], "in order");
    assert_eq!(v02.read_raw(F::GUEST_SYSENTER_ESP.raw()), Ok(0x5000), "a VMCS-switched MSR goes into vmcs02");
    assert_eq!(w.nested.current().get(F::GUEST_SYSENTER_ESP.raw()), 0x5000, "and through into vmcs12");
    // L2 runs and changes KERNEL_GS_BASE; the exit stores L2's values, then loads L1's.
    msrs.machine.insert(KERNEL_GS_BASE, 0x2222);
    l2_exit(&mut v02, R::Cpuid.number().into(), 0);
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    assert_eq!(w.nested.store_exit_msrs(&v02, &mut w.mem, &mut msrs), Ok(()));
    assert_eq!((w.mem.u64(STORE_LIST + 8), w.mem.u64(STORE_LIST + 24)), (0x2222, 0x5000));
    assert_eq!(w.mem.u64(STORE_LIST), KERNEL_GS_BASE as u64, "only the data quadword is written");
    w.nested.load_l1_host_state(&mut w.vmcs01).unwrap();
    assert_eq!(w.nested.load_exit_msrs(&mut w.vmcs01, &w.mem, &mut msrs), Ok(()));
    assert_eq!(msrs.machine[&KERNEL_GS_BASE], 0x7777);
}

#[test]
fn l2_wrmsr_writes_through_what_vmcs12_keeps() {
    let mut w = ready();
    let _ = enter(&mut w, true);
    w.nested.l2_wrmsr(0x176, 0x1234);
    assert_eq!(w.nested.current().get(F::GUEST_SYSENTER_EIP.raw()), 0x1234, "SYSENTER_EIP always");
    let exit = w.nested.current().get(F::VM_EXIT_CONTROLS.raw());
    w.nested.l2_wrmsr(0x1d9, 1);
    let want = if exit & Exit::SAVE_DEBUG_CONTROLS.bits() as u64 != 0 { 1 } else { 0 };
    assert_eq!(w.nested.current().get(F::GUEST_IA32_DEBUGCTL.raw()), want, "DEBUGCTL with save debug controls");
    let before = w.nested.current().get(F::GUEST_IA32_EFER.raw());
    w.nested.l2_wrmsr(0xc000_0080, 0);
    assert_eq!(w.nested.current().get(F::GUEST_IA32_EFER.raw()), before, "EFER comes back from vmcs02 at exit");
}

#[test]
fn an_entry_msr_that_fails_is_exit_34_with_its_index_and_the_ones_before_stay_loaded() {
    let fs_base = 0xc000_0100;
    for (bad, why) in [
        ((KERNEL_GS_BASE, 1, 0), "reserved bits 63:32"),
        ((fs_base, 0, 0), "IA32_FS_BASE"),
        ((0xc000_0101, 0, 0), "IA32_GS_BASE"),
        ((0x9b, 0, 0), "IA32_SMM_MONITOR_CTL"),
        ((0x79, 0, 0), "microcode update trigger"),
        ((0x8b, 0, 0), "microcode signature"),
        ((0x1234, 0, 0), "WRMSR would #GP"),
    ] {
        let mut w = ready();
        put_list(&mut w, ENTRY_LIST, &[(0x10, 0, 5), bad, (0x11, 0, 6)]);
        use_lists(&mut w, 3, 0, 0);
        let mut v02 = enter(&mut w, true);
        let mut msrs = FakeMsrs { gp: vec![0x1234], ..Default::default() };
        let r = w.nested.load_entry_msrs(&mut v02, &w.mem, &mut msrs);
        assert_eq!(r, Err(EntryMsrFailure(2)), "{why}");
        assert_eq!(msrs.writes, [(0x10, 5)], "{why}: the first entry stays loaded, the third is not reached");
    }
    // x2APIC MSRs, in either APIC mode (the SDM's M3; KVM checks it in x2APIC mode only, and
    // in xAPIC mode the WRMSR #GPs: the same entry fails).
    for (apic_base, want) in [(0xfee0_0900u64, Err(EntryMsrFailure(1))), (0xfee0_0d00, Err(EntryMsrFailure(1)))] {
        let mut w = ready();
        put_list(&mut w, ENTRY_LIST, &[(0x808, 0, 0)]);
        use_lists(&mut w, 1, 0, 0);
        let mut v02 = enter(&mut w, true);
        let mut msrs = FakeMsrs::default();
        msrs.machine.insert(0x1b, apic_base);
        assert_eq!(w.nested.load_entry_msrs(&mut v02, &w.mem, &mut msrs), want, "APIC base {apic_base:#x}");
    }
    // An entry L1's memory does not hold, and a list longer than IA32_VMX_MISC allows (512).
    let mut w = ready();
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_MSR_LOAD_ADDR.raw(), MEM_SIZE as u64 - 16), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 2), InsnResult::Succeed);
    w.mem.put64(MEM_SIZE as u64 - 16, 0x10);
    let mut v02 = vmcs02();
    let mut msrs = FakeMsrs::default();
    assert_eq!(w.nested.load_entry_msrs(&mut v02, &w.mem, &mut msrs), Err(EntryMsrFailure(2)), "beyond memory");
    assert_eq!((w.nested.caps().caps().raw(0x485) >> 25) & 7, 0);
    let mut w = ready();
    put_list(&mut w, ENTRY_LIST, &[(0x10, 0, 1); 513]);
    use_lists(&mut w, 513, 0, 0);
    let mut msrs = FakeMsrs::default();
    assert_eq!(w.nested.load_entry_msrs(&mut v02, &w.mem, &mut msrs), Err(EntryMsrFailure(513)));
    assert_eq!(msrs.writes.len(), 512);
}

#[test]
fn exit_msr_list_failures_are_vmx_aborts_1_and_4() {
    for (store, exit, want_store, want_load) in [
        ((0x9e, 0), (0x10, 0), Err(VmxAbort::StoreMsr), Ok(())),
        ((0x8b, 0), (0x10, 0), Err(VmxAbort::StoreMsr), Ok(())),
        ((0x10, 1), (0x10, 0), Err(VmxAbort::StoreMsr), Ok(())),
        ((0x1234, 0), (0x10, 0), Err(VmxAbort::StoreMsr), Ok(())),
        ((0x10, 0), (0xc000_0100, 0), Ok(()), Err(VmxAbort::LoadMsr)),
        ((0x10, 0), (0x1234, 0), Ok(()), Err(VmxAbort::LoadMsr)),
    ] {
        let mut w = ready();
        put_list(&mut w, STORE_LIST, &[(store.0, store.1, 0)]);
        put_list(&mut w, EXIT_LIST, &[(exit.0, exit.1, 0)]);
        use_lists(&mut w, 0, 1, 1);
        let mut v02 = enter(&mut w, true);
        l2_exit(&mut v02, R::Cpuid.number().into(), 0);
        let mut msrs = FakeMsrs { gp: vec![0x1234], ..Default::default() };
        assert_eq!(w.nested.store_exit_msrs(&v02, &mut w.mem, &mut msrs), want_store, "{store:x?}");
        assert_eq!(w.nested.load_exit_msrs(&mut w.vmcs01, &w.mem, &mut msrs), want_load, "{exit:x?}");
    }
    assert_eq!((VmxAbort::StoreMsr as u32, VmxAbort::LoadMsr as u32), (1, 4));
}

/// vmcs02 recording the fields written to it.
struct Written<'a>(&'a mut SoftVmcs, Vec<u64>);

impl VmcsRead for Written<'_> {
    fn read_raw(&self, encoding: u64) -> Result<u64, vmcs::VmcsError> {
        self.0.read_raw(encoding)
    }
}
impl VmcsWrite for Written<'_> {
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), vmcs::VmcsError> {
        self.1.push(encoding);
        self.0.write_raw(encoding, value)
    }
}

#[test]
fn vmcs02_gets_l2s_activity_state_when_it_holds_another() {
    let mut w = ready();
    assert_eq!(vmwrite(&mut w, F::GUEST_ACTIVITY_STATE.raw(), 1), InsnResult::Succeed);
    let mut v02 = enter(&mut w, true);
    assert_eq!(v02.read_raw(F::GUEST_ACTIVITY_STATE.raw()), Ok(1), "L2 starts in HLT");
    // An interrupt woke L2 and it exited active: vmcs12 and vmcs02 agree, nothing to rewrite.
    l2_exit(&mut v02, R::Cpuid.number() as u32, 0x4002);
    v02.write_raw(F::GUEST_ACTIVITY_STATE.raw(), 0).unwrap();
    w.nested.sync_exit(&v02, true, 0xd01).unwrap();
    assert_eq!(w.nested.current().get(F::GUEST_ACTIVITY_STATE.raw()), 0);
    let again = |w: &mut World, v02: &mut SoftVmcs| {
        assert_eq!(w.exec(R::Vmresume, 0, 0), Outcome::EnterL2 { launch: false });
        let mut log = Written(v02, Vec::new());
        w.nested.prepare_vmcs02(&mut log, &policy(), 0xd01, &w.mem).unwrap();
        log.1.contains(&F::GUEST_ACTIVITY_STATE.raw())
    };
    assert!(!again(&mut w, &mut v02), "vmcs02 holds the active state already");
    // L1 puts L2 back into HLT: vmcs02 gets it.
    assert_eq!(vmwrite(&mut w, F::GUEST_ACTIVITY_STATE.raw(), 1), InsnResult::Succeed);
    assert!(again(&mut w, &mut v02));
    assert_eq!(v02.read_raw(F::GUEST_ACTIVITY_STATE.raw()), Ok(1));
}
