//! The generated existence code against the vmcs-gen model it was generated from, over random
//! capability MSR values: the two implementations must agree on every encoding, capability and
//! reporting MSR value (TRUE MSR or not).

mod common;

use std::collections::BTreeMap;

use vmcs::caps::VmxCaps;
use vmcs::fields;
use vmcs_gen::{Caps, Schema};

#[test]
fn generated_existence_matches_the_model() {
    let schema = Schema::shipped().unwrap();
    let mut rng = common::Rng(0x2545_f491_4f6c_dd1d);
    let mut next = || rng.next();
    for round in 0..300 {
        let mut msrs = BTreeMap::new();
        let mut caps = VmxCaps::new();
        for index in 0x480..=0x493u32 {
            // Mostly dense or sparse values, sometimes absent.
            let v = match next() % 4 {
                0 => 0,
                1 => next() & next(),
                2 => next() | next(),
                _ => next(),
            };
            if v != 0 || round % 2 == 0 {
                msrs.insert(index, v);
                caps.set(index, v);
            }
        }
        let model = Caps::Msrs(msrs);
        for (msr, m) in vmcs::caps::Msr::ALL.iter().zip(0..) {
            assert_eq!(msr.name(), schema.msrs[m].name);
            assert_eq!(caps.value(*msr), schema.msr_value(&model, m), "{} round {round}", msr.name());
        }
        for (cap, c) in vmcs::caps::Cap::ALL.iter().zip(0..) {
            assert_eq!(cap.name(), schema.caps[c].name);
            assert_eq!(caps.has_cap(*cap), schema.has_cap(&model, c), "{} round {round}", cap.name());
        }
        for (i, f) in schema.fields.iter().enumerate() {
            let want = schema.field_exists(&model, i);
            for enc in f.encodings() {
                assert_eq!(fields::exists(enc.raw() as u64, &caps), want, "{} round {round}", f.name);
            }
        }
        assert_eq!(fields::vmcs_enum(&caps), schema.arch_vmcs_enum(&model));
        let l = schema.layout("vmcs12").unwrap();
        assert_eq!(<vmcs::Vmcs12 as vmcs::Layout>::vmcs_enum(&caps), schema.layout_vmcs_enum(l, &model));
    }
}

#[test]
fn encodings_that_name_no_field_never_exist() {
    let caps = vmcs::caps::AllCaps;
    let known: std::collections::HashSet<u64> = fields::ALL
        .iter()
        .flat_map(|f| {
            let e = f.encoding as u64;
            if f.width == fields::FieldWidth::W64 { vec![e, e | 1] } else { vec![e] }
        })
        .collect();
    for enc in 0..=0xffff_u64 {
        assert_eq!(fields::exists(enc, &caps), known.contains(&enc), "{enc:#x}");
    }
    assert!(!fields::exists(1 << 40 | 0x681e, &caps));
}
