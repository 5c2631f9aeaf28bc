//! KVM_SET_NESTED_STATE with the vmcs12 contents checked as `nested_vmx_check_restored_vmcs12`
//! does (Linux 7.2.8 `arch/x86/kvm/vmx/nested.c`, called by `vmx_set_nested_state`): for a blob in guest mode,
//! KVM's controls, host-state and guest-state checks, each refusal naming the rule. Crafted blobs
//! for each category; the VM-entry checks KVM leaves to hardware do not refuse a restore.

mod common;

use std::collections::BTreeSet;

use common::entry::{Memory, apply_repaired, baseline, fact_values, facts, interpreter_caps, vmcs};
use common::kvm_l1_caps;
use vmcs::caps::VmxCaps;
use vmcs::entry::{Facts, Rule, Selection, Tier};
use vmcs::nested_state::*;
use vmcs::soft::SoftVmcs;
use vmcs::{Vmcs12, VmcsRead, VmcsWrite};

/// The valid entry state of the other tests as L1's vmcs12 (what vmcs12 can hold of it).
fn valid_vmcs12(caps: &VmxCaps) -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    v.hdr = VMCS12_REVISION;
    for (enc, value) in baseline(caps) {
        let _ = v.write_raw(enc, value);
    }
    v
}

fn blob(vmcs12: Vmcs12, flags: u16) -> Vec<u8> {
    let b = NestedStateBuilder::new().vmxon_pa(0x1000).vmcs12_pa(0x2000).vmcs12(Some(vmcs12)).flags(flags);
    let mut buf = vec![0u8; b.len()];
    b.emit(&mut buf).unwrap();
    buf
}

/// L1's facts: the VcpuContext's MAXPHYADDR.
fn l1_facts() -> Facts {
    Facts { maxphyaddr: VcpuContext::default().maxphyaddr, ..facts() }
}

fn refusal(edit: impl FnOnce(&mut Vmcs12)) -> Option<&'static str> {
    let caps = kvm_l1_caps();
    let mut v = valid_vmcs12(&caps);
    edit(&mut v);
    match check_restore(&blob(v, KVM_STATE_NESTED_GUEST_MODE), &VcpuContext::default(), &caps, &l1_facts()) {
        Ok(_) => None,
        Err(RestoreError::Vmcs12(f)) => Some(f.rule.name()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_valid_vmcs12_is_restored() {
    assert_eq!(refusal(|_| {}), None);
}

#[test]
fn controls_category() {
    // nested_check_vm_execution_controls: pin controls against L1's MSR (must-be-1 bits cleared).
    assert_eq!(refusal(|v| v.pin_based_vm_exec_control = 0), Some("pin_controls_allowed"));
    // nested_vmx_check_io_bitmap_controls: "use I/O bitmaps" with a misaligned bitmap.
    let r = refusal(|v| {
        v.cpu_based_vm_exec_control |= 1 << 25;
        v.io_bitmap_a = 0x10_0800;
    });
    assert_eq!(r, Some("io_bitmap_a_aligned"));
    // nested_check_vm_entry_controls: an NMI injected with a vector other than 2.
    assert_eq!(refusal(|v| v.vm_entry_intr_info_field = 1 << 31 | 2 << 8 | 3), Some("event_nmi_vector"));
    // nested_check_vm_exit_controls: an exit MSR-store area that is not 16-byte aligned.
    let r = refusal(|v| {
        v.vm_exit_msr_store_count = 1;
        v.vm_exit_msr_store_addr = 0x10_0008;
    });
    assert_eq!(r, Some("exit_msr_store_aligned"));
}

#[test]
fn host_state_category() {
    // nested_vmx_check_host_state: CR0 without PE (IA32_VMX_CR0_FIXED0), a zero TR selector, a
    // non-canonical FS base.
    assert_eq!(refusal(|v| v.host_cr0 &= !1), Some("host_cr0_fixed0"));
    assert_eq!(refusal(|v| v.host_tr_selector = 0), Some("host_tr_selector_nonzero"));
    assert_eq!(refusal(|v| v.host_fs_base = 1 << 47), Some("host_base_canonical_fs"));
}

#[test]
fn guest_state_category() {
    // nested_vmx_check_guest_state: CR4 without VMXE, an invalid PAT type with "load IA32_PAT",
    // an activity state KVM does not know.
    assert_eq!(refusal(|v| v.guest_cr4 &= !(1 << 13)), Some("guest_cr4_fixed0"));
    let r = refusal(|v| {
        v.vm_entry_controls |= 1 << 14;
        v.guest_ia32_pat = 0x0007_0406_0007_0402;
    });
    assert_eq!(r, Some("guest_pat_valid"));
    assert_eq!(refusal(|v| v.guest_activity_state = 7), Some("activity_state_range"));
}

#[test]
fn checks_kvm_leaves_to_hardware_do_not_refuse() {
    // Guest segment attributes and RFLAGS are checked by the processor on vmcs02, not on restore.
    assert_eq!(refusal(|v| v.guest_cs_ar_bytes = 0x93), None);
    assert_eq!(refusal(|v| v.guest_rflags = 0), None);
    // The link pointer's memory check is VM entry's, not the restore's.
    assert_eq!(refusal(|v| v.vmcs_link_pointer = 0x7000), None);
}

#[test]
fn contents_are_checked_only_in_guest_mode() {
    let caps = kvm_l1_caps();
    let mut v = valid_vmcs12(&caps);
    v.pin_based_vm_exec_control = 0;
    let l1 = blob(v, 0);
    assert!(check_restore(&l1, &VcpuContext::default(), &caps, &l1_facts()).is_ok());
    // The blob rules come first, with their own errors.
    let mut bad = blob(valid_vmcs12(&caps), KVM_STATE_NESTED_GUEST_MODE);
    bad[128..132].copy_from_slice(&1u32.to_le_bytes());
    let e = check_restore(&bad, &VcpuContext::default(), &caps, &l1_facts()).unwrap_err();
    assert!(matches!(e, RestoreError::Blob(NestedStateError::BadVmcs12Revision { .. })), "{e}");
    assert_eq!(e.errno(), -22);
}

/// What `vmcs-gen state check` assumes of L1 (`state_contents::restore_facts`): this vCPU's
/// MAXPHYADDR, 4-level paging, Intel's IA32_EFER, IA32_DEBUGCTL and IA32_PERF_GLOBAL_CTRL bits,
/// every other fact 0.
fn cli_facts() -> Facts {
    Facts {
        maxphyaddr: VcpuContext::default().maxphyaddr,
        linear_width: 48,
        efer_lma: false,
        in_smm: false,
        current_vmcs: 0,
        efer_reserved: !(1 | 1 << 8 | 1 << 10 | 1 << 11),
        debugctl_reserved: !0xffc3,
        perf_global_ctrl_reserved: !(0xff | 7 << 32),
        rtit_ctl_reserved: 0,
        rtm: false,
        sgx: false,
        sti_blocks_nmi_injection: false,
        vmlaunch: false,
        launched: false,
        current_is_shadow: false,
        mov_ss_blocked: false,
    }
}

/// What vmcs12 can hold of a VMCS.
fn vmcs12_of(schema: &vmcs_gen::Schema, v: &SoftVmcs) -> Vmcs12 {
    let mut out = Vmcs12::zeroed();
    out.hdr = VMCS12_REVISION;
    for f in &schema.fields {
        if let Ok(value) = v.read_raw(f.encoding.raw() as u64) {
            let _ = out.write_raw(f.encoding.raw() as u64, value);
        }
    }
    out
}

/// Every boundary mutation of vmcs-gen (the Bochs differential's), on the capabilities KVM gives
/// L1, restored as a vmcs12 in guest mode: the runtime's refusal (the generated checker) is the
/// one `vmcs-gen state check` gives on the same bytes (the schema interpreter), and the blobs make
/// every rule KVM applies on restore the refusal of some blob, in each of KVM's categories.
#[test]
fn every_rule_kvm_applies_refuses_a_blob_crafted_to_break_it() {
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let layout = schema.layout("vmcs12").unwrap();
    let (caps, f) = (kvm_l1_caps(), cli_facts());
    let fv = fact_values(&schema, &f);
    assert_eq!(fv, vmcs_gen::state_contents::restore_facts(&schema, f.maxphyaddr), "the CLI's facts");
    let icaps = interpreter_caps(&caps);
    let mutations = vmcs_gen::checks::mutate::all(&schema);
    let fixes: Vec<_> = schema.checks.rules.iter().map(|r| vmcs_gen::checks::mutate::fixes(&schema, r)).collect();
    let (mut refused, mut crafted, mut accepted) = (BTreeSet::new(), 0, 0);
    for m in &mutations {
        let (mut v, mut mem) = (vmcs(&caps), Memory::default());
        if !apply_repaired(&schema, m, &fixes, &mut v, &mut mem, &caps, &f, &fv, Selection::KVM_RESTORE) {
            continue;
        }
        crafted += 1;
        let b = blob(vmcs12_of(&schema, &v), KVM_STATE_NESTED_GUEST_MODE);
        let runtime = match check_restore(&b, &VcpuContext::default(), &caps, &f) {
            Ok(_) => None,
            Err(RestoreError::Vmcs12(x)) => Some(x.rule.name().to_string()),
            Err(e) => panic!("{e}"),
        };
        let vmcs12 = &b[VMCS12_OFFSET..VMCS12_OFFSET + KVM_STATE_NESTED_VMX_VMCS_SIZE];
        let cli = match vmcs_gen::state_contents::check(&schema, layout, vmcs12, &icaps, f.maxphyaddr).unwrap() {
            vmcs_gen::state_contents::Contents::Passed { .. } => None,
            vmcs_gen::state_contents::Contents::Failed { rule } => Some(schema.checks.rules[rule].name.clone()),
        };
        assert_eq!(runtime, cli, "mutation aimed at {}", schema.checks.rules[m.rule].name);
        match runtime {
            Some(name) => _ = refused.insert(name),
            None => accepted += 1,
        }
    }
    assert!(crafted > 1000 && accepted > 100, "{crafted} blobs, {accepted} restored");
    let restore: Vec<Rule> = Rule::ALL.iter().copied().filter(|r| r.kvm_restore()).collect();
    let never: Vec<&str> = restore.iter().map(|r| r.name()).filter(|n| !refused.contains(*n)).collect();
    // No vmcs12 breaks these on KVM's L1 capabilities: L1 has what they require (EPT A/D bits,
    // MTF, IA32_VMX_BASIC[56] lifting the error-code checks, the HLT and wait-for-SIPI activity
    // states), or its CR4_FIXED1 forbids their premise (CR4.CET, CR4.LA57).
    let bit = |msr: u32, n: u32| caps.raw(msr) >> n & 1 == 1;
    assert!(bit(0x48c, 21) && bit(0x482, 32 + 27) && bit(0x480, 56) && bit(0x485, 6) && bit(0x485, 8));
    assert!(!bit(0x489, 23) && !bit(0x489, 12));
    let decided = [
        "eptp_accessed_dirty",
        "event_type_other_needs_mtf",
        "error_code_for_faulting_vectors",
        "error_code_only_for_faulting_vectors",
        "host_cet_needs_wp",
        "host_rip_canonical_5level",
        "guest_cet_needs_wp",
        "activity_hlt_supported",
        "activity_sipi_supported",
    ];
    assert_eq!(never, decided, "kvm_restore rules no blob makes the refusal");
    for tier in [Tier::Controls, Tier::Host, Tier::Guest] {
        let of_tier = restore.iter().filter(|r| r.tier() == tier);
        let hit = of_tier.clone().filter(|r| refused.contains(r.name())).count();
        assert!(hit >= 10, "{tier:?}: only {hit} of {} rules refuse a blob", of_tier.count());
        eprintln!("{tier:?}: {hit} of the rules KVM applies on restore refuse a crafted blob");
    }
}
