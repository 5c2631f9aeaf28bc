//! The VMCSs L0 uses, one current at a time: vmcs01 (L1), vmcs02 (L2) and, where the processor
//! has VMCS shadowing, the shadow VMCS vmcs01 links to. [`Vmcss::with`] makes one current (VMPTRLD
//! only when it is not already) and lends a handle for it; none is cleared but by
//! [`Vmcss::forget`], so each keeps its launch state.

use vmcs::hw::{CurrentVmcs, Vmcs, VmxOperation, VmxRegion};

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
    vmcs: [Vmcs; 3],
}

fn region(which: Which) -> *mut VmxRegion {
    match which {
        Which::Vmcs01 => &raw mut VMCS01,
        Which::Vmcs02 => &raw mut VMCS02,
        Which::Shadow => &raw mut SHADOW,
    }
}

impl<'o, 'r> Vmcss<'o, 'r> {
    /// The three VMCSs, each fresh (revision identifier, VMCLEAR).
    pub fn new(op: &'o mut VmxOperation<'r>) -> Self {
        let mut fresh = |which| {
            let p = region(which);
            // SAFETY: L0's static regions, identity-mapped, never the VMXON region; each is
            // borrowed once, here, by its `Vmcs`.
            let made = unsafe {
                let r = crate::cpu::unique(p);
                if which == Which::Shadow { op.shadow_vmcs(r, p as u64) } else { op.vmcs(r, p as u64) }
            };
            made.unwrap_or_else(|e| log::fail(format_args!("VMCLEAR {which:?}: {e}")))
        };
        let vmcs = [fresh(Which::Vmcs01), fresh(Which::Vmcs02), fresh(Which::Shadow)];
        Vmcss { op, vmcs }
    }

    /// The physical address of a VMCS (vmcs01's link pointer names the shadow's).
    pub fn phys(which: Which) -> u64 {
        region(which) as u64
    }

    /// VMCLEAR `which`: it starts afresh (launch state clear), as a VMCS on a vCPU restored from
    /// saved state would.
    pub fn forget(&mut self, which: Which) {
        let r = self.op.clear(&mut self.vmcs[which as usize]);
        r.unwrap_or_else(|e| log::fail(format_args!("VMCLEAR {which:?}: {e}")));
    }

    /// The VMX operation, for INVEPT/INVVPID.
    pub fn op(&self) -> &VmxOperation<'r> {
        self.op
    }

    /// Run `f` with `which` current.
    pub fn with<R>(&mut self, which: Which, f: impl FnOnce(&mut CurrentVmcs<'_>) -> R) -> R {
        let loaded = self.op.load(&mut self.vmcs[which as usize]);
        let mut v = loaded.unwrap_or_else(|e| log::fail(format_args!("VMPTRLD {which:?}: {e}")));
        f(&mut v)
    }
}
