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
