//! KVM_SET_NESTED_STATE blobs come from userspace (and, after migration, from another host):
//! `check` must never panic or read out of bounds, and an accepted blob must re-emit byte for byte
//! through the builder (the header and the first 998 bytes of each area; the rest is zero-filled).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcs::nested_state::{NestedStateBuilder, VcpuContext, check};

fuzz_target!(|input: (u8, &[u8])| {
    let (ctx, blob) = input;
    let vcpu = VcpuContext { has_vmx: ctx & 1 == 0, in_smm: ctx & 2 != 0, evmcs_enabled: ctx & 4 != 0, maxphyaddr: 36 + (ctx >> 3) % 29 };
    if let Ok(state) = check(blob, &vcpu) {
        let again = NestedStateBuilder::from_state(&state);
        let mut out = vec![0u8; blob.len().max(8320)];
        let len = again.emit(&mut out).expect("an accepted blob re-emits");
        let reparsed = check(&out[..len], &vcpu).expect("a re-emitted blob is accepted again");
        assert_eq!(reparsed.vmx_header(), state.vmx_header());
        assert_eq!((reparsed.flags(), reparsed.size()), (state.flags(), state.size()));
        assert_eq!(reparsed.vmcs12(), state.vmcs12());
        assert_eq!(reparsed.shadow_vmcs12(), state.shadow_vmcs12());
    }
});
