//! Loading L1 the way QEMU's `-kernel`/`-initrd` loads a Multiboot kernel: L0's first module is
//! L1's kernel (its string is L1's command line, kernel name first), the other modules become
//! L1's modules. The kernel's segments go to their addresses in L1's RAM; the modules and the
//! boot information go to the top of L1's RAM.

use vmcs_multiboot::image::Kernel;
use vmcs_multiboot::info::{self, BootInfo, MemoryRegion, Module, Received};

use crate::l1mem::{HOLE_END, HOLE_START, L1_BASE, L1_RAM, L1Memory};

/// Where L1 starts: the entry point and the boot information, for EAX/EBX.
pub struct L1Start {
    pub entry: u32,
    pub info: u32,
}

/// Room at the top of L1's RAM for the boot information (strings, module list, memory map).
const INFO_ROOM: u64 = 64 << 10;
/// Modules L0 passes on.
const MAX_MODULES: usize = 16;
/// The longest module string L0 reads.
const MAX_STRING: usize = 1024;

/// Bytes of L0's physical memory the loader (GRUB) described; `ram_end` bounds every read.
fn phys(addr: u64, len: u64, ram_end: u64) -> Result<&'static [u8], &'static str> {
    let end = addr.checked_add(len).ok_or("address overflow")?;
    if addr == 0 || end > ram_end {
        return Err("a Multiboot structure outside RAM");
    }
    // SAFETY: inside RAM, identity-mapped, not written while L0 reads it.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) })
}

/// A NUL-terminated string in L0's memory (at most MAX_STRING bytes).
fn c_string(addr: u32, ram_end: u64) -> Result<&'static [u8], &'static str> {
    let max = (ram_end.saturating_sub(addr as u64)).min(MAX_STRING as u64);
    let bytes = phys(addr as u64, max, ram_end)?;
    Ok(bytes.split(|&b| b == 0).next().unwrap_or(&[]))
}

/// Load L1 from L0's Multiboot information at `info_addr`.
pub fn load(info_addr: u32) -> Result<L1Start, &'static str> {
    let head = phys(info_addr as u64, info::INFO_SIZE as u64, 1 << 32)?;
    let received = Received::parse(head);
    if received.mem_upper_kb == 0 {
        return Err("the loader passed no memory size");
    }
    let ram_end = (1 << 20) + received.mem_upper_kb as u64 * 1024;
    if ram_end < L1_BASE + L1_RAM {
        return Err("the machine has too little memory for L1 (Bochs `megs` too small)");
    }
    let (count, list) =
        received.modules.filter(|m| m.0 > 0).ok_or("no module: give L1's kernel as the first module")?;
    let count = (count as usize).min(MAX_MODULES + 1);
    let mut mods = [(0u32, 0u32, &[][..]); MAX_MODULES + 1];
    for (i, slot) in mods.iter_mut().enumerate().take(count) {
        let entry = phys(list as u64 + 16 * i as u64, 16, ram_end)?;
        let (start, end, string) = info::module_entry(entry).ok_or("module entry")?;
        if end < start {
            return Err("a module ends before it starts");
        }
        if (start as u64) < L1_BASE + L1_RAM && end as u64 > L1_BASE {
            return Err("the loader put a module where L1's memory goes");
        }
        *slot = (start, end, c_string(string, ram_end)?);
    }
    let (kstart, kend, cmdline) = mods[0];
    let image = phys(kstart as u64, (kend - kstart) as u64, ram_end)?;
    let kernel = Kernel::parse(image).map_err(|_| "L1's kernel is not a Multiboot kernel L0 can load")?;
    for seg in kernel.segments() {
        let dst =
            L1Memory::ram_mut(seg.address, seg.mem_size).ok_or("a segment of L1's kernel lies outside L1's RAM")?;
        let src = image.get(seg.file_offset..seg.file_offset + seg.file_size).ok_or("segment")?;
        let (file, bss) = dst.split_at_mut(seg.file_size);
        file.copy_from_slice(src);
        bss.fill(0);
    }
    // L1's modules, page-aligned, below the boot information at the top of RAM.
    let info_gpa = L1_RAM - INFO_ROOM;
    let mut cursor = info_gpa;
    let mut l1_mods = [Module { start: 0, end: 0, string: &[] }; MAX_MODULES];
    for (i, &(start, end, string)) in mods.iter().enumerate().take(count).skip(1) {
        let len = (end - start) as u64;
        cursor = cursor.checked_sub(len).ok_or("modules too large")? & !0xfff;
        if cursor < kernel.end().max(HOLE_END) {
            return Err("L1's modules do not fit its RAM");
        }
        let dst = L1Memory::ram_mut(cursor, len).ok_or("module placement")?;
        dst.copy_from_slice(phys(start as u64, len, ram_end)?);
        l1_mods[i - 1] = Module { start: cursor as u32, end: (cursor + len) as u32, string };
    }
    let map = [
        MemoryRegion { base: 0, length: 0x9_fc00, kind: info::MEMORY_AVAILABLE },
        MemoryRegion { base: 0x9_fc00, length: HOLE_START - 0x9_fc00, kind: info::MEMORY_RESERVED },
        MemoryRegion { base: 0xf_0000, length: HOLE_END - 0xf_0000, kind: info::MEMORY_RESERVED },
        MemoryRegion { base: HOLE_END, length: L1_RAM - HOLE_END, kind: info::MEMORY_AVAILABLE },
    ];
    let boot = BootInfo {
        mem_lower_kb: 639,
        mem_upper_kb: ((L1_RAM - HOLE_END) >> 10) as u32,
        cmdline,
        modules: &l1_mods[..count - 1],
        memory_map: &map,
        loader_name: b"vmcs L0",
    };
    let out = L1Memory::ram_mut(info_gpa, INFO_ROOM).ok_or("boot information placement")?;
    boot.write(out, info_gpa as u32).map_err(|_| "L1's boot information does not fit")?;
    Ok(L1Start { entry: kernel.entry, info: info_gpa as u32 })
}
