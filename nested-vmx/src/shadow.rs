//! VMCS shadowing of L1's VMREAD/VMWRITE (KVM's enable_shadow_vmcs, nested.c:72, 1696, 1723): L0
//! gives vmcs01 the schema's shadow bitmaps and a shadow VMCS holding the shadowed fields of the
//! current vmcs12, so L1 reads them (and writes the read-write ones) without exits.
//!
//! L0 fills the shadow from vmcs12 whenever vmcs12 changes under L1 (VMPTRLD, a nested exit), and
//! drains L1's writes back into vmcs12 before anything reads vmcs12 (VMLAUNCH/VMRESUME, VMCLEAR,
//! VMPTRLD of another VMCS, VMXOFF, saving nested state). An emulated VMWRITE of a field L1 reads
//! through the shadow (a read-only one, with IA32_VMX_MISC bit 29) is written through to it.
//! Read-write shadow fields are consumed on every nested entry, so they need no dirty tracking.

use vmcs::copy::{self, SHADOW_READ_ONLY, ShadowBitmaps};
use vmcs::{VmcsError, VmcsRead, VmcsWrite};

use crate::vmx::NestedVmx;

impl NestedVmx {
    /// vmcs01's VMREAD/VMWRITE bitmaps: the schema's shadow lists, for fields L1's capabilities
    /// have.
    pub fn shadow_bitmaps(&self) -> ShadowBitmaps {
        ShadowBitmaps::new(self.caps.caps())
    }

    /// vmcs12 -> the shadow VMCS (current): every field L1 may read without exiting.
    pub fn fill_shadow<S: VmcsRead + VmcsWrite + ?Sized>(&self, shadow: &mut S) -> Result<(), VmcsError> {
        let (v12, caps) = (self.current.vmcs12.inner(), self.caps.caps());
        copy::shadow_read_write(v12, shadow, caps)?;
        copy::shadow_read_only(v12, shadow, caps)
    }

    /// The shadow VMCS (current) -> vmcs12: what L1 wrote through it.
    pub fn drain_shadow<S: VmcsRead + ?Sized>(&mut self, shadow: &S) -> Result<(), VmcsError> {
        let caps = *self.caps.caps();
        copy::shadow_read_write_back(shadow, &mut self.current.vmcs12, &caps)
    }

    /// The last emulated VMWRITE, if L1 also reads that field through the shadow: (encoding,
    /// value) to write into the shadow VMCS. Taken once.
    pub fn take_shadow_write(&mut self) -> Option<(u64, u64)> {
        let e = self.last_vmwrite.take()?;
        let full = (e & !1) as u32;
        SHADOW_READ_ONLY.contains(&full).then(|| (e, self.current.get(e)))
    }
}
