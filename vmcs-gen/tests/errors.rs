//! One test per schema error class: each edits the shipped schema and asserts the message and
//! the file:line:column the error points at.

mod common;

use common::{edited, errors, expect_at};

const F: &str = "fields.toml";
const L: &str = "layouts/vmcs12.toml";
const RIP: &str = "name = \"GUEST_RIP\"";
const RSP: &str = "name = \"GUEST_RSP\"";

#[test]
fn reserved_bit_12() {
    let s = edited(&[(F, RIP, "0x681E", "0x781E")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, F, RIP, "0x781E", "sets reserved bits 0x1000");
    assert!(e.notes[0].contains("bit 12 and bits 31:15"));
}

#[test]
fn reserved_bits_31_15() {
    let s = edited(&[(F, RIP, "0x681E", "0x1681E")]);
    let d = errors(&s);
    expect_at(&d, &s, F, RIP, "0x1681E", "sets reserved bits 0x10000");
}

#[test]
fn high_access_declared_directly() {
    let s = edited(&[(F, RIP, "0x681E", "0x681F")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, F, RIP, "0x681F", "is a high-access encoding (bit 0 set)");
    assert_eq!(e.notes[0], "only 64-bit fields have a high half; 0x681e is a natural-width field");
    let m = "name = \"TSC_OFFSET\"";
    let s = edited(&[(F, m, "0x2010", "0x2011")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, F, m, "0x2011", "is a high-access encoding (bit 0 set)");
    assert_eq!(e.notes[0], "declare the 64-bit field once at 0x2010; its high half is derived");
}

#[test]
fn width_disagrees_with_encoding() {
    let s = edited(&[(F, RIP, "\"natural\"", "\"32\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, F, RIP, "\"32\"", "width 32 disagrees with encoding 0x681e");
    assert!(e.notes[0].contains("say natural"));
}

#[test]
fn kind_disagrees_with_encoding() {
    let s = edited(&[(F, RIP, "\"guest-state\"", "\"host-state\"")]);
    let d = errors(&s);
    expect_at(&d, &s, F, RIP, "\"host-state\"", "kind host-state disagrees with encoding 0x681e");
}

#[test]
fn duplicate_name() {
    let s = edited(&[(F, RSP, "GUEST_RSP", "GUEST_RIP")]);
    let d = errors(&s);
    // The second declaration (in encoding order GUEST_RSP 0x681C comes first) is the duplicate.
    let e =
        expect_at(&d, &s, F, "\"GUEST_RIP\"\nencoding = 0x681E", "\"GUEST_RIP\"", "duplicate field name `GUEST_RIP`");
    assert!(e.notes[0].starts_with("first declared at line"));
}

#[test]
fn duplicate_encoding() {
    let s = edited(&[(F, RSP, "0x681C", "0x681E")]);
    let d = errors(&s);
    expect_at(&d, &s, F, RIP, "0x681E", "encoding 0x681e is already declared by `GUEST_RSP`");
}

#[test]
fn gate_names_unknown_capability() {
    let m = "name = \"TSC_MULTIPLIER\"";
    let s = edited(&[(F, m, "gate = \"", "gate = \"proc9.nothing | ")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, F, m, "proc9.nothing", "gate names unknown capability `proc9.nothing`");
    assert_eq!(e.snippet(), "proc9.nothing");
}

#[test]
fn gate_syntax_error() {
    let m = "name = \"TSC_MULTIPLIER\"";
    let s = edited(&[(F, m, "gate = \"", "gate = \"& ")]);
    let d = errors(&s);
    expect_at(&d, &s, F, m, "&", "invalid gate: expected a capability name");
}

#[test]
fn unknown_key_is_rejected() {
    let s = edited(&[(F, RIP, "width =", "colour = \"red\"\nwidth =")]);
    let d = errors(&s);
    expect_at(&d, &s, F, RIP, "colour", "unknown field `colour`");
}

#[test]
fn toml_syntax_error_is_located() {
    let s = edited(&[(F, RIP, "encoding = 0x681E", "encoding = = 0x681E")]);
    let d = errors(&s);
    assert!(d.iter().any(|e| e.path.ends_with(F) && e.line == common::position(&s, F, RIP, "encoding").0), "{d}");
}

#[test]
fn member_overlaps_another() {
    let m = "name = \"io_bitmap_b\"";
    let s = edited(&[(L, m, "offset = 48", "offset = 44")]);
    let d = errors(&s);
    expect_at(&d, &s, L, m, "44", "member `io_bitmap_b` at 0x2c..0x34 overlaps member `io_bitmap_a` at 0x28..0x30");
}

#[test]
fn member_leaves_region() {
    let m = "name = \"guest_pml_index\"";
    let s = edited(&[(L, m, "offset = 996", "offset = 4095")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        L,
        m,
        "4095",
        "member `guest_pml_index` (0xfff..0x1001) leaves the 0x1000-byte region of layout `vmcs12`",
    );
}

#[test]
fn member_type_does_not_match_field_width() {
    let m = "name = \"io_bitmap_a\"";
    let s = edited(&[(L, m, "\"u64\"", "\"u32\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, L, m, "\"u32\"", "member type u32 does not match field `IO_BITMAP_A`");
    assert!(e.notes[0].contains("64-bit field, stored as u64"));
}

#[test]
fn field_mapped_twice() {
    let m = "name = \"io_bitmap_b\"";
    let s = edited(&[(L, m, "\"IO_BITMAP_B\"", "\"IO_BITMAP_A\"")]);
    let d = errors(&s);
    expect_at(&d, &s, L, m, "\"IO_BITMAP_A\"", "field `IO_BITMAP_A` is mapped twice (also by member `io_bitmap_a`)");
}

#[test]
fn unknown_field_mapped() {
    let m = "name = \"io_bitmap_b\"";
    let s = edited(&[(L, m, "\"IO_BITMAP_B\"", "\"IO_BITMAP_Z\"")]);
    let d = errors(&s);
    expect_at(&d, &s, L, m, "\"IO_BITMAP_Z\"", "member maps unknown field `IO_BITMAP_Z`");
}

#[test]
fn every_error_of_a_run_is_reported_at_once() {
    // Every error of the fields at once; the layouts, which name the fields, wait for them.
    let s = edited(&[
        (F, RIP, "0x681E", "0x681F"),
        (F, RSP, "\"natural\"", "\"16\""),
        (F, "name = \"GUEST_CR0\"", "\"guest-state\"", "\"control\""),
        (L, "name = \"io_bitmap_b\"", "\"IO_BITMAP_B\"", "\"IO_BITMAP_Z\""),
    ]);
    let d = errors(&s);
    assert_eq!(d.len(), 3, "{d}");
    for msg in ["high-access encoding", "width 16 disagrees", "kind control disagrees"] {
        assert!(d.iter().any(|e| e.message.contains(msg)), "missing {msg:?} in:\n{d}");
    }
    assert!(d.to_string().ends_with("3 errors in the schema"));
    // With the fields right, every layout error at once.
    let s = edited(&[
        (L, "name = \"io_bitmap_b\"", "\"IO_BITMAP_B\"", "\"IO_BITMAP_Z\""),
        (L, "name = \"guest_pml_index\"", "offset = 996", "offset = 4095"),
        ("layouts/evmcs.toml", "name = \"io_bitmap_a\"", "\"IO_BITMAP_A\"", "\"IO_BITMAP_Y\""),
    ]);
    let d = errors(&s);
    for msg in ["unknown field `IO_BITMAP_Z`", "leaves the 0x1000-byte region", "unknown field `IO_BITMAP_Y`"] {
        assert!(d.iter().any(|e| e.message.contains(msg)), "missing {msg:?} in:\n{d}");
    }
}

#[test]
fn msr_requires_cycle() {
    // IA32_VMX_PROCBASED_CTLS existing only if a secondary control is allowed: proc2 requires proc.
    let c = "capabilities.toml";
    let m = "name = \"proc\"";
    let s = edited(&[(c, m, "kind = \"control\"", "kind = \"control\"\nrequires = \"proc2.enable_ept\"")]);
    let d = errors(&s);
    expect_at(&d, &s, c, m, "\"proc2.enable_ept\"", "MSR `proc` requires itself through its `requires` chain");
}

#[test]
fn capability_bit_out_of_range() {
    let c = "capabilities.toml";
    let m = "name = \"proc2.enable_vpid\"";
    let s = edited(&[(c, m, "bit = 5", "bit = 37")]);
    let d = errors(&s);
    expect_at(&d, &s, c, m, "37", "bit 37 (0x25) is out of range (0..=31)");
}

#[test]
fn msr_control_field_must_be_a_control_of_its_width() {
    let c = "capabilities.toml";
    let m = "name = \"pin\"";
    let s = edited(&[(c, m, "\"PIN_BASED_VM_EXEC_CONTROL\"", "\"GUEST_RIP\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, c, m, "\"GUEST_RIP\"", "`GUEST_RIP` cannot hold the controls of MSR `pin`");
    assert_eq!(
        e.notes[0],
        "a \"control\" MSR reports a 32-bit control field; `GUEST_RIP` is a natural-width guest-state field"
    );
    // A "flags" MSR reports a 64-bit allowed-1 vector.
    let m = "name = \"proc3\"";
    let s = edited(&[(c, m, "\"TERTIARY_VM_EXEC_CONTROL\"", "\"CPU_BASED_VM_EXEC_CONTROL\"")]);
    let d = errors(&s);
    expect_at(&d, &s, c, m, "\"CPU_BASED_VM_EXEC_CONTROL\"", "cannot hold the controls of MSR `proc3`");
    let s = edited(&[(c, m, "\"TERTIARY_VM_EXEC_CONTROL\"", "\"TERTIARY_CONTROLS\"")]);
    let d = errors(&s);
    expect_at(&d, &s, c, m, "\"TERTIARY_CONTROLS\"", "unknown field `TERTIARY_CONTROLS`");
}

const C: &str = "copysets.toml";

#[test]
fn copy_set_unknown_field() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "\"GUEST_RFLAGS\"", "\"GUEST_RFLAGZ\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"GUEST_RFLAGZ\"", "unknown field `GUEST_RFLAGZ`");
}

#[test]
fn copy_set_field_not_in_vmcs12() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "\"GUEST_RFLAGS\"", "\"GUEST_SMBASE\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"GUEST_SMBASE\"", "field `GUEST_SMBASE` has no member in layout `vmcs12`");
}

#[test]
fn copy_set_read_only_destination() {
    // VM-exit information cannot be VMWRITten into vmcs02.
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "\"GUEST_RFLAGS\"", "\"VM_EXIT_REASON\"")]);
    let d = errors(&s);
    let e = expect_at(
        &d,
        &s,
        C,
        m,
        "\"VM_EXIT_REASON\"",
        "read-only field `VM_EXIT_REASON` cannot be a destination of set `prepare`",
    );
    assert!(e.notes[0].contains("error 13"));
    // Nor shadowed read-write: L1 may not VMWRITE it.
    let m = "name = \"shadow_read_write\"";
    let s = edited(&[(C, m, "\"GUEST_RIP\"", "\"EXIT_QUALIFICATION\"")]);
    let d = errors(&s);
    expect_at(
        &d,
        &s,
        C,
        m,
        "\"EXIT_QUALIFICATION\"",
        "read-only field `EXIT_QUALIFICATION` cannot be a destination of set `shadow_read_write`",
    );
}

#[test]
fn copy_set_unknown_predicate() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "when = \"l0_ept\"", "when = \"l0_eptt\"")]);
    let d = errors(&s);
    let e = expect_at(&d, &s, C, m, "l0_eptt", "condition names unknown predicate `l0_eptt`");
    assert_eq!(e.notes[0], "declare it as a [[predicate]]");
}

#[test]
fn copy_set_duplicates() {
    let m = "name = \"prepare\"";
    let s = edited(&[(C, m, "{ field = \"GUEST_RSP\" }", "{ field = \"GUEST_RIP\" }")]);
    let d = errors(&s);
    expect_at(&d, &s, C, "\"GUEST_RIP\" },\n]", "\"GUEST_RIP\"", "field `GUEST_RIP` is copied twice in set `prepare`");
    // Two hooks of one name.
    let m = "name = \"vmcs02_l1_ssp\"";
    let s = edited(&[(C, m, "vmcs02_l1_ssp", "vmcs02_l1_s_cet")]);
    let d = errors(&s);
    assert!(d.iter().any(|e| e.message == "duplicate hook `vmcs02_l1_s_cet`"), "{d}");
    // Two predicates of one name.
    let s = edited(&[(C, "name = \"l0_vpid\"", "l0_vpid", "l0_ept")]);
    let d = errors(&s);
    assert!(d.iter().any(|e| e.message == "duplicate predicate `l0_ept`"), "{d}");
}

#[test]
fn copy_set_bad_roles() {
    let m = "name = \"sync\"";
    let s = edited(&[(C, m, "to = \"vmcs12\"", "to = \"vmcs03\"")]);
    let d = errors(&s);
    expect_at(&d, &s, C, m, "\"vmcs03\"", "unknown role `vmcs03`");
    let s = edited(&[(C, m, "from = \"vmcs02\"", "from = \"vmcs12\"")]);
    let d = errors(&s);
    let to = "to = \"vmcs12\"\nruns = \"exit\"\ncopy = [\n    { field = \"GUEST_CR0\"";
    expect_at(
        &d,
        &s,
        C,
        to,
        "\"vmcs12\"",
        "a copy set moves fields between vmcs12 and vmcs02, vmcs01, the shadow VMCS or an eVMCS",
    );
}

#[test]
fn unknown_schema_file() {
    let mut s = vmcs_gen::SchemaSources::embedded();
    s.set("capabilites.toml", "");
    let d = errors(&s);
    let e = d.iter().find(|e| e.message == "unknown schema file `capabilites.toml`").unwrap_or_else(|| panic!("{d}"));
    assert_eq!(e.location(), "schema/capabilites.toml:1:1");
}
