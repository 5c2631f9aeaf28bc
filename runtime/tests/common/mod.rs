//! Helpers shared by the runtime's integration tests.

#![allow(dead_code)]

use serde_json::Value;

/// A reference file of testdata/reference (facts from Linux 7.2.8 and the field union).
pub fn reference(name: &str) -> Value {
    let path = format!("{}/../testdata/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fixed-seed xorshift64 generator: property tests that repeat exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The IA32_VMX_* MSRs of each Bochs 2.7 model (testdata/bochs/vmx-caps.json), by model name.
pub fn bochs_caps() -> Vec<(String, std::collections::BTreeMap<u32, u64>)> {
    let path = format!("{}/../testdata/bochs/vmx-caps.json", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    v["models"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, msrs)| {
            let msrs =
                msrs.as_object().unwrap().iter().map(|(i, v)| (hex(i) as u32, hex(v.as_str().unwrap()))).collect();
            (name.clone(), msrs)
        })
        .collect()
}

pub mod entry;
