//! capabilities.toml's MSR descriptors: TRUE MSRs and the order `requires` reads the MSRs in,
//! each mistake reported at its value.

mod common;

use common::{edited, errors, expect_at};
use vmcs_gen::{Caps, Schema};

#[test]
fn true_index_names_a_declared_control_msr_with_requires() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "name = \"pin\"",
            "true_index = 0x48D",
            "true_index = 0x4A0",
            "0x4A0",
            "true_index 0x4a0 is not a declared MSR",
        ),
        (
            "name = \"pin\"",
            "true_index = 0x48D",
            "true_index = 0x485",
            "0x485",
            "`misc` cannot be the TRUE MSR of `pin`",
        ),
        (
            "name = \"pin\"",
            "true_index = 0x48D",
            "true_index = 0x0481",
            "0x0481",
            "`pin` cannot be the TRUE MSR of `pin`",
        ),
        (
            "name = \"proc\"",
            "true_index = 0x48E",
            "true_index = 0x48B",
            "0x48B",
            "`proc2` cannot be the TRUE MSR of `proc`",
        ),
    ];
    for (marker, from, to, at, message) in cases {
        eprintln!("mistake: {to:?} after {marker:?}");
        let sources = edited(&[("capabilities.toml", marker, from, to)]);
        let diags = errors(&sources);
        expect_at(&diags, &sources, "capabilities.toml", marker, at, message);
    }
}

#[test]
fn requires_reads_only_msrs_declared_before() {
    // ept_vpid moved before proc2, whose controls its `requires` reads.
    let sources = edited(&[(
        "capabilities.toml",
        "name = \"vmcs_enum\"",
        "[[msr]]\nname = \"true_pin\"",
        "[[msr]]\nname = \"early\"\nindex = 0x4A1\nkind = \"flags\"\nrequires = \"proc2.enable_ept\"\ndoc = \"x\"\n\n[[msr]]\nname = \"true_pin\"",
    )]);
    let diags = errors(&sources);
    expect_at(
        &diags,
        &sources,
        "capabilities.toml",
        "name = \"early\"",
        "\"proc2.enable_ept\"",
        "`requires` of `early` reads MSR `proc2`, declared after it",
    );
    // A gate on the primary controls reads their TRUE MSR too.
    let sources =
        edited(&[("capabilities.toml", "name = \"entry\"", "doc =", "requires = \"proc.use_tsc_offsetting\"\ndoc =")]);
    let diags = errors(&sources);
    expect_at(
        &diags,
        &sources,
        "capabilities.toml",
        "name = \"entry\"",
        "\"proc.use_tsc_offsetting\"",
        "reads MSR `true_proc`",
    );
}

#[test]
fn the_true_msr_reports_when_it_exists() {
    let schema = Schema::shipped().unwrap();
    let entry = schema.msrs.iter().position(|m| m.name == "entry").unwrap();
    let allow = 1u64 << (32 + 14);
    let caps = |basic: u64| Caps::Msrs([(0x480, basic), (0x484, 0), (0x490, allow)].into_iter().collect());
    assert_eq!(schema.msr_value(&caps(1 << 55), entry), allow);
    assert_eq!(schema.msr_value(&caps(0), entry), 0);
    let true_entry = schema.msrs.iter().position(|m| m.name == "true_entry").unwrap();
    assert_eq!(schema.msrs[entry].true_msr, Some(true_entry));
    assert!(!schema.msr_exists(&caps(0), true_entry));
}
