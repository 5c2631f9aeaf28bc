//! L1's guest-physical memory as L0 sees it: RAM at [0, L1_RAM) backed by host-physical memory at
//! L1_BASE, except the legacy hole [0xA0000, 0x100000) (VGA memory, option and BIOS ROMs), which
//! is the machine's own (EPT maps it identically). L0 runs identity-mapped, so a host-physical
//! address is a pointer.

use vmcs_nested_vmx::vcpu::{GuestMemory, MemoryError};

/// Where L1's RAM lives in host-physical memory (2 MiB-aligned for EPT's large pages).
pub const L1_BASE: u64 = 32 << 20;
/// How much RAM L1 has.
pub const L1_RAM: u64 = 64 << 20;
/// The legacy hole, identity-mapped.
pub const HOLE_START: u64 = 0xa_0000;
pub const HOLE_END: u64 = 0x10_0000;

/// L1's memory.
pub struct L1Memory;

impl L1Memory {
    /// The host-physical address of `len` bytes at `gpa`, if they lie in one region.
    pub fn host(gpa: u64, len: u64) -> Option<u64> {
        let end = gpa.checked_add(len)?;
        if end <= HOLE_START || (gpa >= HOLE_END && end <= L1_RAM) {
            Some(L1_BASE + gpa)
        } else if gpa >= HOLE_START && end <= HOLE_END {
            Some(gpa)
        } else {
            None
        }
    }

    /// The host-physical page behind L1's guest-physical page `gpa` (4 KiB-aligned), as EPT01 maps
    /// it: RAM, the legacy hole, the I/O APIC and local APIC pages; None for anything else.
    pub fn host_page(gpa: u64) -> Option<u64> {
        match gpa {
            0xfec0_0000 | 0xfee0_0000 => Some(gpa),
            _ => Self::host(gpa, 0x1000),
        }
    }

    /// L1 RAM as a mutable slice (for loading L1), if `gpa..gpa + len` is RAM.
    pub fn ram_mut(gpa: u64, len: u64) -> Option<&'static mut [u8]> {
        let end = gpa.checked_add(len)?;
        if !(end <= HOLE_START || (gpa >= HOLE_END && end <= L1_RAM)) {
            return None;
        }
        // SAFETY: L1's RAM is host memory nothing else in L0 uses, identity-mapped; L0 runs on one
        // processor and L1 is not running while L0 holds the slice.
        Some(unsafe { core::slice::from_raw_parts_mut((L1_BASE + gpa) as *mut u8, len as usize) })
    }
}

impl GuestMemory for L1Memory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let hpa = Self::host(gpa, buf.len() as u64).ok_or(MemoryError { gpa })?;
        // SAFETY: `hpa` is L1 memory or the legacy hole (identity-mapped, always readable).
        unsafe { core::ptr::copy_nonoverlapping(hpa as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let hpa = Self::host(gpa, data.len() as u64).ok_or(MemoryError { gpa })?;
        // SAFETY: as for reads; L1 may write its own memory and the hole.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), hpa as *mut u8, data.len()) };
        Ok(())
    }
}
