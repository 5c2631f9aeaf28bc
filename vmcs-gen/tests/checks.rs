//! The shipped VM-entry rules as a model: counts and references, and the defines' meaning
//! checked against their plain definitions through the interpreter.

mod common;

use std::collections::BTreeSet;

use vmcs_gen::checks::eval::Inputs;
use vmcs_gen::{Caps, Schema, SchemaSources};

/// The row ids of the VM-entry check catalogue the rules were transcribed from, with its "Total"
/// counts, copied here.
const ROWS: &[(&str, u32)] = &[
    ("P", 8),
    ("E", 28),
    ("X", 5),
    ("N", 10),
    ("H", 18),
    ("G", 17),
    ("S", 23),
    ("T", 2),
    ("R", 5),
    ("A", 5),
    ("I", 9),
    ("D", 3),
    ("L", 4),
    ("Q", 2),
    ("M", 6),
];

#[test]
fn rules_cover_the_reference_rows() {
    let schema = Schema::shipped().unwrap();
    let c = &schema.checks;
    assert!(c.declarations() >= 120, "{} rules", c.declarations());
    let all: BTreeSet<String> = ROWS.iter().flat_map(|(p, n)| (1..=*n).map(move |i| format!("{p}{i}"))).collect();
    assert_eq!(all.len(), 145);
    let used: BTreeSet<String> = c.rules.iter().map(|r| r.reference.clone()).collect();
    assert!(used.is_subset(&all), "unknown rows: {:?}", used.difference(&all).collect::<Vec<_>>());
    // Not VMCS checks (#UD, VM exit, #GP, no current VMCS), SMM only (L4).
    let missing: Vec<&String> = all.difference(&used).collect();
    assert_eq!(missing, ["L4", "P1", "P2", "P3", "P4"]);
    for r in &c.rules {
        assert!(!r.section.is_empty() && !r.doc.is_empty(), "{}", r.name);
    }
}

/// The schema with one more guest-state rule, `check`, over GUEST_RIP and GUEST_CR3 (the last of
/// the guest-state tier).
fn with_rule(check: &str) -> Schema {
    let mut s = SchemaSources::embedded();
    let text = common::text_of(&s, "checks.toml");
    let (guest, msr_load) = text.split_at(text.find("\n# 26.4: loading MSRs").unwrap());
    s.set(
        "checks.toml",
        format!(
            "{guest}\n[[rule]]\nname = \"probe\"\nref = \"G1\"\nsection = \"26.3.1.1\"\noutcome = \"exit(33, 0)\"\ncheck = \"{check}\"\ndoc = \"A probe.\"\n{msr_load}"
        ),
    );
    Schema::load(&s).unwrap()
}

fn holds(schema: &Schema, rip: u64, cr3: u64, maxphyaddr: u64) -> bool {
    let rule = schema.checks.rule("probe").unwrap();
    let facts: Vec<u64> =
        schema.checks.facts.iter().map(|f| if f.name == "maxphyaddr" { maxphyaddr } else { 0 }).collect();
    let (rip_id, cr3_id) = (
        schema.fields.iter().position(|f| f.name == "GUEST_RIP"),
        schema.fields.iter().position(|f| f.name == "GUEST_CR3"),
    );
    let field = |id: usize| {
        Some(if Some(id) == rip_id {
            rip
        } else if Some(id) == cr3_id {
            cr3
        } else {
            0
        })
    };
    let memory = |_: u64, _: u32| None;
    let inputs =
        Inputs { schema, caps: &Caps::All, facts: &facts, field: &field, memory: &memory, wrmsr_faults: &|_, _| false };
    inputs.holds(rule).unwrap().unwrap()
}

use vmcs_test_support::Rng;

#[test]
fn canonical_means_sign_extended() {
    for width in [48u32, 57] {
        let schema = with_rule(&format!("canonical(GUEST_RIP, {width})"));
        let mut rng = Rng(0xdead_beef_0bad_cafe);
        for _ in 0..5000 {
            let x = rng.near_edges();
            let sign_extended = ((x << (64 - width)) as i64 >> (64 - width)) as u64;
            assert_eq!(holds(&schema, x, 0, 0), sign_extended == x, "canonical({x:#x}, {width})");
        }
    }
}

#[test]
fn pat_valid_means_every_byte_a_memory_type() {
    let schema = with_rule("pat_valid(GUEST_RIP)");
    let mut rng = Rng(0x1357_9bdf_2468_ace0);
    for _ in 0..5000 {
        // Bytes drawn mostly from small values, so valid PATs occur.
        let x = (0..8).fold(0u64, |acc, i| acc | (rng.next() % 9) << (8 * i));
        let x = if rng.next().is_multiple_of(5) { x ^ 1 << (rng.next() % 64) } else { x };
        let valid = x.to_le_bytes().iter().all(|b| [0, 1, 4, 5, 6, 7].contains(b));
        assert_eq!(holds(&schema, x, 0, 0), valid, "pat_valid({x:#x})");
    }
}

#[test]
fn pdpte_valid_and_maxphyaddr_shifts() {
    let schema = with_rule("pdpte_valid(GUEST_RIP) && GUEST_CR3 >> maxphyaddr == 0");
    let mut rng = Rng(0x0f0f_f0f0_1234_4321);
    for _ in 0..5000 {
        let (e, cr3, mpa) = (rng.near_edges(), rng.near_edges(), [36, 40, 52, 64, 70][(rng.next() % 5) as usize]);
        let pdpte = e & 1 == 0 || (e & 0x1e6 == 0 && e.checked_shr(mpa as u32).unwrap_or(0) == 0);
        let width = cr3.checked_shr(mpa as u32).unwrap_or(0) == 0;
        assert_eq!(holds(&schema, e, cr3, mpa), pdpte && width, "e {e:#x} cr3 {cr3:#x} mpa {mpa}");
    }
}
