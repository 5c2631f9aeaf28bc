//! What the shadow VMCS holds as far as L0 knows ([`crate::shadow`]): kept in the vCPU's
//! [`crate::vmx::NestedVmx`], used by the shadow's fill and drain.

use core::cell::Cell;

use vmcs::copy::{SHADOW_READ_ONLY, SHADOW_READ_WRITE};

const SHADOWED: usize = SHADOW_READ_WRITE.len() + SHADOW_READ_ONLY.len();

/// The shadowed fields' values in the shadow VMCS as far as L0 knows them (`None`: unknown).
#[derive(Clone, Debug)]
pub struct ShadowCache {
    values: [Cell<Option<u64>>; SHADOWED],
}

impl Default for ShadowCache {
    fn default() -> Self {
        ShadowCache { values: [const { Cell::new(None) }; SHADOWED] }
    }
}

impl ShadowCache {
    /// The cell of a shadowed field (full encoding), None for any other.
    pub(crate) fn slot(&self, encoding: u64) -> Option<&Cell<Option<u64>>> {
        let i = SHADOW_READ_WRITE.iter().chain(SHADOW_READ_ONLY).position(|&e| e as u64 == encoding)?;
        self.values.get(i)
    }

    /// Everything unknown (a new or reinitialized shadow VMCS).
    pub fn forget(&self) {
        self.values.iter().for_each(|v| v.set(None));
    }
}
