//! The shipped schema against the references in testdata/reference (Linux 7.2.8, the 10-source
//! field union): nothing here is computed by the code under test.

mod common;

use common::reference;
use std::collections::{BTreeMap, BTreeSet};

use vmcs_gen::{Caps, Schema, report};

use vmcs_test_support::hex;

#[test]
fn vmcs12_layout_matches_kvm_member_by_member() {
    let schema = Schema::shipped().unwrap();
    let layout = schema.layout("vmcs12").unwrap();
    let ours = report::layout_json(&schema, layout);
    let want = reference("vmcs12-layout.json");
    assert_eq!(layout.revision as u64, hex(&want["revision"]));
    assert_eq!(layout.size as u64, want["vmcs12_size_int"].as_u64().unwrap());
    assert_eq!(layout.used_bytes() as u64, want["sizeof_struct"].as_u64().unwrap());
    let ours = ours["members"].as_array().unwrap();
    let want = want["members"].as_array().unwrap();
    assert_eq!(ours.len(), want.len());
    for (o, w) in ours.iter().zip(want) {
        assert_eq!(o["name"], w["member"]);
        assert_eq!(o["offset"], w["offset"], "offset of {}", w["member"]);
        assert_eq!(o["size"], w["size"], "size of {}", w["member"]);
    }
}

#[test]
fn vmcs12_encodings_match_kvm_field_map() {
    let schema = Schema::shipped().unwrap();
    let ours = report::layout_json(&schema, schema.layout("vmcs12").unwrap());
    let map = reference("vmcs12-field-map.json");
    let mut want: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in map["entries"].as_array().unwrap() {
        let mut encs = vec![e["encoding"].as_u64().unwrap()];
        if let Some(h) = e.get("high") {
            encs.push(h["encoding"].as_u64().unwrap());
            assert_eq!(h["vmcs12_offset"].as_u64(), e["vmcs12_offset"].as_u64().map(|o| o + 4));
        }
        want.insert(e["member"].as_str().unwrap().to_string(), encs);
    }
    assert_eq!(want.len(), 147);
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in ours["members"].as_array().unwrap() {
        let encs: Vec<u64> = m["encodings"].as_array().unwrap().iter().map(hex).collect();
        if !encs.is_empty() {
            got.insert(m["name"].as_str().unwrap().to_string(), encs);
        }
    }
    assert_eq!(got, want);
}

#[test]
fn every_field_of_the_union_is_in_the_schema() {
    let schema = Schema::shipped().unwrap();
    let union = reference("vmcs-fields-union.json");
    let linux = reference("vmcs-field-encodings.json");
    let linux_names: BTreeMap<u64, String> =
        linux["encodings"].as_object().unwrap().iter().map(|(k, v)| (v.as_u64().unwrap(), k.clone())).collect();
    let mut want = BTreeSet::new();
    for f in union["fields"].as_array().unwrap() {
        if f["access_high"].as_u64() == Some(1) {
            continue;
        }
        let enc = hex(&f["encoding"]);
        want.insert(enc);
        let ours = schema.fields.iter().find(|x| x.encoding.raw() as u64 == enc);
        let ours = ours.unwrap_or_else(|| panic!("field {enc:#06x} of the union is missing"));
        let width = match f["width"].as_str().unwrap() {
            "16" => "16",
            "32" => "32",
            "64" => "64",
            _ => "natural",
        };
        assert_eq!(ours.width.as_str(), width, "{}", ours.name);
        if let Some(name) = linux_names.get(&enc) {
            assert_eq!(&ours.name, name, "Linux's name for {enc:#06x}");
        }
        let single = f["independent_sources"].as_u64() == Some(1);
        match (&ours.source, single) {
            (Some(src), true) => assert!(f["names"].get(src.as_str()).is_some(), "{} source {src}", ours.name),
            (None, false) => {}
            (s, _) => panic!("{}: source {s:?} but known to {} sources", ours.name, f["independent_sources"]),
        }
    }
    assert_eq!(want.len(), union["count_full"].as_u64().unwrap() as usize);
    // A field newer than the union's sources names the one document that defines it.
    let sources: Vec<&str> = union["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let got: BTreeSet<u64> = schema
        .fields
        .iter()
        .filter(|f| f.source.as_deref().is_none_or(|s| sources.contains(&s)))
        .map(|f| f.encoding.raw() as u64)
        .collect();
    assert_eq!(got, want, "the schema declares exactly the union's encodings, and newer ones with their source");
}

/// The capability reported by `msr` bit `bit`, whatever the schema calls it.
fn cap_at(schema: &Schema, msr: u32, bit: u32) -> usize {
    (0..schema.caps.len())
        .find(|&c| schema.msr_of(c).index == msr && schema.caps[c].bit == bit)
        .unwrap_or_else(|| panic!("no capability for MSR {msr:#x} bit {bit}"))
}

#[test]
fn vmcs12_vmcs_enum_is_what_kvm_computes() {
    let schema = Schema::shipped().unwrap();
    let map = reference("vmcs12-field-map.json");
    let all = hex(&map["vmcs_enum"]["all_fields_supported"]["IA32_VMX_VMCS_ENUM"]);
    let no_tsc = hex(&map["vmcs_enum"]["without_tsc_scaling"]["IA32_VMX_VMCS_ENUM"]);
    assert_eq!((all, no_tsc), (0x32, 0x2e));
    let layout = schema.layout("vmcs12").unwrap();
    assert_eq!(schema.layout_vmcs_enum(layout, &Caps::All), all);
    // "use TSC scaling" is secondary processor-based control 25 (IA32_VMX_PROCBASED_CTLS2, 0x48b).
    let tsc = cap_at(&schema, 0x48b, 25);
    assert_eq!(schema.layout_vmcs_enum(layout, &Caps::AllExcept(vec![tsc])), no_tsc);
}

#[test]
fn vmcs_enum_from_msr_values() {
    // Everything allowed (TRUE controls in use) except secondary control 25, TSC scaling.
    let schema = Schema::shipped().unwrap();
    let layout = schema.layout("vmcs12").unwrap();
    let mut msrs: BTreeMap<u32, u64> = (0x480..=0x493).map(|i| (i, u64::MAX)).collect();
    let all = Caps::Msrs(msrs.clone());
    assert_eq!(schema.layout_vmcs_enum(layout, &all), 0x32);
    msrs.insert(0x48b, !(1 << (32 + 25)));
    assert_eq!(schema.layout_vmcs_enum(layout, &Caps::Msrs(msrs.clone())), 0x2e);
    // Without "activate secondary controls" (primary control 31), the secondary MSR reads as 0:
    // TSC scaling is gone even though 0x48b still says allowed.
    msrs.insert(0x48b, u64::MAX);
    msrs.insert(0x48e, !(1 << 63));
    assert_eq!(schema.layout_vmcs_enum(layout, &Caps::Msrs(msrs)), 0x2e);
}

#[test]
fn architectural_vmcs_enum() {
    let schema = Schema::shipped().unwrap();
    let union = reference("vmcs-fields-union.json");
    let max = union["fields"].as_array().unwrap().iter().map(|f| f["index"].as_u64().unwrap()).max().unwrap();
    assert_eq!(schema.arch_vmcs_enum(&Caps::All), max << 1);
    // A CPU with no capability MSRs at all still has every ungated field.
    let none = Caps::Msrs(BTreeMap::new());
    let ungated = schema.fields.iter().filter(|f| f.gate.is_none()).map(|f| f.encoding.index() as u64).max().unwrap();
    assert_eq!(schema.arch_vmcs_enum(&none), ungated << 1);
}

#[test]
fn gates_follow_the_sdm_for_well_known_fields() {
    let schema = Schema::shipped().unwrap();
    let exists = |name: &str, msrs: &[(u32, u64)]| {
        let caps = Caps::Msrs(msrs.iter().copied().collect());
        schema.field_exists(&caps, schema.fields.iter().position(|f| f.name == name).unwrap())
    };
    let allow = |bit: u32| 1u64 << (32 + bit);
    // Guest IA32_PAT: "load IA32_PAT" entry control (14) or "save IA32_PAT" exit control (18).
    assert!(!exists("GUEST_IA32_PAT", &[]));
    assert!(exists("GUEST_IA32_PAT", &[(0x484, allow(14))]));
    assert!(exists("GUEST_IA32_PAT", &[(0x483, allow(18))]));
    // With IA32_VMX_BASIC[55] the TRUE MSRs are consulted instead.
    assert!(!exists("GUEST_IA32_PAT", &[(0x480, 1 << 55), (0x484, allow(14))]));
    assert!(exists("GUEST_IA32_PAT", &[(0x480, 1 << 55), (0x490, allow(14))]));
    // VPID: secondary control 5, which exists only with primary control 31.
    assert!(!exists("VIRTUAL_PROCESSOR_ID", &[(0x48b, allow(5))]));
    assert!(exists("VIRTUAL_PROCESSOR_ID", &[(0x482, allow(31)), (0x48b, allow(5))]));
    // Preemption timer value: pin-based control 6.
    assert!(exists("VMX_PREEMPTION_TIMER_VALUE", &[(0x481, allow(6))]));
    assert!(!exists("VMX_PREEMPTION_TIMER_VALUE", &[(0x481, allow(7))]));
    // Ungated fields exist everywhere.
    assert!(exists("GUEST_RIP", &[]));
}
