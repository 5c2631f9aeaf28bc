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
pub mod copy;
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

/// Generated code (see the header of each file for its sources).
pub mod generated {
    pub mod caps {
        include!(concat!(env!("OUT_DIR"), "/caps.rs"));
    }
    pub mod fields {
        include!(concat!(env!("OUT_DIR"), "/fields.rs"));
    }
    pub mod controls {
        include!(concat!(env!("OUT_DIR"), "/controls.rs"));
    }
    pub mod copy {
        include!(concat!(env!("OUT_DIR"), "/copy.rs"));
    }
    pub mod exits {
        include!(concat!(env!("OUT_DIR"), "/exits.rs"));
    }
    pub mod instruction_errors {
        include!(concat!(env!("OUT_DIR"), "/instruction_errors.rs"));
    }
    pub mod entry {
        include!(concat!(env!("OUT_DIR"), "/entry.rs"));
    }
}

/// Field-by-field translators between every two layouts ([`translate::TranslateInto`]).
pub mod translate {
    include!(concat!(env!("OUT_DIR"), "/translate.rs"));
}

/// Every software VMCS layout of the schema (`vmcs12` and its released predecessors).
pub mod layouts {
    include!(concat!(env!("OUT_DIR"), "/layouts.rs"));
}

pub use access::{VmInstructionError, VmcsError, VmcsRead, VmcsWrite};
pub use generated::fields;
pub use layouts::vmcs12;
pub use layouts::vmcs12::Vmcs12;
pub use software::SoftwareVmcs;
