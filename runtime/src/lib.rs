//! The `no_std` runtime a hypervisor links: generated from `schema/` by build.rs through vmcs-gen.
//!
//! - [`fields`]: a typed handle per architectural VMCS field ([`field::Field`]), the field table,
//!   field existence for a capability set and IA32_VMX_VMCS_ENUM.
//! - [`caps`]: capability sets ([`caps::VmxCaps`] from raw IA32_VMX_* MSRs) and the capability
//!   MSRs ([`caps::Msr`]: index, TRUE MSR, `requires`).
//! - [`controls`]: a bit-set type per control field with the allowed-0/allowed-1 adjustment.
//! - [`exit`]: exit reasons, the exit-reason field, interruption information and exit
//!   qualifications as typed views; [`VmInstructionError`] with the SDM's text.
//! - [`copy`]: the generated nested entry/exit routines (vmcs12, vmcs02, vmcs01, shadow VMCS,
//!   eVMCS) over the [`copy::NestedHooks`] an L0 implements, per-entry dirty tracking
//!   ([`copy::Tracked`]) and the shadow VMREAD/VMWRITE bitmaps.
//! - [`entry`]: the VM-entry consistency checks of schema/checks.toml, generated.
//! - [`vmcs12`]: KVM's vmcs12 layout, byte for byte, with O(1) raw-encoding access
//!   ([`software::SoftwareVmcs`]).
#![no_std]

pub mod access;
pub mod caps;
pub mod controls;
#[cfg(vmcs_copy)]
pub mod copy;
// Without rules (no checks.toml), the checker's helpers go unused.
#[cfg_attr(not(vmcs_checks), allow(dead_code))]
pub mod entry;
pub mod exit;
pub mod field;
#[cfg(target_arch = "x86_64")]
pub mod hw;
pub mod layout;
pub mod lookup;
pub mod nested_state;
pub mod restore;
pub mod soft;
pub mod software;

// The generated module tree: `generated` (private), `translate` and `layouts`.
include!(concat!(env!("OUT_DIR"), "/generated.rs"));

pub use access::{VmInstructionError, VmcsError, VmcsRead, VmcsWrite};
pub use generated::fields;
pub use layouts::vmcs12;
pub use layouts::vmcs12::Vmcs12;
pub use software::SoftwareVmcs;
