//! The VMCSs L0 uses, one current at a time: vmcs01 (L1), vmcs02 (L2) and, where the processor
//! has VMCS shadowing, the shadow VMCS vmcs01 links to. [`Vmcss::with`] makes one current (VMPTRLD
//! only when it is not already) and lends a handle for it; none is ever cleared after its first
//! load, so each keeps its launch state.

use vmcs::hw::{CurrentVmcs, VmxError, VmxOperation, VmxRegion};

use crate::log;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Vmcs01,
    Vmcs02,
    Shadow,
}

static mut VMCS01: VmxRegion = VmxRegion::new();
static mut VMCS02: VmxRegion = VmxRegion::new();
static mut SHADOW: VmxRegion = VmxRegion::new();

pub struct Vmcss<'o, 'r> {
    op: &'o mut VmxOperation<'r>,
    current: Option<Which>,
    loaded: [bool; 3],
}

fn region(which: Which) -> (&'static mut VmxRegion, u64) {
    let p = match which {
        Which::Vmcs01 => &raw mut VMCS01,
        Which::Vmcs02 => &raw mut VMCS02,
        Which::Shadow => &raw mut SHADOW,
    };
    // SAFETY: the statics are only reached through here, one handle at a time (`with` holds the
    // one borrow of the Vmcss for the handle's life).
    (unsafe { crate::cpu::unique(p) }, p as u64)
}

impl<'o, 'r> Vmcss<'o, 'r> {
    pub fn new(op: &'o mut VmxOperation<'r>) -> Self {
        Vmcss { op, current: None, loaded: [false; 3] }
    }

    /// The physical address of a VMCS (vmcs01's link pointer names the shadow's).
    pub fn phys(which: Which) -> u64 {
        region(which).1
    }

    /// Start `which` afresh at its next use (revision, VMCLEAR: launch state clear), as a VMCS on
    /// a vCPU restored from saved state would be.
    pub fn forget(&mut self, which: Which) {
        self.loaded[which as usize] = false;
        if self.current == Some(which) {
            self.current = None;
        }
    }

    /// The VMX operation, for INVEPT/INVVPID.
    pub fn op(&self) -> &VmxOperation<'r> {
        self.op
    }

    /// Run `f` with `which` current. The first use initializes the region (revision, VMCLEAR).
    pub fn with<R>(&mut self, which: Which, f: impl FnOnce(&mut CurrentVmcs) -> R) -> R {
        let (r, phys) = region(which);
        let i = which as usize;
        // SAFETY: L0's static regions, identity-mapped, never the VMXON region; a region is
        // reloaded only after its first load, and assumed current only when the last VMPTRLD
        // loaded it.
        let loaded: Result<CurrentVmcs, VmxError> = unsafe {
            if !self.loaded[i] {
                if which == Which::Shadow { self.op.load_shadow(r, phys) } else { self.op.load(r, phys) }
            } else if self.current == Some(which) {
                Ok(self.op.assume_current(r, phys))
            } else {
                self.op.reload(r, phys)
            }
        };
        let mut v = loaded.unwrap_or_else(|e| log::fail(format_args!("VMPTRLD {which:?}: {e}")));
        self.loaded[i] = true;
        self.current = Some(which);
        let out = f(&mut v);
        v.set_aside();
        out
    }
}
