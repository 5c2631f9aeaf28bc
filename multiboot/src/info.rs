//! The Multiboot information structure (Multiboot 0.6.96, section 3.3): written for a kernel a
//! loader starts ([`BootInfo::write`]), and read from what the loader that started us left
//! ([`Received`]).

use crate::{Error, u32_at};

/// `flags` bit 0 of the information structure: `mem_lower` and `mem_upper` are valid.
pub const INFO_MEMORY: u32 = 1;
/// `flags` bit 2: `cmdline` is valid.
pub const INFO_CMDLINE: u32 = 1 << 2;
/// `flags` bit 3: `mods_count` and `mods_addr` are valid.
pub const INFO_MODULES: u32 = 1 << 3;
/// `flags` bit 6: `mmap_length` and `mmap_addr` are valid.
pub const INFO_MEMORY_MAP: u32 = 1 << 6;
/// `flags` bit 9: `boot_loader_name` is valid.
pub const INFO_LOADER_NAME: u32 = 1 << 9;

/// Size of the fixed structure as GRUB writes it (through the framebuffer fields).
pub const INFO_SIZE: usize = 116;

/// A memory-map entry type: usable RAM.
pub const MEMORY_AVAILABLE: u32 = 1;
/// A memory-map entry type: reserved.
pub const MEMORY_RESERVED: u32 = 2;

/// A boot module: bytes `start..end` of physical memory, and its string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    /// `mod_start`: the first byte's physical address.
    pub start: u32,
    /// `mod_end`: the physical address past the last byte.
    pub end: u32,
    /// The module's string (e.g. its command line), without the terminating zero.
    pub string: &'a [u8],
}

/// One memory-map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// `base_addr`: the first physical address.
    pub base: u64,
    /// `length` in bytes.
    pub length: u64,
    /// `type`: [`MEMORY_AVAILABLE`], [`MEMORY_RESERVED`] or another value (not usable).
    pub kind: u32,
}

/// What a loader tells the kernel it starts.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'a> {
    /// KiB of memory from 0 (at most 640).
    pub mem_lower_kb: u32,
    /// KiB of memory from 1 MiB to the first hole.
    pub mem_upper_kb: u32,
    /// The kernel's command line, without the terminating zero.
    pub cmdline: &'a [u8],
    /// The boot modules.
    pub modules: &'a [Module<'a>],
    /// The memory map.
    pub memory_map: &'a [MemoryRegion],
    /// The loader's name, without the terminating zero.
    pub loader_name: &'a [u8],
}

/// Writes bytes into `out` at increasing offsets, giving each piece its address `base + offset`.
struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
    base: u32,
}

impl Writer<'_> {
    fn align(&mut self, to: usize) {
        self.at = self.at.div_ceil(to) * to;
    }
    fn put(&mut self, bytes: &[u8]) -> Result<u32, Error> {
        let end = self.at.checked_add(bytes.len()).ok_or(Error::NoRoom)?;
        self.out.get_mut(self.at..end).ok_or(Error::NoRoom)?.copy_from_slice(bytes);
        let addr = self.base.checked_add(self.at as u32).ok_or(Error::NoRoom)?;
        self.at = end;
        Ok(addr)
    }
    /// A NUL-terminated copy of `s` (cut at an embedded NUL).
    fn string(&mut self, s: &[u8]) -> Result<u32, Error> {
        let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
        let addr = self.put(s)?;
        self.put(&[0])?;
        Ok(addr)
    }
}

fn set(out: &mut [u8], at: usize, v: u32) {
    if let Some(b) = out.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

impl BootInfo<'_> {
    /// Write the structure at the start of `out`, whose first byte the kernel will see at
    /// physical address `base`, followed by the strings, the module list and the memory map.
    /// Returns the bytes used.
    pub fn write(&self, out: &mut [u8], base: u32) -> Result<usize, Error> {
        if out.len() < INFO_SIZE {
            return Err(Error::NoRoom);
        }
        out[..INFO_SIZE].fill(0);
        let mut w = Writer { out, at: INFO_SIZE, base };
        let cmdline = w.string(self.cmdline)?;
        let loader = w.string(self.loader_name)?;
        let mut strings = [0u32; 64];
        if self.modules.len() > strings.len() {
            return Err(Error::NoRoom);
        }
        for (slot, m) in strings.iter_mut().zip(self.modules) {
            *slot = w.string(m.string)?;
        }
        w.align(16);
        let mods = w.base.wrapping_add(w.at as u32);
        for (m, &s) in self.modules.iter().zip(&strings) {
            for v in [m.start, m.end, s, 0] {
                w.put(&v.to_le_bytes())?;
            }
        }
        w.align(8);
        let mmap = w.base.wrapping_add(w.at as u32);
        for r in self.memory_map {
            w.put(&20u32.to_le_bytes())?;
            w.put(&r.base.to_le_bytes())?;
            w.put(&r.length.to_le_bytes())?;
            w.put(&r.kind.to_le_bytes())?;
        }
        let used = w.at;
        let flags = INFO_MEMORY | INFO_CMDLINE | INFO_MODULES | INFO_MEMORY_MAP | INFO_LOADER_NAME;
        for (at, v) in [
            (0, flags),
            (4, self.mem_lower_kb),
            (8, self.mem_upper_kb),
            (16, cmdline),
            (20, self.modules.len() as u32),
            (24, mods),
            (44, (self.memory_map.len() * 24) as u32),
            (48, mmap),
            (64, loader),
        ] {
            set(out, at, v);
        }
        Ok(used)
    }
}

/// The fixed part of an information structure a loader left for us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Which fields are valid (the `INFO_*` bits).
    pub flags: u32,
    /// KiB of memory from 0 (0 without [`INFO_MEMORY`]).
    pub mem_lower_kb: u32,
    /// KiB of memory from 1 MiB (0 without [`INFO_MEMORY`]).
    pub mem_upper_kb: u32,
    /// The physical address of the zero-terminated command line.
    pub cmdline: Option<u32>,
    /// (count, address of the first 16-byte module entry).
    pub modules: Option<(u32, u32)>,
    /// (length in bytes, address).
    pub memory_map: Option<(u32, u32)>,
}

impl Received {
    /// Decode the first [`INFO_SIZE`] bytes (or fewer: missing fields read as absent).
    pub fn parse(bytes: &[u8]) -> Received {
        let f = |at| u32_at(bytes, at).unwrap_or(0);
        let flags = f(0);
        let has = |bit: u32| flags & bit != 0;
        Received {
            flags,
            mem_lower_kb: if has(INFO_MEMORY) { f(4) } else { 0 },
            mem_upper_kb: if has(INFO_MEMORY) { f(8) } else { 0 },
            cmdline: has(INFO_CMDLINE).then(|| f(16)),
            modules: has(INFO_MODULES).then(|| (f(20), f(24))),
            memory_map: has(INFO_MEMORY_MAP).then(|| (f(44), f(48))),
        }
    }
}

/// A 16-byte module entry: (start, end, string address).
pub fn module_entry(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    Some((u32_at(bytes, 0)?, u32_at(bytes, 4)?, u32_at(bytes, 8)?))
}

/// A memory-map entry at the start of `bytes`: the region and the offset of the next entry (the
/// entry's `size` field does not count itself).
pub fn memory_map_entry(bytes: &[u8]) -> Option<(MemoryRegion, usize)> {
    let size = u32_at(bytes, 0)? as usize;
    let base = crate::u64_at(bytes, 4)?;
    let length = crate::u64_at(bytes, 12)?;
    let kind = u32_at(bytes, 20)?;
    Some((MemoryRegion { base, length, kind }, size.checked_add(4)?))
}
