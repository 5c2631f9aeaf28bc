//! Generated copy routines between vmcs12, vmcs02 and the shadow VMCS, with the dirty-group
//! tracking that lets a nested VM entry skip the rarely changed groups L1 did not touch.

use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::caps::Capabilities;
pub use crate::generated::copy::*;

/// Copy one field: a VMREAD from `src` and a VMWRITE of the value to `dst`.
#[inline(always)]
pub fn copy_field<S: VmcsRead + ?Sized, D: VmcsWrite + ?Sized>(
    src: &S,
    dst: &mut D,
    encoding: u64,
) -> Result<(), VmcsError> {
    dst.write_raw(encoding, src.read_raw(encoding)?)
}

/// A layout with clean-field bits (the eVMCS's `hv_clean_fields`): a set bit says L1 did not change
/// that group since the last VM entry.
pub trait CleanFields {
    fn clean_fields(&self) -> u32;
}

/// A vmcs12 that knows which groups L1 has written since they were last copied.
pub trait DirtyGroups {
    fn is_dirty(&self, group: Group) -> bool;
    fn clear_dirty(&mut self, group: Group);
}

/// A software VMCS (vmcs12) with dirty-group tracking: L1's VMWRITEs, emulated through this
/// handle's [`VmcsWrite`], mark the written field's group dirty. L0's own writes (syncing L2 state
/// back on VM exit) go through [`Tracked::inner_mut`] and mark nothing, like KVM's dirty_vmcs12.
#[derive(Clone, Copy, Debug)]
pub struct Tracked<L> {
    layout: L,
    dirty: u32,
}

impl<L> Tracked<L> {
    /// A freshly loaded vmcs12 (VMPTRLD): every group is dirty.
    pub fn new(layout: L) -> Self {
        Tracked { layout, dirty: u32::MAX }
    }
    pub fn inner(&self) -> &L {
        &self.layout
    }
    /// For L0's own writes: no group becomes dirty.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.layout
    }
    pub fn mark_all_dirty(&mut self) {
        self.dirty = u32::MAX;
    }
    pub fn dirty_mask(&self) -> u32 {
        self.dirty
    }
}

impl<L> DirtyGroups for Tracked<L> {
    fn is_dirty(&self, group: Group) -> bool {
        self.dirty & group.mask() != 0
    }
    fn clear_dirty(&mut self, group: Group) {
        self.dirty &= !group.mask();
    }
}

impl<L: VmcsRead> VmcsRead for Tracked<L> {
    #[inline(always)]
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.layout.read_raw(encoding)
    }
}

impl<L: VmcsWrite> VmcsWrite for Tracked<L> {
    #[inline(always)]
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.layout.write_raw(encoding, value)?;
        if let Some(g) = group_of(encoding) {
            self.dirty |= g.mask();
        }
        Ok(())
    }
}

/// The VMREAD and VMWRITE bitmaps of a shadow VMCS: bit n (n = encoding bits 14:0) set means the
/// instruction exits; clear means it is served by the shadow VMCS.
#[derive(Clone)]
pub struct ShadowBitmaps {
    pub vmread: [u8; 4096],
    pub vmwrite: [u8; 4096],
}

impl ShadowBitmaps {
    /// Bitmaps for the schema's shadow lists, leaving out fields that do not exist for `caps`
    /// (the shadow VMCS could not hold them). A 64-bit field's high half is shadowed with it.
    pub fn new<C: Capabilities + ?Sized>(caps: &C) -> Self {
        let mut b = ShadowBitmaps { vmread: [0xff; 4096], vmwrite: [0xff; 4096] };
        for (list, writable) in [(SHADOW_READ_ONLY, false), (SHADOW_READ_WRITE, true)] {
            for &e in list {
                if !crate::fields::exists(e as u64, caps) {
                    continue;
                }
                let high = crate::fields::exists(e as u64 | 1, caps);
                for enc in [Some(e), high.then_some(e | 1)].into_iter().flatten() {
                    clear(&mut b.vmread, enc);
                    if writable {
                        clear(&mut b.vmwrite, enc);
                    }
                }
            }
        }
        b
    }

    /// Does VMREAD of `encoding` exit?
    pub fn read_exits(&self, encoding: u64) -> bool {
        exits(&self.vmread, encoding)
    }

    /// Does VMWRITE of `encoding` exit?
    pub fn write_exits(&self, encoding: u64) -> bool {
        exits(&self.vmwrite, encoding)
    }
}

fn clear(bitmap: &mut [u8; 4096], encoding: u32) {
    let bit = (encoding & 0x7fff) as usize;
    bitmap[bit / 8] &= !(1 << (bit % 8));
}

/// Encodings above 15 bits always exit (the processor uses bits 14:0 only when bits 63:15 are 0).
fn exits(bitmap: &[u8; 4096], encoding: u64) -> bool {
    if encoding >> 15 != 0 {
        return true;
    }
    let bit = encoding as usize;
    bitmap[bit / 8] >> (bit % 8) & 1 == 1
}
