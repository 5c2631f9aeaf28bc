//! exits.toml and instruction_errors.toml: the shipped tables against the Linux 7.2.8 references,
//! and every class of mistake in them reported at the offending text.

mod common;

use common::{edited, errors, expect_at, reference};
use vmcs_gen::Schema;

/// Exit reasons the references do not list: taken from the SDM (Vol. 3D Appendix C) alone.
const SDM_ONLY_REASONS: &[u16] = &[5, 6, 11, 17, 65, 66, 69, 70, 72, 73, 78, 79];
/// VM-instruction errors KVM never produces, so vmx-exits.json does not list them (SDM Vol. 3C 31.4).
const SDM_ONLY_ERRORS: &[u32] = &[1, 6, 16, 17, 18, 19, 20, 22, 23, 24, 25];

#[test]
fn exit_reasons_match_linux() {
    let schema = Schema::shipped().unwrap();
    let want = reference("vmx-exits.json");
    let want = want["exit_reasons"].as_object().unwrap();
    for (n, name) in want {
        let n: u16 = n.parse().unwrap();
        let ours = schema.reasons.iter().find(|r| r.number == n);
        assert_eq!(ours.map(|r| r.name.as_str()), name.as_str(), "exit reason {n}");
    }
    let extra: Vec<u16> =
        schema.reasons.iter().map(|r| r.number).filter(|n| !want.contains_key(&n.to_string())).collect();
    assert_eq!(extra, SDM_ONLY_REASONS);
}

#[test]
fn instruction_errors_match_linux() {
    let schema = Schema::shipped().unwrap();
    let want = reference("vmx-exits.json");
    let want = want["instruction_errors"].as_object().unwrap();
    for n in want.keys() {
        let n: u32 = n.parse().unwrap();
        assert!(schema.instruction_errors.iter().any(|e| e.number == n), "error {n} missing");
    }
    let extra: Vec<u32> =
        schema.instruction_errors.iter().map(|e| e.number).filter(|n| !want.contains_key(&n.to_string())).collect();
    assert_eq!(extra, SDM_ONLY_ERRORS);
}

#[test]
fn qualifications_belong_to_exit_qualification() {
    let schema = Schema::shipped().unwrap();
    let linked: Vec<&str> =
        schema.reasons.iter().filter(|r| r.qualification.is_some()).map(|r| r.name.as_str()).collect();
    assert_eq!(linked, ["TASK_SWITCH", "CR_ACCESS", "DR_ACCESS", "IO_INSTRUCTION", "EPT_VIOLATION"]);
}

/// (marker, from, to, text the error points at, message part): one mistake each. The edit
/// replaces the first `from` after `marker`, and the marker survives it.
const MISTAKES: &[(&str, &str, &str, &str, &str)] = &[
    ("name = \"SIPI\"", "number = 5", "number = 4", "4", "exit reason 4 is already `SIPI`"),
    ("number = 12\n", "HLT", "Hlt", "\"Hlt\"", "must be UPPER_SNAKE_CASE"),
    ("name = \"NMI_WINDOW\"", "number = 9", "number = 70000", "70000", "exit reason number 70000"),
    (
        "name = \"TASK_SWITCH\"",
        "task_switch_qualification",
        "task_switch_qual",
        "\"task_switch_qual\"",
        "unknown bitfield",
    ),
    ("name = \"CR_ACCESS\"", "cr_access_qualification", "vm_exit_reason", "\"vm_exit_reason\"", "does not decode"),
    (
        "name = \"interruption_info\"",
        "\"VM_EXIT_INTR_INFO\"",
        "\"VM_EXIT_INTR_INF\"",
        "\"VM_EXIT_INTR_INF\"",
        "unknown field",
    ),
    (
        "name = \"vm_exit_reason\"",
        "\"VM_EXIT_REASON\"]",
        "\"VM_EXIT_REASON\", \"EXIT_QUALIFICATION\"]",
        "\"EXIT_QUALIFICATION\"",
        "has 64 bits",
    ),
    (
        "name = \"vm_exit_reason\"",
        "[\"VM_EXIT_REASON\"]",
        "\"VM_EXIT_REASON\"",
        "\"VM_EXIT_REASON\"",
        "invalid type: string, expected an array",
    ),
    ("name = \"enclave_mode\"", "bits = \"27\"", "bits = \"15\"", "\"15\"", "overlap `basic`"),
    ("name = \"entry_failure\"", "bits = \"31\"", "bits = \"32\"", "\"32\"", "outside the 32-bit field"),
    ("name = \"lmsw_source\"", "\"31:16\"", "\"16:31\"", "\"16:31\"", "the high bit comes first"),
    ("name = \"lmsw_memory_operand\"", "\"11:8\"", "\"11-8\"", "\"11-8\"", "must be \"HI:LO\""),
    ("bits = \"13\"", "single_step", "SingleStep", "\"SingleStep\"", "must be snake_case"),
    ("name = \"single_step\"", "\"rtm\"", "\"bits\"", "\"bits\"", "cannot name a bit range"),
    ("\"CLTS.\" }", "value = 3", "value = 4", "4", "value 4 (0x4) is out of range (0..=3)"),
    ("\"CLTS.\" }", "value = 3", "value = 2", "2", "value 2 is already `clts`"),
    ("name = \"access_type\"", "\"CrAccessType\"", "\"TaskSwitchSource\"", "\"TaskSwitchSource\"", "duplicate enum"),
    ("name = \"size\"", "\"IoSize\"", "\"io_size\"", "\"io_size\"", "must be UpperCamelCase"),
    ("name = \"basic\"", "\"exit-reason\"", "\"reason\"", "\"reason\"", "unknown type `reason`"),
    (
        "name = \"port\"",
        "bits = \"31:16\"",
        "bits = \"31:16\"\ntype = \"exit-reason\"\nenum = \"Port\"",
        "\"exit-reason\"",
        "exclude each other",
    ),
];

/// Each mistake of `cases` in `file` alone: one diagnostic, at the mutated text.
fn each_located(file: &str, cases: &[(&str, &str, &str, &str, &str)]) {
    for (marker, from, to, at, message) in cases {
        eprintln!("mistake: {to:?} for {from:?} after {marker:?}");
        let sources = edited(&[(file, marker, from, to)]);
        let diags = errors(&sources);
        expect_at(&diags, &sources, file, marker, at, message);
        assert_eq!(diags.len(), 1, "one mistake, one error:\n{diags}");
    }
}

#[test]
fn every_mistake_in_exits_is_located() {
    each_located("exits.toml", MISTAKES);
}

#[test]
fn every_mistake_in_instruction_errors_is_located() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "name = \"UNSUPPORTED_COMPONENT\"",
            "number = 13",
            "number = 12",
            "12",
            "error 12 is already `UNSUPPORTED_COMPONENT`",
        ),
        ("reserved.", "number = 1", "number = 0", "0", "numbers start at 1"),
        ("number = 2\n", "VMCLEAR_INVALID_ADDRESS", "vmclear", "\"vmclear\"", "must be UPPER_SNAKE_CASE"),
        ("number = 3\n", "doc =", "text =", "text", "unknown field `text`"),
    ];
    each_located("instruction_errors.toml", cases);
}

#[test]
fn tables_are_required() {
    for name in ["exits.toml", "instruction_errors.toml"] {
        let mut sources = vmcs_gen::SchemaSources::embedded();
        sources.files.retain(|f| f.name != name);
        let diags = errors(&sources);
        assert!(diags.iter().any(|d| d.message == format!("{name} is missing")), "{diags}");
    }
}
