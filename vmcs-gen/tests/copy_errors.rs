//! The copy-set errors that keep the generated routines safe for an L0, each at the offending
//! file:line:column: raw copies into vmcs02 of what must be translated or is L0's, the shadow-VMCS
//! invariants, hooks without a declared type, and the dirty/lazy invariants.

mod common;

use common::{edited, errors, expect_at};

const C: &str = "copysets.toml";
const F: &str = "fields.toml";

#[test]
fn raw_copy_of_a_guest_physical_address_into_vmcs02() {
    let m = "name = \"prepare_pages\"";
    let s = edited(&[(C, m, "hook = \"vmcs02_apic_access_addr\", ", "")]);
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        m,
        "\"APIC_ACCESS_ADDR\"",
        "set `prepare_pages` copies `APIC_ACCESS_ADDR` into vmcs02 as L1 wrote it, but it holds an L1 guest-physical address",
    );
    assert!(e.notes[0].contains("`hook`"), "{e}");
}

#[test]
fn raw_copy_of_an_l0_owned_field_into_vmcs02() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, ", hook = \"vmcs02_exception_bitmap\"", "")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        m,
        "\"EXCEPTION_BITMAP\"",
        "copies `EXCEPTION_BITMAP` into vmcs02 as L1 wrote it, but it is L0-owned: vmcs02 intercepts L0's exceptions",
    );
    // Through an `else` too.
    let s = edited(&[(C, m, "else = { hook = \"vmcs02_l1_debugctl\" }", "else = { from = \"GUEST_IA32_DEBUGCTL\" }")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"GUEST_IA32_DEBUGCTL\"", "copies `GUEST_IA32_DEBUGCTL` into vmcs02 as L1 wrote it");
    // The mark is what makes it an error: without `l0_owned`, the copy is accepted.
    let s = edited(&[
        (C, m, ", hook = \"vmcs02_exception_bitmap\"", ""),
        (F, "name = \"EXCEPTION_BITMAP\"", "l0_owned = \"vmcs02 intercepts L0's exceptions as well as L1's\"\n", ""),
    ]);
    vmcs_gen::Schema::load(&s).unwrap();
}

#[test]
fn raw_copy_of_host_state_into_vmcs02() {
    let m = "name = \"prepare\"";
    let s =
        edited(&[(C, m, "{ field = \"GUEST_RFLAGS\" },", "{ field = \"GUEST_RFLAGS\" }, { field = \"HOST_RIP\" },")]);
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        m,
        "\"HOST_RIP\"",
        "copies `HOST_RIP` into vmcs02 as L1 wrote it, but vmcs02's host state is L0's",
    );
    assert!(e.message.contains("returns to L0"), "{e}");
}

#[test]
fn shadow_read_write_field_no_entry_consumes() {
    let m = "name = \"prepare_early\"";
    let s = edited(&[(C, m, "    { field = \"TPR_THRESHOLD\", when = \"proc.use_tpr_shadow\" },\n", "")]);
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        "name = \"shadow_read_write\"",
        "\"TPR_THRESHOLD\"",
        "read-write shadow field `TPR_THRESHOLD` is consumed by no set that runs on every entry or exit",
    );
    assert!(e.notes[0].contains("l0_owned"), "{e}");
    // Declared L0-owned, with why: accepted.
    let s = edited(&[
        (C, m, "    { field = \"TPR_THRESHOLD\", when = \"proc.use_tpr_shadow\" },\n", ""),
        (F, "name = \"TPR_THRESHOLD\"", "doc = ", "l0_owned = \"L0 emulates the TPR\"\ndoc = "),
    ]);
    vmcs_gen::Schema::load(&s).unwrap();
}

#[test]
fn shadow_read_only_field_no_exit_refreshes() {
    let s = edited(&[(C, "name = \"sync\"", "    { field = \"GUEST_LINEAR_ADDRESS\" },\n", "")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"shadow_read_only\"",
        "\"GUEST_LINEAR_ADDRESS\"",
        "read-only shadow field `GUEST_LINEAR_ADDRESS` is refreshed by no exit set",
    );
}

#[test]
fn hook_without_a_declared_type() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "hook = \"vmcs02_exception_bitmap\"", "hook = \"vmcs02_exception_bitmaps\"")]);
    let d = errors(&s);
    let e =
        expect_at(&d, &s, C, m, "\"vmcs02_exception_bitmaps\"", "hook `vmcs02_exception_bitmaps` has no declared type");
    assert!(e.notes[0].contains("type = \"u32\""), "{e}");
    // A [[hook]] without `type`.
    let h = "name = \"vmcs02_exception_bitmap\"";
    let s = edited(&[(C, h, "type = \"u32\"\n", "")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "[[hook]]\nname = \"vmcs02_exception_bitmap\"", "[[hook]]", "missing field `type`");
    // A type that is not the field's width.
    let s = edited(&[(C, "name = \"vmcs02_vpid\"", "type = \"u16\"", "type = \"u32\"")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"prepare_rare\"",
        "\"vmcs02_vpid\"",
        "hook `vmcs02_vpid` returns u32 but `VIRTUAL_PROCESSOR_ID` is 16-bit",
    );
    let s = edited(&[(C, "name = \"vmcs02_vpid\"", "type = \"u16\"", "type = \"word\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "name = \"vmcs02_vpid\"", "\"word\"", "unknown hook type `word`");
}

#[test]
fn hook_inputs_from_a_role_the_set_lacks() {
    let s =
        edited(&[(C, "name = \"vmcs02_guest_cr0\"", "inputs = [\"GUEST_CR0\"]", "inputs = [\"vmcs01.GUEST_CR0\"]")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"prepare\"",
        "\"vmcs02_guest_cr0\"",
        "hook `vmcs02_guest_cr0` reads vmcs01.GUEST_CR0, but set `prepare` moves vmcs12 -> vmcs02",
    );
    let s = edited(&[(C, "name = \"vmcs02_guest_cr0\"", "\"GUEST_CR0\"", "\"GUEST_CR9\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "name = \"vmcs02_guest_cr0\"", "\"GUEST_CR9\"", "unknown field `GUEST_CR9`");
}

#[test]
fn conditions_name_predicates_or_control_bits() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "when = \"l0_ept\"", "when = \"basic.true_ctls\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, C, m, "basic.true_ctls", "capability `basic.true_ctls` is no control bit of vmcs12");
    assert!(e.notes[0].contains("MSR `basic` of capabilities.toml names no control `field`"), "{e}");
    let s = edited(&[(C, m, "entry.load_debug_controls", "entry.load_debug_control")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "entry.load_debug_control", "unknown capability `entry.load_debug_control`");
    // Control bits need the field that holds them.
    let s = edited(&[("capabilities.toml", "name = \"entry\"", "field = \"VM_ENTRY_CONTROLS\"\n", "")]);
    let d = errors(&s);
    assert!(d.iter().any(|e| e.message == "capability `entry.load_debug_controls` is no control bit of vmcs12"), "{d}");
}

#[test]
fn lazily_synced_fields_need_their_own_tracked_entry() {
    let s = edited(&[(C, "name = \"prepare_rare\"", "{ field = \"GUEST_ES_LIMIT\" }, ", "")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"sync_rare\"",
        "\"GUEST_ES_LIMIT\"",
        "lazily synced field `GUEST_ES_LIMIT` needs a dirty-tracked entry that copies it alone into vmcs02",
    );
    // An entry set reading a lazily synced field would read a stale vmcs12.
    let s = edited(&[(
        C,
        "name = \"vmcs02_guest_cr0\"",
        "inputs = [\"GUEST_CR0\"]",
        "inputs = [\"GUEST_CR0\", \"GUEST_ES_BASE\"]",
    )]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"sync_rare\"",
        "\"GUEST_ES_BASE\"",
        "set `prepare` reads `GUEST_ES_BASE` for `GUEST_CR0`, but set `sync_rare` brings it into vmcs12 only lazily",
    );
}

#[test]
fn untracked_exit_copies_feed_no_other_tracked_entry() {
    let s = edited(&[(
        C,
        "name = \"vmcs02_vpid\"",
        "inputs = [\"VIRTUAL_PROCESSOR_ID\"",
        "inputs = [\"GUEST_RIP\", \"VIRTUAL_PROCESSOR_ID\"",
    )]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"sync\"",
        "\"GUEST_RIP\"",
        "set `sync` copies `GUEST_RIP` back from vmcs02 without dirtying, but `VIRTUAL_PROCESSOR_ID` of set `prepare_rare`",
    );
}

#[test]
fn treatments_are_checked() {
    let m = "name = \"load_host_state\"";
    let s = edited(&[(C, m, "value = 0x67", "value = 0x100000000")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "0x100000000", "0x100000000 does not fit a 32-bit field");
    let s = edited(&[(
        C,
        "name = \"sync\"",
        "merge = \"entry.ia32e_mode_guest\"",
        "merge = \"exit.host_address_space_size\"",
    )]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"sync\"",
        "\"exit.host_address_space_size\"",
        "`exit.host_address_space_size` is a bit of `VM_EXIT_CONTROLS`, not of `VM_ENTRY_CONTROLS`",
    );
    let s = edited(&[(C, m, "from = \"HOST_RSP\"", "from = \"HOST_CS_SELECTOR\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"HOST_CS_SELECTOR\"", "`HOST_CS_SELECTOR` is 16-bit, `GUEST_RSP` is natural-width");
    let s = edited(&[(C, m, "from = \"HOST_RSP\"", "from = \"HOST_RSP\", value = 0x777")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "0x777", "a value comes from one of `from`, `value` or `hook`");
    let s = edited(&[(C, "name = \"sync\"", "runs = \"exit\"", "runs = \"exit\"\ndirty = true")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "name = \"sync\"", "true", "only entry sets from vmcs12 to vmcs02 track what changed");
    let s = edited(&[(C, "name = \"sync\"", "runs = \"exit\"", "runs = \"always\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "name = \"sync\"", "\"always\"", "unknown `runs` `always`");
}

const FIRST_PREDICATE: &str = "[[predicate]]\nname = \"run_pending\"";

#[test]
fn a_dirty_set_watches_at_most_64_values() {
    // prepare_rare watches 12 predicates and control bits; 53 more on its last entry make 65.
    let preds: String =
        (0..53).map(|n| format!("[[predicate]]\nname = \"p{n}\"\ndoc = \"A test fact.\"\n\n")).collect();
    let any = (0..53).map(|n| format!("p{n}")).collect::<Vec<_>>().join(" | ");
    let grown = |extra: usize| {
        let any = any.rsplitn(extra + 1, " | ").last().unwrap().to_string();
        edited(&[
            (C, FIRST_PREDICATE, FIRST_PREDICATE, &format!("{preds}{FIRST_PREDICATE}")),
            (
                C,
                "name = \"prepare_rare\"",
                "{ field = \"GUEST_INTR_SSP_TABLE\", when = \"entry.load_cet_state & guest_shstk\"",
                &format!(
                    "{{ field = \"GUEST_INTR_SSP_TABLE\", when = \"entry.load_cet_state & guest_shstk & ({any})\""
                ),
            ),
        ])
    };
    let s = grown(0);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        "name = \"prepare_rare\"",
        "\"GUEST_INTR_SSP_TABLE\"",
        "dirty set `prepare_rare` depends on more than 64 predicates and control bits",
    );
    // One fewer fits: the set remembers them in one word.
    vmcs_gen::Schema::load(&grown(1)).unwrap();
}
