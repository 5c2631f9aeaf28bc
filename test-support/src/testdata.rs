//! The reference facts of `testdata/` (see testdata/reference/README.md for their sources).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use serde_json::Value;

/// The path of `rel` inside the repository's testdata/.
pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata")).join(rel)
}

fn json(rel: &str) -> Value {
    let path = testdata(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON file of testdata/reference (facts from Linux 7.2.8 and the field union).
pub fn reference(name: &str) -> Value {
    json(&std::format!("reference/{name}"))
}

/// A JSON string of hex digits with or without `0x`, e.g. `"0x00d810000000002b"`.
pub fn hex(v: &Value) -> u64 {
    hex_str(v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}")))
}

fn hex_str(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// A JSON object from MSR index to value, both hex strings (what `rdmsr` prints).
pub fn msrs(object: &Value) -> BTreeMap<u32, u64> {
    let object = object.as_object().unwrap_or_else(|| panic!("not an MSR object: {object}"));
    object.iter().map(|(i, v)| (hex_str(i) as u32, hex(v))).collect()
}

/// The IA32_VMX_* MSRs of each Bochs 2.7 model (testdata/bochs/vmx-caps.json), by model name.
pub fn bochs_models() -> Vec<(String, BTreeMap<u32, u64>)> {
    let v = json("bochs/vmx-caps.json");
    v["models"].as_object().expect("models").iter().map(|(name, m)| (name.clone(), msrs(m))).collect()
}

/// The capability MSRs KVM 7.2.8 gives L1 on a host with every feature
/// (testdata/reference/kvm-nested-caps-max.json).
pub fn kvm_l1_msrs() -> BTreeMap<u32, u64> {
    msrs(&reference("kvm-nested-caps-max.json"))
}
