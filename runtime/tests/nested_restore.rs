//! KVM_SET_NESTED_STATE with the vmcs12 contents checked as `nested_vmx_check_restored_vmcs12`
//! does (Linux 7.2.8, shared/reference/kvm/nested-state-uapi.md rule 22): for a blob in guest mode,
//! KVM's controls, host-state and guest-state checks, each refusal naming the rule. Crafted blobs
//! for each category; the VM-entry checks KVM leaves to hardware do not refuse a restore.

mod common;

use common::entry::{baseline, facts};
use common::kvm_l1_caps;
use vmcs::caps::VmxCaps;
use vmcs::entry::Facts;
use vmcs::nested_state::*;
use vmcs::{Vmcs12, VmcsWrite};

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
