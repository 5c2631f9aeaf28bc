//! Kernel images (ELF32, ELF64, a.out kludge, broken ones, random bytes) and boot information.

use vmcs_multiboot::image::{Header, Kernel, Segment};
use vmcs_multiboot::info::{self, BootInfo, MemoryRegion, Module, Received};
use vmcs_multiboot::{Error, HEADER_MAGIC};

fn header(flags: u32, kludge: [u32; 5]) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [HEADER_MAGIC, flags, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags)] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    for v in kludge {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

fn put(buf: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if buf.len() < at + bytes.len() {
        buf.resize(at + bytes.len(), 0);
    }
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// An ELF executable: one PT_LOAD at file offset 0x1000 (vaddr `vaddr`, paddr `paddr`, 0x100
/// bytes in the file, 0x3000 in memory) holding the Multiboot header, plus a PT_NOTE.
fn elf(class64: bool, vaddr: u64, paddr: u64, entry: u64) -> Vec<u8> {
    let mut f = vec![0u8; 0x1100];
    put(&mut f, 0, b"\x7fELF");
    f[4] = if class64 { 2 } else { 1 };
    f[5] = 1;
    f[6] = 1;
    put(&mut f, 16, &2u16.to_le_bytes());
    put(&mut f, 18, &(if class64 { 62u16 } else { 3 }).to_le_bytes());
    let phoff = 0x40usize;
    if class64 {
        put(&mut f, 24, &entry.to_le_bytes());
        put(&mut f, 32, &(phoff as u64).to_le_bytes());
        put(&mut f, 54, &56u16.to_le_bytes());
        put(&mut f, 56, &2u16.to_le_bytes());
        for (i, (ty, off, va, pa, fs, ms)) in
            [(4u32, 0u64, 0u64, 0u64, 0u64, 0u64), (1, 0x1000, vaddr, paddr, 0x100, 0x3000)].iter().enumerate()
        {
            let at = phoff + i * 56;
            put(&mut f, at, &ty.to_le_bytes());
            put(&mut f, at + 8, &off.to_le_bytes());
            put(&mut f, at + 16, &va.to_le_bytes());
            put(&mut f, at + 24, &pa.to_le_bytes());
            put(&mut f, at + 32, &fs.to_le_bytes());
            put(&mut f, at + 40, &ms.to_le_bytes());
        }
    } else {
        put(&mut f, 24, &(entry as u32).to_le_bytes());
        put(&mut f, 28, &(phoff as u32).to_le_bytes());
        put(&mut f, 42, &32u16.to_le_bytes());
        put(&mut f, 44, &2u16.to_le_bytes());
        for (i, (ty, off, va, pa, fs, ms)) in
            [(4u32, 0u32, 0u32, 0u32, 0u32, 0u32), (1, 0x1000, vaddr as u32, paddr as u32, 0x100, 0x3000)]
                .iter()
                .enumerate()
        {
            let at = phoff + i * 32;
            for (k, v) in [ty, off, va, pa, fs, ms].iter().enumerate() {
                put(&mut f, at + 4 * k, &v.to_le_bytes());
            }
        }
    }
    let h = header(3, [0; 5]);
    put(&mut f, 0x1010, &h);
    f
}

#[test]
fn elf64_kernel_with_its_entry_translated_to_physical() {
    let img = elf(true, 0xffff_8000_0010_0000, 0x10_0000, 0xffff_8000_0010_0020);
    let k = Kernel::parse(&img).unwrap();
    assert_eq!(
        k.segments(),
        &[Segment { file_offset: 0x1000, file_size: 0x100, address: 0x10_0000, mem_size: 0x3000 }]
    );
    assert_eq!(k.entry, 0x10_0020);
    assert_eq!(k.end(), 0x10_3000);
    assert_eq!(k.header.offset, 0x1010);
    assert_eq!(k.header.flags, 3);
}

#[test]
fn elf32_kernel() {
    let img = elf(false, 0x20_0000, 0x20_0000, 0x20_0010);
    let k = Kernel::parse(&img).unwrap();
    assert_eq!(k.entry, 0x20_0010);
    assert_eq!(k.segments()[0].address, 0x20_0000);
}

#[test]
fn an_entry_outside_every_segment_is_kept_and_must_be_below_4_gib() {
    let img = elf(true, 0x10_0000, 0x10_0000, 0x50_0000);
    assert_eq!(Kernel::parse(&img).unwrap().entry, 0x50_0000);
    let img = elf(true, 0x10_0000, 0x10_0000, 0x1_0000_0000);
    assert_eq!(Kernel::parse(&img), Err(Error::Malformed("entry point above 4 GiB")));
}

#[test]
fn aout_kludge() {
    // Header at file offset 0x20, header_addr 0x10_0020: the file loads from offset 0 at 1 MiB.
    let mut img = vec![0x90u8; 0x400];
    let h = header(1 << 16, [0x10_0020, 0x10_0000, 0x10_0300, 0x10_8000, 0x10_0040]);
    img[0x20..0x20 + h.len()].copy_from_slice(&h);
    let k = Kernel::parse(&img).unwrap();
    assert_eq!(k.segments(), &[Segment { file_offset: 0, file_size: 0x300, address: 0x10_0000, mem_size: 0x8000 }]);
    assert_eq!(k.entry, 0x10_0040);
    // load_end 0: the whole file; bss_end 0: no BSS.
    let h = header(1 << 16, [0x10_0020, 0x10_0000, 0, 0, 0x10_0040]);
    img[0x20..0x20 + h.len()].copy_from_slice(&h);
    assert_eq!(Kernel::parse(&img).unwrap().segments()[0].mem_size, 0x400);
    for (fields, why) in [
        ([0x10_0020, 0x10_0030, 0, 0, 0], "header_addr below load_addr"),
        ([0x10_0100, 0x10_0000, 0, 0, 0], "load_addr before the file start"),
        ([0x10_0020, 0x10_0000, 0x10_1000, 0, 0], "load_end_addr beyond the file"),
        ([0x10_0020, 0x10_0000, 0x10_0300, 0x10_0200, 0], "bss_end_addr below load_end_addr"),
    ] {
        let h = header(1 << 16, fields);
        img[0x20..0x20 + h.len()].copy_from_slice(&h);
        assert_eq!(Kernel::parse(&img), Err(Error::Malformed(why)));
    }
}

#[test]
fn header_search_and_requirements() {
    let mut img = vec![0u8; 0x3000];
    assert_eq!(Header::find(&img), Err(Error::NoHeader));
    // A bad checksum is not a header; one past 8 KiB is not searched.
    let mut bad = header(0, [0; 5]);
    bad[8] ^= 1;
    img[0x100..0x100 + bad.len()].copy_from_slice(&bad);
    let late = header(0, [0; 5]);
    img[0x2000..0x2000 + late.len()].copy_from_slice(&late);
    assert_eq!(Header::find(&img), Err(Error::NoHeader));
    // Unaligned magic is not found.
    img[0x201..0x201 + late.len()].copy_from_slice(&late);
    assert_eq!(Header::find(&img), Err(Error::NoHeader));
    // A requirement this loader does not know.
    let req = header(1 << 5, [0; 5]);
    img[0x400..0x400 + req.len()].copy_from_slice(&req);
    assert_eq!(Kernel::parse(&img), Err(Error::UnsupportedRequirement(1 << 5)));
    // Not ELF, no kludge.
    let plain = header(3, [0; 5]);
    img[0x400..0x400 + plain.len()].copy_from_slice(&plain);
    assert_eq!(Kernel::parse(&img), Err(Error::NotElf));
}

#[test]
fn malformed_elf() {
    let mut img = elf(true, 0x10_0000, 0x10_0000, 0x10_0000);
    // Segment file size past the end of the file.
    put(&mut img, 0x40 + 56 + 32, &0x10_0000u64.to_le_bytes());
    put(&mut img, 0x40 + 56 + 40, &0x20_0000u64.to_le_bytes());
    assert_eq!(Kernel::parse(&img), Err(Error::Malformed("segment beyond the file")));
    let mut img = elf(true, 0x10_0000, 0x10_0000, 0x10_0000);
    put(&mut img, 0x40 + 56 + 32, &0x4000u64.to_le_bytes());
    assert_eq!(Kernel::parse(&img), Err(Error::Malformed("p_filesz above p_memsz")));
    let mut img = elf(true, 0x10_0000, 0x10_0000, 0x10_0000);
    put(&mut img, 32, &0x1_0000u64.to_le_bytes());
    assert_eq!(Kernel::parse(&img), Err(Error::Malformed("program header beyond the file")));
    let mut img = elf(true, 0x10_0000, 0x10_0000, 0x10_0000);
    put(&mut img, 18, &3u16.to_le_bytes());
    assert_eq!(Kernel::parse(&img), Err(Error::NotElf), "ELF64 with EM_386");
}

#[test]
fn random_corruptions_never_panic() {
    let mut rng = vmcs_test_support::Rng(0x1234_5678_9abc_def1);
    let bases = [elf(true, 0x10_0000, 0x10_0000, 0x10_0000), elf(false, 0x10_0000, 0x10_0000, 0x10_0000)];
    let mut parsed = 0;
    for i in 0..10_000 {
        let mut img = bases[i % 2].clone();
        for _ in 0..(rng.next() % 8 + 1) {
            let at = (rng.next() as usize) % 0x140;
            let at = if rng.next().is_multiple_of(4) { 0x1010 + at % 0x30 } else { at };
            img[at] = rng.next() as u8;
        }
        let cut = (rng.next() as usize) % (img.len() + 1);
        if rng.next().is_multiple_of(3) {
            img.truncate(cut);
        }
        if let Ok(k) = Kernel::parse(&img) {
            parsed += 1;
            for seg in k.segments() {
                assert!(seg.file_offset + seg.file_size <= img.len());
                assert!(seg.file_size as u64 <= seg.mem_size);
            }
        }
    }
    assert!(parsed > 500, "the corruptions left too few valid images to mean anything: {parsed}");
}

#[test]
fn boot_information_round_trip() {
    let modules = [
        Module { start: 0x40_0000, end: 0x40_1234, string: b"env.txt a=1" },
        Module { start: 0x40_2000, end: 0x40_2000, string: b"empty" },
    ];
    let map = [
        MemoryRegion { base: 0, length: 0x9fc00, kind: info::MEMORY_AVAILABLE },
        MemoryRegion { base: 0x10_0000, length: 0x3f0_0000, kind: info::MEMORY_AVAILABLE },
    ];
    let bi = BootInfo {
        mem_lower_kb: 639,
        mem_upper_kb: 0xfc00,
        cmdline: b"suite.elf -v",
        modules: &modules,
        memory_map: &map,
        loader_name: b"vmcs L0",
    };
    let mut out = vec![0xaau8; 4096];
    let base = 0x9_0000;
    let used = bi.write(&mut out, base).unwrap();
    let r = Received::parse(&out);
    assert_eq!((r.mem_lower_kb, r.mem_upper_kb), (639, 0xfc00));
    let at = |addr: u32| (addr - base) as usize;
    let cstr = |addr: u32| {
        let s = &out[at(addr)..];
        &s[..s.iter().position(|&b| b == 0).unwrap()]
    };
    assert_eq!(cstr(r.cmdline.unwrap()), b"suite.elf -v");
    assert_eq!(cstr(u32::from_le_bytes(out[64..68].try_into().unwrap())), b"vmcs L0");
    let (count, mods) = r.modules.unwrap();
    assert_eq!(count, 2);
    assert_eq!(mods % 16, 0);
    let (start, end, string) = info::module_entry(&out[at(mods)..]).unwrap();
    assert_eq!((start, end, cstr(string)), (0x40_0000, 0x40_1234, b"env.txt a=1".as_slice()));
    let (start, _, string) = info::module_entry(&out[at(mods) + 16..]).unwrap();
    assert_eq!((start, cstr(string)), (0x40_2000, b"empty".as_slice()));
    let (len, mmap) = r.memory_map.unwrap();
    assert_eq!(len, 48);
    let (first, next) = info::memory_map_entry(&out[at(mmap)..]).unwrap();
    assert_eq!((first, next), (map[0], 24));
    let (second, _) = info::memory_map_entry(&out[at(mmap) + next..]).unwrap();
    assert_eq!(second, map[1]);
    assert_eq!(used, at(mmap) + 48);
    // Too small a buffer fails, it does not truncate.
    assert_eq!(bi.write(&mut out[..used - 1], base), Err(Error::NoRoom));
    assert_eq!(bi.write(&mut out[..100], base), Err(Error::NoRoom));
}
