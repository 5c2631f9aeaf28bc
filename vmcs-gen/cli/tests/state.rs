//! `vmcs-gen state decode|check` on blobs built with the runtime's nested-state builder.

use std::process::Command;

use serde_json::Value;
use vmcs::nested_state::NestedStateBuilder;
use vmcs::{Vmcs12, VmcsWrite, fields};

fn vmcs_gen(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// Write a blob: VMXON at 0x10000, the current VMCS at `vmcs12_pa`, a vmcs12 with GUEST_RIP set.
fn blob(name: &str, vmcs12_pa: u64) -> String {
    let mut v = Vmcs12::zeroed();
    v.hdr = 0x11e5_7ed0;
    v.write(fields::GUEST_RIP, 0xffff_8000_0000_1234).unwrap();
    v.write(fields::GUEST_CS_SELECTOR, 0x10).unwrap();
    let b = NestedStateBuilder::new().vmxon_pa(0x10000).vmcs12_pa(vmcs12_pa).vmcs12(Some(v));
    let mut buf = vec![0u8; 8320];
    let len = b.emit(&mut buf).unwrap();
    let path = std::env::temp_dir().join(format!("vmcs-gen-state-{}-{name}.bin", std::process::id()));
    std::fs::write(&path, &buf[..len]).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn check_accepts_what_kvm_accepts() {
    let f = blob("ok", 0x20000);
    let (code, out, err) = vmcs_gen(&["state", "check", &f]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "accepted: 4224 bytes, flags 0x0");
    // The same blob on a vCPU without VMX in CPUID.
    let (code, _, err) = vmcs_gen(&["state", "check", "--no-vmx", &f]);
    assert_eq!(code, Some(1));
    assert!(err.contains("rejected: vmxon_pa valid but the guest CPUID lacks VMX"), "{err}");
}

#[test]
fn check_names_the_rule_that_rejects() {
    let f = blob("same-pa", 0x10000);
    let (code, _, err) = vmcs_gen(&["state", "check", &f]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("rejected: "), "{err}");
    assert!(err.contains("-22"), "KVM's -EINVAL: {err}");
    // A truncated file is refused, not misread.
    let bytes = std::fs::read(blob("cut", 0x20000)).unwrap();
    let cut = std::env::temp_dir().join(format!("vmcs-gen-state-{}-cut2.bin", std::process::id()));
    std::fs::write(&cut, &bytes[..1000]).unwrap();
    let (code, _, err) = vmcs_gen(&["state", "check", cut.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("shorter than its declared size 4224"), "{err}");
}

#[test]
fn decode_prints_every_member_by_name() {
    let f = blob("decode", 0x20000);
    let (code, out, err) = vmcs_gen(&["state", "decode", &f]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("vmx: vmxon_pa 0x10000, vmcs12_pa 0x20000"), "{out}");
    let rip = out.lines().find(|l| l.trim_start().starts_with("guest_rip ")).unwrap();
    assert!(rip.contains("GUEST_RIP") && rip.contains("0x681e") && rip.ends_with("0xffff800000001234"), "{rip}");
    assert!(out.contains("shadow vmcs12: absent"));
    let (code, out, _) = vmcs_gen(&["state", "decode", "--json", &f]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    let members = v["vmcs12"].as_array().unwrap();
    // Every non-reserved member of KVM's vmcs12: 155 members less the 5 reserved regions.
    assert_eq!(members.len(), 150);
    let cs = members.iter().find(|m| m["field"] == "GUEST_CS_SELECTOR").unwrap();
    assert_eq!(cs["value"], "0x10");
    assert_eq!(members[0]["member"], "hdr");
    assert_eq!(members[0]["value"], "0x11e57ed0");
}
