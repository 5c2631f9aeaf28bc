//! L1's capability MSRs on every Bochs model: a subset of the host's, restorable with
//! `vmcs::restore`, RDMSR #GP exactly where an MSR does not exist, VMCS_ENUM for L1's fields.

mod common;

use common::*;
use vmcs::caps::Msr;
use vmcs::caps::{Cap, Capabilities};
use vmcs::restore::NestedVmxMsrs;
use vmcs_nested_vmx::caps::{L1Caps, Offer, control_msrs};
use vmcs_nested_vmx::current::{EXTENSION_SLOTS, unmapped_fields};

#[test]
fn every_architectural_field_has_room_in_the_region() {
    assert!(unmapped_fields() <= EXTENSION_SLOTS, "{} fields outside vmcs12", unmapped_fields());
}

#[test]
fn offered_controls_are_a_subset_of_the_host_and_keep_its_must_be_1_bits() {
    for model in bochs_models() {
        let host = bochs_caps(&model);
        let l1 = l1_caps(&model, EMULATED);
        for msr in control_msrs() {
            let plain = msr.index();
            let index = msr.true_msr().map_or(plain, Msr::index);
            let (h, v) = (host.raw(index), l1.caps().raw(index));
            if v == 0 {
                continue;
            }
            assert_eq!(v as u32 & h as u32, h as u32, "{model} {index:#x}: host must-be-1 bits kept");
            assert_eq!((v >> 32) & !(h >> 32), 0, "{model} {index:#x}: allowed-1 within the host's");
            // The plain MSR reports the default-1 settings as must-be-1, and allows them.
            let p = l1.caps().raw(plain);
            assert_eq!(p as u32, host.raw(plain) as u32 | v as u32, "{model} {plain:#x}");
            assert_eq!(p >> 32, v >> 32 | p & 0xffff_ffff, "{model} {plain:#x}");
        }
        // Every offered capability the host has, and nothing else among the controls.
        for cap in Cap::ALL {
            let control = matches!(cap.msr().index(), 0x481..=0x484 | 0x48b);
            if control && cap != Cap::ProcActivateTertiaryControls {
                let want = FROM_HOST.contains(&cap) && host.has(cap) || host_forces(&host, cap);
                assert_eq!(l1.caps().has(cap), want, "{model}: {}", cap.name());
            }
        }
    }
}

/// A control the host requires (must-be-1 in its TRUE MSR) stays allowed for L1.
fn host_forces(host: &vmcs::caps::VmxCaps, cap: Cap) -> bool {
    let index = match cap.msr().index() {
        0x481 => 0x48d,
        0x482 => 0x48e,
        0x483 => 0x48f,
        0x484 => 0x490,
        i => i,
    };
    host.raw(index) >> cap.bit() & 1 == 1
}

#[test]
fn basic_carries_the_vmcs12_layout() {
    let l1 = l1_caps("corei7_icelake_u", EMULATED);
    let basic = l1.caps().raw(0x480);
    assert_eq!(basic as u32, 0x11e5_7ed0, "vmcs12 revision, not the host's 0x4");
    assert_eq!(basic >> 32 & 0x1fff, 0x1000);
    assert_eq!(basic >> 50 & 0xf, 6, "write-back");
    assert!(l1.caps().has(Cap::BasicTrueCtls));
    assert_eq!(basic >> 48 & 1, 0);
}

#[test]
fn rdmsr_gp_exactly_where_the_msr_does_not_exist() {
    let host = bochs_caps("corei7_skylake_x");
    let narrow = L1Caps::new(&host, &Offer { from_host: &[Cap::ProcHltExiting], emulated: EMULATED });
    assert!(narrow.rdmsr(0x48b).is_none(), "no secondary controls");
    assert!(narrow.rdmsr(0x48c).is_none(), "no EPT or VPID");
    assert!(narrow.rdmsr(0x491).is_none());
    assert!(narrow.rdmsr(0x492).is_none());
    assert!(narrow.rdmsr(0x493).is_none());
    assert!(narrow.rdmsr(0x494).is_none() && narrow.rdmsr(0x47f).is_none());
    for i in 0x480..=0x48a {
        assert!(narrow.rdmsr(i).is_some(), "{i:#x}");
    }
    let full = l1_caps("corei7_skylake_x", EMULATED);
    assert_eq!(full.rdmsr(0x48c), Some(0x0000_0f01_0613_4040));
    assert!(full.rdmsr(0x48b).is_some_and(|v| v >> 32 & 0x26 == 0x26), "EPT, VPID, descriptor-table exiting");
}

#[test]
fn vmcs_enum_matches_kvms_values_for_kvms_capabilities() {
    // KVM 7.2.8 (nested.c:7099): 0x2e without TSC scaling (highest index: the preemption-timer
    // value), 0x32 with it (the TSC multiplier). Our L1 gets the same for the same capabilities.
    let timer = [Cap::BasicTrueCtls, Cap::MiscVmwriteAnyField, Cap::PinActivatePreemptionTimer];
    let host = bochs_caps("tigerlake");
    let without = L1Caps::new(&host, &Offer { from_host: FROM_HOST, emulated: &timer });
    assert_eq!(without.caps().raw(0x48a), 0x2e);
    let mut scaled: Vec<Cap> = FROM_HOST.to_vec();
    scaled.push(Cap::Proc2UseTscScaling);
    let with = L1Caps::new(&host, &Offer { from_host: &scaled, emulated: &timer });
    assert_eq!(with.caps().raw(0x48a), 0x32);
}

fn restore_all(vcpu: &mut NestedVmxMsrs, reference: &NestedVmxMsrs, from: &L1Caps) -> Vec<(u32, String)> {
    let mut refused = Vec::new();
    for index in Msr::ALL.map(Msr::index) {
        let restorable = matches!(index, 0x480 | 0x485 | 0x486 | 0x488 | 0x48a..=0x48e | 0x48f..=0x491);
        if !restorable || from.rdmsr(index).is_none() {
            continue;
        }
        if let Err(e) = vcpu.restore(reference, false, index, from.caps().raw(index)) {
            refused.push((index, format!("{e:?}")));
        }
    }
    refused
}

#[test]
fn l1_caps_restore_through_vmcs_restore() {
    for model in bochs_models() {
        let host = bochs_caps(&model);
        let full = l1_caps(&model, EMULATED);
        let narrow = L1Caps::new(&host, &Offer { from_host: &FROM_HOST[..10], emulated: &[Cap::BasicTrueCtls] });
        let reference = full.restore_view();
        // A narrower set restores onto a vCPU holding the full one, and back (KVM's 2022 rule:
        // the reference is the host-wide maximum).
        let mut vcpu = full.restore_view();
        assert_eq!(restore_all(&mut vcpu, &reference, &narrow), vec![], "{model}: narrow");
        assert_eq!(restore_all(&mut vcpu, &reference, &full), vec![], "{model}: full again");
        assert_eq!(vcpu, reference, "{model}");
        // More than the reference offers is refused.
        let mut wider = full.restore_view();
        let r = wider.restore(&reference, false, 0x48e, full.caps().raw(0x48e) | 1 << (32 + 17));
        assert!(r.is_err(), "{model}: tertiary controls were never offered");
    }
}
