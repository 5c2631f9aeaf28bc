//! `vmcs-gen state decode|check` on blobs these tests write byte by byte from the references:
//! the `kvm_nested_state` header from the uAPI (testdata/reference/README.md: Linux 7.2.8
//! `struct kvm_nested_state`, `struct kvm_vmx_nested_state_hdr`) and vmcs12 members at the offsets
//! of testdata/reference/vmcs12-layout.json. Nothing here is produced by the code under test.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use vmcs_test_support::TempDir;

const INVALID_GPA: u64 = u64::MAX;
const VMXON: u64 = 0x10000;
const VMPTR: u64 = 0x20000;
const GUEST_MODE: u16 = 1;
const EVMCS: u16 = 4;
/// Reserved space in KVM's struct vmcs12: the members KVM never checks the offset of, and the
/// retired CR3-target space.
const RESERVED: [&str; 5] = ["padding", "padding64", "dead_space", "paddingl", "padding32"];

fn vmcs_gen(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Reference facts about KVM's struct vmcs12.
struct Reference {
    revision: u32,
    sizeof: usize,
    /// member -> (offset, size), in offset order.
    members: Vec<(String, usize, usize)>,
}

impl Reference {
    fn load() -> Self {
        let r = common::reference("vmcs12-layout.json");
        let members = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let n = |k: &str| m[k].as_u64().unwrap() as usize;
                (m["member"].as_str().unwrap().to_string(), n("offset"), n("size"))
            })
            .collect();
        Self {
            revision: r["revision_int"].as_u64().unwrap() as u32,
            sizeof: r["sizeof_struct"].as_u64().unwrap() as usize,
            members,
        }
    }

    fn offset(&self, member: &str) -> (usize, usize) {
        let (_, off, size) = self.members.iter().find(|(m, _, _)| m == member).unwrap();
        (*off, *size)
    }
}

/// A 4096-byte vmcs12 area with `values` stored little-endian at the reference offsets.
fn area(r: &Reference, values: &[(&str, u64)]) -> Vec<u8> {
    let mut a = vec![0u8; 4096];
    for (member, value) in values {
        let (off, size) = r.offset(member);
        a[off..off + size].copy_from_slice(&value.to_le_bytes()[..size]);
    }
    a
}

/// A blob: the header fields at their uAPI offsets, then the areas.
#[derive(Clone)]
struct Blob {
    flags: u16,
    size: u32,
    vmxon_pa: u64,
    vmcs12_pa: u64,
    smm_flags: u16,
    vmcs12: Option<Vec<u8>>,
    shadow: Option<Vec<u8>>,
}

impl Blob {
    fn off() -> Self {
        Self {
            flags: 0,
            size: 128,
            vmxon_pa: INVALID_GPA,
            vmcs12_pa: INVALID_GPA,
            smm_flags: 0,
            vmcs12: None,
            shadow: None,
        }
    }

    /// L1 in VMX operation with a current VMCS (what KVM emits: 4224 bytes).
    fn l1(r: &Reference) -> Self {
        let v = area(r, &[("hdr", r.revision as u64)]);
        Self { size: 4224, vmxon_pa: VMXON, vmcs12_pa: VMPTR, vmcs12: Some(v), ..Self::off() }
    }

    /// L2 running with VMCS shadowing in use (8320 bytes).
    fn l2_shadow(r: &Reference) -> Self {
        let v = area(
            r,
            &[
                ("hdr", r.revision as u64),
                ("cpu_based_vm_exec_control", 1 << 31),
                ("secondary_vm_exec_control", 1 << 14),
                ("vmcs_link_pointer", 0x30000),
            ],
        );
        let shadow = area(r, &[("hdr", r.revision as u64 | 1 << 31)]);
        Self { flags: GUEST_MODE, size: 8320, vmcs12: Some(v), shadow: Some(shadow), ..Self::l1(r) }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[0..2].copy_from_slice(&self.flags.to_le_bytes());
        b[4..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..16].copy_from_slice(&self.vmxon_pa.to_le_bytes());
        b[16..24].copy_from_slice(&self.vmcs12_pa.to_le_bytes());
        b[24..26].copy_from_slice(&self.smm_flags.to_le_bytes());
        if let Some(v) = &self.vmcs12 {
            b.extend_from_slice(v);
        }
        if let Some(v) = &self.shadow {
            b.resize(128 + 4096, 0);
            b.extend_from_slice(v);
        }
        b.resize((self.size as usize).max(128), 0);
        b
    }

    fn write(&self, name: &str) -> BlobFile {
        write_file(name, &self.bytes())
    }
}

/// A blob written to a file of its own directory, which goes when the value does; it reads as
/// the file's path.
struct BlobFile {
    _dir: TempDir,
    path: String,
}

impl std::ops::Deref for BlobFile {
    type Target = str;

    fn deref(&self) -> &str {
        &self.path
    }
}

impl std::fmt::Display for BlobFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

fn write_file(name: &str, bytes: &[u8]) -> BlobFile {
    let dir = TempDir::new("gen-state", name);
    let path = dir.join(format!("{name}.bin"));
    std::fs::write(&path, bytes).unwrap();
    BlobFile { path: path.to_string_lossy().into_owned(), _dir: dir }
}

fn decode_json(file: &str, extra: &[&str]) -> Value {
    let mut args = vec!["state", "decode", "--json", file];
    args.extend_from_slice(extra);
    let (code, out, err) = vmcs_gen(&args);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn decode_shows_every_reference_member_with_its_value() {
    let r = Reference::load();
    // A distinct value in every byte of every member.
    let values: Vec<(String, u64)> = r
        .members
        .iter()
        .enumerate()
        .filter(|(_, (m, _, _))| !RESERVED.contains(&m.as_str()))
        .map(|(i, (m, _, size))| {
            let v = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let v = if m == "hdr" { r.revision as u64 } else { v };
            (m.clone(), if *size == 8 { v } else { v & ((1 << (8 * size)) - 1) })
        })
        .collect();
    let pairs: Vec<(&str, u64)> = values.iter().map(|(m, v)| (m.as_str(), *v)).collect();
    let blob = Blob { vmcs12: Some(area(&r, &pairs)), ..Blob::l1(&r) };
    let file = blob.write("every-member");
    let v = decode_json(&file, &[]);
    assert_eq!(v["verdict"]["accepted"], true, "{v}");
    let members = v["vmcs12"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 150, "155 members less 5 reserved regions");
    let fields: BTreeMap<String, String> = common::reference("vmcs12-field-map.json")["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["member"].as_str().unwrap().to_string(), e["hex"].as_str().unwrap().to_string()))
        .collect();
    for (got, (name, value)) in members.iter().zip(&values) {
        assert_eq!(got["member"], name.as_str());
        assert_eq!(got["offset"].as_u64().unwrap() as usize, r.offset(name).0, "{name}");
        assert_eq!(got["value"], format!("{value:#x}"), "{name}");
        // KVM's field map names the encoding of every member it maps.
        assert_eq!(got["encoding"].as_str(), fields.get(name).map(String::as_str), "{name}");
    }
    assert_eq!(v["shadow_vmcs12"], Value::Null);

    // The text form has a line per member ending in its value.
    let (code, out, _) = vmcs_gen(&["state", "decode", &file]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("kvm_nested_state: flags 0x0 (none), format 0 (VMX), size 4224\n"), "{out}");
    assert!(out.contains("hdr.vmx: vmxon_pa 0x10000, vmcs12_pa 0x20000, smm.flags 0x0"), "{out}");
    for (name, value) in &values {
        let line = out.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap_or_else(|| panic!("{name}"));
        assert!(line.ends_with(&format!(" {value:#x}")), "{line}");
    }
    assert!(out.contains("shadow vmcs12: absent (size 4224 < 5222)"), "{out}");
    assert!(out.trim_end().ends_with("accepted by KVM_SET_NESTED_STATE's blob rules (Linux 7.2.8)"), "{out}");
}

#[test]
fn check_accepts_the_states_kvm_emits() {
    let r = Reference::load();
    let vmxon_only = Blob { vmxon_pa: VMXON, ..Blob::off() };
    for (name, blob) in
        [("off", Blob::off()), ("vmxon", vmxon_only), ("l1", Blob::l1(&r)), ("l2-shadow", Blob::l2_shadow(&r))]
    {
        let file = blob.write(name);
        let (code, out, err) = vmcs_gen(&["state", "check", &file]);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(out.contains(": accepted"), "{out}");
    }
    // 128 + sizeof(struct vmcs12) is enough for a vmcs12.
    let file = Blob { size: (128 + r.sizeof) as u32, ..Blob::l1(&r) }.write("l1-short");
    assert_eq!(vmcs_gen(&["state", "check", &file]).0, Some(0));
    // The shadow area is decoded and read by KVM in this state.
    let v = decode_json(&Blob::l2_shadow(&r).write("l2-decode"), &[]);
    assert_eq!(v["shadow_vmcs12"]["read_by_kvm"], true);
    assert_eq!(v["shadow_vmcs12"]["members"][0]["value"], format!("{:#x}", r.revision | 1 << 31));
    assert_eq!(v["flag_names"], serde_json::json!(["GUEST_MODE"]));
}

#[test]
fn check_names_the_rule_that_refuses() {
    let r = Reference::load();
    let l1 = Blob::l1(&r);
    let l2 = Blob::l2_shadow(&r);
    let with_hdr = |b: &Blob, hdr: u64| Blob { vmcs12: Some(area(&r, &[("hdr", hdr)])), ..b.clone() };
    let shadow_hdr = |hdr: u64| Blob { shadow: Some(area(&r, &[("hdr", hdr)])), ..l2.clone() };
    let rev = r.revision as u64;
    let cases: Vec<(&str, Blob, &[&str], &str)> = vec![
        ("size", Blob { size: 100, ..Blob::off() }, &[], "rule 3, -EINVAL): declared size 100 is below 128"),
        ("flags", Blob { flags: 0x10, ..Blob::off() }, &[], "rule 4, -EINVAL): unknown flags 0x10"),
        ("no-vmxon", Blob { vmcs12_pa: VMPTR, ..Blob::off() }, &[], "rule 7, -EINVAL)"),
        ("no-vmx", l1.clone(), &["--no-vmx"], "rule 8, -EINVAL): vmxon_pa valid but the guest CPUID lacks VMX"),
        ("maxphyaddr", l1.clone(), &["--maxphyaddr", "16"], "rule 8, -EINVAL): vmxon_pa not page-aligned"),
        ("smm", l2.clone(), &["--smm"], "rule 12, -EINVAL)"),
        ("evmcs", Blob { flags: EVMCS, ..l1.clone() }, &[], "rule 14, -EINVAL)"),
        ("no-vmcs", Blob { size: (127 + r.sizeof) as u32, ..l1.clone() }, &[], "rule 15, -EINVAL): size 1125 < 1126"),
        ("same-pa", Blob { vmcs12_pa: VMXON, ..l1.clone() }, &[], "rule 16, -EINVAL): vmcs12_pa equals vmxon_pa"),
        ("revision", with_hdr(&l1, rev + 1), &[], "rule 19, -EINVAL): vmcs12 revision 0x11e57ed1 is not 0x11e57ed0"),
        ("no-shadow", Blob { size: 4224, shadow: None, ..l2.clone() }, &[], "rule 20, -EINVAL)"),
        ("shadow-rev", shadow_hdr(rev ^ 1 | 1 << 31), &[], "rule 22, -EINVAL): shadow vmcs12 revision 0x11e57ed1"),
        ("shadow-bit", shadow_hdr(rev), &[], "rule 22, -EINVAL): shadow vmcs12 lacks the shadow-VMCS indicator"),
    ];
    for (name, blob, extra, want) in cases {
        let file = blob.write(name);
        let mut args = vec!["state", "check", &file];
        args.extend_from_slice(extra);
        let (code, out, err) = vmcs_gen(&args);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(err.contains(&format!("{file}: rejected ({want}")), "{name}: {err}");
    }
    // The vCPU options also accept: eVMCS enabled, and a MAXPHYADDR that covers the addresses.
    let file = Blob { flags: EVMCS, ..l1.clone() }.write("evmcs-ok");
    assert_eq!(vmcs_gen(&["state", "check", &file, "--evmcs"]).0, Some(0));
    let file = l1.write("maxphyaddr-ok");
    assert_eq!(vmcs_gen(&["state", "check", &file, "--maxphyaddr", "18"]).0, Some(0));
    // A file shorter than its declared size: KVM would fault copying it.
    let cut = write_file("cut", &l1.bytes()[..1000]);
    let (code, _, err) = vmcs_gen(&["state", "check", &cut]);
    assert_eq!(code, Some(1));
    assert!(err.contains("rejected (truncated, -EFAULT): blob of 1000 bytes is shorter than its declared size 4224"));
}

#[test]
fn decode_shows_rejected_and_truncated_blobs() {
    let r = Reference::load();
    let mut blob = Blob::l1(&r);
    blob.vmcs12 = Some(area(&r, &[("hdr", 7), ("guest_rip", 0xffff_8000_0000_1234)]));
    let v = decode_json(&blob.write("bad-revision"), &[]);
    let verdict = &v["verdict"];
    assert_eq!(
        (verdict["accepted"].clone(), verdict["rule"].clone(), verdict["errno"].clone()),
        (false.into(), 19.into(), (-22).into())
    );
    let rip = v["vmcs12"]["members"].as_array().unwrap().iter().find(|m| m["member"] == "guest_rip").unwrap();
    assert_eq!((rip["field"].as_str(), rip["value"].as_str()), (Some("GUEST_RIP"), Some("0xffff800000001234")));

    // Cut inside the vmcs12: the header still decodes, the area is reported missing.
    let cut = write_file("cut-decode", &Blob::l1(&r).bytes()[..1000]);
    let (code, out, _) = vmcs_gen(&["state", "decode", &cut]);
    assert_eq!(code, Some(0));
    assert!(out.contains("vmcs12: absent (the file ends at 1000 of the declared 4224 bytes; it needs 1126)"), "{out}");
    // No header: nothing to decode.
    let (code, _, err) = vmcs_gen(&["state", "decode", &write_file("header", &[0; 127])]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot decode: blob of 127 bytes is shorter than the 128-byte header"), "{err}");
    // An area KVM ignores is still shown, and said to be ignored.
    let ignored = Blob { vmxon_pa: INVALID_GPA, vmcs12_pa: INVALID_GPA, ..Blob::l1(&r) };
    let v = decode_json(&ignored.write("ignored"), &[]);
    assert_eq!(v["vmcs12"]["read_by_kvm"], false);
}

#[test]
fn decode_with_the_layout_of_an_older_kernel() {
    let r = Reference::load();
    // Before the CR3-target fields were retired, dead_space[4] was cr3_target_value0..3
    // (reference history note).
    let (dead, _) = r.offset("dead_space");
    let mut v = area(&r, &[("hdr", r.revision as u64)]);
    v[dead..dead + 8].copy_from_slice(&0x1234_5000u64.to_le_bytes());
    let file = Blob { vmcs12: Some(v), ..Blob::l1(&r) }.write("old-kernel");
    let find = |v: &Value, member: &str| {
        v["vmcs12"]["members"].as_array().unwrap().iter().find(|m| m["member"] == member).cloned()
    };
    let old = decode_json(&file, &["--layout", "vmcs12_base"]);
    let cr3 = find(&old, "cr3_target_value0").expect("the old layout has cr3_target_value0");
    assert_eq!((cr3["offset"].as_u64(), cr3["value"].as_str()), (Some(dead as u64), Some("0x12345000")));
    assert!(find(&old, "tsc_multiplier").is_none(), "TSC scaling came later");
    assert!(find(&decode_json(&file, &[]), "cr3_target_value0").is_none());
    // A layout that is not a vmcs12 is refused with the reason.
    let (code, _, err) = vmcs_gen(&["state", "check", &file, "--layout", "evmcs"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("layout `evmcs` cannot be a nested-state vmcs12: no member `hdr`"), "{err}");
}

#[test]
fn the_schema_shape_is_kvm_struct_vmcs12() {
    let r = Reference::load();
    let schema = vmcs_gen::Schema::load(&vmcs_gen::SchemaSources::embedded()).unwrap();
    let shape = schema.nested_state_shape(schema.layout("vmcs12").unwrap()).unwrap();
    let want = vmcs_nested_state::Vmcs12Shape {
        struct_size: r.sizeof,
        revision: r.revision,
        hdr: r.offset("hdr").0,
        primary_controls: r.offset("cpu_based_vm_exec_control").0,
        secondary_controls: r.offset("secondary_vm_exec_control").0,
        link_pointer: r.offset("vmcs_link_pointer").0,
    };
    assert_eq!(shape, want);
}

#[test]
fn decoding_random_blobs_never_panics() {
    let schema = vmcs_gen::Schema::load(&vmcs_gen::SchemaSources::embedded()).unwrap();
    let vcpu = vmcs_nested_state::VcpuContext::default();
    let mut rng = vmcs_test_support::Rng(0x2545_f491_4f6c_dd1d);
    let mut next = move || rng.next();
    let mut decoded = 0;
    for i in 0..600 {
        let layout = &schema.layouts[i % schema.layouts.len()];
        let Ok(shape) = schema.nested_state_shape(layout) else { continue };
        let len = (next() % 9000) as usize;
        let mut blob: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 8 && i % 2 == 0 {
            // A plausible size, so that the areas are reached.
            let size = [128u32, 1126, 4224, 5222, 8320][(next() % 5) as usize];
            blob[4..8].copy_from_slice(&size.to_le_bytes());
        }
        let result = vmcs_nested_state::check(&blob, shape, &vcpu).map(|_| ());
        if let Ok(state) = vmcs_nested_state::read(&blob, shape) {
            let text = vmcs_gen::state::decode_text(&schema, layout, &state, &result);
            assert!(text.starts_with("kvm_nested_state: "));
            let _ = vmcs_gen::state::decode_json(&schema, layout, &state, &result);
            decoded += 1;
        }
    }
    assert!(decoded > 300, "most blobs have a header: {decoded}");
}

/// The capability MSRs KVM 7.2.8 gives L1 (testdata/reference/kvm-nested-caps-max.json).
fn kvm_l1_caps() -> String {
    vmcs_test_support::testdata("reference/kvm-nested-caps-max.json").display().to_string()
}

#[test]
fn check_with_caps_applies_kvms_vmcs12_checks_in_guest_mode() {
    let r = Reference::load();
    let caps = kvm_l1_caps();
    // An L2 whose vmcs12 is all zero but its revision: the pin controls lack their must-be-1 bits.
    let zero = Blob { flags: GUEST_MODE, ..Blob::l1(&r) }.write("l2-zero");
    let (code, out, err) = vmcs_gen(&["state", "check", &zero, "--caps", &caps]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains(
            "rejected (rule 22, -EINVAL): vmcs12 fails pin_controls_allowed (SDM 26.2.1.1, E1): VMfailValid(7)"
        ),
        "{err}"
    );
    // With the controls set as the TRUE MSRs require, the next category refuses: host CR0.
    let controls = [
        ("hdr", r.revision as u64),
        ("pin_based_vm_exec_control", 0x16),
        ("cpu_based_vm_exec_control", 0x0400_6172),
        ("vm_exit_controls", 0x3_6dfb | 1 << 9),
        ("vm_entry_controls", 0x11fb | 1 << 9),
    ];
    let blob = Blob { flags: GUEST_MODE, vmcs12: Some(area(&r, &controls)), ..Blob::l1(&r) }.write("l2-controls");
    let (code, _, err) = vmcs_gen(&["state", "check", &blob, "--caps", &caps]);
    assert_eq!(code, Some(1));
    assert!(err.contains("vmcs12 fails host_cr0_fixed0 (SDM 26.2.2, H1): VMfailValid(8)"), "{err}");
    // decode shows the same verdict, as JSON too.
    let v = decode_json(&blob, &["--caps", &caps]);
    assert_eq!(v["vmcs12_checks"]["rule"], "host_cr0_fixed0", "{v}");
    assert_eq!(v["verdict"]["accepted"], true, "the blob rules accept it: {v}");
    // Without capabilities the contents are not judged, and the command says so.
    let (code, out, _) = vmcs_gen(&["state", "check", &blob]);
    assert_eq!(code, Some(0));
    assert!(out.contains("vmcs12 contents not checked (give --caps FILE"), "{out}");
    // Outside guest mode KVM never looks at them (rule 19 is the last check).
    let l1 = Blob { vmcs12: Some(area(&r, &[("hdr", r.revision as u64)])), ..Blob::l1(&r) }.write("l1-zero");
    let (code, out, _) = vmcs_gen(&["state", "check", &l1, "--caps", &caps]);
    assert_eq!(code, Some(0));
    assert!(!out.contains("vmcs12 fails") && !out.contains("not checked"), "{out}");
}
