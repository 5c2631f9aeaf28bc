//! Mistakes in checks.toml: each is reported at the offending text of the expression (or of the
//! define it sits in), with every error of the file at once.

mod common;

use common::{edited, errors, expect_at};

const C: &str = "checks.toml";
const TSC: &str = "name = \"tsc_multiplier_nonzero\"";
const TSC_CHECK: &str = "proc2.use_tsc_scaling => TSC_MULTIPLIER != 0";

fn with_check(new: &str) -> vmcs_gen::SchemaSources {
    edited(&[(C, TSC, TSC_CHECK, new)])
}

#[test]
fn unknown_field_with_a_suggestion() {
    let s = with_check("proc2.use_tsc_scaling => TSC_MULTIPLER != 0");
    let d = errors(&s);
    let e = expect_at(&d, &s, C, TSC, "TSC_MULTIPLER", "unknown name `TSC_MULTIPLER`");
    assert_eq!(e.notes, ["did you mean `TSC_MULTIPLIER`?"]);
}

#[test]
fn width_mismatch_needs_a_conversion() {
    let s = with_check("proc2.use_tsc_scaling => TSC_MULTIPLIER != GUEST_CS_SELECTOR");
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        TSC,
        "TSC_MULTIPLIER != GUEST",
        "width mismatch: `!=` between a 64-bit integer and a 16-bit integer",
    );
    assert!(e.notes[0].contains("u64(...)"));
}

#[test]
fn a_gated_field_needs_the_rules_gate() {
    let s = edited(&[(C, TSC, "gate = \"proc2.use_tsc_scaling\"\n", "")]);
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        TSC,
        "TSC_MULTIPLIER",
        "`TSC_MULTIPLIER` exists only if `proc2.use_tsc_scaling`, but the rule has no gate",
    );
    assert!(e.notes[0].contains("gate = \"proc2.use_tsc_scaling\""));
    // A gate that does not imply the field's: still an error.
    let s = edited(&[(C, TSC, "gate = \"proc2.use_tsc_scaling\"", "gate = \"proc2.enable_ept\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, TSC, "TSC_MULTIPLIER", "the rule's gate `proc2.enable_ept` does not imply it");
}

#[test]
fn unknown_capability_and_capability_as_control() {
    let s = with_check("cap(misc.activity_halt) && misc.activity_hlt");
    let d = errors(&s);
    let e = expect_at(&d, &s, C, TSC, "misc.activity_halt", "unknown capability `misc.activity_halt`");
    assert_eq!(e.notes, ["did you mean `misc.activity_hlt`?"]);
    expect_at(
        &d,
        &s,
        C,
        TSC,
        "misc.activity_hlt",
        "`misc.activity_hlt` is a capability bit of MSR `misc`, not a control: write `cap(misc.activity_hlt)`",
    );
    assert_eq!(d.len(), 2, "{d}");
}

#[test]
fn bits_and_literals_must_fit_the_width() {
    let s = with_check("GUEST_CS_SELECTOR[16] && GUEST_CS_SELECTOR == 0x10000 && GUEST_CR0[70:3] == 0");
    let d = errors(&s);
    expect_at(&d, &s, C, TSC, "16", "bit 16 is outside a 16-bit integer");
    expect_at(&d, &s, C, TSC, "0x10000", "0x10000 does not fit a 16-bit integer");
    expect_at(&d, &s, C, TSC, "70", "bit 70 is outside a 64-bit integer");
}

#[test]
fn syntax_errors_are_located() {
    let s = with_check("proc2.use_tsc_scaling => (TSC_MULTIPLIER != 0");
    let d = errors(&s);
    let e = expect_at(&d, &s, C, "(TSC_MULTIPLIER != 0", "\"", "invalid expression: expected `)`");
    assert_eq!(d.len(), 1, "{e}");
    let s = with_check("TSC_MULTIPLIER == 1 == 1");
    let d = errors(&s);
    // At the second `==`.
    expect_at(&d, &s, C, "1 == 1\"", "==", "comparisons do not chain");
}

#[test]
fn the_check_is_a_boolean() {
    let s = with_check("TSC_MULTIPLIER + 1");
    let d = errors(&s);
    expect_at(&d, &s, C, TSC, "TSC_MULTIPLIER + 1", "expected a boolean, found a 64-bit integer");
}

#[test]
fn outcome_section_and_tier_order() {
    let s = edited(&[(C, TSC, "outcome = \"VMfailValid(7)\"", "outcome = \"VMfailValid(8)\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, C, TSC, "\"26.2.1.1\"", "section 26.2.1.1 does not check host (VMfailValid(8))");
    assert!(e.notes[0].contains("26.2.2"));
    let s = edited(&[(C, TSC, "outcome = \"VMfailValid(7)\"", "outcome = \"VMfailValid(9)\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, TSC, "\"VMfailValid(9)\"", "unknown outcome `VMfailValid(9)`");
    // A guest-state rule among the controls: out of the SDM's order.
    let s = edited(&[
        (C, TSC, "section = \"26.2.1.1\"", "section = \"26.3.1.1\""),
        (C, TSC, "outcome = \"VMfailValid(7)\"", "outcome = \"exit(33, 0)\""),
    ]);
    let d = errors(&s);
    let m = "name = \"exit_controls_allowed\"";
    let e = expect_at(
        &d,
        &s,
        C,
        m,
        "\"VMfailValid(7)\"",
        "a controls check after the guest check `tsc_multiplier_nonzero`",
    );
    assert!(e.notes[0].contains("SDM's tiers"));
}

#[test]
fn errors_in_a_define_point_into_the_define() {
    let pat = "name = \"pat_type\"";
    let s = edited(&[(C, pat, "t in {0, 1, 4, 5, 6, 7}", "t in {0, 1, 4, 5, 6, 7} && GUEST_CR0[t]")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, C, "GUEST_CR0[", "t", "invalid expression: expected a bit number");
    assert_eq!(d.len(), 1, "{e}");
    let s = edited(&[(C, pat, "t in {0, 1, 4, 5, 6, 7}", "t in {0, 1, 4, 5, 6, 7} && t")]);
    let d = errors(&s);
    // Reported once, although two rules expand the define (sixteen times in all).
    let e = expect_at(&d, &s, C, "7} && t", "t\"", "expected a boolean, found a 64-bit integer");
    assert!(e.notes.iter().any(|n| n.starts_with("in define `pat_type`, expanded by rule")), "{e}");
    assert_eq!(d.len(), 1, "{d}");
    let s = edited(&[(C, pat, "t in {0, 1, 4, 5, 6, 7}", "tt in {0}")]);
    let d = errors(&s);
    expect_at(&d, &s, C, pat, "tt", "unknown name `tt`");
}

#[test]
fn segments_and_facts() {
    let s = with_check("seg.base == 0");
    let d = errors(&s);
    expect_at(&d, &s, C, TSC, "seg", "`seg` is bound only in a rule with `segments = [...]`");
    let m = "name = \"v8086_limit\"";
    let s = edited(&[(C, m, "\"CS\"", "\"CX\""), (C, m, "seg.limit", "seg.limt")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"CX\"", "unknown segment `CX`");
    let e = expect_at(&d, &s, C, m, "limt", "unknown segment part `limt`");
    assert!(e.notes[0].starts_with("segment parts: sel base limit ar"));
    let f = "name = \"rtm\"";
    let s = edited(&[(C, f, "\"bool\"", "\"boolean\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, f, "\"boolean\"", "unknown fact type `boolean`");
}

#[test]
fn msr_load_entries_only_in_msr_loading_rules() {
    // A guest-state rule cannot name the MSR-load entry: only the 26.4 rules run per entry.
    let s = with_check("msr_entry.index != 0");
    let d = errors(&s);
    let e = expect_at(&d, &s, C, TSC, "msr_entry", "`msr_entry` is bound only in a rule of the MSR-loading tier");
    assert!(e.notes[0].contains("exit(34)"));
    // Inside one: an unknown part, and WRMSR operands of the wrong width.
    const M1: &str = "name = \"msr_load_reserved\"";
    let s = edited(&[(C, M1, "msr_entry.reserved == 0", "msr_entry.value == 0 && wrmsr_faults(msr_entry.data, 0)")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, C, M1, "value", "unknown part `value` of an MSR-load entry");
    assert_eq!(e.notes, ["parts of an MSR-load entry: index reserved data"]);
    expect_at(&d, &s, C, M1, "msr_entry.data", "an MSR index is 32-bit, not a 64-bit integer");
    assert_eq!(d.len(), 2, "{d}");
}
