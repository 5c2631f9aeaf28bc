//! The copy routines a nested hypervisor (L0) runs, generated from `schema/copysets.toml`, and what
//! they need at run time.
//!
//! # What L0 implements
//!
//! One [`NestedHooks`] per vCPU: the predicates (facts only L0 knows: a pending VMLAUNCH/VMRESUME,
//! L0's use of EPT and VPID, L2's paging mode, ...) and the hooks, one per value KVM computes,
//! merges or translates instead of copying (vmcs02's controls from L0's and L1's, the VPID, EPTP and
//! page addresses L2 runs with, CR0/CR4 and their masks and shadows, TSC offset, exception bitmap,
//! L2's state as L1 sees it on exit, the exit information, L1's state from vmcs12's host fields).
//! Each hook is typed by its field's width and documented with the set and field it serves. The
//! generated code calls them in KVM's order, so L0 writes only what no schema can express.
//!
//! # When each routine runs
//!
//! - VMPTRLD (or a state restore): wrap the vmcs12 in [`Tracked::new`]; everything is dirty.
//! - L1's VMWRITE (emulated): through [`Tracked`]'s [`VmcsWrite`](crate::VmcsWrite), which marks what the write can
//!   change on the next entry; with VMCS shadowing, a field shadowed read-only is also written
//!   into the shadow VMCS (L1 reads it there). L1's VMREAD: first [`sync_rare`] if
//!   [`Tracked::needs_lazy_sync`].
//! - VMLAUNCH/VMRESUME: with VMCS shadowing, first [`shadow_read_write_back`] (before the checks:
//!   a refused entry must see L1's writes too); after the checks, [`nested_entry`] with vmcs02
//!   current (on hardware: VMPTRLD vmcs02 first). A state restore is [`nested_entry`] alone.
//! - A nested VM exit to L1, with vmcs02 current: [`exit_to_vmcs12`]; then, with vmcs01 current,
//!   [`load_host_state`]; with shadowing, [`shadow_read_write`] and [`shadow_read_only`] into the
//!   shadow VMCS before L1 runs.
//! - VMCLEAR, VMPTRLD of another VMCS, KVM_GET_NESTED_STATE: [`sync_for_save`] with vmcs02 current.
//!
//! Every routine takes the processor's capabilities (`caps`): which fields vmcs02 and vmcs01 have.
//! A field the processor lacks is skipped, never read; L1's capabilities are a subset of these.
//!
//! Not generated (L0's own): vmcs02's host state, exit controls and constant state; the MSR-load
//! and MSR-store lists; merging L1's MSR bitmap page; event re-injection; the entry checks.
//!
//! # Example: the shadow VMCS around a nested exit
//!
//! ```
//! use vmcs::caps::AllCaps;
//! use vmcs::copy::{Tracked, shadow_read_write, shadow_read_write_back};
//! use vmcs::soft::SoftVmcs;
//! use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite, fields};
//!
//! let mut vmcs12 = Tracked::new(Vmcs12::zeroed());
//! vmcs12.write(fields::GUEST_RIP, 0x1000)?;
//! vmcs12.write(fields::GUEST_CS_SELECTOR, 8)?;
//! // The processor's shadow VMCS (here a software one, with the processor's semantics).
//! let mut shadow = SoftVmcs::new(&AllCaps);
//! // Before L1 runs: the fields KVM shadows read-write, vmcs12 -> shadow. GUEST_CS_SELECTOR is
//! // not one of them (L1's VMREAD of it exits), so it stays behind.
//! shadow_read_write(vmcs12.inner(), &mut shadow, &AllCaps)?;
//! assert_eq!(shadow.read(fields::GUEST_RIP)?, 0x1000);
//! assert_eq!(shadow.read(fields::GUEST_CS_SELECTOR)?, 0);
//! // L1 VMWRITEs GUEST_RIP without an exit; before the next nested entry it comes back.
//! shadow.write(fields::GUEST_RIP, 0x2000)?;
//! shadow_read_write_back(&shadow, &mut vmcs12, &AllCaps)?;
//! assert_eq!({ vmcs12.inner().guest_rip }, 0x2000);
//! # Ok::<(), VmcsError>(())
//! ```
//!
//! # What is equivalent to KVM
//!
//! Membership and conditions: each set moves the vmcs12 fields of its KVM 7.2.8 routine under the
//! same conditions (the set docs name the routine). Dirty tracking is per entry: an entry is copied
//! again when an L1 VMWRITE (or an L0 write after an exit) wrote a field whose value it reads, or
//! when a predicate or a vmcs12 control bit it depends on changed; KVM's single `dirty_vmcs12`
//! flag copies every rare field after any such write. So vmcs02 is never staler than KVM's (`runtime/tests/copy_model.rs`
//! compares it with copying everything on every entry).

mod flow;
mod tracked;

pub use crate::access::CleanFields;
use crate::access::{VmcsError, VmcsRead};
use crate::caps::Capabilities;
pub use crate::generated::copy::*;

pub use flow::{ExitKind, Launched, exit_to_vmcs12, nested_entry, sync_for_save};
pub use tracked::Tracked;

/// Bit `bit` of the control field `encoding` (for the generated conditions over vmcs12).
#[inline(always)]
pub fn control_bit<V: VmcsRead + ?Sized>(v: &V, encoding: u64, bit: u32) -> Result<bool, VmcsError> {
    Ok(v.read_raw(encoding)? >> bit & 1 == 1)
}

/// The VMREAD and VMWRITE bitmaps of a shadow VMCS: bit n (n = encoding bits 14:0) set means the
/// instruction exits; clear means it is served by the shadow VMCS.
#[derive(Clone)]
pub struct ShadowBitmaps {
    /// The VMREAD bitmap (the page VMREAD_BITMAP points at).
    pub vmread: [u8; 4096],
    /// The VMWRITE bitmap (the page VMWRITE_BITMAP points at).
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
