//! The generated vmcs12 against KVM's own table (testdata/reference, Linux 7.2.8).

mod common;

use common::reference;
use std::collections::HashMap;

use serde_json::Value;
use vmcs::caps::{AllCaps, AllExcept, Cap};
use vmcs::fields::{FieldKind, FieldWidth};
use vmcs::layouts::{Location, MemberAccess};
use vmcs::{Layout, Vmcs12, VmcsError, VmcsRead, VmcsWrite, fields};

/// KVM's table as a plain map: encoding -> (offset, bytes), high halves included.
fn kvm_table() -> HashMap<u64, (u16, usize)> {
    let mut t = HashMap::new();
    for e in reference("vmcs12-field-map.json")["entries"].as_array().unwrap() {
        let bytes = match e["member_c_type"].as_str().unwrap() {
            "u16" => 2,
            "u32" => 4,
            _ => 8,
        };
        t.insert(e["encoding"].as_u64().unwrap(), (e["vmcs12_offset"].as_u64().unwrap() as u16, bytes));
        if let Some(h) = e.get("high") {
            t.insert(h["encoding"].as_u64().unwrap(), (h["vmcs12_offset"].as_u64().unwrap() as u16, 4));
        }
    }
    assert_eq!(t.len(), 184, "KVM fills 184 table slots");
    t
}

fn check(t: &HashMap<u64, (u16, usize)>, enc: u64) {
    let got = Vmcs12::locate(enc).map(|l: Location| (l.offset, l.bytes()));
    assert_eq!(got, t.get(&enc).copied(), "encoding {enc:#x}");
}

#[test]
fn lookup_agrees_with_kvm_on_every_16_bit_encoding() {
    let t = kvm_table();
    for enc in 0..=0xffff_u64 {
        check(&t, enc);
    }
}

#[test]
fn lookup_is_total_over_u64() {
    let t = kvm_table();
    // Valid encodings with garbage in bits 63:15 must be rejected, not aliased.
    let mut rng = common::Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let x = rng.next();
        check(&t, x);
        check(&t, x & 0xffff_ffff);
        check(&t, (x & 0x7fff) | 1 << (15 + (x >> 58) % 49));
    }
    for enc in [u64::MAX, 1 << 63, 0x1_0000_2000, 0xffff_8000, 0x8000] {
        assert_eq!(Vmcs12::locate(enc), None);
    }
}

#[test]
fn read_write_any_width_semantics() {
    let mut v = Vmcs12::zeroed();
    let pattern = 0xdead_beef_cafe_f00d_u64;
    // 16-bit: GUEST_ES_SELECTOR keeps the low 16 bits.
    v.write_raw(0x0800, pattern).unwrap();
    assert_eq!(v.read_raw(0x0800), Ok(0xf00d));
    assert_eq!({ v.guest_es_selector }, 0xf00d);
    // 32-bit: VM_EXIT_REASON keeps the low 32 bits.
    v.write_raw(0x4402, pattern).unwrap();
    assert_eq!(v.read_raw(0x4402), Ok(0xcafe_f00d));
    // 64-bit full and high access: TSC_OFFSET.
    v.write_raw(0x2010, pattern).unwrap();
    assert_eq!(v.read_raw(0x2010), Ok(pattern));
    assert_eq!(v.read_raw(0x2011), Ok(0xdead_beef));
    v.write_raw(0x2011, 0x1234_5678_9abc_def0).unwrap();
    assert_eq!({ v.tsc_offset }, 0x9abc_def0_cafe_f00d);
    // Natural width is 64 bits in vmcs12: GUEST_RIP at KVM's offset 544.
    v.write_raw(0x681e, pattern).unwrap();
    assert_eq!({ v.guest_rip }, pattern);
    assert_eq!(&v.as_bytes()[544..552], &pattern.to_le_bytes());
}

#[test]
fn unsupported_encodings_fail_and_change_nothing() {
    let mut v = Vmcs12::zeroed();
    let before = v;
    for enc in [0x4403, 0x2030, 0x1000, 0x6c03, 0x7ffe, 0x1_0000_2000, u64::MAX, 0x6008] {
        assert_eq!(v.read_raw(enc), Err(VmcsError::UnsupportedField(enc)));
        assert_eq!(v.write_raw(enc, u64::MAX), Err(VmcsError::UnsupportedField(enc)));
    }
    assert_eq!(v, before);
}

#[test]
fn typed_access() {
    let mut v = Vmcs12::zeroed();
    v.write(fields::GUEST_RIP, 0xffff_8000_0000_1000).unwrap();
    assert_eq!(v.read(fields::GUEST_RIP), Ok(0xffff_8000_0000_1000));
    v.write(fields::GUEST_CS_SELECTOR, 0x10).unwrap();
    assert_eq!(v.read(fields::GUEST_CS_SELECTOR), Ok(0x10u16));
    v.write(fields::TSC_OFFSET.high(), 7).unwrap();
    assert_eq!(v.read(fields::TSC_OFFSET), Ok(7 << 32));
    // L0 fills exit information in vmcs12 directly or by raw encoding.
    v.vm_exit_reason = 18;
    assert_eq!(v.read(fields::VM_EXIT_REASON), Ok(18u32));
    v.write_raw(0x4402, 12).unwrap();
    assert_eq!(v.read(fields::VM_EXIT_REASON), Ok(12u32));
    // A field vmcs12 does not hold.
    assert_eq!(v.read(fields::GUEST_SMBASE), Err(VmcsError::UnsupportedField(0x4828)));
}

#[test]
fn vmcs_enum_is_what_kvm_computes() {
    let map = reference("vmcs12-field-map.json");
    let want = |k: &str| common::hex(&map["vmcs_enum"][k]["IA32_VMX_VMCS_ENUM"]);
    assert_eq!(Vmcs12::vmcs_enum(&AllCaps), want("all_fields_supported"));
    let tsc = *Cap::ALL.iter().find(|c| c.msr().index() == 0x48b && c.bit() == 25).unwrap();
    assert_eq!(Vmcs12::vmcs_enum(&AllExcept(&[tsc])), want("without_tsc_scaling"));
}

#[test]
fn field_table_matches_the_union() {
    let union = reference("vmcs-fields-union.json");
    let full: Vec<&Value> = union["fields"].as_array().unwrap().iter().filter(|f| f["access_high"] == 0).collect();
    // Fields newer than the union's sources: the schema names the one document that defines each
    // (vmcs-gen's reference test checks that every other field is the union's).
    let sources: Vec<&str> = union["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let newer: Vec<u32> = schema
        .fields
        .iter()
        .filter(|f| f.source.as_deref().is_some_and(|s| !sources.contains(&s)))
        .map(|f| f.encoding.raw())
        .collect();
    let known: Vec<_> = fields::ALL.iter().filter(|f| !newer.contains(&f.encoding)).collect();
    assert_eq!((known.len(), fields::ALL.len()), (full.len(), full.len() + newer.len()));
    for (info, f) in known.into_iter().zip(&full) {
        let enc = common::hex(&f["encoding"]) as u32;
        assert_eq!(info.encoding, enc);
        let width = match f["width"].as_str().unwrap() {
            "16" => FieldWidth::W16,
            "32" => FieldWidth::W32,
            "64" => FieldWidth::W64,
            _ => FieldWidth::Natural,
        };
        assert_eq!(info.width, width, "{}", info.name);
        let kind = match f["type"].as_str().unwrap() {
            "control" => FieldKind::Control,
            "guest-state" => FieldKind::GuestState,
            "host-state" => FieldKind::HostState,
            _ => FieldKind::ReadOnly,
        };
        assert_eq!(info.kind, kind, "{}", info.name);
    }
    let union_max = full.iter().map(|f| f["index"].as_u64().unwrap()).max().unwrap();
    let max_index = newer.iter().map(|e| u64::from(e >> 1 & 0x1ff)).fold(union_max, u64::max);
    assert_eq!(fields::vmcs_enum(&AllCaps), max_index << 1);
}

#[test]
fn location_access_kinds() {
    assert_eq!(Vmcs12::locate(0x0800).unwrap().access, MemberAccess::U16);
    assert_eq!(Vmcs12::locate(0x4402).unwrap().access, MemberAccess::U32);
    assert_eq!(Vmcs12::locate(0x2010).unwrap().access, MemberAccess::U64);
    assert_eq!(Vmcs12::locate(0x681e).unwrap().access, MemberAccess::U64);
    assert_eq!(Vmcs12::locate(0x2011).unwrap(), Location { offset: 92, access: MemberAccess::High });
}

#[test]
fn every_write_touches_exactly_its_own_bytes() {
    let t = kvm_table();
    let mut encodings: Vec<_> = t.iter().collect();
    encodings.sort();
    for (&enc, &(offset, bytes)) in encodings {
        let mut v = Vmcs12::zeroed();
        for (i, b) in v.as_bytes_mut().iter_mut().enumerate() {
            *b = i as u8 ^ 0xa5;
        }
        let before = v.as_bytes().to_vec();
        v.write_raw(enc, 0x0123_4567_89ab_cdef).unwrap();
        let after = v.as_bytes();
        let range = offset as usize..offset as usize + bytes;
        for i in 0..before.len() {
            if range.contains(&i) {
                assert_eq!(after[i], 0x0123_4567_89ab_cdef_u64.to_le_bytes()[i - range.start], "{enc:#x} byte {i}");
            } else {
                assert_eq!(after[i], before[i], "{enc:#x} clobbered byte {i}");
            }
        }
        let want = 0x0123_4567_89ab_cdef_u64 & if bytes == 8 { u64::MAX } else { (1 << (8 * bytes)) - 1 };
        assert_eq!(v.read_raw(enc), Ok(want), "{enc:#x}");
    }
}
