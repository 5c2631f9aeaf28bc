//! The `no_std` runtime a hypervisor links: generated from `schema/` by build.rs through vmcs-gen.
//!
//! - [`fields`]: a typed handle per architectural VMCS field ([`fields::Field`]), the field table,
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
//! - [`layouts`]: software VMCS layouts ([`layouts::Layout`]): [`vmcs12`], KVM's, byte for
//!   byte, its released predecessors and the eVMCS, with O(1) raw-encoding access.
//! - [`nested_state`]: `KVM_GET/SET_NESTED_STATE` blobs over that vmcs12 (and, with the
//!   `kvm-bindings` feature, which needs `std`, rust-vmm's buffer type).
//! - [`hw`] (x86-64 only): the real VMCS through VMX instructions.
//!
//! Every backend ([`soft::SoftVmcs`], the vmcs12 layouts, [`hw::CurrentVmcs`]) implements
//! [`VmcsRead`] and [`VmcsWrite`], so code written against them runs unchanged in tests and on
//! hardware.
//!
//! # Typed access
//!
//! A handle's type carries the field's width and whether it is writable:
//!
//! ```
//! use vmcs::caps::AllCaps;
//! use vmcs::soft::SoftVmcs;
//! use vmcs::{VmcsError, VmcsRead, VmcsWrite, fields};
//!
//! // A processor's current VMCS, in software: every field of a CPU with every capability.
//! let mut vmcs = SoftVmcs::new(&AllCaps);
//! vmcs.write(fields::GUEST_RIP, 0xfff0)?; // natural width: u64
//! vmcs.write(fields::GUEST_CS_SELECTOR, 0xf000)?; // 16 bits: u16
//! let cs: u16 = vmcs.read(fields::GUEST_CS_SELECTOR)?;
//! assert_eq!((vmcs.read(fields::GUEST_RIP)?, cs), (0xfff0, 0xf000));
//! // The raw view is VMREAD's: a 64-bit field's high access (encoding | 1) reads bits 63:32.
//! vmcs.write(fields::GUEST_IA32_PAT, 0x0007_0406_0007_0406)?;
//! assert_eq!(vmcs.read_raw(fields::GUEST_IA32_PAT.raw() | 1)?, 0x0007_0406);
//! # Ok::<(), VmcsError>(())
//! ```
//!
//! Writing a read-only field through a handle does not compile:
//!
//! ```compile_fail,E0277
//! # use vmcs::{VmcsWrite, fields};
//! # let mut vmcs = vmcs::soft::SoftVmcs::new(&vmcs::caps::AllCaps);
//! vmcs.write(fields::VM_EXIT_REASON, 0); // VM_EXIT_REASON is read-only
//! ```
//!
//! # Capabilities: which fields exist, and IA32_VMX_VMCS_ENUM
//!
//! A field exists when the capability MSRs allow the control its gate names. `GUEST_IA32_PAT`
//! exists with "load IA32_PAT" (VM-entry control 14) or "save IA32_PAT" (VM-exit control 18):
//!
//! ```
//! use vmcs::caps::{Msr, VmxCaps};
//! use vmcs::{Layout, Vmcs12, fields};
//!
//! let mut caps = VmxCaps::new(); // every MSR 0: no TRUE MSRs, no optional control
//! assert!(!fields::exists(fields::GUEST_IA32_PAT.raw(), &caps));
//! caps.set(Msr::Entry.index(), 1 << (32 + 14)); // IA32_VMX_ENTRY_CTLS: control 14 may be 1
//! assert!(fields::exists(fields::GUEST_IA32_PAT.raw(), &caps));
//!
//! // Two VMCS_ENUM values: `fields::vmcs_enum` is a processor's (over every architectural field
//! // that exists); an L0 reports to L1 the one of L1's VMCS, vmcs12, over the fields vmcs12 maps,
//! // as KVM does: its highest index is TSC_MULTIPLIER's (0x2032: index 0x19, so 0x32).
//! let all = vmcs::caps::AllCaps;
//! assert_eq!(Vmcs12::vmcs_enum(&all), 0x32);
//! assert!(fields::vmcs_enum(&all) > Vmcs12::vmcs_enum(&all));
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod access;
pub mod caps;
pub mod controls;
#[cfg(vmcs_copy)]
pub mod copy;
// Without rules (no checks.toml), the checker's helpers go unused.
#[cfg_attr(not(vmcs_checks), allow(dead_code))]
pub mod entry;
pub mod exit;
pub mod fields;
#[cfg(target_arch = "x86_64")]
pub mod hw;
pub mod layouts;
pub mod lookup;
pub mod nested_state;
pub mod restore;
pub mod soft;

// The generated module tree: `generated` (private; `fields`, `layouts` and the others re-export it)
// and `translate`.
include!(concat!(env!("OUT_DIR"), "/generated.rs"));

pub use access::{VmInstructionError, VmcsError, VmcsRead, VmcsWrite};
pub use layouts::Layout;
pub use layouts::vmcs12;
pub use layouts::vmcs12::Vmcs12;
