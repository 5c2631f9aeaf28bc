//! L1's paging, walked for the supervisor data accesses of emulated VMX instructions (their memory
//! operands): linear -> guest-physical with the SDM's permission checks (CR0.WP, SMAP), reserved
//! bits above MAXPHYADDR, and the accessed/dirty bits set as the processor sets them. A fault
//! comes back as the #PF L1 must get (error code and CR2).
//!
//! Modes: paging off, 32-bit (with PSE 4 MiB pages), PAE, 4-level and 5-level. The PAE PDPTEs are
//! read from memory at CR3 (the processor caches them at MOV CR3; an L1 that edits them without
//! reloading CR3 sees the edit here).

use crate::vcpu::{CR0_PG, CR0_WP, CR4_LA57, CR4_PAE, CR4_PSE, CR4_SMAP, Fault, GuestMemory, MemoryError, Stop};

/// The paging state of L1 at the exit.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.LMA.
    pub long_mode: bool,
    /// RFLAGS.AC (SMAP lets supervisor accesses reach user pages only with AC = 1).
    pub ac: bool,
    /// L1's physical-address width.
    pub maxphyaddr: u8,
}

const P: u64 = 1;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;

/// #PF error-code bits.
const PF_P: u32 = 1;
const PF_W: u32 = 1 << 1;
const PF_RSVD: u32 = 1 << 3;

impl Paging {
    /// Translate `linear` for a supervisor data access of L1 (`write` or read).
    pub fn translate<M: GuestMemory + ?Sized>(&self, mem: &mut M, linear: u64, write: bool) -> Result<u64, Stop> {
        if self.cr0 & CR0_PG == 0 {
            return Ok(linear & 0xffff_ffff);
        }
        let wfault = if write { PF_W } else { 0 };
        let pf = |bits: u32| Stop::Fault(Fault::pf(bits | wfault, linear));
        let rsvd = !0u64 << self.maxphyaddr.min(52) & ((1 << 52) - 1);
        // (entry address, shift of the index, index mask, is the last level, may be a large page)
        let mut table;
        let levels: &[(u32, bool)];
        let entry8: bool;
        if self.long_mode {
            table = self.cr3 & 0x000f_ffff_ffff_f000;
            levels = if self.cr4 & CR4_LA57 != 0 {
                &[(48, false), (39, false), (30, true), (21, true), (12, false)]
            } else {
                &[(39, false), (30, true), (21, true), (12, false)]
            };
            entry8 = true;
        } else if self.cr4 & CR4_PAE != 0 {
            let pdpte_addr = (self.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8;
            let pdpte = mem.read_u64(pdpte_addr)?;
            if pdpte & P == 0 {
                return Err(pf(0));
            }
            // PDPTE bits 2:1 and 8:5 are reserved in PAE paging.
            if pdpte & (rsvd | 0x1e6) != 0 {
                return Err(pf(PF_P | PF_RSVD));
            }
            table = pdpte & 0x000f_ffff_ffff_f000;
            levels = &[(21, true), (12, false)];
            entry8 = true;
        } else {
            table = self.cr3 & 0xffff_f000;
            levels = &[(22, true), (12, false)];
            entry8 = false;
        }
        let mut writable = true;
        let mut user = true;
        let mut touched: [(u64, u64, bool); 5] = [(0, 0, false); 5];
        let mut n = 0;
        for (i, &(shift, large_ok)) in levels.iter().enumerate() {
            let index = (linear >> shift) & if entry8 { 0x1ff } else { 0x3ff };
            let addr = table + index * if entry8 { 8 } else { 4 };
            let entry = if entry8 { mem.read_u64(addr)? } else { mem.read_u32(addr)? as u64 };
            if entry & P == 0 {
                return Err(pf(0));
            }
            if entry8 && entry & rsvd != 0 {
                return Err(pf(PF_P | PF_RSVD));
            }
            writable &= entry & RW != 0;
            user &= entry & US != 0;
            let last = i + 1 == levels.len();
            let large = !last && large_ok && entry & PS != 0 && (entry8 || self.cr4 & CR4_PSE != 0);
            if let Some(slot) = touched.get_mut(n) {
                *slot = (addr, entry, last || large);
                n += 1;
            }
            if last || large {
                if write && !writable && self.cr0 & CR0_WP != 0 {
                    return Err(pf(PF_P));
                }
                if user && self.cr4 & CR4_SMAP != 0 && !self.ac {
                    return Err(pf(PF_P));
                }
                let page = 1u64 << shift;
                let base = if entry8 {
                    entry & 0x000f_ffff_ffff_f000 & !(page - 1)
                } else if large {
                    // PSE-36: bits 20:13 of a 4 MiB PDE are physical-address bits 39:32.
                    (entry & 0xffc0_0000) | (entry >> 13 & 0xff) << 32
                } else {
                    entry & 0xffff_f000
                };
                self.set_accessed(mem, &touched[..n], write, entry8)?;
                return Ok(base | (linear & (page - 1)));
            }
            table = entry & if entry8 { 0x000f_ffff_ffff_f000 } else { 0xffff_f000 };
        }
        unreachable_walk()
    }

    /// Set A in every entry of the walk and D in the leaf of a write, as the processor does.
    fn set_accessed<M: GuestMemory + ?Sized>(
        &self,
        mem: &mut M,
        walk: &[(u64, u64, bool)],
        write: bool,
        entry8: bool,
    ) -> Result<(), MemoryError> {
        for &(addr, entry, leaf) in walk {
            let new = entry | A | if leaf && write { D } else { 0 };
            if new != entry {
                if entry8 {
                    mem.write(addr, &new.to_le_bytes())?;
                } else {
                    mem.write(addr, &(new as u32).to_le_bytes())?;
                }
            }
        }
        Ok(())
    }
}

/// Every level list ends with a last level, which returns: this is never reached.
#[cold]
fn unreachable_walk() -> Result<u64, Stop> {
    Err(Stop::Fault(Fault::gp0()))
}
