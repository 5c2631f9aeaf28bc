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
            VmcsRead::read_raw(w.nested.current().vmcs12.inner(), e as u64),
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

#[test]
fn fills_write_only_what_the_shadow_does_not_hold() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    let host = bochs_caps("corei7_skylake_x");
    let mut shadow = SoftVmcs::new(&host);
    w.nested.fill_shadow(&mut shadow).unwrap();
    let first = shadow.writes();
    assert!(first >= 30, "the first fill writes every field: {first}");
    shadow.reset_counts();
    w.nested.fill_shadow(&mut shadow).unwrap();
    assert_eq!(shadow.writes(), 0, "nothing changed");
    // L1 writes a read-write field through the shadow; the drain sees it, the next fill skips it.
    shadow.write_raw(F::GUEST_RIP.raw(), 0x4000).unwrap();
    w.nested.drain_shadow(&shadow).unwrap();
    shadow.reset_counts();
    w.nested.fill_shadow(&mut shadow).unwrap();
    assert_eq!(shadow.writes(), 0, "L1's write came back and is what the shadow holds");
    // vmcs12 changes under L1 (an emulated VMWRITE, as a nested exit's sync would): one write.
    assert_eq!(vmwrite(&mut w, F::GUEST_RSP.raw(), 0x5000), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_REASON.raw(), 0x12), InsnResult::Succeed);
    let (e, v) = w.nested.take_shadow_write().unwrap();
    w.nested.write_shadow(&mut shadow, e, v).unwrap();
    shadow.reset_counts();
    w.nested.fill_shadow(&mut shadow).unwrap();
    assert_eq!(shadow.writes(), 1, "GUEST_RSP only; the exit reason was written through");
    assert_eq!(shadow.read_raw(F::GUEST_RSP.raw()), Ok(0x5000));
    assert_eq!(shadow.read_raw(F::VM_EXIT_REASON.raw()), Ok(0x12));
    // A high-half write forgets its field; a new shadow VMCS forgets everything.
    w.nested.write_shadow(&mut shadow, F::GUEST_PHYSICAL_ADDRESS.raw() | 1, 7).unwrap();
    shadow.reset_counts();
    w.nested.fill_shadow(&mut shadow).unwrap();
    assert_eq!(shadow.writes(), 1, "GUEST_PHYSICAL_ADDRESS again");
    let mut fresh = SoftVmcs::new(&host);
    w.nested.forget_shadow();
    w.nested.fill_shadow(&mut fresh).unwrap();
    assert_eq!(fresh.writes(), first);
}
