//! Nested EPT: L1's EPT12 walked for L2's guest-physical addresses, and EPT02, the tables vmcs02
//! runs L2 on, built from it lazily (as KVM 7.2.8's shadow EPT MMU does: `kvm_init_shadow_ept_mmu`,
//! `paging_tmpl.h` with PTTYPE_EPT).
//!
//! vmcs02's EPTP names EPT02, empty at first: each L2 access to an address EPT02 lacks is an EPT
//! violation that L0 keeps; L0 walks EPT12 for it ([`walk`]) and either installs the 4 KiB leaf
//! (the host page behind the L1 guest-physical address EPT12 gives, with EPT12's permissions) and
//! resumes L2, or reflects to L1 what EPT12 says: an EPT violation (exit 48, its qualification
//! synthesized by [`violation_qualification`]) or an EPT misconfiguration (exit 49). INVEPT, and an
//! entry with another EPTP12, drop EPT02 ([`Ept02::reset`]): like a TLB, it only ever caches what
//! EPT12 allowed when it was walked.

use crate::vcpu::{GuestMemory, MemoryError};

/// EPT entry bits.
const R: u64 = 1;
const W: u64 = 1 << 1;
const X: u64 = 1 << 2;
const RWX: u64 = 7;
const LARGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// An access in EPT terms (the EPT-violation qualification's bits 2:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read (also of L2's own paging structures).
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

impl Access {
    /// From an EPT-violation qualification (bit 1: write, bit 2: instruction fetch, else read).
    pub const fn from_qualification(q: u64) -> Access {
        if q & 2 != 0 {
            Access::Write
        } else if q & 4 != 0 {
            Access::Fetch
        } else {
            Access::Read
        }
    }
    const fn bit(self) -> u64 {
        match self {
            Access::Read => R,
            Access::Write => W,
            Access::Fetch => X,
        }
    }
}

/// A successful EPT12 walk: the L1 guest-physical address and what EPT12 allows on its 4 KiB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The L1 guest-physical address of the access.
    pub address: u64,
    /// Read/write/execute (bits 2:0) every level of EPT12 allows.
    pub permissions: u64,
    /// The leaf's memory type (bits 5:3).
    pub memory_type: u64,
}

/// Why EPT12 does not give the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EptFault {
    /// Not present or not permitted: L1 gets an EPT violation; `permissions` are what the entries
    /// walked allow (bits 2:0 of the last one read, ANDed over the walk).
    Violation {
        /// The permissions the walked entries allow.
        permissions: u64,
    },
    /// A reserved bit, a write-only or (without the capability) execute-only entry, a bad memory
    /// type: L1 gets an EPT misconfiguration.
    Misconfig,
    /// EPT12 itself is outside L1's memory.
    Memory(MemoryError),
}

fn misconfigured(e: u64, leaf: bool, level: usize, execute_only: bool, maxphyaddr: u8) -> bool {
    let rwx = e & RWX;
    let write_only = rwx & (R | W) == W;
    let bad_xo = rwx == X && !execute_only;
    let above = e & ADDR & !0u64 << maxphyaddr.min(52) != 0;
    // Bits 7 (large page) in a PML4E, 6:3 in a non-leaf, and memory types 2, 3 and 7 in a leaf.
    let reserved =
        if leaf { matches!(e >> 3 & 7, 2 | 3 | 7) } else { e >> 3 & 0xf != 0 || (level == 0 && e & LARGE != 0) };
    write_only || bad_xo || above || reserved
}

/// Walk EPT12 (4-level; 1 GiB, 2 MiB and 4 KiB pages) at `eptp12` for L2 guest-physical `gpa`.
pub fn walk<M: GuestMemory + ?Sized>(
    mem: &M,
    eptp12: u64,
    gpa: u64,
    access: Access,
    execute_only: bool,
    maxphyaddr: u8,
) -> Result<Translation, EptFault> {
    let mut table = eptp12 & ADDR;
    let mut allowed = RWX;
    for level in 0..4 {
        let shift = 39 - 9 * level as u64;
        let entry = mem.read_u64(table + ((gpa >> shift) & 0x1ff) * 8).map_err(EptFault::Memory)?;
        if entry & RWX == 0 {
            return Err(EptFault::Violation { permissions: 0 });
        }
        let leaf = level == 3 || (level > 0 && entry & LARGE != 0);
        if misconfigured(entry, leaf, level, execute_only, maxphyaddr) {
            return Err(EptFault::Misconfig);
        }
        allowed &= entry & RWX;
        if leaf {
            if allowed & access.bit() == 0 {
                return Err(EptFault::Violation { permissions: allowed });
            }
            let page = 1u64 << shift;
            let base = entry & ADDR & !(page - 1);
            return Ok(Translation {
                address: base | (gpa & (page - 1)),
                permissions: allowed,
                memory_type: entry >> 3 & 7,
            });
        }
        table = entry & ADDR;
    }
    Err(EptFault::Misconfig)
}

/// The exit qualification L1 gets for an EPT violation EPT12 causes: the access (bits 2:0) and the
/// guest-linear-address bits (7, 8) from the processor's qualification, EPT12's permissions in
/// bits 5:3 (KVM's nested_ept_inject_page_fault).
pub const fn violation_qualification(hardware: u64, permissions: u64) -> u64 {
    hardware & (7 | 1 << 7 | 1 << 8) | (permissions & RWX) << 3
}

/// Page-table pages for EPT02: `count` 4 KiB tables L0 owns, by index.
pub trait TablePages {
    /// How many tables there are.
    fn count(&self) -> usize;
    /// Table `index` (below [`Self::count`]), for L0 to write.
    fn table(&mut self, index: usize) -> &mut [u64; 512];
    /// The host-physical address of table `index`.
    fn phys(&self, index: usize) -> u64;
}

/// EPT02 over `P`'s pages: table 0 is the root; the others are handed out in order.
pub struct Ept02<P: TablePages> {
    pages: P,
    used: usize,
    /// The EPTP12 the tables were built from.
    pub built_for: Option<u64>,
}

/// EPT02 has no table left: [`Ept02::reset`] and let the access fault again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolFull;

impl<P: TablePages> Ept02<P> {
    /// An empty EPT02 (a root mapping nothing) on `pages`.
    pub fn new(pages: P) -> Self {
        let mut e = Ept02 { pages, used: 1, built_for: None };
        e.reset(None);
        e
    }

    /// Drop every mapping (INVEPT, another EPTP12); the next L2 accesses walk EPT12 again.
    pub fn reset(&mut self, eptp12: Option<u64>) {
        for i in 0..self.used {
            self.pages.table(i).fill(0);
        }
        self.used = 1;
        self.built_for = eptp12;
    }

    /// vmcs02's EPTP: 4-level walk, write-back paging structures.
    pub fn eptp(&self) -> u64 {
        self.pages.phys(0) | 3 << 3 | 6
    }

    /// Map L2's 4 KiB page at `gpa` to host-physical `hpa` with `permissions` (bits 2:0) and
    /// `memory_type`.
    pub fn map(&mut self, gpa: u64, hpa: u64, permissions: u64, memory_type: u64) -> Result<(), PoolFull> {
        let mut table = 0;
        for level in 0..3 {
            let index = ((gpa >> (39 - 9 * level)) & 0x1ff) as usize;
            let entry = self.pages.table(table)[index];
            table = if entry & RWX != 0 {
                self.index_of(entry & ADDR).ok_or(PoolFull)?
            } else {
                let next = self.used;
                if next >= self.pages.count() {
                    return Err(PoolFull);
                }
                self.used += 1;
                let phys = self.pages.phys(next);
                self.pages.table(table)[index] = phys | RWX;
                next
            };
        }
        self.pages.table(table)[((gpa >> 12) & 0x1ff) as usize] =
            (hpa & ADDR) | (permissions & RWX) | (memory_type & 7) << 3;
        Ok(())
    }

    fn index_of(&self, phys: u64) -> Option<usize> {
        (0..self.used).find(|&i| self.pages.phys(i) == phys)
    }

    /// Tables in use (the root included).
    pub fn tables_used(&self) -> usize {
        self.used
    }

    /// Look at table `index` (a test's or a debugger's view of EPT02).
    pub fn with_table(&mut self, index: usize, f: impl FnOnce(&[u64; 512])) {
        if index < self.used {
            f(self.pages.table(index));
        }
    }
}
