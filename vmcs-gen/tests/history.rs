//! The vmcs12 layouts KVM released under revision 0x11e57ed0, and the proof that each step only
//! claimed reserved space (facts: testdata/reference/vmcs12-layout.json "history").

mod common;

use common::{edited, errors, expect_at};
use vmcs_gen::compat::{Change, Pinned, compare};
use vmcs_gen::{Caps, Schema};

fn changes(schema: &Schema, old: &str, new: &str) -> Vec<String> {
    let (o, n) = (schema.layout(old).unwrap(), schema.layout(new).unwrap());
    compare(&Pinned::of_layout(o), n)
        .iter()
        .map(|c| match c {
            Change::Added { new: i, within } => {
                format!("added {} in {}", n.members[*i].name, within.as_deref().unwrap_or("-"))
            }
            Change::Retired { old, by } => format!("retired {} by {by}", old.name),
            other => format!("breaking {other:?}"),
        })
        .collect()
}

#[test]
fn every_released_step_only_claims_reserved_space() {
    let s = Schema::shipped().unwrap();
    assert_eq!(
        changes(&s, "vmcs12_base", "vmcs12_tsc_scaling"),
        ["added encls_exiting_bitmap in padding64", "added tsc_multiplier in padding64"]
    );
    assert_eq!(
        changes(&s, "vmcs12_tsc_scaling", "vmcs12_dead_space"),
        (0..4).map(|i| format!("retired cr3_target_value{i} by dead_space")).collect::<Vec<_>>()
    );
    assert_eq!(
        changes(&s, "vmcs12_dead_space", "vmcs12"),
        ["host_s_cet", "host_ssp", "host_ssp_tbl", "guest_s_cet", "guest_ssp", "guest_ssp_tbl"]
            .map(|m| format!("added {m} in paddingl"))
    );
    // The chain is declared in the schema.
    assert_eq!(s.layout("vmcs12").unwrap().previous.as_deref(), Some("vmcs12_dead_space"));
    assert_eq!(s.layout("vmcs12_base").unwrap().previous, None);
}

#[test]
fn pre_cet_layout_differs_from_7_2_8_only_in_680_to_743() {
    // Reference: "identical layout except offsets 680..743 are 'natural_width paddingl[8]'".
    let s = Schema::shipped().unwrap();
    let (old, new) = (s.layout("vmcs12_dead_space").unwrap(), s.layout("vmcs12").unwrap());
    let outside = |l: &vmcs_gen::model::Layout| {
        let mut v: Vec<_> = Pinned::of_layout(l).into_iter().filter(|p| p.end() <= 680 || p.offset >= 744).collect();
        v.sort_by_key(|p| p.offset);
        v
    };
    assert_eq!(outside(old), outside(new));
    let pad = old.members.iter().find(|m| m.name == "paddingl").unwrap();
    assert_eq!((pad.offset, pad.size), (680, 64));
}

#[test]
fn oldest_layout_enumerates_like_old_kvm() {
    // Reference: older kernels had VMCS12_MAX_FIELD_INDEX 0x17 (VMCS_ENUM 0x2e) — no TSC multiplier.
    let s = Schema::shipped().unwrap();
    assert_eq!(s.layout_vmcs_enum(s.layout("vmcs12_base").unwrap(), &Caps::All), 0x17 << 1);
    let base = s.layout("vmcs12_base").unwrap();
    let cr3: Vec<_> =
        base.mapped().filter(|(m, _)| m.name.starts_with("cr3_target_value")).map(|(m, _)| m.offset).collect();
    assert_eq!(cr3, [376, 384, 392, 400]);
}

#[test]
fn a_step_that_moves_a_pinned_member_is_rejected() {
    // Move tsc_multiplier in vmcs12_tsc_scaling: its own lock refuses it. The step to
    // vmcs12_dead_space (which still has it at 0x148) would only echo that, so it is not checked.
    let l = "layouts/vmcs12_tsc_scaling.toml";
    let m = "name = \"tsc_multiplier\"";
    let s =
        edited(&[(l, m, "offset = 328", "offset = 336"), (l, "name = \"padding64\"", "offset = 336", "offset = 328")]);
    let d = errors(&s);
    let lock = "pinned member `tsc_multiplier` of layout `vmcs12_tsc_scaling` (released revision 0x11e57ed0) moved from offset 0x148 to 0x150";
    expect_at(&d, &s, l, m, "336", lock);
    assert!(!d.iter().any(|e| e.message.contains("previous layout")), "the step echoes the lock:\n{d}");
    // The same move in a layout without a lock of its own is the step's to refuse.
    let l = "layouts/vmcs12_dead_space.toml";
    let sources =
        edited(&[(l, m, "offset = 328", "offset = 336"), (l, "name = \"padding64\"", "offset = 336", "offset = 328")]);
    let mut sources = sources;
    sources.files.retain(|f| f.name != "locks/vmcs12_dead_space.lock.toml");
    sources.set(l, common::text_of(&sources, l).replace("released = true", "released = false"));
    let d = errors(&sources);
    let step =
        "pinned member `tsc_multiplier` of previous layout `vmcs12_tsc_scaling` moved from offset 0x148 to 0x150";
    expect_at(&d, &sources, l, m, "336", step);
}

#[test]
fn retiring_needs_to_be_declared() {
    let l = "layouts/vmcs12_dead_space.toml";
    let m = "name = \"dead_space\"";
    let s = edited(&[(l, m, "retires = [\"cr3_target_value0\", ", "retires = [")]);
    let d = errors(&s);
    let e = d.iter().find(|e| {
        e.message.contains(
            "pinned member `cr3_target_value0` (offset 0x178) of previous layout `vmcs12_tsc_scaling` was removed",
        )
    });
    let e = e.unwrap_or_else(|| panic!("{d}"));
    assert!(e.notes[0].contains("retires"));
    let s = edited(&[(l, m, "retires = [\"cr3_target_value0\"", "retires = [\"cr3_target_valueX\"")]);
    let d = errors(&s);
    assert!(
        d.iter().any(|e| e.message
            == "`dead_space` retires `cr3_target_valueX`, which previous layout `vmcs12_tsc_scaling` does not have"),
        "{d}"
    );
}
