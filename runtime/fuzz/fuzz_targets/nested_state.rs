//! KVM_SET_NESTED_STATE blobs come from userspace (and, after migration, from another host):
//! `check` and `read` must never panic or read out of bounds, and an accepted blob must re-emit
//! byte for byte through the builder (all but the header's padding, which the builder zeroes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcs::nested_state::{VMCS12_SHAPE, VcpuContext, check};

/// Header bytes no field covers: `hdr.vmx.smm.pad` and the rest of the 120-byte header union.
fn is_padding(offset: usize) -> bool {
    (26..28).contains(&offset) || (40..128).contains(&offset)
}

fuzz_target!(|input: (u8, &[u8])| {
    let (ctx, blob) = input;
    let vcpu = VcpuContext { has_vmx: ctx & 1 == 0, in_smm: ctx & 2 != 0, evmcs_enabled: ctx & 4 != 0, maxphyaddr: 36 + (ctx >> 3) % 29 };
    if let Ok(view) = vmcs_nested_state::read(blob, VMCS12_SHAPE) {
        let _ = (view.vmx_header(), view.vmcs12(), view.shadow_vmcs12(), view.vmcs12_area(), view.shadow_vmcs12_area());
    }
    if let Ok(state) = check(blob, &vcpu) {
        let again = state.builder();
        let mut out = vec![0u8; blob.len().max(8320)];
        let len = again.emit(&mut out).expect("an accepted blob re-emits");
        assert_eq!(len, state.size() as usize);
        for (i, (a, b)) in out[..len].iter().zip(state.as_bytes()).enumerate() {
            assert!(a == b || (is_padding(i) && *a == 0), "byte {i} differs");
        }
        let reparsed = check(&out[..len], &vcpu).expect("a re-emitted blob is accepted again");
        assert_eq!(reparsed.vmx_header(), state.vmx_header());
        assert_eq!((reparsed.flags(), reparsed.size()), (state.flags(), state.size()));
        assert_eq!(reparsed.vmcs12(), state.vmcs12());
        assert_eq!(reparsed.shadow_vmcs12(), state.shadow_vmcs12());
    }
});
