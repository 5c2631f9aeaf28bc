//! The `vmcs-gen` command line, run as a user would.

use std::process::Command;

use serde_json::Value;

fn vmcs_gen(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

use vmcs_test_support::{TempDir, reference};

fn tmp(name: &str) -> TempDir {
    TempDir::new("gen-cli", name)
}

/// The architectural fields: the reference union's full encodings (its high accesses left out),
/// and the schema's fields newer than the union's sources (each names its own source).
fn architectural_fields() -> usize {
    let union = reference("vmcs-fields-union.json");
    let sources: Vec<&str> = union["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let newer = schema.fields.iter().filter(|f| f.source.as_deref().is_some_and(|s| !sources.contains(&s))).count();
    union["fields"].as_array().unwrap().iter().filter(|f| f["access_high"] == 0).count() + newer
}

#[test]
fn check_prints_a_summary() {
    let (ok, out, _) = vmcs_gen(&["check"]);
    assert!(ok);
    assert!(out.contains(&format!("fields: {} (", architectural_fields())), "{out}");
    // vmcs12's figures are KVM's: its members, its encoding -> member table and VMCS_ENUM.
    let (layout, map) = (reference("vmcs12-layout.json"), reference("vmcs12-field-map.json"));
    let vmcs12 = format!(
        "layout vmcs12: revision {}, {} bytes used of {}, {} members, {} fields mapped, VMCS_ENUM {}",
        layout["revision"].as_str().unwrap(),
        layout["sizeof_struct"],
        layout["vmcs12_size"].as_str().unwrap(),
        layout["members"].as_array().unwrap().len(),
        map["entries"].as_array().unwrap().len(),
        map["vmcs_enum"]["all_fields_supported"]["IA32_VMX_VMCS_ENUM"].as_str().unwrap(),
    );
    assert!(out.contains(&vmcs12), "want {vmcs12:?} in\n{out}");
}

#[test]
fn layout_json_matches_the_reference_member_by_member() {
    let (ok, out, err) = vmcs_gen(&["layout", "vmcs12", "--json"]);
    assert!(ok, "{err}");
    let ours: Value = serde_json::from_str(&out).unwrap();
    let want = reference("vmcs12-layout.json");
    let (ours, want) = (ours["members"].as_array().unwrap(), want["members"].as_array().unwrap());
    assert_eq!(ours.len(), want.len());
    for (o, w) in ours.iter().zip(want) {
        assert_eq!((&o["name"], &o["offset"], &o["size"]), (&w["member"], &w["offset"], &w["size"]));
        assert!(o["encodings"].is_array());
    }
}

#[test]
fn fields_json_and_caps_filter() {
    let (ok, out, _) = vmcs_gen(&["fields", "--json"]);
    assert!(ok);
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().unwrap().len(), architectural_fields());
    let rip = all.as_array().unwrap().iter().find(|f| f["name"] == "GUEST_RIP").unwrap();
    assert_eq!(
        rip,
        &serde_json::json!({"name": "GUEST_RIP", "encoding": "0x681e", "width": "natural", "kind": "guest-state"})
    );

    // A CPU whose capability MSRs allow nothing: only ungated fields remain.
    let dir = tmp("caps");
    let caps = dir.join("none.json");
    std::fs::write(&caps, "{}").unwrap();
    let (ok, out, _) = vmcs_gen(&["fields", "--caps", caps.to_str().unwrap(), "--json"]);
    assert!(ok);
    let some: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = some.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"GUEST_RIP") && !names.contains(&"VIRTUAL_PROCESSOR_ID") && !names.contains(&"TSC_MULTIPLIER")
    );
}

#[test]
fn enum_with_caps_files() {
    assert_eq!(vmcs_gen(&["enum", "--layout", "vmcs12"]).1.trim(), "0x32");
    let dir = tmp("enum");
    // Every control allowed (TRUE controls), except secondary control 25 (use TSC scaling).
    let mut msrs = serde_json::Map::new();
    for i in 0x480..=0x493u32 {
        msrs.insert(format!("{i:#x}"), Value::String("0xffffffffffffffff".into()));
    }
    msrs.insert("0x48b".into(), Value::String(format!("{:#018x}", !(1u64 << 57))));
    let caps = dir.join("no-tsc.json");
    std::fs::write(&caps, Value::Object(msrs).to_string()).unwrap();
    let (ok, out, err) = vmcs_gen(&["enum", "--caps", caps.to_str().unwrap(), "--layout", "vmcs12"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "0x2e");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"0x480": 12}"#).unwrap();
    let (ok, _, err) = vmcs_gen(&["enum", "--caps", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("bad.json:1:11: expected the MSR value (e.g. \"0x00d810000000002b\") as a hex string"),
        "{err}"
    );
}

/// `generate` writes the runtime's whole tree, exactly (the runtime's tests compare its OUT_DIR
/// with the same tree), and nothing else.
#[test]
fn generate_writes_the_generated_tree() {
    let dir = tmp("gen");
    let (ok, _, err) = vmcs_gen(&["generate", "--out", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let want = vmcs_gen::emit::all(&vmcs_gen::Schema::shipped().unwrap());
    let mut written: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    let mut names: Vec<String> = want.iter().map(|a| a.file.clone()).collect();
    names.sort();
    assert_eq!(written, names);
    for a in &want {
        assert!(std::fs::read_to_string(dir.join(&a.file)).unwrap() == a.contents, "{}", a.file);
        assert!(a.contents.starts_with("// @generated by vmcs-gen"), "{}", a.file);
    }
    assert!(names.contains(&"generated.rs".to_string()) && names.contains(&"copy.rs".to_string()));
}

#[test]
fn bad_schema_fails_with_located_errors() {
    let dir = tmp("bad");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    for sub in ["", "layouts", "locks"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), dir.join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    let fields = dir.join("fields.toml");
    let text = std::fs::read_to_string(&fields).unwrap().replace("encoding = 0x681E", "encoding = 0x681F");
    std::fs::write(&fields, text).unwrap();
    let (ok, _, err) = vmcs_gen(&["--schema", dir.to_str().unwrap(), "check"]);
    assert!(!ok);
    assert!(err.contains("fields.toml:") && err.contains("is a high-access encoding"), "{err}");
}

#[test]
fn cli_diff_refuses_the_pre_2018_drift() {
    let file = format!("{}/../testdata/layouts/vmcs12_pre2018.toml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(["diff", "vmcs12_base", &file]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    // Seed 000: the four members at their pre-2018 offsets, read from the 2018 layout's places.
    for line in [
        "MOVED    vm_function_control          0x0128 -> 0x0078",
        "MOVED    eptp_list_address            0x0130 -> 0x00a8",
        "MOVED    pml_address                  0x0138 -> 0x00c8",
        "MOVED    guest_pml_index              0x03e4 -> 0x03d6",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.trim_end().ends_with("incompatible: 33 breaking changes"), "{text}");
    let ok =
        Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(["diff", "vmcs12_dead_space", "vmcs12"]).output().unwrap();
    assert!(ok.status.success());
    assert!(
        String::from_utf8(ok.stdout)
            .unwrap()
            .contains("compatible: vmcs12 can read every state vmcs12_dead_space wrote")
    );
}

#[test]
fn the_command_does_not_depend_on_the_runtime() {
    // The runtime's build script needs a valid schema: if vmcs-gen linked it, a schema mistake would
    // make `vmcs-gen check` itself unbuildable instead of reporting the mistake.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(
        !deps.lines().any(|l| l.trim_start().starts_with("vmcs ") || l.trim_start().starts_with("vmcs.")),
        "{deps}"
    );
}
