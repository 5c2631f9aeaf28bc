//! EPT01: L1's guest-physical address space. RAM [0, L1_RAM) maps to host-physical L1_BASE (write
//! back; 2 MiB pages above the first 2 MiB), the legacy hole [0xA0000, 0x100000) and the I/O APIC
//! and local APIC pages map to themselves (uncacheable), so L1 drives the machine's devices. Any
//! other guest-physical address is an EPT violation L0 reports.

use crate::l1mem::{HOLE_END, HOLE_START, L1_BASE, L1_RAM};

const PAGES: usize = 7;
#[repr(C, align(4096))]
struct Tables([[u64; 512]; PAGES]);
static mut TABLES: Tables = Tables([[0; 512]; PAGES]);

const PML4: usize = 0;
const PDPT: usize = 1;
const PD_LOW: usize = 2;
const PT_LOW: usize = 3;
const PD_APIC: usize = 4;
const PT_IOAPIC: usize = 5;
const PT_LAPIC: usize = 6;

/// Read, write, execute.
const RWX: u64 = 7;
const WB: u64 = 6 << 3;
const UC: u64 = 0;
const LARGE: u64 = 1 << 7;

const IOAPIC: u64 = 0xfec0_0000;
const LAPIC: u64 = 0xfee0_0000;

/// Build the tables; returns the EPTP (4-level walk, write-back paging structures).
pub fn build() -> u64 {
    // SAFETY: called once, before L1 runs; nothing else touches the tables.
    let t = unsafe { &mut crate::cpu::unique(&raw mut TABLES).0 };
    let addr = |t: &[[u64; 512]; PAGES], i: usize| &t[i] as *const [u64; 512] as u64;
    t[PML4][0] = addr(t, PDPT) | RWX;
    t[PDPT][0] = addr(t, PD_LOW) | RWX;
    t[PD_LOW][0] = addr(t, PT_LOW) | RWX;
    for (i, e) in t[PT_LOW].iter_mut().enumerate() {
        let gpa = (i as u64) << 12;
        *e = if (HOLE_START..HOLE_END).contains(&gpa) { gpa | RWX | UC } else { (L1_BASE + gpa) | RWX | WB };
    }
    for (i, e) in t[PD_LOW].iter_mut().enumerate().take((L1_RAM >> 21) as usize).skip(1) {
        *e = (L1_BASE + ((i as u64) << 21)) | RWX | WB | LARGE;
    }
    // 3..4 GiB: one 4 KiB page each for the I/O APIC and the local APIC.
    t[PDPT][3] = addr(t, PD_APIC) | RWX;
    for (base, pt) in [(IOAPIC, PT_IOAPIC), (LAPIC, PT_LAPIC)] {
        t[PD_APIC][((base >> 21) & 0x1ff) as usize] = addr(t, pt) | RWX;
        t[pt][((base >> 12) & 0x1ff) as usize] = base | RWX | UC;
    }
    addr(t, PML4) | 3 << 3 | 6
}
