//! L1's paging walked for emulated supervisor data accesses: every mode, permissions, A/D bits.

mod common;

use common::Mem;
use vmcs_nested_vmx::paging::Paging;
use vmcs_nested_vmx::vcpu::{Fault, Stop};

const PG_PE: u64 = 1 << 31 | 1;
const WP: u64 = 1 << 16;

fn paging(cr0: u64, cr3: u64, cr4: u64, long_mode: bool) -> Paging {
    Paging { cr0, cr3, cr4, long_mode, ac: false, maxphyaddr: 36 }
}

fn pf(ec: u32, at: u64) -> Result<u64, Stop> {
    Err(Stop::Fault(Fault::pf(ec, at)))
}

#[test]
fn paging_off_is_identity_truncated_to_32_bits() {
    let mut m = Mem(vec![0; 0x10000]);
    assert_eq!(paging(1, 0, 0, false).translate(&mut m, 0x1_2345_6789, true), Ok(0x2345_6789));
}

#[test]
fn two_level_32_bit_paging_with_4k_and_4m_pages() {
    let mut m = Mem(vec![0; 0x10000]);
    // PD at 0x1000: entry 1 -> PT at 0x2000 (4 KiB pages); entry 2 -> 4 MiB page at 12 MiB with
    // PSE-36 bits 20:13 = 1 (physical bit 32).
    m.put32(0x1000 + 4, 0x2000 | 3);
    m.put32(0x1000 + 8, 0x00c0_0000 | 1 << 13 | 0x83);
    m.put32(0x2000 + 5 * 4, 0x7000 | 1); // read-only
    let p = paging(PG_PE | WP, 0x1000, 1 << 4, false);
    assert_eq!(p.translate(&mut m, 0x40_5123, false), Ok(0x7123));
    assert_eq!(p.translate(&mut m, 0x40_5123, true), pf(3, 0x40_5123), "read-only under CR0.WP");
    assert_eq!(paging(PG_PE, 0x1000, 1 << 4, false).translate(&mut m, 0x40_5123, true), Ok(0x7123));
    assert_eq!(p.translate(&mut m, 0x80_1234, true), Ok(0x1_00c0_1234));
    assert_eq!(m.u32(0x1000 + 8) & 0x60, 0x60, "A and D set in the 4 MiB PDE");
    assert_eq!(m.u32(0x1000 + 4) & 0x20, 0x20, "A set in the PDE");
    assert_eq!(p.translate(&mut m, 0xc0_0000, false), pf(0, 0xc0_0000), "not present");
    // Without CR4.PSE the PS bit is ignored: the entry names a page table at 0xc02000, outside
    // this L1's memory.
    let nopse = paging(PG_PE, 0x1000, 0, false);
    let r = nopse.translate(&mut m, 0x80_1234, false);
    assert!(matches!(r, Err(Stop::Memory(e)) if e.gpa == 0xc0_2000 + 4), "{r:?}");
}

#[test]
fn pae_paging() {
    let mut m = Mem(vec![0; 0x10000]);
    m.put64(0x1000 + 8, 0x2000 | 1); // PDPTE 1 -> PD at 0x2000
    m.put64(0x2000 + 3 * 8, 0x3000 | 3); // PDE 3 -> PT at 0x3000
    m.put64(0x3000 + 4 * 8, 0x8000_0000_0000_9000 | 3); // XD set; data accesses ignore it
    m.put64(0x2000 + 4 * 8, 0x40_0000 | 0x83); // 2 MiB page
    let p = paging(PG_PE | WP, 0x1000, 1 << 5, false);
    let va = 1 << 30 | 3 << 21 | 4 << 12 | 0x10;
    assert_eq!(p.translate(&mut m, va, true), Ok(0x9010));
    assert_eq!(m.u64(0x3000 + 4 * 8) & 0x60, 0x60);
    assert_eq!(p.translate(&mut m, 1 << 30 | 4 << 21 | 0x1234, false), Ok(0x40_1234));
    assert_eq!(p.translate(&mut m, 0x10, false), pf(0, 0x10), "PDPTE 0 not present");
    m.put64(0x1000, 0x4000 | 1 | 1 << 1); // reserved PDPTE bit 1
    assert_eq!(p.translate(&mut m, 0x10, false), pf(1 | 8, 0x10));
    m.put64(0x1000, 1 << 40 | 0x4000 | 1); // above MAXPHYADDR (36)
    assert_eq!(p.translate(&mut m, 0x10, true), pf(1 | 2 | 8, 0x10));
}

#[test]
fn four_and_five_level_paging_with_large_pages_and_smap() {
    let mut m = Mem(vec![0; 0x10000]);
    m.put64(0x1000, 0x2000 | 7); // PML4 0 (user)
    m.put64(0x2000, 0x4000_0000 | 0x87); // 1 GiB user page
    m.put64(0x2000 + 8, 0x3000 | 3); // PDPTE 1 supervisor -> PD
    m.put64(0x3000, 0x20_0000 | 0x83); // 2 MiB
    let p = paging(PG_PE | WP, 0x1000, 1 << 5, true);
    assert_eq!(p.translate(&mut m, 0x1234_5678, false), Ok(0x5234_5678));
    assert_eq!(p.translate(&mut m, 1 << 30 | 0x1_2345, false), Ok(0x21_2345));
    // SMAP: a supervisor access to a user page faults unless RFLAGS.AC.
    let smap = paging(PG_PE | WP, 0x1000, 1 << 5 | 1 << 21, true);
    assert_eq!(smap.translate(&mut m, 0x10, false), pf(1, 0x10));
    assert_eq!(Paging { ac: true, ..smap }.translate(&mut m, 0x10, false), Ok(0x4000_0010));
    assert_eq!(smap.translate(&mut m, 1 << 30, false), Ok(0x20_0000), "supervisor page");
    // 5-level: one more table on top.
    m.put64(0x5000, 0x1000 | 3);
    let la57 = paging(PG_PE, 0x5000, 1 << 5 | 1 << 12, true);
    assert_eq!(la57.translate(&mut m, 1 << 30 | 8, false), Ok(0x20_0008));
}
