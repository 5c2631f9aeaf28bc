//! VMCS shadowing of L1's VMREAD/VMWRITE: the shadow VMCS filled from vmcs12 with exactly the
//! shadowed fields, L1's writes through it drained back, emulated writes of read-only shadowed
//! fields written through.

mod common;

use common::*;
use vmcs::copy::{SHADOW_READ_ONLY, SHADOW_READ_WRITE};
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{VmcsRead, VmcsWrite};

fn pattern(e: u32) -> u64 {
    0x1111_2222_3333_4444 ^ (e as u64) << 20
}

#[test]
fn fill_and_drain_move_exactly_the_shadowed_fields() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    let caps = *w.nested.caps().caps();
    let shadowed: Vec<u32> = SHADOW_READ_WRITE
        .iter()
        .chain(SHADOW_READ_ONLY)
        .copied()
        .filter(|&e| vmcs::fields::exists(e as u64, &caps))
        .collect();
    for &e in &shadowed {
        assert_eq!(vmwrite(&mut w, e as u64, pattern(e)), InsnResult::Succeed, "{e:#x}");
    }
    let host = bochs_caps("corei7_skylake_x");
    let mut shadow = SoftVmcs::new(&host);
    shadow.reset_counts();
    w.nested.fill_shadow(&mut shadow).unwrap();
    for &e in &shadowed {
        assert_eq!(
            shadow.read_raw(e as u64),
            vmcs::VmcsRead::read_raw(w.nested.current().vmcs12.inner(), e as u64),
            "{e:#x}"
        );
    }
    let shadow_writes = shadow.writes();
    assert!(shadow_writes >= shadowed.len() as u64, "{shadow_writes} VMWRITEs for {} fields", shadowed.len());
    // L1 writes every read-write field through the shadow; draining brings exactly those back.
    for &e in SHADOW_READ_WRITE.iter().filter(|&&e| vmcs::fields::exists(e as u64, &caps)) {
        shadow.write_raw(e as u64, !pattern(e)).unwrap();
    }
    shadow.write_raw(F::VM_EXIT_REASON.raw(), 0x77).unwrap();
    w.nested.drain_shadow(&shadow).unwrap();
    for &e in SHADOW_READ_WRITE.iter().filter(|&&e| vmcs::fields::exists(e as u64, &caps)) {
        assert_eq!(vmread(&mut w, e as u64).ok(), shadow.read_raw(e as u64).ok(), "{e:#x} came back");
    }
    assert_eq!(vmread(&mut w, F::VM_EXIT_REASON.raw()), Ok(pattern(0x4402) & 0xffff_ffff), "read-only fields are L0's");
}

#[test]
fn emulated_writes_of_read_only_shadowed_fields_are_written_through() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_REASON.raw(), 0x12), InsnResult::Succeed);
    assert_eq!(w.nested.take_shadow_write(), Some((F::VM_EXIT_REASON.raw(), 0x12)));
    assert_eq!(w.nested.take_shadow_write(), None, "taken once");
    assert_eq!(vmwrite(&mut w, F::HOST_CR3.raw(), 0x1000), InsnResult::Succeed);
    assert_eq!(w.nested.take_shadow_write(), None, "not shadowed");
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x1000), InsnResult::Succeed);
    assert_eq!(w.nested.take_shadow_write(), None, "read-write: L1 writes it through the shadow itself");
    let bitmaps = w.nested.shadow_bitmaps();
    assert!(!bitmaps.read_exits(F::VM_EXIT_REASON.raw()) && bitmaps.write_exits(F::VM_EXIT_REASON.raw()));
    assert!(!bitmaps.read_exits(F::GUEST_RIP.raw()) && !bitmaps.write_exits(F::GUEST_RIP.raw()));
    assert!(bitmaps.read_exits(F::VM_INSTRUCTION_ERROR.raw()), "never shadowed");
}
