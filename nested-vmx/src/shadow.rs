//! VMCS shadowing of L1's VMREAD/VMWRITE (KVM's enable_shadow_vmcs, nested.c:72, 1696, 1723): L0
//! gives vmcs01 the schema's shadow bitmaps and a shadow VMCS holding the shadowed fields of the
//! current vmcs12, so L1 reads them (and writes the read-write ones) without exits.
//!
//! L0 fills the shadow from vmcs12 whenever vmcs12 changes under L1 (VMPTRLD, a nested exit), and
//! drains L1's writes back into vmcs12 before anything reads vmcs12 (VMLAUNCH/VMRESUME, VMCLEAR,
//! VMPTRLD of another VMCS, VMXOFF, saving nested state). An emulated VMWRITE of a field L1 reads
//! through the shadow (a read-only one, with IA32_VMX_MISC bit 29) is written through to it.
//! Read-write shadow fields are consumed on every nested entry, so they need no dirty tracking.
//!
//! The shadow VMCS keeps its contents between fills, so L0 writes only what differs: a
//! [`ShadowCache`] remembers each shadowed field's value as L0 last wrote or read it (drains read
//! every read-write field, so L1's writes through the shadow are seen before the next fill), and
//! a fill VMWRITEs the fields whose vmcs12 value is another (KVM's copy_vmcs12_to_shadow writes
//! every shadowed field).

use core::ops::{Deref, DerefMut};

use vmcs::copy::{self, SHADOW_READ_ONLY, ShadowBitmaps};
use vmcs::{VmcsError, VmcsRead, VmcsWrite};

pub use crate::shadow_cache::ShadowCache;
use crate::vmx::NestedVmx;

/// The shadow VMCS (`R`: `&S` or `&mut S`) seen through its cache: a write of the value it
/// already holds is skipped, every access of a full shadowed field records its value, and any
/// other write (a high half) forgets the field it touches.
struct Cached<'a, R> {
    shadow: R,
    cache: &'a ShadowCache,
}

impl<R: Deref<Target = S>, S: VmcsRead + ?Sized> VmcsRead for Cached<'_, R> {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        let v = self.shadow.read_raw(encoding)?;
        if let Some(slot) = self.cache.slot(encoding) {
            slot.set(Some(v));
        }
        Ok(v)
    }
}

impl<R: DerefMut<Target = S>, S: VmcsRead + VmcsWrite + ?Sized> VmcsWrite for Cached<'_, R> {
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        let slot = self.cache.slot(encoding);
        if slot.is_some_and(|s| s.get() == Some(value)) {
            return Ok(());
        }
        // Unknown until the write is done (it may fail half-way on hardware).
        if let Some(full) = self.cache.slot(encoding & !1) {
            full.set(None);
        }
        self.shadow.write_raw(encoding, value)?;
        if let Some(slot) = slot {
            slot.set(Some(value));
        }
        Ok(())
    }
}

impl NestedVmx {
    /// vmcs01's VMREAD/VMWRITE bitmaps: the schema's shadow lists, for fields L1's capabilities
    /// have.
    pub fn shadow_bitmaps(&self) -> ShadowBitmaps {
        ShadowBitmaps::new(self.caps.caps())
    }

    /// vmcs12 -> the shadow VMCS (current): every field L1 may read without exiting, written
    /// where the shadow holds another value (or one L0 does not know).
    pub fn fill_shadow<S: VmcsRead + VmcsWrite + ?Sized>(&self, shadow: &mut S) -> Result<(), VmcsError> {
        let (v12, caps) = (self.current.vmcs12.inner(), self.caps.caps());
        let mut shadow = Cached { shadow, cache: &self.shadow_cache };
        copy::shadow_read_write(v12, &mut shadow, caps)?;
        copy::shadow_read_only(v12, &mut shadow, caps)
    }

    /// The shadow VMCS (current) -> vmcs12: what L1 wrote through it.
    pub fn drain_shadow<S: VmcsRead + ?Sized>(&mut self, shadow: &S) -> Result<(), VmcsError> {
        let caps = *self.caps.caps();
        let shadow = Cached { shadow, cache: &self.shadow_cache };
        copy::shadow_read_write_back(&shadow, &mut self.current.vmcs12, &caps)
    }

    /// Write the field [`Self::take_shadow_write`] returned into the shadow VMCS (current).
    pub fn write_shadow<S: VmcsRead + VmcsWrite + ?Sized>(
        &self,
        shadow: &mut S,
        encoding: u64,
        value: u64,
    ) -> Result<(), VmcsError> {
        Cached { shadow, cache: &self.shadow_cache }.write_raw(encoding, value)
    }

    /// L0 replaced or reinitialized the shadow VMCS: the next fill writes every field.
    pub fn forget_shadow(&self) {
        self.shadow_cache.forget();
    }

    /// The last emulated VMWRITE, if L1 also reads that field through the shadow: (encoding,
    /// value) to write into the shadow VMCS. Taken once.
    pub fn take_shadow_write(&mut self) -> Option<(u64, u64)> {
        let e = self.last_vmwrite.take()?;
        let full = (e & !1) as u32;
        SHADOW_READ_ONLY.contains(&full).then(|| (e, self.current.get(e)))
    }
}
