//! A Multiboot kernel image: its header and what to load where (Multiboot 0.6.96, section 3.1).
//!
//! With flag 16 (the "a.out kludge") the header's address fields say what to load; otherwise the
//! image is a 32- or 64-bit x86 ELF executable whose PT_LOAD segments go to their physical
//! addresses, as GRUB loads them (an entry point inside a segment is translated from its virtual
//! to its physical address).

use crate::{Error, HEADER_MAGIC, u16_at, u32_at, u64_at};

/// The header must lie within this many bytes of the image's start.
pub const SEARCH_LIMIT: usize = 8192;
/// Loadable segments [`Kernel`] holds.
pub const MAX_SEGMENTS: usize = 16;

/// Requirement bits (15:0) this loader honours: 0 page-aligned modules, 1 memory information, 2 a
/// video mode (ignored, as QEMU's loader ignores it: no video information is passed).
const KNOWN_REQUIREMENTS: u32 = 0b111;
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Flag 0: modules must be page-aligned.
pub const FLAG_ALIGN_MODULES: u32 = 1;

/// The Multiboot header of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Offset of the header in the image.
    pub offset: usize,
    /// Requirements (bits 15:0) and the a.out kludge (bit 16).
    pub flags: u32,
    /// The a.out-kludge address fields (meaningful with flag 16): the physical address the header
    /// is loaded at.
    pub header_addr: u32,
    /// Where the image's text starts (physical).
    pub load_addr: u32,
    /// The end of the data to load (0: the whole file).
    pub load_end_addr: u32,
    /// The end of the bss, zeroed (0: none).
    pub bss_end_addr: u32,
    /// The entry point (physical).
    pub entry_addr: u32,
}

impl Header {
    /// Find the header: the first 4-byte-aligned magic in the first 8 KiB whose checksum holds.
    pub fn find(image: &[u8]) -> Result<Header, Error> {
        let end = image.len().min(SEARCH_LIMIT);
        let mut at = 0;
        while at + 12 <= end {
            if u32_at(image, at) == Some(HEADER_MAGIC) {
                let flags = u32_at(image, at + 4).ok_or(Error::NoHeader)?;
                let sum = u32_at(image, at + 8).ok_or(Error::NoHeader)?;
                if HEADER_MAGIC.wrapping_add(flags).wrapping_add(sum) == 0 {
                    let f = |i: usize| u32_at(image, at + 12 + 4 * i).unwrap_or(0);
                    return Ok(Header {
                        offset: at,
                        flags,
                        header_addr: f(0),
                        load_addr: f(1),
                        load_end_addr: f(2),
                        bss_end_addr: f(3),
                        entry_addr: f(4),
                    });
                }
            }
            at += 4;
        }
        Err(Error::NoHeader)
    }
}

/// Bytes `file_offset..file_offset + file_size` of the image go to `address`; the rest of
/// `mem_size` is zeroed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Where the bytes start in the image.
    pub file_offset: usize,
    /// How many bytes come from the image.
    pub file_size: usize,
    /// The physical address they go to.
    pub address: u64,
    /// Bytes the segment occupies in memory (at least `file_size`).
    pub mem_size: u64,
}

impl Segment {
    /// The first address past the segment.
    pub fn end(&self) -> u64 {
        self.address.saturating_add(self.mem_size)
    }
}

/// What loading an image means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// The image's Multiboot header.
    pub header: Header,
    /// Entry point (physical), entered in 32-bit protected mode with paging off.
    pub entry: u32,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl Kernel {
    /// Parse `image` (untrusted): header, requirements, then the kludge or the ELF program headers.
    pub fn parse(image: &[u8]) -> Result<Kernel, Error> {
        let header = Header::find(image)?;
        let unknown = header.flags & 0xffff & !KNOWN_REQUIREMENTS;
        if unknown != 0 {
            return Err(Error::UnsupportedRequirement(unknown));
        }
        let mut k = Kernel { header, entry: 0, segments: [Segment::default(); MAX_SEGMENTS], count: 0 };
        if header.flags & FLAG_AOUT_KLUDGE != 0 {
            k.load_kludge(image)?;
        } else {
            k.load_elf(image)?;
        }
        Ok(k)
    }

    /// The segments, in image order.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.count).unwrap_or(&[])
    }

    /// The first address past every segment.
    pub fn end(&self) -> u64 {
        self.segments().iter().map(Segment::end).max().unwrap_or(0)
    }

    fn push(&mut self, s: Segment) -> Result<(), Error> {
        let slot = self.segments.get_mut(self.count).ok_or(Error::TooManySegments)?;
        *slot = s;
        self.count += 1;
        Ok(())
    }

    fn load_kludge(&mut self, image: &[u8]) -> Result<(), Error> {
        let h = self.header;
        let bad = Error::Malformed;
        let before = h.header_addr.checked_sub(h.load_addr).ok_or(bad("header_addr below load_addr"))?;
        let file_offset = h.offset.checked_sub(before as usize).ok_or(bad("load_addr before the file start"))?;
        let file_end = if h.load_end_addr == 0 {
            image.len()
        } else {
            let len = h.load_end_addr.checked_sub(h.load_addr).ok_or(bad("load_end_addr below load_addr"))?;
            file_offset.checked_add(len as usize).ok_or(bad("load_end_addr"))?
        };
        if file_end > image.len() || file_end < file_offset {
            return Err(bad("load_end_addr beyond the file"));
        }
        let file_size = file_end - file_offset;
        let load_end = h.load_addr as u64 + file_size as u64;
        let mem_end = if h.bss_end_addr == 0 { load_end } else { h.bss_end_addr as u64 };
        if mem_end < load_end {
            return Err(bad("bss_end_addr below load_end_addr"));
        }
        self.entry = h.entry_addr;
        self.push(Segment {
            file_offset,
            file_size,
            address: h.load_addr as u64,
            mem_size: mem_end - h.load_addr as u64,
        })
    }

    fn load_elf(&mut self, image: &[u8]) -> Result<(), Error> {
        if image.get(..4) != Some(b"\x7fELF".as_slice()) || image.get(5) != Some(&1) {
            return Err(Error::NotElf);
        }
        let bad = Error::Malformed;
        let class64 = match image.get(4) {
            Some(1) => false,
            Some(2) => true,
            _ => return Err(Error::NotElf),
        };
        let machine = u16_at(image, 18).ok_or(Error::NotElf)?;
        if u16_at(image, 16) != Some(2) || machine != if class64 { 62 } else { 3 } {
            return Err(Error::NotElf);
        }
        let word = |at32: usize, at64: usize| -> Option<u64> {
            if class64 { u64_at(image, at64) } else { u32_at(image, at32).map(u64::from) }
        };
        let entry = word(24, 24).ok_or(bad("ELF header"))?;
        let phoff = word(28, 32).ok_or(bad("ELF header"))?;
        let phentsize = u16_at(image, if class64 { 54 } else { 42 }).ok_or(bad("ELF header"))? as usize;
        let phnum = u16_at(image, if class64 { 56 } else { 44 }).ok_or(bad("ELF header"))? as usize;
        if phentsize < if class64 { 56 } else { 32 } {
            return Err(bad("program header size"));
        }
        let mut translated = None;
        for i in 0..phnum {
            let at = (phoff as usize).checked_add(i * phentsize).ok_or(bad("program header offset"))?;
            let f = |o32: usize, o64: usize| word(at + o32, at + o64).ok_or(bad("program header beyond the file"));
            let p_type = u32_at(image, at).ok_or(bad("program header beyond the file"))?;
            if p_type != 1 {
                continue;
            }
            let (offset, vaddr, paddr) = (f(4, 8)?, f(8, 16)?, f(12, 24)?);
            let (filesz, memsz) = (f(16, 32)?, f(20, 40)?);
            if memsz == 0 {
                continue;
            }
            if filesz > memsz {
                return Err(bad("p_filesz above p_memsz"));
            }
            let file_end = offset.checked_add(filesz).ok_or(bad("segment offset"))?;
            if file_end > image.len() as u64 {
                return Err(bad("segment beyond the file"));
            }
            paddr.checked_add(memsz).ok_or(bad("segment address"))?;
            if entry >= vaddr && entry - vaddr < memsz {
                translated = Some(entry - vaddr + paddr);
            }
            self.push(Segment {
                file_offset: offset as usize,
                file_size: filesz as usize,
                address: paddr,
                mem_size: memsz,
            })?;
        }
        if self.count == 0 {
            return Err(bad("no loadable segment"));
        }
        let entry = translated.unwrap_or(entry);
        self.entry = u32::try_from(entry).map_err(|_| bad("entry point above 4 GiB"))?;
        Ok(())
    }
}
