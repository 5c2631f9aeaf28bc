//! `vmcs::restore` against the rules of Linux 7.2.8 for restoring nested IA32_VMX_* capability MSRs
//! (`vmx_set_vmx_msr` and the `vmx_restore_*` helpers in `arch/x86/kvm/vmx/nested.c`). The masks and
//! KVM's nested values used here are computed from the BIT/GENMASK expressions there: BASIC feature|reserved 0xffc2e00080000000, MISC 0xf000ffe0,
//! KVM's nested BASIC without optional bits 0x0098100011e57ed0, CR0_FIXED0 0x80000021 (PE|NE|PG),
//! CR4_FIXED0 0x2000 (VMXE). Every rule has an accepting and a rejecting case.

use vmcs::caps::{Msr, VmxCaps};
use vmcs::restore::{
    BASIC_FEATURE_AND_RESERVED, MISC_FEATURE_AND_RESERVED, NestedVmxMsrs, RestoreError, basic_revision_id,
    basic_vmcs_size, misc_cr3_target_count, misc_max_msr_list, misc_mseg_revision, misc_preemption_timer_rate,
};

const BASIC: u32 = 0x480;
const PINBASED: u32 = 0x481;
const PROCBASED: u32 = 0x482;
const EXIT: u32 = 0x483;
const ENTRY: u32 = 0x484;
const MISC: u32 = 0x485;
const CR0_FIXED0: u32 = 0x486;
const CR0_FIXED1: u32 = 0x487;
const CR4_FIXED0: u32 = 0x488;
const CR4_FIXED1: u32 = 0x489;
const VMCS_ENUM: u32 = 0x48a;
const PROCBASED2: u32 = 0x48b;
const EPT_VPID_CAP: u32 = 0x48c;
const TRUE_PINBASED: u32 = 0x48d;
const TRUE_PROCBASED: u32 = 0x48e;
const TRUE_EXIT: u32 = 0x48f;
const TRUE_ENTRY: u32 = 0x490;
const VMFUNC: u32 = 0x491;
const PROCBASED3: u32 = 0x492;
const EXIT2: u32 = 0x493;

/// The restorable control MSRs.
const CONTROLS: [u32; 5] = [TRUE_PINBASED, TRUE_PROCBASED, TRUE_EXIT, TRUE_ENTRY, PROCBASED2];

/// KVM's nested IA32_VMX_BASIC without the optional INOUT (54) and NO_HW_ERROR_CODE_CC (56):
/// revision 0x11e57ed0, size 0x1000, memory type WB (6), TRUE_CTLS (55).
const KVM_BASIC: u64 = 0x0098_1000_11e5_7ed0;
const BASIC_INOUT: u64 = 1 << 54;
const BASIC_NO_HW_ERROR_CODE_CC: u64 = 1 << 56;
const BASIC_DUAL_MONITOR: u64 = 1 << 49;
const BASIC_32BIT: u64 = 1 << 48;

/// Pin-based "activate VMX-preemption timer" (control bit 6), as an allowed-1 bit of the MSR.
const PIN_PREEMPTION_TIMER_ALLOWED: u64 = 1 << (32 + 6);

/// IA32_VMX_MISC of the reference: timer rate 5, SAVE_EFER_LMA and the three activity states
/// (bits 8:5), 4 CR3 targets, max-MSR-list field 1, VMWRITE to any field (29), MSEG revision 0.
const REF_MISC: u64 = 5 | 0x1e0 | (4 << 16) | (1 << 25) | (1 << 29);
const MISC_INTEL_PT: u64 = 1 << 14;

const REF_CR0_FIXED0: u64 = 0x8000_0021;
const REF_CR4_FIXED0: u64 = 0x2000;
const REF_EPT_VPID: u64 = 0x0000_0f01_0633_4141;
const REF_VMFUNC: u64 = 1;

/// A host-wide reference (KVM's `vmcs_config.nested`). Control words are the TRUE values; the
/// pin-based allowed-1 word allows the preemption timer.
fn reference() -> NestedVmxMsrs {
    NestedVmxMsrs {
        basic: KVM_BASIC | BASIC_INOUT,
        pinbased_ctls_low: 0x16,
        pinbased_ctls_high: 0xff,
        procbased_ctls_low: 0x0401_e172,
        procbased_ctls_high: 0xfff9_fffe,
        secondary_ctls_low: 0,
        secondary_ctls_high: 0x0297_7fff,
        tertiary_ctls: 0,
        exit_ctls_low: 0x0003_6dff,
        exit_ctls_high: 0x00ff_ffff,
        secondary_exit_ctls: 0,
        entry_ctls_low: 0x11ff,
        entry_ctls_high: 0x0003_ffff,
        misc_low: REF_MISC as u32,
        misc_high: (REF_MISC >> 32) as u32,
        cr0_fixed0: REF_CR0_FIXED0,
        cr0_fixed1: 0xffff_ffff,
        cr4_fixed0: REF_CR4_FIXED0,
        cr4_fixed1: 0x0037_67ff,
        ept_caps: REF_EPT_VPID as u32,
        vpid_caps: (REF_EPT_VPID >> 32) as u32,
        vmcs_enum: 0x32,
        vmfunc_controls: REF_VMFUNC,
    }
}

fn control_value(msrs: &NestedVmxMsrs, index: u32) -> u64 {
    msrs.get(index).unwrap()
}

/// Restore on a fresh vCPU (initialised to the reference), not in VMX operation.
fn try_restore(index: u32, data: u64) -> Result<NestedVmxMsrs, RestoreError> {
    let r = reference();
    let mut vcpu = r;
    vcpu.restore(&r, false, index, data).map(|()| vcpu)
}

// ---- helpers and accessors ---------------------------------------------------------------------

/// `from_caps` is `get`'s inverse: each stored value comes from its own MSR (and `get` reads every
/// field, so none is left out); only the non-TRUE controls, which have a TRUE MSR, are not stored.
#[test]
fn from_caps_reads_each_value_from_its_own_msr() {
    let mut caps = VmxCaps::new();
    for m in Msr::ALL {
        let i = m.index() as u64;
        caps.set(m.index(), i << 32 | (i ^ 0xdead_0000));
    }
    let msrs = NestedVmxMsrs::from_caps(&caps);
    for m in Msr::ALL {
        match msrs.get(m.index()) {
            Some(v) => assert_eq!(v, caps.raw(m.index()), "{m:?}"),
            None => assert!(m.true_msr().is_some(), "{m:?} is not stored"),
        }
    }
    assert_eq!(NestedVmxMsrs::from_caps(&VmxCaps::new()), NestedVmxMsrs::default());
}

#[test]
fn accessors_decode_the_fields_the_rules_use() {
    assert_eq!(basic_revision_id(KVM_BASIC), 0x11e5_7ed0);
    assert_eq!(basic_vmcs_size(KVM_BASIC), 0x1000);
    assert_eq!(basic_revision_id(u64::MAX), 0x7fff_ffff);
    assert_eq!(basic_vmcs_size(u64::MAX), 0x1fff);
    assert_eq!(misc_preemption_timer_rate(REF_MISC), 5);
    assert_eq!(misc_cr3_target_count(REF_MISC), 4);
    assert_eq!(misc_max_msr_list(REF_MISC), 1);
    assert_eq!(misc_mseg_revision(REF_MISC | 0xdead_beef << 32), 0xdead_beef);
    assert_eq!(misc_preemption_timer_rate(u64::MAX), 0x1f);
    assert_eq!(misc_cr3_target_count(u64::MAX), 0x1ff);
    assert_eq!(misc_max_msr_list(u64::MAX), 7);

    let r = reference();
    assert_eq!(r.revision_id(), 0x11e5_7ed0);
    assert_eq!(r.vmcs_size(), 0x1000);
    assert_eq!(r.misc(), REF_MISC);
    assert_eq!(r.preemption_timer_rate(), 5);
    assert_eq!(r.cr3_target_count(), 4);
    assert_eq!(r.max_msr_list(), 1);
    assert_eq!(r.mseg_revision(), 0);
    assert_eq!(r.ept_vpid_cap(), REF_EPT_VPID);
    assert_eq!(r.get(TRUE_PROCBASED), Some(0xfff9_fffe_0401_e172));
    assert_eq!(r.get(PROCBASED2), Some(0x0297_7fff_0000_0000));
    assert_eq!(r.get(PROCBASED), None, "non-TRUE controls are derived, not stored");
    assert_eq!(r.get(0x494), None);
}

#[test]
fn masks_match_the_reference_document() {
    // BASIC: features 49|54|55|56 plus reserved 63:57, 47:45, 31.
    let feature = (1u64 << 49) | (1 << 54) | (1 << 55) | (1 << 56);
    let reserved = (0x7fu64 << 57) | (0x7 << 45) | (1 << 31);
    assert_eq!(feature, 0x01c2_0000_0000_0000);
    assert_eq!(reserved, 0xfe00_e000_8000_0000);
    assert_eq!(BASIC_FEATURE_AND_RESERVED, feature | reserved);
    assert_eq!(BASIC_FEATURE_AND_RESERVED, 0xffc2_e000_8000_0000);
    // MISC: features 5, 8:6, 14, 15, 28, 29, 30 plus reserved 31, 13:9.
    let feature = (1u64 << 5) | (0x7 << 6) | (1 << 14) | (1 << 15) | (1 << 28) | (1 << 29) | (1 << 30);
    let reserved = (1u64 << 31) | (0x1f << 9);
    assert_eq!(feature, 0x7000_c1e0);
    assert_eq!(reserved, 0x8000_3e00);
    assert_eq!(MISC_FEATURE_AND_RESERVED, 0xf000_ffe0);
}

// ---- entry: busy, unknown, not restorable ------------------------------------------------------

#[test]
fn busy_while_in_vmx_operation_for_every_kvm_routed_msr() {
    let r = reference();
    for index in BASIC..=VMFUNC {
        let mut vcpu = r;
        // Even values that would be accepted, and MSRs that are never restorable, report busy first.
        let data = r.get(index).unwrap_or(0);
        assert_eq!(vcpu.restore(&r, true, index, data), Err(RestoreError::Busy), "{index:#x}");
        assert_eq!(vcpu, r, "{index:#x}: a refused write changes nothing");
    }
}

#[test]
fn same_writes_accepted_outside_vmx_operation() {
    let r = reference();
    for index in
        [BASIC, MISC, CR0_FIXED0, CR4_FIXED0, VMCS_ENUM, PROCBASED2, EPT_VPID_CAP, VMFUNC].into_iter().chain(CONTROLS)
    {
        let mut vcpu = r;
        let data = r.get(index).unwrap();
        assert_eq!(vcpu.restore(&r, false, index, data), Ok(()), "{index:#x}");
        assert_eq!(vcpu, r);
    }
}

#[test]
fn vmcs_enum_busy_then_accepted_after_vmxoff() {
    let r = reference();
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, true, VMCS_ENUM, 0x2e), Err(RestoreError::Busy));
    assert_eq!(vcpu.vmcs_enum, 0x32);
    assert_eq!(vcpu.restore(&r, false, VMCS_ENUM, 0x2e), Ok(()));
    assert_eq!(vcpu.vmcs_enum, 0x2e);
}

#[test]
fn non_true_controls_are_never_restorable() {
    let r = reference();
    for (index, true_index) in
        [(PINBASED, TRUE_PINBASED), (PROCBASED, TRUE_PROCBASED), (EXIT, TRUE_EXIT), (ENTRY, TRUE_ENTRY)]
    {
        // Not even the reference's own TRUE value.
        for data in [0, r.get(true_index).unwrap(), u64::MAX] {
            assert_eq!(try_restore(index, data), Err(RestoreError::NotRestorable), "{index:#x} {data:#x}");
        }
    }
}

#[test]
fn true_controls_are_restorable() {
    let r = reference();
    for index in CONTROLS {
        assert!(try_restore(index, r.get(index).unwrap()).is_ok(), "{index:#x}");
    }
}

#[test]
fn fixed1_msrs_are_never_restorable() {
    let r = reference();
    for index in [CR0_FIXED1, CR4_FIXED1] {
        for data in [0, r.get(index).unwrap(), u64::MAX] {
            assert_eq!(try_restore(index, data), Err(RestoreError::NotRestorable), "{index:#x} {data:#x}");
        }
    }
}

#[test]
fn tertiary_and_secondary_exit_controls_are_not_restorable() {
    let r = reference();
    for index in [PROCBASED3, EXIT2] {
        for data in [0, r.get(index).unwrap(), u64::MAX] {
            assert_eq!(try_restore(index, data), Err(RestoreError::NotRestorable), "{index:#x}");
        }
        // Outside KVM's 0x480..=0x491 route, so the busy test does not apply.
        let mut vcpu = r;
        assert_eq!(vcpu.restore(&r, true, index, 0), Err(RestoreError::NotRestorable));
    }
}

#[test]
fn indices_outside_the_capability_range_are_unknown() {
    let r = reference();
    for index in [0, 0x3a, 0x47f, 0x494, 0x49f, 0x4a0, 0xc000_0080, u32::MAX] {
        let mut vcpu = r;
        assert_eq!(vcpu.restore(&r, false, index, 0), Err(RestoreError::UnknownMsr), "{index:#x}");
        assert_eq!(vcpu.restore(&r, true, index, 0), Err(RestoreError::UnknownMsr), "{index:#x}");
    }
}

// ---- IA32_VMX_BASIC ----------------------------------------------------------------------------

#[test]
fn basic_accepts_reference_and_dropped_features() {
    assert_eq!(try_restore(BASIC, KVM_BASIC | BASIC_INOUT).unwrap().basic, KVM_BASIC | BASIC_INOUT);
    // Dropping INOUT (a feature) is allowed.
    assert_eq!(try_restore(BASIC, KVM_BASIC).unwrap().basic, KVM_BASIC);
    // Dropping TRUE_CTLS too.
    assert!(try_restore(BASIC, KVM_BASIC & !(1 << 55)).is_ok());
}

#[test]
fn basic_bits_outside_the_mask_are_not_checked() {
    // Memory type (53:50) is in no mask: UC (0) instead of WB (6) is accepted.
    let uc = KVM_BASIC & !(0xf << 50);
    assert_eq!(try_restore(BASIC, uc).unwrap().basic, uc);
    assert!(try_restore(BASIC, KVM_BASIC | (0xf << 50)).is_ok());
}

#[test]
fn basic_rejects_added_features_and_reserved_bits() {
    // Reference has INOUT but neither dual-monitor (49) nor NO_HW_ERROR_CODE_CC (56).
    assert_eq!(try_restore(BASIC, KVM_BASIC | BASIC_DUAL_MONITOR), Err(RestoreError::BasicFeatureOrReserved));
    assert_eq!(try_restore(BASIC, KVM_BASIC | BASIC_NO_HW_ERROR_CODE_CC), Err(RestoreError::BasicFeatureOrReserved));
    // Every bit of the mask that the reference lacks is refused on its own.
    let r = reference();
    for bit in 0..64 {
        let b = 1u64 << bit;
        if BASIC_FEATURE_AND_RESERVED & b != 0 && r.basic & b == 0 {
            assert_eq!(try_restore(BASIC, r.basic | b), Err(RestoreError::BasicFeatureOrReserved), "bit {bit}");
        }
    }
}

#[test]
fn basic_feature_accepted_when_the_reference_has_it() {
    let mut r = reference();
    r.basic |= BASIC_NO_HW_ERROR_CODE_CC;
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, false, BASIC, KVM_BASIC | BASIC_NO_HW_ERROR_CODE_CC), Ok(()));
}

#[test]
fn basic_rejects_32bit_physical_addresses() {
    assert_eq!(try_restore(BASIC, KVM_BASIC | BASIC_32BIT), Err(RestoreError::Basic32BitPhysAddr));
    // Even when the reference itself had bit 48 (it is outside the subset mask).
    let mut r = reference();
    r.basic |= BASIC_32BIT;
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, false, BASIC, r.basic), Err(RestoreError::Basic32BitPhysAddr));
    // Accepted once it is clear.
    assert_eq!(vcpu.restore(&r, false, BASIC, r.basic & !BASIC_32BIT), Ok(()));
}

#[test]
fn basic_revision_must_equal_the_reference() {
    assert_eq!(try_restore(BASIC, KVM_BASIC & !0x7fff_ffff | 0x11e5_7ed1), Err(RestoreError::BasicRevision));
    assert_eq!(try_restore(BASIC, KVM_BASIC & !0x7fff_ffff), Err(RestoreError::BasicRevision));
    assert_eq!(basic_revision_id(try_restore(BASIC, KVM_BASIC).unwrap().basic), 0x11e5_7ed0);
}

#[test]
fn basic_vmcs_size_may_grow_but_not_shrink() {
    let with_size = |size: u64| KVM_BASIC & !(0x1fff << 32) | size << 32;
    assert_eq!(try_restore(BASIC, with_size(0xfff)), Err(RestoreError::BasicVmcsSizeSmaller));
    assert_eq!(try_restore(BASIC, with_size(0)), Err(RestoreError::BasicVmcsSizeSmaller));
    assert!(try_restore(BASIC, with_size(0x1000)).is_ok());
    assert_eq!(basic_vmcs_size(try_restore(BASIC, with_size(0x1fff)).unwrap().basic), 0x1fff);
}

#[test]
fn basic_rules_apply_in_kvm_order() {
    // A reserved bit, bit 48, a wrong revision and a smaller size: the subset rule is reported.
    let bad = (1u64 << 31) | BASIC_32BIT | 0x1234;
    assert_eq!(try_restore(BASIC, bad), Err(RestoreError::BasicFeatureOrReserved));
    assert_eq!(try_restore(BASIC, bad & !(1 << 31)), Err(RestoreError::Basic32BitPhysAddr));
    assert_eq!(try_restore(BASIC, 0x1234), Err(RestoreError::BasicRevision));
    assert_eq!(try_restore(BASIC, 0x11e5_7ed0), Err(RestoreError::BasicVmcsSizeSmaller));
}

// ---- control MSRs ------------------------------------------------------------------------------

#[test]
fn controls_accept_more_must_be_1_and_fewer_allowed_1_and_split_the_value() {
    let r = reference();
    for index in CONTROLS {
        let supported = control_value(&r, index);
        let low = supported as u32;
        let high = (supported >> 32) as u32;
        // Require one more control (a 0 bit of the low word) and drop one allowed control.
        let extra = !low & (!low).wrapping_neg(); // lowest 0 bit of the must-be-1 word
        assert_ne!(extra, 0);
        let dropped = high & high.wrapping_neg(); // lowest allowed-1 bit
        let data = (u64::from(high & !dropped) << 32) | u64::from(low | extra);
        let vcpu = try_restore(index, data).unwrap_or_else(|e| panic!("{index:#x}: {e:?}"));
        assert_eq!(control_value(&vcpu, index), data, "{index:#x}");
    }
    // The stored words, for one MSR explicitly.
    let vcpu = try_restore(TRUE_PROCBASED, 0x7ff9_fffe_0401_e173).unwrap();
    assert_eq!(vcpu.procbased_ctls_low, 0x0401_e173);
    assert_eq!(vcpu.procbased_ctls_high, 0x7ff9_fffe);
    let vcpu = try_restore(PROCBASED2, 0x0000_0002_0000_0000).unwrap();
    assert_eq!((vcpu.secondary_ctls_low, vcpu.secondary_ctls_high), (0, 2));
}

#[test]
fn controls_reject_a_cleared_must_be_1_bit() {
    let r = reference();
    for index in CONTROLS {
        let supported = control_value(&r, index);
        let low = supported as u32;
        for bit in (0..32).filter(|b| low >> b & 1 == 1) {
            assert_eq!(
                try_restore(index, supported & !(1u64 << bit)),
                Err(RestoreError::ControlMustBe1Cleared),
                "{index:#x} bit {bit}"
            );
        }
    }
    // PROCBASED_CTLS2 has no must-be-1 bit in the reference, so a zero low word is fine.
    assert!(try_restore(PROCBASED2, 0).is_ok());
    // TRUE_PINBASED requires 0x16: clearing bit 1 is refused.
    assert_eq!(try_restore(TRUE_PINBASED, 0x0000_00ff_0000_0014), Err(RestoreError::ControlMustBe1Cleared));
}

#[test]
fn controls_reject_an_added_allowed_1_bit() {
    let r = reference();
    for index in CONTROLS {
        let supported = control_value(&r, index);
        let high = (supported >> 32) as u32;
        for bit in (0..32).filter(|b| high >> b & 1 == 0) {
            assert_eq!(
                try_restore(index, supported | 1u64 << (32 + bit)),
                Err(RestoreError::ControlAllowed1Added),
                "{index:#x} bit {bit}"
            );
        }
    }
}

#[test]
fn controls_must_be_1_is_checked_before_allowed_1() {
    assert_eq!(try_restore(TRUE_ENTRY, 0xffff_ffff_0000_0000), Err(RestoreError::ControlMustBe1Cleared));
}

/// The June 2022 fix: after userspace restricted a control MSR, the host-supported value can be
/// restored again, because the reference is the host-wide value, not the vCPU's current one.
#[test]
fn restricted_control_can_be_restored_to_the_reference() {
    let r = reference();
    for index in CONTROLS {
        let original = control_value(&r, index);
        let high = (original >> 32) as u32;
        let restricted = original & !(u64::from(high & high.wrapping_neg()) << 32);
        assert_ne!(restricted, original);
        let mut vcpu = r;
        assert_eq!(vcpu.restore(&r, false, index, restricted), Ok(()), "{index:#x}");
        assert_eq!(control_value(&vcpu, index), restricted);

        // 2016 semantics (the vCPU's current value as the reference) would refuse this forever.
        let current = vcpu;
        assert_eq!(vcpu.clone().restore(&current, false, index, original), Err(RestoreError::ControlAllowed1Added));

        // 7.2.8: accepted.
        assert_eq!(vcpu.restore(&r, false, index, original), Ok(()), "{index:#x}");
        assert_eq!(control_value(&vcpu, index), original);
    }
}

#[test]
fn other_restrictions_can_be_undone_too() {
    let r = reference();
    let mut vcpu = r;
    let cases = [
        (BASIC, KVM_BASIC),
        (MISC, REF_MISC & !MISC_FEATURE_AND_RESERVED & !(1 << 25)),
        (EPT_VPID_CAP, 0),
        (VMFUNC, 0),
        (CR0_FIXED0, u64::MAX),
    ];
    for (index, restricted) in cases {
        assert_eq!(vcpu.restore(&r, false, index, restricted), Ok(()), "{index:#x}");
    }
    for (index, _) in cases {
        assert_eq!(vcpu.restore(&r, false, index, r.get(index).unwrap()), Ok(()), "{index:#x}");
    }
    assert_eq!(vcpu, r);
}

// ---- IA32_VMX_MISC -----------------------------------------------------------------------------

#[test]
fn misc_accepts_the_reference_and_dropped_features() {
    let vcpu = try_restore(MISC, REF_MISC).unwrap();
    assert_eq!(vcpu.misc(), REF_MISC);
    let fewer = REF_MISC & !(1 << 29) & !(1 << 7);
    let vcpu = try_restore(MISC, fewer).unwrap();
    assert_eq!((vcpu.misc_low, vcpu.misc_high), (fewer as u32, 0));
}

#[test]
fn misc_rejects_added_features_and_reserved_bits() {
    assert_eq!(try_restore(MISC, REF_MISC | MISC_INTEL_PT), Err(RestoreError::MiscFeatureOrReserved));
    for bit in 0..32 {
        let b = 1u64 << bit;
        if MISC_FEATURE_AND_RESERVED & b != 0 && REF_MISC & b == 0 {
            assert_eq!(try_restore(MISC, REF_MISC | b), Err(RestoreError::MiscFeatureOrReserved), "bit {bit}");
        }
    }
}

#[test]
fn misc_timer_rate_checked_when_the_vcpu_allows_the_preemption_timer() {
    let r = reference();
    assert_ne!(r.pinbased_ctls_high & (1 << 6), 0);
    let other_rate = REF_MISC & !0x1f | 7;
    assert_eq!(try_restore(MISC, other_rate), Err(RestoreError::MiscTimerRate));
    assert_eq!(try_restore(MISC, REF_MISC & !0x1f), Err(RestoreError::MiscTimerRate));
    assert!(try_restore(MISC, REF_MISC).is_ok());
}

#[test]
fn misc_timer_rate_free_when_the_vcpu_does_not_allow_the_preemption_timer() {
    let r = reference();
    let mut vcpu = r;
    // Userspace first takes the preemption timer away from this vCPU...
    let pin_without_timer = r.true_pinbased_ctls() & !PIN_PREEMPTION_TIMER_ALLOWED;
    assert_eq!(vcpu.restore(&r, false, TRUE_PINBASED, pin_without_timer), Ok(()));
    // ...then any rate is accepted, although the reference still allows the timer.
    let other_rate = REF_MISC & !0x1f | 7;
    assert_eq!(vcpu.restore(&r, false, MISC, other_rate), Ok(()));
    assert_eq!(vcpu.preemption_timer_rate(), 7);
    // Giving the timer back makes the rate checked again.
    assert_eq!(vcpu.restore(&r, false, TRUE_PINBASED, r.true_pinbased_ctls()), Ok(()));
    assert_eq!(vcpu.restore(&r, false, MISC, other_rate), Err(RestoreError::MiscTimerRate));
}

#[test]
fn misc_timer_gate_is_the_vcpu_not_the_reference() {
    // The reference lacks the timer but the vCPU's current pin word has it: checked.
    let mut r = reference();
    r.pinbased_ctls_high &= !(1 << 6);
    let mut vcpu = reference();
    assert_eq!(vcpu.restore(&r, false, MISC, REF_MISC & !0x1f | 7), Err(RestoreError::MiscTimerRate));
}

#[test]
fn misc_cr3_target_count_may_not_grow() {
    let with_cr3 = |n: u64| REF_MISC & !(0x1ff << 16) | n << 16;
    assert_eq!(try_restore(MISC, with_cr3(5)), Err(RestoreError::MiscCr3Targets));
    assert_eq!(try_restore(MISC, with_cr3(0x1ff)), Err(RestoreError::MiscCr3Targets));
    assert!(try_restore(MISC, with_cr3(4)).is_ok());
    assert_eq!(try_restore(MISC, with_cr3(0)).unwrap().cr3_target_count(), 0);
}

#[test]
fn misc_max_msr_list_may_not_grow() {
    let with_max = |n: u64| REF_MISC & !(0x7 << 25) | n << 25;
    assert_eq!(try_restore(MISC, with_max(2)), Err(RestoreError::MiscMaxMsrList));
    assert_eq!(try_restore(MISC, with_max(7)), Err(RestoreError::MiscMaxMsrList));
    assert!(try_restore(MISC, with_max(1)).is_ok());
    assert_eq!(try_restore(MISC, with_max(0)).unwrap().max_msr_list(), 0);
}

#[test]
fn misc_mseg_revision_must_equal_the_reference() {
    assert_eq!(try_restore(MISC, REF_MISC | 1 << 32), Err(RestoreError::MiscMsegRevision));
    let mut r = reference();
    r.misc_high = 0x42;
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, false, MISC, REF_MISC), Err(RestoreError::MiscMsegRevision));
    assert_eq!(vcpu.restore(&r, false, MISC, REF_MISC | 0x42 << 32), Ok(()));
    assert_eq!(vcpu.mseg_revision(), 0x42);
}

#[test]
fn misc_rules_apply_in_kvm_order() {
    let all_bad = (1u64 << 31) | 7 | (5 << 16) | (2 << 25) | (1 << 32);
    assert_eq!(try_restore(MISC, all_bad), Err(RestoreError::MiscFeatureOrReserved));
    assert_eq!(try_restore(MISC, all_bad & !(1 << 31)), Err(RestoreError::MiscTimerRate));
    assert_eq!(try_restore(MISC, all_bad & !(1 << 31) & !7 | 5), Err(RestoreError::MiscCr3Targets));
}

// ---- CR0/CR4 FIXED0 ----------------------------------------------------------------------------

#[test]
fn fixed0_keeps_every_required_bit_and_may_require_more() {
    assert_eq!(try_restore(CR0_FIXED0, REF_CR0_FIXED0).unwrap().cr0_fixed0, REF_CR0_FIXED0);
    // Also require CR0.MP (bit 1).
    assert_eq!(try_restore(CR0_FIXED0, REF_CR0_FIXED0 | 2).unwrap().cr0_fixed0, REF_CR0_FIXED0 | 2);
    assert_eq!(try_restore(CR4_FIXED0, REF_CR4_FIXED0).unwrap().cr4_fixed0, REF_CR4_FIXED0);
    assert_eq!(try_restore(CR4_FIXED0, u64::MAX).unwrap().cr4_fixed0, u64::MAX);
}

#[test]
fn fixed0_rejects_a_cleared_required_bit() {
    for bit in [0, 5, 31] {
        // PE, NE, PG
        assert_eq!(try_restore(CR0_FIXED0, REF_CR0_FIXED0 & !(1 << bit)), Err(RestoreError::Fixed0Cleared));
    }
    assert_eq!(try_restore(CR0_FIXED0, 0), Err(RestoreError::Fixed0Cleared));
    assert_eq!(try_restore(CR4_FIXED0, 0), Err(RestoreError::Fixed0Cleared));
    assert_eq!(try_restore(CR4_FIXED0, !REF_CR4_FIXED0), Err(RestoreError::Fixed0Cleared));
    // CR0 and CR4 are audited against their own reference.
    assert_eq!(try_restore(CR4_FIXED0, REF_CR0_FIXED0), Err(RestoreError::Fixed0Cleared));
}

// ---- EPT_VPID_CAP ------------------------------------------------------------------------------

#[test]
fn ept_vpid_accepts_a_subset_and_splits_it() {
    let data = REF_EPT_VPID & !(1 << 6) & !(1 << 40);
    let vcpu = try_restore(EPT_VPID_CAP, data).unwrap();
    assert_eq!(vcpu.ept_caps, data as u32);
    assert_eq!(vcpu.vpid_caps, (data >> 32) as u32);
    assert!(try_restore(EPT_VPID_CAP, 0).is_ok());
    assert!(try_restore(EPT_VPID_CAP, REF_EPT_VPID).is_ok());
}

#[test]
fn ept_vpid_rejects_any_added_bit_of_all_64() {
    for bit in (0..64).filter(|b| REF_EPT_VPID >> b & 1 == 0) {
        assert_eq!(
            try_restore(EPT_VPID_CAP, REF_EPT_VPID | 1 << bit),
            Err(RestoreError::EptVpidNotSubset),
            "bit {bit}"
        );
    }
}

// ---- VMCS_ENUM ---------------------------------------------------------------------------------

#[test]
fn vmcs_enum_accepts_anything() {
    for data in [0, 0x2e, 0x32, 0x3fe, u64::MAX, 1 << 63] {
        assert_eq!(try_restore(VMCS_ENUM, data).unwrap().vmcs_enum, data);
    }
}

#[test]
fn vmcs_enum_rejected_only_when_busy() {
    let r = reference();
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, true, VMCS_ENUM, u64::MAX), Err(RestoreError::Busy));
}

// ---- VMFUNC ------------------------------------------------------------------------------------

#[test]
fn vmfunc_accepts_a_subset() {
    assert_eq!(try_restore(VMFUNC, REF_VMFUNC).unwrap().vmfunc_controls, REF_VMFUNC);
    assert_eq!(try_restore(VMFUNC, 0).unwrap().vmfunc_controls, 0);
}

#[test]
fn vmfunc_rejects_a_bit_outside_the_reference() {
    assert_eq!(try_restore(VMFUNC, REF_VMFUNC | 2), Err(RestoreError::VmfuncNotSubset));
    assert_eq!(try_restore(VMFUNC, 1 << 63), Err(RestoreError::VmfuncNotSubset));
    let mut r = reference();
    r.vmfunc_controls = 0;
    let mut vcpu = r;
    assert_eq!(vcpu.restore(&r, false, VMFUNC, 1), Err(RestoreError::VmfuncNotSubset));
}

// ---- failure leaves the vCPU unchanged ---------------------------------------------------------

#[test]
fn refused_writes_change_nothing() {
    let r = reference();
    let cases = [
        (BASIC, KVM_BASIC | BASIC_32BIT),
        (TRUE_PROCBASED, u64::MAX),
        (TRUE_EXIT, 0),
        (MISC, REF_MISC | MISC_INTEL_PT),
        (CR0_FIXED0, 0),
        (CR0_FIXED1, 0),
        (EPT_VPID_CAP, u64::MAX),
        (VMFUNC, u64::MAX),
        (PROCBASED3, u64::MAX),
    ];
    for (index, data) in cases {
        let mut vcpu = r;
        assert!(vcpu.restore(&r, false, index, data).is_err(), "{index:#x}");
        assert_eq!(vcpu, r, "{index:#x}");
    }
}

#[test]
fn errors_display() {
    assert_eq!(RestoreError::Busy.to_string(), "vCPU is in VMX operation");
    assert!(!RestoreError::UnknownMsr.to_string().is_empty());
}
