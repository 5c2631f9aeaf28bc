//! `KVM_GET/SET_NESTED_STATE` blobs in the VMX format, over any vmcs12 layout.
//!
//! A blob is `struct kvm_nested_state` (a 128-byte header) followed by up to two 4096-byte areas:
//! the vmcs12 at offset 128 and the shadow vmcs12 at offset 4224. Only the first
//! `sizeof(struct vmcs12)` bytes of each area are meaningful. Layout and rules follow Linux 7.2.8
//! (`arch/x86/kvm/x86.c` and `vmx_set_nested_state()` in `arch/x86/kvm/vmx/nested.c`).
//!
//! The few facts the rules need about vmcs12 (its size, revision and four member offsets) come in
//! a [`Vmcs12Shape`]: the `vmcs` runtime builds it from the generated layout, the `vmcs-gen`
//! command line from the schema model. This crate has no dependencies and knows no layout itself.
//!
//! - [`check`] applies, in KVM's order, every `KVM_SET_NESTED_STATE` rejection rule that does not
//!   need a live vCPU's internals; the few that need vCPU facts take them from [`VcpuContext`].
//!   Each rule has its own [`NestedStateError`] variant.
//! - [`read`] gives the same view without applying the rules, for tools that show a rejected blob.
//! - [`NestedStateBuilder`] emits blobs.
//!
//! ```
//! use vmcs_nested_state::{NestedStateBuilder, NestedStateError, VcpuContext, Vmcs12Shape, check};
//!
//! // In a hypervisor: `vmcs::nested_state::VMCS12_SHAPE`, generated from the schema.
//! let shape = Vmcs12Shape {
//!     struct_size: 998,
//!     revision: 0x11e5_7ed0,
//!     hdr: 0,
//!     primary_controls: 748,
//!     secondary_controls: 804,
//!     link_pointer: 176,
//! };
//! let mut vmcs12 = [0u8; 998];
//! vmcs12[..4].copy_from_slice(&shape.revision.to_le_bytes());
//! let l1 = NestedStateBuilder::new().vmxon_pa(0x1000).vmcs12_pa(0x2000).vmcs12(Some(&vmcs12[..]));
//! let mut blob = [0u8; 8320];
//! let len = l1.emit(&mut blob)?;
//! assert_eq!(len, 4224);
//! let state = check(&blob[..len], shape, &VcpuContext::default()).expect("KVM accepts it");
//! assert_eq!(state.vmx_header().vmcs12_pa, 0x2000);
//!
//! // The current VMCS may not be the VMXON region (rule 16).
//! let len = l1.vmcs12_pa(0x1000).emit(&mut blob)?;
//! assert_eq!(check(&blob[..len], shape, &VcpuContext::default()).err(), Some(NestedStateError::Vmcs12PaIsVmxonPa));
//! # Ok::<(), vmcs_nested_state::EmitError>(())
//! ```
//!
//! # What is not checked
//!
//! - Rule 1 (the vendor has no `set_state` hook) has no meaning here.
//! - The VM-entry consistency checks of `nested_vmx_check_restored_vmcs12()`
//!   (`nested_vmx_check_controls`, `nested_vmx_check_host_state`, `nested_vmx_check_guest_state`)
//!   need the vmcs12's fields by name and the schema's rules: the `vmcs` runtime applies them
//!   (`vmcs::nested_state::check_restore`), as does `vmcs-gen state check --caps`. Here only the
//!   shadow-vmcs12 header checks of `nested_vmx_check_restored_vmcs12()` are applied, so a blob that
//!   [`check`] accepts in guest mode can still be refused by KVM.
//! - `nested_vmx_enter_non_root_mode()` is out of scope.
//! - `-ENOMEM` from `enter_vmx_operation()` and the eVMCS mapping (`CONFIG_KVM_HYPERV` is assumed).
//!
//! # Truncation
//!
//! KVM reads user memory lazily and faults (`-EFAULT`) only where it copies. Here the blob must
//! hold its whole declared `size` ([`NestedStateError::Truncated`], checked right after the
//! generic size rule), so that the returned [`NestedState`] can hand out every area it declares.
//! Consequently KVM's two `-EFAULT` copy failures (copying the vmcs12 or the shadow vmcs12)
//! cannot happen after that check.
//!
//! Nothing in this crate panics or reads out of bounds, whatever the input.
#![deny(missing_docs)]
#![no_std]

mod builder;
mod bytes;
mod check;
mod error;
mod header;
mod shape;
mod view;

pub use builder::{EmitError, NestedStateBuilder};
pub use check::check;
pub use error::NestedStateError;
pub use header::{VcpuContext, VmxHeader, flag_names};
pub use shape::{ShapeError, Vmcs12Shape};
pub use view::{NestedState, read};

/// `KVM_STATE_NESTED_FORMAT_VMX`.
pub const KVM_STATE_NESTED_FORMAT_VMX: u16 = 0;
/// `KVM_STATE_NESTED_FORMAT_SVM`.
pub const KVM_STATE_NESTED_FORMAT_SVM: u16 = 1;

/// `KVM_STATE_NESTED_GUEST_MODE` (in `flags`).
pub const KVM_STATE_NESTED_GUEST_MODE: u16 = 0x1;
/// `KVM_STATE_NESTED_RUN_PENDING` (in `flags`).
pub const KVM_STATE_NESTED_RUN_PENDING: u16 = 0x2;
/// `KVM_STATE_NESTED_EVMCS` (in `flags`).
pub const KVM_STATE_NESTED_EVMCS: u16 = 0x4;
/// `KVM_STATE_NESTED_MTF_PENDING` (in `flags`).
pub const KVM_STATE_NESTED_MTF_PENDING: u16 = 0x8;
/// `KVM_STATE_NESTED_GIF_SET` (in `flags`; SVM only, but accepted by the generic flag check).
pub const KVM_STATE_NESTED_GIF_SET: u16 = 0x100;
/// Every bit the generic code (x86.c) accepts in `flags`.
pub const KVM_STATE_NESTED_KNOWN_FLAGS: u16 = KVM_STATE_NESTED_RUN_PENDING
    | KVM_STATE_NESTED_GUEST_MODE
    | KVM_STATE_NESTED_EVMCS
    | KVM_STATE_NESTED_MTF_PENDING
    | KVM_STATE_NESTED_GIF_SET;

/// `KVM_STATE_NESTED_SMM_GUEST_MODE` (in `hdr.vmx.smm.flags`).
pub const KVM_STATE_NESTED_SMM_GUEST_MODE: u16 = 0x1;
/// `KVM_STATE_NESTED_SMM_VMXON` (in `hdr.vmx.smm.flags`).
pub const KVM_STATE_NESTED_SMM_VMXON: u16 = 0x2;

/// `KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE` (in `hdr.vmx.flags`).
pub const KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE: u32 = 0x1;

/// `KVM_STATE_NESTED_VMX_VMCS_SIZE` (= `VMCS12_SIZE`): bytes reserved per vmcs12 area.
pub const KVM_STATE_NESTED_VMX_VMCS_SIZE: usize = 0x1000;
/// `sizeof(struct kvm_nested_state)`: the header.
pub const HEADER_SIZE: usize = 128;
/// Offset of the vmcs12 area.
pub const VMCS12_OFFSET: usize = HEADER_SIZE;
/// Offset of the shadow vmcs12 area.
pub const SHADOW_VMCS12_OFFSET: usize = HEADER_SIZE + KVM_STATE_NESTED_VMX_VMCS_SIZE;
/// The size KVM emits with a vmcs12 (4224).
pub const SIZE_WITH_VMCS12: usize = HEADER_SIZE + KVM_STATE_NESTED_VMX_VMCS_SIZE;
/// The size KVM emits with a vmcs12 and a shadow vmcs12 (8320, the KVM_CAP_NESTED_STATE value).
pub const SIZE_WITH_SHADOW: usize = HEADER_SIZE + 2 * KVM_STATE_NESTED_VMX_VMCS_SIZE;

/// `INVALID_GPA`: "no address".
pub const INVALID_GPA: u64 = u64::MAX;

/// Primary processor-based control "activate secondary controls" (bit 31).
pub const CPU_BASED_ACTIVATE_SECONDARY_CONTROLS: u32 = 1 << 31;
/// Secondary processor-based control "VMCS shadowing" (bit 14).
pub const SECONDARY_EXEC_SHADOW_VMCS: u32 = 1 << 14;
/// vmcs12 `hdr` bit 31: the shadow-VMCS indicator.
pub const VMCS_HDR_SHADOW_VMCS: u32 = 1 << 31;
/// vmcs12 `hdr` bits 30:0: the revision identifier.
pub const VMCS_HDR_REVISION_MASK: u32 = !VMCS_HDR_SHADOW_VMCS;

// Absolute header offsets (`struct kvm_nested_state`, `struct kvm_vmx_nested_state_hdr` at 8).
const OFF_FLAGS: usize = 0;
const OFF_FORMAT: usize = 2;
const OFF_SIZE: usize = 4;
const OFF_VMXON_PA: usize = 8;
const OFF_VMCS12_PA: usize = 16;
const OFF_SMM_FLAGS: usize = 24;
const OFF_VMX_FLAGS: usize = 28;
const OFF_DEADLINE: usize = 32;
