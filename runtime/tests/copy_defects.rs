//! One test per defect of issue 9 that the copy routines had as running code (found by comparing
//! them with KVM 7.2.8's `arch/x86/kvm/vmx/nested.c`). Each failed on the
//! routines before the hooks and per-entry tracking (see the commit that added this file).

mod common;
mod copy_support;

use common::Rng;
use copy_support::*;
use vmcs::caps::AllCaps;
use vmcs::copy::{self, ExitKind, Tracked};
use vmcs::soft::SoftVmcs;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite, fields};
use vmcs_gen::Schema;

/// A vmcs12 with a distinct value in every field, primary controls activating the secondary ones.
fn vmcs12(seed: u64) -> Vmcs12 {
    let mut rng = Rng(seed);
    let mut v = Vmcs12::zeroed();
    for &e in <Vmcs12 as Layout>::MAPPED {
        v.write_raw(e as u64, rng.next() | 1).unwrap();
    }
    v.write(fields::CPU_BASED_VM_EXEC_CONTROL, 1 << 31).unwrap();
    for f in [fields::SECONDARY_VM_EXEC_CONTROL, fields::VM_ENTRY_CONTROLS, fields::VM_EXIT_CONTROLS] {
        v.write(f, 0).unwrap();
    }
    v.write(fields::PIN_BASED_VM_EXEC_CONTROL, 0).unwrap();
    v
}

fn set_bits<W: VmcsRead + VmcsWrite>(v: &mut W, f: fields::Field<fields::W32, fields::ReadWrite>, bits: u32) {
    let old = v.read(f).unwrap();
    v.write(f, old | bits).unwrap();
}

struct L0 {
    v12: Tracked<Vmcs12>,
    v02: SoftVmcs,
    hooks: TestHooks,
}

impl L0 {
    fn new(v: Vmcs12) -> L0 {
        L0 { v12: Tracked::new(v), v02: SoftVmcs::new(&AllCaps), hooks: TestHooks::new() }
    }
    fn entry(&mut self) {
        copy::nested_entry(&mut self.v12, &mut self.v02, &AllCaps, &mut self.hooks).unwrap();
    }
    fn exit(&mut self, kind: ExitKind) {
        copy::exit_to_vmcs12(kind, &self.v02, &mut self.v12, &AllCaps, &mut self.hooks).unwrap();
    }
}

#[test]
fn defect1_a_changed_condition_input_is_copied_on_the_next_entry() {
    // XSS-exiting bitmap written while XSAVES is off, then XSAVES enabled (KVM: any VMWRITE dirties).
    let mut l0 = L0::new(vmcs12(1));
    l0.entry();
    l0.v12.write(fields::XSS_EXIT_BITMAP, 0x1234).unwrap();
    l0.entry();
    assert_ne!(l0.v02.read(fields::XSS_EXIT_BITMAP), Ok(0x1234), "XSAVES is off");
    set_bits(&mut l0.v12, fields::SECONDARY_VM_EXEC_CONTROL, 1 << 20);
    l0.entry();
    assert_eq!(l0.v02.read(fields::XSS_EXIT_BITMAP), Ok(0x1234));
    // S_CET after "load CET state", BNDCFGS after "load IA32_BNDCFGS".
    l0.hooks.guest_ibt_or_shstk = true;
    l0.v12.write(fields::GUEST_S_CET, 0x55).unwrap();
    l0.v12.write(fields::GUEST_BNDCFGS, 0x66).unwrap();
    l0.entry();
    assert_ne!(l0.v02.read(fields::GUEST_S_CET), Ok(0x55));
    set_bits(&mut l0.v12, fields::VM_ENTRY_CONTROLS, 1 << 20 | 1 << 16);
    l0.entry();
    assert_eq!((l0.v02.read(fields::GUEST_S_CET), l0.v02.read(fields::GUEST_BNDCFGS)), (Ok(0x55), Ok(0x66)));
}

#[test]
fn defect2_an_exit_keeps_l1s_entry_controls_but_the_ia32e_bit() {
    // The reproduction: L1 wrote 0x11ff and read back vmcs02's merged value.
    let mut l0 = L0::new(vmcs12(2));
    l0.v12.write(fields::VM_ENTRY_CONTROLS, 0x11ff).unwrap();
    l0.v12.write(fields::GUEST_IA32_EFER, 0).unwrap();
    l0.entry();
    assert_eq!(l0.v02.read(fields::VM_ENTRY_CONTROLS), Ok(0x11ff | L0_ENTRY), "L0's merge runs L2");
    // L2 entered IA-32e mode: the processor saved that bit into vmcs02's entry controls.
    l0.v02.write(fields::VM_ENTRY_CONTROLS, L0_ENTRY | 0x13ff).unwrap();
    l0.exit(ExitKind::Exit);
    assert_eq!(l0.v12.read(fields::VM_ENTRY_CONTROLS), Ok(0x13ff), "L1's value with L2's IA-32e mode bit");
}

#[test]
fn defect3_nested_state_puts_no_l1_host_state_or_address_into_vmcs02() {
    let schema = Schema::shipped().unwrap();
    // KVM_SET_NESTED_STATE: the vmcs12 bytes, then a normal entry without a pending run.
    let restored = vmcs12(3);
    let mut l0 = L0::new(restored);
    l0.hooks.run_pending = false;
    l0.entry();
    for f in &schema.fields {
        let e = f.encoding.raw() as u64;
        let (Ok(v02), Ok(l1)) = (l0.v02.read_raw(e), restored.read_raw(e)) else { continue };
        if f.kind == vmcs_gen::Kind::HostState {
            assert_eq!(v02, 0, "{}: vmcs02's host state is L0's", f.name);
        }
        if f.guest_physical && f.name != "VMCS_LINK_POINTER" {
            assert_ne!(v02, l1, "{}: an L1 guest-physical address in vmcs02", f.name);
        }
    }
    // KVM_GET_NESTED_STATE while L2 runs: L2's state into vmcs12, L1's controls and host state kept.
    let mut l0 = L0::new(restored);
    l0.entry();
    let before = *l0.v12.inner();
    for f in fields::ALL {
        l0.v02.write_raw(f.encoding as u64, 0xdead_beef_dead_beef).unwrap();
    }
    copy::sync_for_save(true, &l0.v02, &mut l0.v12, &AllCaps, &mut l0.hooks).unwrap();
    for f in schema.fields.iter().filter(|f| f.kind == vmcs_gen::Kind::HostState || f.kind == vmcs_gen::Kind::Control) {
        let e = f.encoding.raw() as u64;
        let Ok(want) = before.read_raw(e) else { continue };
        let want = if f.name == "VM_ENTRY_CONTROLS" { want & !(1 << 9) | 0xdead_beef & 1 << 9 } else { want };
        assert_eq!(l0.v12.inner().read_raw(e), Ok(want), "{} after saving", f.name);
    }
}

#[test]
fn defect4_values_kvm_computes_are_l0s_not_l1s() {
    let mut v = vmcs12(4);
    v.write(fields::GUEST_CR0, 0x8000_0011).unwrap();
    v.write(fields::GUEST_CR4, 0x20).unwrap();
    let mut l0 = L0::new(v);
    set_bits(&mut l0.v12, fields::SECONDARY_VM_EXEC_CONTROL, 1 << 5 | 1 << 1); // VPID, EPT
    l0.hooks.l0_ept = false;
    l0.entry();
    let l1 = |f: u32| v.read_raw(f as u64).unwrap();
    let got = |f: u32| l0.v02.read_raw(f as u64).unwrap();
    assert_eq!(got(fields::VIRTUAL_PROCESSOR_ID.encoding()), VPID02 as u64, "L2 runs with L0's VPID");
    assert_eq!(
        got(fields::GUEST_CR3.encoding()),
        mark64(l1(fields::GUEST_CR3.encoding())),
        "shadow root without L0 EPT"
    );
    assert_eq!(
        got(fields::EXCEPTION_BITMAP.encoding()),
        l1(fields::EXCEPTION_BITMAP.encoding()) | L0_EXCEPTIONS as u64
    );
    assert_eq!(got(fields::CR0_GUEST_HOST_MASK.encoding()), l1(fields::CR0_GUEST_HOST_MASK.encoding()) | L0_CR0_MASK);
    assert_eq!(got(fields::CR4_GUEST_HOST_MASK.encoding()), l1(fields::CR4_GUEST_HOST_MASK.encoding()) | L0_CR4_MASK);
    // Every value a hook produces differs from L1's raw value for these fields.
    for f in [
        fields::GUEST_CR0.encoding(),
        fields::GUEST_CR4.encoding(),
        fields::CR0_READ_SHADOW.encoding(),
        fields::TSC_OFFSET.encoding(),
        fields::GUEST_IA32_EFER.encoding(),
        fields::PIN_BASED_VM_EXEC_CONTROL.encoding(),
        fields::CPU_BASED_VM_EXEC_CONTROL.encoding(),
    ] {
        assert_ne!(got(f), l1(f), "{f:#x} copied raw");
    }
    // With L0 EPT: GUEST_CR3 is L2's (EPT translates it) and the EPTP is L0's root for L2.
    let mut l0 = L0::new(v);
    set_bits(&mut l0.v12, fields::SECONDARY_VM_EXEC_CONTROL, 1 << 1);
    l0.entry();
    assert_eq!(l0.v02.read(fields::GUEST_CR3), Ok(l1(fields::GUEST_CR3.encoding())));
    assert_eq!(l0.v02.read(fields::EPT_POINTER), Ok(EPT02_ROOT | l1(fields::EPT_POINTER.encoding()) & 0xfff));
    // On exit, what KVM derives from its vCPU state, not vmcs02 (which need not even save EFER).
    set_bits(&mut l0.v12, fields::VM_EXIT_CONTROLS, 1 << 2 | 1 << 20 | 1 << 22);
    set_bits(&mut l0.v12, fields::PIN_BASED_VM_EXEC_CONTROL, 1 << 6);
    (l0.hooks.l2_activity, l0.hooks.l2_timer, l0.hooks.l2_dr7, l0.hooks.l2_efer) = (1, 77, 0x401, 0xd01);
    for f in [fields::GUEST_ACTIVITY_STATE.raw(), fields::VMX_PREEMPTION_TIMER_VALUE.raw()] {
        l0.v02.write_raw(f, 0x3).unwrap();
    }
    l0.v02.write(fields::GUEST_IA32_EFER, 0xbad).unwrap();
    l0.v02.write(fields::GUEST_DR7, 0xbad).unwrap();
    l0.hooks.run_pending = false;
    l0.exit(ExitKind::Exit);
    let r = |f| l0.v12.read_raw(f).unwrap();
    assert_eq!(
        [r(fields::GUEST_ACTIVITY_STATE.raw()), r(fields::VMX_PREEMPTION_TIMER_VALUE.raw())],
        [1, 77],
        "activity state and timer from L0"
    );
    assert_eq!([r(fields::GUEST_DR7.raw()), r(fields::GUEST_IA32_EFER.raw())], [0x401, 0xd01]);
}

#[test]
fn defect5_exit_information_as_kvm_builds_it() {
    let mut l0 = L0::new(vmcs12(5));
    l0.v12.write(fields::VM_ENTRY_INTR_INFO_FIELD, 0x8000_0b0e).unwrap();
    l0.entry();
    for f in fields::ALL.iter().filter(|f| f.kind == fields::FieldKind::ReadOnly) {
        l0.v02.write_raw(f.encoding as u64, 0x0bad).unwrap(); // what the processor left in vmcs02
    }
    l0.hooks.exit = ExitFacts {
        reason: 48,
        qualification: 0x181,
        intr_info: 0,
        intr_error_code: 0,
        idt_vectoring_info: 0x8000_0320,
        idt_vectoring_error_code: 0,
        instruction_len: 0,
        guest_physical_address: 0x1234_5000,
    };
    assert_eq!({ l0.v12.inner().launch_state }, 0);
    l0.exit(ExitKind::Exit);
    let r = |f: u64| l0.v12.read_raw(f).unwrap();
    assert_eq!(r(fields::VM_EXIT_REASON.raw()), 48);
    assert_eq!(r(fields::EXIT_QUALIFICATION.raw()), 0x181);
    assert_eq!(r(fields::IDT_VECTORING_INFO_FIELD.raw()), 0x8000_0320, "from L0's re-injection state");
    assert_eq!(r(fields::GUEST_PHYSICAL_ADDRESS.raw()), 0x1234_5000);
    assert_eq!(r(fields::VM_EXIT_INSTRUCTION_LEN.raw()), 0);
    assert_eq!(r(fields::VMX_INSTRUCTION_INFO.raw()), 0x0bad, "the one field read from vmcs02");
    assert_eq!(r(fields::VM_ENTRY_INTR_INFO_FIELD.raw()), 0x0b0e, "valid bit cleared: L1 does not re-inject");
    assert_eq!({ l0.v12.inner().launch_state }, 1, "launched");
    // A refused entry changes only reason and qualification.
    let mut l0 = L0::new(vmcs12(5));
    l0.v12.write(fields::VM_ENTRY_INTR_INFO_FIELD, 0x8000_0b0e).unwrap();
    let before = *l0.v12.inner();
    l0.hooks.exit = ExitFacts { reason: 0x8000_0021, qualification: 2, ..l0.hooks.exit };
    l0.exit(ExitKind::RefusedEntry);
    for &e in <Vmcs12 as Layout>::MAPPED {
        let (got, was) = (l0.v12.inner().read_raw(e as u64).unwrap(), before.read_raw(e as u64).unwrap());
        match e {
            0x4402 => assert_eq!(got, 0x8000_0021),
            0x6400 => assert_eq!(got, 2),
            _ => assert_eq!(got, was, "{e:#x} changed by a refused entry"),
        }
    }
    assert_eq!({ l0.v12.inner().launch_state }, { before.launch_state });
}

/// An entry and exit, L1's VMWRITE of `e` through the shadow VMCS (if `new`), then L1's
/// VMRESUME and the next exit: vmcs02 after that entry and vmcs01 after that exit.
fn shadow_write_round(e: u64, new: Option<u64>) -> (SoftVmcs, SoftVmcs) {
    let mut v = vmcs12(6);
    v.write(fields::PIN_BASED_VM_EXEC_CONTROL, 1 << 6).unwrap(); // preemption timer
    v.write(fields::CPU_BASED_VM_EXEC_CONTROL, 1 << 31 | 1 << 21).unwrap(); // TPR shadow
    v.write(fields::SECONDARY_VM_EXEC_CONTROL, 1 << 9).unwrap(); // virtual-interrupt delivery
    let mut l0 = L0::new(v);
    let mut shadow = SoftVmcs::new(&AllCaps);
    let mut v01 = SoftVmcs::new(&AllCaps);
    l0.entry();
    l0.exit(ExitKind::Exit);
    copy::shadow_read_write(&l0.v12, &mut shadow, &AllCaps).unwrap();
    if let Some(x) = new {
        shadow.write_raw(e, x).unwrap();
    }
    copy::shadow_read_write_back(&shadow, &mut l0.v12, &AllCaps).unwrap();
    l0.entry();
    let v02 = l0.v02.clone();
    l0.exit(ExitKind::Exit);
    copy::load_host_state(l0.v12.inner(), &mut v01, &AllCaps, &mut l0.hooks).unwrap();
    (v02, v01)
}

#[test]
fn defect6_every_read_write_shadow_field_reaches_vmcs02() {
    let schema = Schema::shipped().unwrap();
    let rw = schema.set("shadow_read_write").unwrap();
    let differs = |a: &SoftVmcs, b: &SoftVmcs| {
        fields::ALL.iter().any(|x| a.read_raw(x.encoding as u64) != b.read_raw(x.encoding as u64))
    };
    let mut checked = 0;
    for item in &rw.items {
        let f = &schema.fields[item.field];
        if f.name == "GUEST_PML_INDEX" {
            assert!(f.l0_owned.is_some(), "L0 emulates PML: it reads vmcs12's index itself");
            continue;
        }
        let e = f.encoding.raw() as u64;
        let (v02, v01) = shadow_write_round(e, None);
        let (w02, w01) = shadow_write_round(e, Some(0x0f0f_0f0f_0f0f_0f0f ^ v02.read_raw(e).unwrap()));
        let host = f.kind == vmcs_gen::Kind::HostState;
        assert!(
            if host { differs(&v01, &w01) } else { differs(&v02, &w02) },
            "{}: L1's shadow write went nowhere",
            f.name
        );
        checked += 1;
    }
    assert_eq!(checked, 23, "all 24 read-write shadow fields but the PML index");
}

#[test]
fn defect7_pdptrs_as_seed_004_says() {
    // vmcs12 -> vmcs02 only with nested EPT and PAE paging, judged after CR0/CR4/EFER are set,
    // and only when vmcs12 changed (KVM's load_guest_pdptrs_vmcs12).
    for (ept, pae, want) in [(true, true, true), (false, true, false), (true, false, false)] {
        let mut l0 = L0::new(vmcs12(7));
        if ept {
            set_bits(&mut l0.v12, fields::SECONDARY_VM_EXEC_CONTROL, 1 << 1);
        }
        l0.hooks.pae_paging = pae;
        l0.hooks.logging = true;
        l0.entry();
        let copied = l0.v02.read(fields::GUEST_PDPTR1) == l0.v12.read(fields::GUEST_PDPTR1);
        assert_eq!(copied, want, "nested EPT {ept}, PAE {pae}");
        if want {
            let asked = l0.hooks.log.borrow().iter().rposition(|n| *n == "pae_paging").unwrap();
            assert!(l0.hooks.position("vmcs02_efer").unwrap() < asked, "PAE paging judged before EFER was set");
            // Unchanged vmcs12: the next entry writes no PDPTR.
            l0.v02.write(fields::GUEST_PDPTR1, 0x5000).unwrap(); // L2 loaded new PDPTEs
            l0.exit(ExitKind::Exit);
            l0.v02.reset_counts();
            copy::prepare_late(&mut l0.v12, &mut l0.v02, &AllCaps, &mut l0.hooks).unwrap();
            assert_eq!(l0.v02.writes(), 0);
            assert_eq!(l0.v12.read(fields::GUEST_PDPTR1), Ok(0x5000), "synced back on the exit");
            // L1 writes one PDPTR: only that one is copied.
            l0.v12.write(fields::GUEST_PDPTR3, 0x7001).unwrap();
            copy::prepare_late(&mut l0.v12, &mut l0.v02, &AllCaps, &mut l0.hooks).unwrap();
            assert_eq!((l0.v02.writes(), l0.v02.read(fields::GUEST_PDPTR3)), (1, Ok(0x7001)));
        }
    }
    // vmcs02 -> vmcs12 only with L0 EPT, nested EPT and PAE paging (L2's mode at the exit).
    for (l0_ept, pae, want) in [(true, true, true), (false, true, false), (true, false, false)] {
        let mut l0 = L0::new(vmcs12(8));
        set_bits(&mut l0.v12, fields::SECONDARY_VM_EXEC_CONTROL, 1 << 1);
        (l0.hooks.l0_ept, l0.hooks.pae_paging) = (l0_ept, pae);
        l0.v02.write(fields::GUEST_PDPTR0, 0x9001).unwrap();
        l0.exit(ExitKind::Exit);
        assert_eq!(l0.v12.read(fields::GUEST_PDPTR0) == Ok(0x9001), want, "L0 EPT {l0_ept}, PAE {pae}");
    }
}
