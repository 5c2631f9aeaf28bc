//! The lock of released layouts: pinned members may not change, move or disappear; reserved space
//! may be claimed (as KVM did for tsc_multiplier and the CET fields under revision 0x11e57ed0).

mod common;

use common::{edited, errors, expect_at, text_of};
use vmcs_gen::model::{Member, MemberType};
use vmcs_gen::{Schema, SchemaSources};

const L: &str = "layouts/vmcs12.toml";

/// Rewrite the vmcs12 layout file with `members` (in order, offsets reassigned back to back).
fn with_members(members: &[Member]) -> SchemaSources {
    let schema = Schema::shipped().unwrap();
    let mut sources = SchemaSources::embedded();
    let text = text_of(&sources, L);
    let mut out = text[..text.find("[[member]]").unwrap()].to_string();
    let mut offset = 0;
    for m in members {
        out.push_str(&format!("[[member]]\nname = \"{}\"\noffset = {offset}\ntype = \"{}\"\n", m.name, m.ty.as_str()));
        if m.ty == MemberType::Reserved {
            out.push_str(&format!("size = {}\n", m.size));
        }
        match (m.field, &m.doc) {
            (Some(f), _) => out.push_str(&format!("field = \"{}\"\n", schema.fields[f].name)),
            (None, Some(d)) => out.push_str(&format!("doc = \"{d}\"\n")),
            (None, None) => {}
        }
        out.push('\n');
        offset += m.size;
    }
    sources.set(L, out);
    sources
}

fn shipped_members() -> Vec<Member> {
    let mut m = Schema::shipped().unwrap().layout("vmcs12").unwrap().members.clone();
    m.sort_by_key(|m| m.offset);
    m
}

#[test]
fn shipped_layout_matches_its_lock() {
    Schema::shipped().expect("the shipped schema is valid and its released layout matches the lock");
}

#[test]
fn moving_one_member_is_rejected() {
    // Swap tsc_multiplier (0x148) with the reserved padding64 after it: no overlap, only the move.
    let m = "name = \"tsc_multiplier\"";
    let s =
        edited(&[(L, m, "offset = 328", "offset = 336"), (L, "name = \"padding64\"", "offset = 336", "offset = 328")]);
    let d = errors(&s);
    // The pinned member moved and the padding now sits in pinned space, against the lock; the step
    // from the previous released layout would say the same again, so it is not checked.
    assert_eq!(d.len(), 2, "{d}");
    let claim = "member `padding64` at 0x148..0x150 claims space that layout `vmcs12` (released revision 0x11e57ed0) did not reserve";
    assert!(d.iter().any(|e| e.message == claim), "{d}");
    let e = expect_at(
        &d,
        &s,
        L,
        m,
        "336",
        "pinned member `tsc_multiplier` of layout `vmcs12` (released revision 0x11e57ed0) moved from offset 0x148 to 0x150",
    );
    assert!(e.notes[0].contains("may never move"));
}

#[test]
fn pre_2018_drift_of_seed_000_is_rejected() {
    // Before commit b348e79 ("Restore the VMCS12 offsets for v4.0 fields") these four members sat
    // right after posted_intr_desc_addr, eoi_exit_bitmap3, vmcs_link_pointer and guest_intr_status.
    let mut members = shipped_members();
    let moved = [
        ("vm_function_control", "posted_intr_desc_addr"),
        ("eptp_list_address", "eoi_exit_bitmap3"),
        ("pml_address", "vmcs_link_pointer"),
        ("guest_pml_index", "guest_intr_status"),
    ];
    for (name, after) in moved {
        let i = members.iter().position(|m| m.name == name).unwrap();
        let m = members.remove(i);
        let j = members.iter().position(|m| m.name == after).unwrap();
        members.insert(j + 1, m);
    }
    let d = errors(&with_members(&members));
    // Offsets from the pre-2018 struct (seed 000) and the current one (Linux 7.2.8).
    for (name, old, new) in [
        ("vm_function_control", 0x128, 0x78),
        ("eptp_list_address", 0x130, 0xa8),
        ("pml_address", 0x138, 0xc8),
        ("guest_pml_index", 0x3e4, 0x3d6),
    ] {
        let msg = format!(
            "pinned member `{name}` of layout `vmcs12` (released revision 0x11e57ed0) moved from offset {old:#x} to {new:#x}"
        );
        assert!(d.iter().any(|e| e.message == msg), "missing {msg:?} in:\n{d}");
    }
}

#[test]
fn claiming_reserved_space_is_allowed() {
    // Like tsc_multiplier taking padding64: a new 64-bit field claims the last reserved u64.
    let mut members = shipped_members();
    let schema = Schema::shipped().unwrap();
    let rtit = schema.fields.iter().position(|f| f.name == "GUEST_IA32_RTIT_CTL").unwrap();
    let pad = members.iter_mut().find(|m| m.name == "padding64").unwrap();
    *pad = Member {
        name: "guest_ia32_rtit_ctl".into(),
        offset: pad.offset,
        size: 8,
        ty: MemberType::U64,
        field: Some(rtit),
        doc: None,
        retires: Vec::new(),
        clean: None,
        pos: pad.pos.clone(),
    };
    let schema = Schema::load(&with_members(&members)).expect("claiming padding64 keeps every pinned offset");
    let l = schema.layout("vmcs12").unwrap();
    assert_eq!(l.mapped().count(), 148);
    assert_eq!(l.members.iter().find(|m| m.name == "guest_ia32_rtit_ctl").unwrap().offset, 336);
}

#[test]
fn new_member_outside_reserved_space_is_rejected() {
    // Below the end of the released struct, every byte that is not reserved belongs to a pinned
    // member: a new member two bytes before padding32 sits on vmx_preemption_timer_value.
    let m = "name = \"padding32\"";
    let s = edited(&[(L, m, "offset = 932", "offset = 936"), (L, m, "size = 28", "size = 24")]);
    let text = text_of(&s, L);
    let mut s = s;
    s.set(L, format!("{text}\n[[member]]\nname = \"intruder\"\noffset = 930\ntype = \"u16\"\ndoc = \"x\"\n"));
    let d = errors(&s);
    assert!(
        d.iter().any(|e| e.message.contains("member `intruder` at 0x3a2..0x3a4 claims space that layout `vmcs12`")),
        "{d}"
    );
}

#[test]
fn removing_a_pinned_member_is_rejected() {
    let m = "name = \"guest_bndcfgs\"";
    let s = edited(&[(L, m, "guest_bndcfgs", "padding_bnd")]);
    let d = errors(&s);
    let e = d
        .iter()
        .find(|e| e.message.contains("pinned member `guest_bndcfgs` (offset 0xf8)"))
        .unwrap_or_else(|| panic!("{d}"));
    assert!(e.message.ends_with("was removed"), "{e}");
    assert!(e.path.ends_with("locks/vmcs12.lock.toml"), "{e}");
}

#[test]
fn changing_a_pinned_member_type_is_rejected() {
    // The same four bytes as reserved space: only the pinned type changes, reported at `type`.
    let m = "name = \"launch_state\"";
    let s = edited(&[(L, m, "type = \"u32\"", "type = \"reserved\"\nsize = 4")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        L,
        m,
        "\"reserved\"",
        "pinned member `launch_state` of layout `vmcs12` (released revision 0x11e57ed0) changed from u32 (4 bytes) to reserved (4 bytes) at offset 0x8",
    );
}

#[test]
fn changing_the_revision_is_rejected() {
    let s = edited(&[(L, "", "revision = 0x11e57ed0", "revision = 0x11e57ed1")]);
    let d = errors(&s);
    assert!(
        d.iter().any(|e| e
            .message
            .contains("revision of layout `vmcs12` (released revision 0x11e57ed0) changed to 0x11e57ed1")),
        "{d}"
    );
}

#[test]
fn deleting_a_released_layout_is_rejected() {
    let mut s = SchemaSources::embedded();
    s.files.retain(|f| f.name != L);
    let d = errors(&s);
    assert!(
        d.iter().any(|e| e.message.contains("released layout `vmcs12` (revision 0x11e57ed0) no longer exists")),
        "{d}"
    );
}

#[test]
fn lock_text_round_trips() {
    let schema = Schema::shipped().unwrap();
    let text = vmcs_gen::lock_text(schema.layout("vmcs12").unwrap());
    let shipped = text_of(&SchemaSources::embedded(), "locks/vmcs12.lock.toml");
    assert_eq!(text, shipped, "locks/vmcs12.lock.toml is not what `vmcs-gen lock vmcs12` writes");
}
