//! Nested EPT: EPT12 walked (1 GiB, 2 MiB, 4 KiB pages; violations with the permissions walked;
//! misconfigurations), EPT02 built leaf by leaf from a pool and reset.

mod common;

use common::Mem;
use vmcs_nested_vmx::nested_ept::{Access, Ept02, EptFault, TablePages, violation_qualification, walk};

const EPTP12: u64 = 0x1000 | 3 << 3 | 6;
const R: u64 = 1;
const W: u64 = 2;
const X: u64 = 4;
const WB: u64 = 6 << 3;

/// EPT12 at 0x1000: PML4 -> PDPT 0x2000; PDPTE 0 -> PD 0x3000; PDPTE 1 a 1 GiB page at 4 GiB
/// (read-only); PDE 0 -> PT 0x4000; PDE 1 a 2 MiB page at 0x60_0000 (RWX); PTE 5 -> 0x9000 (R-X).
fn ept12() -> Mem {
    let mut m = Mem(vec![0; 0x10000]);
    m.put64(0x1000, 0x2000 | 7);
    m.put64(0x2000, 0x3000 | 7);
    m.put64(0x2008, 0x1_0000_0000 | R | WB | 1 << 7);
    m.put64(0x3000, 0x4000 | 7);
    m.put64(0x3008, 0x60_0000 | 7 | WB | 1 << 7);
    m.put64(0x4000 + 5 * 8, 0x9000 | R | X | WB);
    m
}

fn w(gpa: u64, a: Access) -> Result<(u64, u64), EptFault> {
    walk(&ept12(), EPTP12, gpa, a, false, 39).map(|t| (t.address, t.permissions))
}

#[test]
fn walks_every_page_size() {
    assert_eq!(w(0x5123, Access::Fetch), Ok((0x9123, R | X)));
    assert_eq!(w(0x20_1234, Access::Write), Ok((0x60_1234, 7)));
    assert_eq!(w(0x4000_0000 + 0x12_3456, Access::Read), Ok((0x1_0012_3456, R)));
}

#[test]
fn violations_carry_the_permissions_walked() {
    assert_eq!(w(0x5000, Access::Write), Err(EptFault::Violation { permissions: R | X }));
    assert_eq!(w(0x4000_0000, Access::Fetch), Err(EptFault::Violation { permissions: R }));
    assert_eq!(w(0x6000, Access::Read), Err(EptFault::Violation { permissions: 0 }), "PTE 6 not present");
    assert_eq!(w(0x8000_0000, Access::Read), Err(EptFault::Violation { permissions: 0 }), "PDPTE 2 not present");
    // The processor's access and linear-address bits, EPT12's permissions in bits 5:3.
    assert_eq!(violation_qualification(0x182 | 0x38, R | X), 0x182 | (R | X) << 3);
}

#[test]
fn misconfigurations() {
    for (at, entry, why) in [
        (0x4000 + 6 * 8, 0xa000 | W, "write-only"),
        (0x4000 + 6 * 8, 0xa000 | X | WB, "execute-only without the capability"),
        (0x4000 + 6 * 8, 0xa000 | R | 2 << 3, "memory type 2"),
        (0x3010, 0x5000 | 7 | 1 << 4, "reserved bits 6:3 in a non-leaf"),
        (0x4000 + 6 * 8, 1 << 45 | R | WB, "above MAXPHYADDR"),
    ] {
        let mut m = ept12();
        m.put64(at, entry);
        let gpa = if at == 0x3010 { 0x40_0000 } else { 0x6000 };
        assert_eq!(walk(&m, EPTP12, gpa, Access::Read, false, 39), Err(EptFault::Misconfig), "{why}");
    }
    let mut m = ept12();
    m.put64(0x4000 + 6 * 8, 0xa000 | X | WB);
    assert!(walk(&m, EPTP12, 0x6000, Access::Fetch, true, 39).is_ok(), "execute-only with the capability");
    let mut m = ept12();
    m.put64(0x1000, 0x2000 | 7 | 1 << 7);
    assert_eq!(walk(&m, EPTP12, 0, Access::Read, false, 39), Err(EptFault::Misconfig), "large page in a PML4E");
}

struct Pool(Vec<[u64; 512]>);

impl TablePages for Pool {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn table(&mut self, i: usize) -> &mut [u64; 512] {
        &mut self.0[i]
    }
    fn phys(&self, i: usize) -> u64 {
        0x100_0000 + 0x1000 * i as u64
    }
}

/// Look `gpa` up in EPT02 as the processor would.
fn translate(e: &mut Ept02<Pool>, pool_phys: impl Fn(u64) -> usize, gpa: u64) -> Option<u64> {
    let mut t = 0;
    for level in 0..4 {
        let entry = e_table(e, t)[((gpa >> (39 - 9 * level)) & 0x1ff) as usize];
        if entry & 7 == 0 {
            return None;
        }
        if level == 3 {
            return Some(entry);
        }
        t = pool_phys(entry & 0x000f_ffff_ffff_f000);
    }
    None
}

fn e_table(e: &mut Ept02<Pool>, i: usize) -> [u64; 512] {
    let mut copy = [0u64; 512];
    e.with_table(i, |t| copy = *t);
    copy
}

#[test]
fn ept02_maps_leaves_from_its_pool_and_resets() {
    let mut e = Ept02::new(Pool(vec![[0; 512]; 6]));
    assert_eq!(e.eptp(), 0x100_0000 | 3 << 3 | 6);
    let idx = |p: u64| ((p - 0x100_0000) / 0x1000) as usize;
    e.map(0x5000, 0x300_5000, R | X, 6).unwrap();
    assert_eq!(translate(&mut e, idx, 0x5000), Some(0x300_5000 | R | X | WB));
    assert_eq!(e.tables_used(), 4, "root, PDPT, PD, PT");
    e.map(0x6000, 0x300_6000, 7, 6).unwrap();
    assert_eq!(e.tables_used(), 4, "same page table");
    e.map(0x4000_0000, 0x400_0000, 7, 6).unwrap();
    assert_eq!(e.tables_used(), 6, "another PD and PT");
    assert_eq!(e.map(0x80_0000_0000, 0, 7, 6), Err(vmcs_nested_vmx::nested_ept::PoolFull));
    e.reset(Some(EPTP12));
    assert_eq!(e.built_for, Some(EPTP12));
    assert_eq!(translate(&mut e, idx, 0x5000), None, "nothing survives a reset");
    assert_eq!(e.tables_used(), 1);
}
