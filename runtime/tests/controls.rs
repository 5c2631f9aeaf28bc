//! Capability MSRs and control types: KVM 7.2.8's nested MSR values (TRUE and not), the MSR
//! indices of the references, and every Bochs model's MSRs against the simplest model of the
//! SDM's rules (which MSRs exist; adjustment = (required | optional) & allowed-1 | allowed-0).

mod common;

use common::{Rng, hex, reference};
use vmcs::caps::{Msr, VmxCaps};
use vmcs::controls::*;
use vmcs_gen::Schema;

/// KVM's nested MSRs: BASIC with bit 55, each control MSR as (must-be-1, max allowed-1).
fn kvm_caps(true_ctls: bool) -> VmxCaps {
    let r = reference("kvm-nested-vmx-msrs.json");
    let mut caps = VmxCaps::new();
    let basic = hex(&r["basic"]);
    caps.set(0x480, if true_ctls { basic } else { basic & !(1 << 55) });
    for (name, plain, tru) in
        [("pin", 0x481, 0x48d), ("proc", 0x482, 0x48e), ("exit", 0x483, 0x48f), ("entry", 0x484, 0x490)]
    {
        let high = hex(&r["max_high"][name]) << 32;
        caps.set(plain, high | hex(&r["non_true_low"][name]));
        caps.set(tru, high | hex(&r["true_low"][name]));
    }
    caps.set(0x48b, hex(&r["max_high"]["proc2"]) << 32);
    caps
}

#[test]
fn kvm_nested_controls_with_and_without_true_msrs() {
    let r = reference("kvm-nested-vmx-msrs.json");
    for true_ctls in [true, false] {
        let caps = kvm_caps(true_ctls);
        assert_eq!(Msr::TrueProc.exists(&caps), true_ctls);
        let low = if true_ctls { "true_low" } else { "non_true_low" };
        assert_eq!(PinBasedVmExecControl::allowed(&caps).must_be_1.bits() as u64, hex(&r[low]["pin"]));
        assert_eq!(CpuBasedVmExecControl::allowed(&caps).must_be_1.bits() as u64, hex(&r[low]["proc"]));
        assert_eq!(VmExitControls::allowed(&caps).must_be_1.bits() as u64, hex(&r[low]["exit"]));
        assert_eq!(VmEntryControls::allowed(&caps).must_be_1.bits() as u64, hex(&r[low]["entry"]));
        assert_eq!(SecondaryVmExecControl::allowed(&caps).may_be_1.bits() as u64, hex(&r["max_high"]["proc2"]));
        // CR3-load exiting is default1: only the TRUE MSR lets it be 0.
        let proc =
            CpuBasedVmExecControl::adjust(&caps, CpuBasedVmExecControl::HLT_EXITING, CpuBasedVmExecControl::empty());
        assert_eq!(proc.unwrap().contains(CpuBasedVmExecControl::CR3_LOAD_EXITING), !true_ctls);
    }
    // The secondary controls exist only while the primary control allows them.
    let mut caps = kvm_caps(true);
    assert!(Msr::Proc2.exists(&caps));
    caps.set(0x48e, caps.raw(0x48e) & !(1 << 63));
    assert!(!Msr::Proc2.exists(&caps));
    assert_eq!(SecondaryVmExecControl::allowed(&caps).may_be_1, SecondaryVmExecControl::empty());
}

#[test]
fn a_required_control_that_is_not_offered_fails_by_name() {
    let r = reference("kvm-nested-vmx-msrs.json");
    let bit = r["never_offered"]["proc"]["bit"].as_u64().unwrap();
    let tertiary = CpuBasedVmExecControl::ACTIVATE_TERTIARY_CONTROLS;
    assert_eq!(tertiary.bits() as u64, 1 << bit);
    let caps = kvm_caps(true);
    let err = CpuBasedVmExecControl::adjust(
        &caps,
        tertiary | CpuBasedVmExecControl::HLT_EXITING,
        CpuBasedVmExecControl::empty(),
    )
    .unwrap_err();
    assert_eq!(err, UnsupportedControls { msr: Msr::Proc, controls: 1 << bit });
    assert_eq!(err.to_string(), "MSR proc (0x482) does not allow controls 0x20000 (proc.activate_tertiary_controls)");
    // Optional controls are dropped instead.
    let ok = CpuBasedVmExecControl::adjust(&caps, CpuBasedVmExecControl::empty(), tertiary).unwrap();
    assert!(!ok.intersects(tertiary));
    assert_eq!(
        (CpuBasedVmExecControl::HLT_EXITING | CpuBasedVmExecControl::from_bits(1 << 1)).to_string(),
        "proc.hlt_exiting | 0x2"
    );
    assert_eq!(format!("{:?}", PinBasedVmExecControl::empty()), "PinBasedVmExecControl(empty)");
}

#[test]
fn msr_indices_match_the_references() {
    let r = reference("kvm-nested-vmx-msrs.json");
    let want = r["msr_indices"].as_object().unwrap();
    assert_eq!(Msr::ALL.len(), want.len());
    let schema = Schema::shipped().unwrap();
    for (m, ours) in schema.msrs.iter().zip(Msr::ALL) {
        // Each MSR's doc starts with its SDM name.
        let sdm = m.doc.split(':').next().unwrap();
        assert_eq!(ours.index() as u64, hex(&want[sdm]), "{sdm}");
        assert_eq!(Msr::from_index(ours.index()), Some(ours));
        assert_eq!(ours.name(), m.name);
    }
    assert_eq!(Msr::from_index(0x494), None);
}

/// The SDM's conditions for each MSR to exist (Vol. 3D A.1-A.11), written out independently.
fn sdm_exists(msr: Msr, raw: &dyn Fn(u32) -> u64) -> bool {
    let true_ctls = raw(0x480) >> 55 & 1 == 1;
    let proc2 = if raw(0x482) >> 63 & 1 == 1 { raw(0x48b) } else { 0 };
    match msr.index() {
        0x48b => raw(0x482) >> 63 & 1 == 1,
        0x48c => proc2 >> 33 & 1 == 1 || proc2 >> 37 & 1 == 1,
        0x48d..=0x490 => true_ctls,
        0x491 => proc2 >> 45 & 1 == 1,
        0x492 => raw(0x482) >> 49 & 1 == 1,
        0x493 => raw(0x483) >> 63 & 1 == 1,
        _ => true,
    }
}

/// A control type's `adjust` over raw bits.
type Adjust = fn(&VmxCaps, u64, u64) -> Result<u64, UnsupportedControls>;

/// Every control type with its MSR: the schema's control MSRs, in order.
fn control_types() -> Vec<(Msr, Adjust)> {
    fn adjust<T: Controls>(caps: &VmxCaps, req: u64, opt: u64) -> Result<u64, UnsupportedControls> {
        T::adjust(caps, T::from_bits_truncate(req), T::from_bits_truncate(opt)).map(T::to_bits)
    }
    vec![
        (PinBasedVmExecControl::MSR, adjust::<PinBasedVmExecControl>),
        (CpuBasedVmExecControl::MSR, adjust::<CpuBasedVmExecControl>),
        (VmExitControls::MSR, adjust::<VmExitControls>),
        (VmEntryControls::MSR, adjust::<VmEntryControls>),
        (SecondaryVmExecControl::MSR, adjust::<SecondaryVmExecControl>),
        (VmFunctionControl::MSR, adjust::<VmFunctionControl>),
        (TertiaryVmExecControl::MSR, adjust::<TertiaryVmExecControl>),
        (SecondaryVmExitControls::MSR, adjust::<SecondaryVmExitControls>),
    ]
}

#[test]
fn every_bochs_model_against_the_sdm_model() {
    let schema = Schema::shipped().unwrap();
    let with_field: Vec<&str> =
        schema.msrs.iter().filter(|m| m.control_field.is_some()).map(|m| m.name.as_str()).collect();
    let types = control_types();
    assert_eq!(types.iter().map(|(m, _)| m.name()).collect::<Vec<_>>(), with_field, "a control type per control MSR");
    let models = common::bochs_caps();
    assert_eq!(models.len(), 11);
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    for (model, msrs) in &models {
        for drop_true in [false, true] {
            // Also as a processor without the TRUE MSRs (bit 55 clear).
            let raw = |i: u32| {
                let v = msrs.get(&i).copied().unwrap_or(0);
                if drop_true && i == 0x480 { v & !(1 << 55) } else { v }
            };
            let mut caps = VmxCaps::new();
            for m in Msr::ALL {
                if sdm_exists(m, &raw) {
                    caps.set(m.index(), raw(m.index()));
                }
            }
            for m in Msr::ALL {
                assert_eq!(m.exists(&caps), sdm_exists(m, &raw), "{model} {}", m.name());
            }
            for (msr, adjust) in &types {
                // The SDM's allowed settings, from the TRUE MSR (index + 0xc) when BASIC[55].
                let index = match (msr.index(), raw(0x480) >> 55 & 1) {
                    (i @ 0x481..=0x484, 1) => i + 0xc,
                    (i, _) => i,
                };
                let v = if sdm_exists(*msr, &raw) { raw(index) } else { 0 };
                let (must, may) = if msr.index() <= 0x48b { (v & 0xffff_ffff, v >> 32) } else { (0, v) };
                let width = if msr.index() <= 0x48b { 0xffff_ffff } else { u64::MAX };
                for _ in 0..200 {
                    let (req, opt) = (rng.next() & rng.next() & width, rng.next() & width);
                    let want = if req & !may != 0 {
                        Err(UnsupportedControls { msr: *msr, controls: req & !may })
                    } else {
                        Ok(((req | opt) & may | must) & width)
                    };
                    assert_eq!(adjust(&caps, req, opt), want, "{model} {} {req:#x} {opt:#x}", msr.name());
                }
            }
        }
    }
}
