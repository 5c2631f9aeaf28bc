//! `KVM_SET_NESTED_STATE`'s rules, in KVM's order.

use crate::bytes::{read_u16, read_u32};
use crate::{
    HEADER_SIZE, INVALID_GPA, KVM_STATE_NESTED_EVMCS, KVM_STATE_NESTED_FORMAT_VMX, KVM_STATE_NESTED_GUEST_MODE,
    KVM_STATE_NESTED_KNOWN_FLAGS, KVM_STATE_NESTED_RUN_PENDING, KVM_STATE_NESTED_SMM_GUEST_MODE,
    KVM_STATE_NESTED_SMM_VMXON, KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE, NestedState, NestedStateError as E, OFF_FLAGS,
    OFF_FORMAT, OFF_SIZE, VMCS_HDR_REVISION_MASK, VMCS_HDR_SHADOW_VMCS, VcpuContext, Vmcs12Shape,
};

/// Applies the `KVM_SET_NESTED_STATE` rules (see [`crate::NestedStateError`] for each) in KVM's
/// order to a blob whose vmcs12 has `shape`, and returns the view over the blob's first `size`
/// bytes. Bytes past `size` are ignored.
pub fn check<'a>(blob: &'a [u8], shape: Vmcs12Shape, vcpu: &VcpuContext) -> Result<NestedState<'a>, E> {
    // Generic rules (x86.c).
    if blob.len() < HEADER_SIZE {
        return Err(E::HeaderTruncated { len: blob.len() });
    }
    let size = read_u32(blob, OFF_SIZE);
    if (size as usize) < HEADER_SIZE {
        return Err(E::SizeTooSmall { size });
    }
    let Some(bytes) = blob.get(..size as usize) else {
        return Err(E::Truncated { size, len: blob.len() });
    };
    let flags = read_u16(bytes, OFF_FLAGS);
    let unknown = flags & !KVM_STATE_NESTED_KNOWN_FLAGS;
    if unknown != 0 {
        return Err(E::UnknownFlags { bits: unknown });
    }
    let guest_mode = flags & KVM_STATE_NESTED_GUEST_MODE != 0;
    let run_pending = flags & KVM_STATE_NESTED_RUN_PENDING != 0;
    let evmcs = flags & KVM_STATE_NESTED_EVMCS != 0;
    if run_pending && !guest_mode {
        return Err(E::RunPendingWithoutGuestMode);
    }

    // vmx_set_nested_state().
    let format = read_u16(bytes, OFF_FORMAT);
    if format != KVM_STATE_NESTED_FORMAT_VMX {
        return Err(E::FormatNotVmx { format });
    }
    let state = NestedState::new(bytes, shape);
    let hdr = state.vmx_header();
    if hdr.vmxon_pa == INVALID_GPA {
        if hdr.smm_flags != 0 {
            return Err(E::SmmFlagsWithoutVmxon);
        }
        if hdr.vmcs12_pa != INVALID_GPA {
            return Err(E::Vmcs12PaWithoutVmxon);
        }
        if flags & !KVM_STATE_NESTED_EVMCS != 0 {
            return Err(E::FlagsWithoutVmxon);
        }
    } else {
        if !vcpu.has_vmx {
            return Err(E::VmxonWithoutVmx);
        }
        if !vcpu.page_address_valid(hdr.vmxon_pa) {
            return Err(E::VmxonPaInvalid);
        }
    }
    let smm_guest_mode = hdr.smm_flags & KVM_STATE_NESTED_SMM_GUEST_MODE != 0;
    if smm_guest_mode && guest_mode {
        return Err(E::SmmGuestModeWithGuestMode);
    }
    let unknown = hdr.smm_flags & !(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON);
    if unknown != 0 {
        return Err(E::UnknownSmmFlags { bits: unknown });
    }
    let unknown = hdr.vmx_flags & !KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE;
    if unknown != 0 {
        return Err(E::UnknownVmxFlags { bits: unknown });
    }
    if vcpu.in_smm {
        if guest_mode || run_pending {
            return Err(E::GuestModeInSmm);
        }
    } else if hdr.smm_flags != 0 {
        return Err(E::SmmFlagsOutsideSmm);
    }
    if smm_guest_mode && hdr.smm_flags & KVM_STATE_NESTED_SMM_VMXON == 0 {
        return Err(E::SmmGuestModeWithoutSmmVmxon);
    }
    if evmcs && !(vcpu.has_vmx && vcpu.evmcs_enabled) {
        return Err(E::EvmcsNotEnabled);
    }

    // vmx_leave_nested(); not in VMX operation: done.
    if hdr.vmxon_pa == INVALID_GPA {
        return Ok(state);
    }

    let min = shape.min_size_with_vmcs12();
    if (size as usize) < min {
        if guest_mode || evmcs || hdr.vmcs12_pa != INVALID_GPA {
            return Err(E::VmxonWithoutVmcs { size, min });
        }
        return Ok(state);
    }

    if hdr.vmcs12_pa != INVALID_GPA {
        if hdr.vmcs12_pa == hdr.vmxon_pa {
            return Err(E::Vmcs12PaIsVmxonPa);
        }
        if !vcpu.page_address_valid(hdr.vmcs12_pa) {
            return Err(E::Vmcs12PaInvalid);
        }
    } else if !evmcs {
        return Err(E::MissingVmcs12Pa);
    }

    // Rule 18 (copying the vmcs12) cannot fail: size >= 128 + sizeof(vmcs12) and the blob holds
    // `size` bytes.
    let Some(vmcs12) = state.vmcs12() else {
        return Err(E::Truncated { size, len: blob.len() });
    };
    let revision = shape.hdr_of(vmcs12) & VMCS_HDR_REVISION_MASK;
    if revision != shape.revision {
        return Err(E::BadVmcs12Revision { revision, expected: shape.revision });
    }

    if !guest_mode {
        return Ok(state);
    }

    if shape.uses_shadow_vmcs(vmcs12) {
        let min = shape.min_size_with_shadow();
        if (size as usize) < min {
            return Err(E::ShadowVmcs12Missing { size, min });
        }
        let Some(shadow) = state.shadow_vmcs12() else {
            return Err(E::Truncated { size, len: blob.len() });
        };
        let hdr = shape.hdr_of(shadow);
        let revision = hdr & VMCS_HDR_REVISION_MASK;
        if revision != shape.revision {
            return Err(E::BadShadowVmcs12Revision { revision, expected: shape.revision });
        }
        if hdr & VMCS_HDR_SHADOW_VMCS == 0 {
            return Err(E::ShadowVmcs12NotShadow);
        }
    }
    // nested_vmx_check_restored_vmcs12()'s VM-entry consistency checks: out of scope.
    Ok(state)
}
