//! What the rules need to know about a vmcs12 layout.

use crate::bytes::read_u32;
use crate::bytes::read_u64;
use crate::{
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS, HEADER_SIZE, INVALID_GPA, KVM_STATE_NESTED_VMX_VMCS_SIZE,
    SECONDARY_EXEC_SHADOW_VMCS, SHADOW_VMCS12_OFFSET,
};

/// The facts about a vmcs12 layout that `KVM_SET_NESTED_STATE` depends on: its size (rule 15's and
/// rule 20's thresholds, and how much KVM copies), its revision (rules 19 and 22) and where the
/// header and the three members deciding "uses a shadow VMCS" live.
///
/// Built from the schema, never written by hand: `vmcs_gen::state::shape` reads it off the model,
/// and the runtime's `vmcs::nested_state::VMCS12_SHAPE` is generated from that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vmcs12Shape {
    /// `sizeof(struct vmcs12)`: the meaningful bytes of each area (998 in Linux 7.2.8).
    pub struct_size: usize,
    /// `VMCS12_REVISION` (0x11e57ed0).
    pub revision: u32,
    /// Offset of the 32-bit `hdr` (revision in bits 30:0, shadow-VMCS indicator in bit 31).
    pub hdr: usize,
    /// Offset of the 32-bit primary processor-based controls (`cpu_based_vm_exec_control`).
    pub primary_controls: usize,
    /// Offset of the 32-bit secondary processor-based controls (`secondary_vm_exec_control`).
    pub secondary_controls: usize,
    /// Offset of the 64-bit VMCS link pointer (`vmcs_link_pointer`).
    pub link_pointer: usize,
}

/// Why a [`Vmcs12Shape`] cannot describe a nested-state vmcs12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// The struct does not fit the 4096-byte area of the blob.
    TooLarge,
    /// A member lies (partly) outside the struct.
    MemberOutside,
}

impl Vmcs12Shape {
    /// Checks that the struct fits an area and every member lies inside the struct.
    pub const fn validate(&self) -> Result<(), ShapeError> {
        if self.struct_size > KVM_STATE_NESTED_VMX_VMCS_SIZE {
            return Err(ShapeError::TooLarge);
        }
        let n = self.struct_size;
        if !inside(self.hdr, 4, n)
            || !inside(self.primary_controls, 4, n)
            || !inside(self.secondary_controls, 4, n)
            || !inside(self.link_pointer, 8, n)
        {
            return Err(ShapeError::MemberOutside);
        }
        Ok(())
    }

    /// Rule 15's threshold: below it the state is "VMXON without a VMCS" (128 + 998 = 1126, not 4224).
    pub const fn min_size_with_vmcs12(&self) -> usize {
        HEADER_SIZE + self.struct_size
    }

    /// Rule 20's threshold for a shadow vmcs12 (128 + 4096 + 998 = 5222).
    pub const fn min_size_with_shadow(&self) -> usize {
        SHADOW_VMCS12_OFFSET + self.struct_size
    }

    /// `hdr` of a vmcs12 given as its bytes.
    pub fn hdr_of(&self, vmcs12: &[u8]) -> u32 {
        read_u32(vmcs12, self.hdr)
    }

    /// `nested_cpu_has_shadow_vmcs(vmcs12) && vmcs12->vmcs_link_pointer != INVALID_GPA`, for a
    /// vmcs12 given as its bytes.
    pub fn uses_shadow_vmcs(&self, vmcs12: &[u8]) -> bool {
        read_u32(vmcs12, self.primary_controls) & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS != 0
            && read_u32(vmcs12, self.secondary_controls) & SECONDARY_EXEC_SHADOW_VMCS != 0
            && read_u64(vmcs12, self.link_pointer) != INVALID_GPA
    }
}

const fn inside(off: usize, len: usize, size: usize) -> bool {
    off <= size && len <= size - off
}

impl core::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "vmcs12 is larger than the 4096-byte nested-state area",
            Self::MemberOutside => "a vmcs12 member the rules read lies outside the struct",
        })
    }
}

impl core::error::Error for ShapeError {}
