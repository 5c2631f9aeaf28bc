//! The Hyper-V enlightened VMCS against KVM 7.2.8 (testdata/reference/evmcs-layout.json): layout,
//! encoding map, and the clean-field gating of the generated eVMCS -> vmcs12 copy.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Rng, reference};
use vmcs::caps::AllCaps;
use vmcs::copy;
use vmcs::layouts::evmcs::Evmcs;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite};

#[test]
fn layout_matches_kvm_member_by_member() {
    let r = reference("evmcs-layout.json");
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let ours = schema.layout("evmcs").unwrap();
    let mut members: Vec<_> = ours.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    let want = r["members"].as_array().unwrap();
    assert_eq!(members.len(), want.len());
    for (o, w) in members.iter().zip(want) {
        assert_eq!(
            (o.name.as_str(), o.offset as u64, o.size as u64),
            (w["member"].as_str().unwrap(), w["offset"].as_u64().unwrap(), w["size"].as_u64().unwrap())
        );
    }
    assert_eq!(<Evmcs as Layout>::USED_BYTES as u64, r["sizeof_struct"].as_u64().unwrap());
}

/// KVM's map: encoding -> (eVMCS offset, clean group), high halves included.
fn kvm_map() -> BTreeMap<u64, (u64, String)> {
    let r = reference("evmcs-layout.json");
    r["vmcs_field_to_evmcs_1"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["encoding"].as_u64().unwrap(),
                (e["evmcs_offset"].as_u64().unwrap(), e["clean_field"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

/// The CET members KVM 7.2.8 leaves unconnected, which we map (extension), by reference offsets.
const CET_EXTENSION: [(u64, u64); 6] =
    [(0x6828, 912), (0x682a, 920), (0x682c, 928), (0x6c18, 992), (0x6c1a, 1000), (0x6c1c, 1008)];

#[test]
fn encoding_map_is_kvms_plus_cet() {
    let map = kvm_map();
    let full = |enc: u64| {
        map.get(&enc).map(|(o, _)| *o).or_else(|| CET_EXTENSION.iter().find(|(e, _)| *e == enc).map(|(_, o)| *o))
    };
    for enc in 0..0x8000u64 {
        let got = Evmcs::locate(enc).map(|l| l.offset as u64);
        let want = match full(enc) {
            Some(o) => Some(o),
            // KVM's eVMCS map lists no high halves (x86-64 KVM never uses them); as the SDM
            // defines for every 64-bit field, ours answers the high access at +4.
            None if enc & 1 == 1 && (enc >> 13) & 3 == 1 => full(enc & !1).map(|o| o + 4),
            None => None,
        };
        assert_eq!(got, want, "{enc:#x}");
    }
}

/// Fields the generated eVMCS -> vmcs12 copy writes, with `clean` as hv_clean_fields.
fn copied_with_clean(clean: u32) -> BTreeSet<u64> {
    let mut rng = Rng(0xe5e5_0000_1111_2222);
    let mut src = Evmcs::default();
    for &e in <Evmcs as Layout>::MAPPED {
        src.write_raw(e as u64, rng.next() | 1).unwrap();
    }
    src.hv_clean_fields = clean;
    let mut dst = Vmcs12::zeroed();
    copy::evmcs_to_vmcs12(&src, &mut dst, &AllCaps).unwrap();
    <Vmcs12 as Layout>::MAPPED.iter().map(|&e| e as u64).filter(|&e| dst.read_raw(e).unwrap() != 0).collect()
}

#[test]
fn clean_groups_gate_the_copy_as_kvm_does() {
    let r = reference("evmcs-layout.json");
    let bits: BTreeMap<String, u32> = r["clean_field_constants"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.trim_start_matches("HV_VMX_ENLIGHTENED_CLEAN_FIELD_").to_string(), v.as_u64().unwrap() as u32))
        .collect();
    let map = kvm_map();
    let everything = copied_with_clean(0);
    // KVM copies 106 vmcs12 members; we add the six CET fields.
    assert_eq!(everything.len(), 106 + 6);
    let always: BTreeSet<u64> =
        everything.iter().copied().filter(|e| map.get(e).is_none_or(|(_, g)| g == "NONE")).collect();
    // Everything clean: only fields outside any group (GUEST_RIP, TPR_THRESHOLD, our CET) move.
    assert_eq!(copied_with_clean(bits["ALL"]), always);
    for (group, &bit) in
        bits.iter().filter(|(g, b)| **b != 0 && **b != bits["ALL"] && g.as_str() != "ENLIGHTENMENTSCONTROL")
    {
        // Only `group` dirty: exactly its fields (per KVM's map) plus the ungrouped ones.
        let got = copied_with_clean(bits["ALL"] & !bit);
        let want: BTreeSet<u64> = everything
            .iter()
            .copied()
            .filter(|e| always.contains(e) || map.get(e).is_some_and(|(_, g)| g == group))
            .collect();
        assert_eq!(got, want, "group {group}");
    }
}

#[test]
fn vmcs12_to_evmcs_writes_kvms_72_fields_plus_guest_cet() {
    let mut rng = Rng(9);
    let mut v = Vmcs12::zeroed();
    for &e in <Vmcs12 as Layout>::MAPPED {
        v.write_raw(e as u64, rng.next() | 1).unwrap();
    }
    let mut ev = Evmcs::default();
    copy::vmcs12_to_evmcs(&v, &mut ev, &AllCaps).unwrap();
    let written = <Evmcs as Layout>::MAPPED.iter().filter(|&&e| ev.read_raw(e as u64).unwrap() != 0).count();
    assert_eq!(written, 72 + 3);
    assert_eq!({ ev.hv_clean_fields }, 0, "the copy leaves the clean bits to the caller");
}
