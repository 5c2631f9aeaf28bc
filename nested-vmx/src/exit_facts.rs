//! The exit information of one VM exit of L2, each field read from vmcs02 at most once: L0
//! routes the exit on some of them (reason, qualification, interruption information), the
//! nested exit copies them into vmcs12, and on hardware every read is a VMREAD. The
//! VM-exit information fields (encoding bits 11:10 = 1, SDM Appendix B) are read-only and the
//! processor writes them only at a VM exit, so what was read once holds until the next entry.

use core::cell::Cell;

use vmcs::exit::VmExitReason;
use vmcs::fields as F;
use vmcs::{VmcsError, VmcsRead};

/// How many different exit-information fields one exit may read (the SDM defines 9 natural,
/// 32- and 64-bit ones, their `_HIGH` halves apart).
const SLOTS: usize = 12;

/// vmcs02 (or any VMCS after a VM exit) with its exit-information fields memoized; every other
/// field is read through.
pub struct ExitFacts<'v, V: ?Sized> {
    vmcs: &'v V,
    seen: [Cell<Option<(u64, u64)>>; SLOTS],
}

impl<'v, V: VmcsRead + ?Sized> ExitFacts<'v, V> {
    /// The exit `vmcs` just reported, with `reason` as the VM entry returned it (read already).
    pub fn new(vmcs: &'v V, reason: VmExitReason) -> Self {
        let facts = Self::unread(vmcs);
        facts.seen[0].set(Some((F::VM_EXIT_REASON.raw(), reason.bits() as u64)));
        facts
    }

    /// The exit `vmcs` reported, nothing read yet.
    pub fn unread(vmcs: &'v V) -> Self {
        ExitFacts { vmcs, seen: Default::default() }
    }

    /// The VMCS itself (for writes, which never touch the exit information).
    pub fn vmcs(&self) -> &'v V {
        self.vmcs
    }
}

/// A VM-exit information field (SDM Appendix B: encoding bits 11:10 = 1).
const fn exit_information(encoding: u64) -> bool {
    encoding >> 10 & 3 == 1 && encoding >> 15 == 0
}

impl<V: VmcsRead + ?Sized> VmcsRead for ExitFacts<'_, V> {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        if !exit_information(encoding) {
            return self.vmcs.read_raw(encoding);
        }
        for slot in &self.seen {
            match slot.get() {
                Some((e, v)) if e == encoding => return Ok(v),
                Some(_) => {}
                None => {
                    let v = self.vmcs.read_raw(encoding)?;
                    slot.set(Some((encoding, v)));
                    return Ok(v);
                }
            }
        }
        self.vmcs.read_raw(encoding)
    }
}

/// Where the exit hooks read the facts of the exit being reflected: vmcs02 as the processor left
/// it (through [`ExitFacts`], so each field is read at most once), each fact
/// only when the copy routine asks for it (a field its `when` leaves out is never read).
pub trait ExitSource {
    /// Field `encoding` of the VMCS the exit left.
    fn exit_field(&self, encoding: u64) -> Result<u64, VmcsError>;
}

impl<V: VmcsRead + ?Sized> ExitSource for V {
    fn exit_field(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.read_raw(encoding)
    }
}
