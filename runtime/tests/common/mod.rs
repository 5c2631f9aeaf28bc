//! Helpers shared by the runtime's integration tests.

#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;

use vmcs::caps::VmxCaps;
pub use vmcs_test_support::{Rng, bochs_models as bochs_caps, hex, reference};

/// A capability set of the MSR values `msrs` (the missing ones read as 0).
pub fn caps_of(msrs: &BTreeMap<u32, u64>) -> VmxCaps {
    let mut caps = VmxCaps::new();
    for (&index, &value) in msrs {
        caps.set(index, value);
    }
    caps
}

/// The capability MSRs KVM 7.2.8 gives L1 on a host with every feature
/// (testdata/reference/kvm-nested-caps-max.json).
pub fn kvm_l1_caps() -> VmxCaps {
    caps_of(&vmcs_test_support::kvm_l1_msrs())
}

pub mod entry;
