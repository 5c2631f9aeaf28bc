//! KVM 7.2.8's side of the counts (`kvm_count::Kvm`): its flags behave as the reference says
//! (nested-flow §1.6-1.8, §4, §6): the deferred rare sync runs once, at L1's first VMREAD of a
//! rare field or VMWRITE of a field that is not shadowed read-write; such a VMWRITE makes the next
//! entry run the rare preparation; shadowing fills the shadow after an exit and drains it at
//! VMRESUME.

mod common;

use common::bochs_caps;
use vmcs::copy::lazy_bit;
use vmcs::fields as F;
use vmcs_nested_vmx::count::Counts;
use vmcs_nested_vmx::kvm_count::{self as kvm, Kvm};

fn sandy_bridge(shadowing: bool) -> Kvm {
    Kvm::new(&bochs_caps("corei7_sandy_bridge_2600k"), shadowing)
}

/// KVM after L2's exit to L1 and L1's VMRESUME, nothing else in between.
fn launched(shadowing: bool) -> Kvm {
    let mut k = sandy_bridge(shadowing);
    k.l1_run();
    k.l2_exit_to_l1(false, false);
    k.take();
    k
}

fn step(k: &mut Kvm, f: impl FnOnce(&mut Kvm)) -> Counts {
    f(k);
    k.take()
}

#[test]
fn the_rare_fields_are_synced_once_when_l1_first_needs_them() {
    let rare = F::GUEST_ES_SELECTOR.raw();
    assert!(lazy_bit(rare).is_some());
    let mut k = launched(false);
    let plain = step(&mut k, |k| k.l1_vmread(F::GUEST_RIP.raw(), false));
    let first = step(&mut k, |k| k.l1_vmread(rare, false));
    let again = step(&mut k, |k| k.l1_vmread(rare, false));
    assert_eq!(first.reads, plain.reads + kvm::RARE_SYNC.reads);
    assert_eq!(again, plain);
    // A VMWRITE of a field that is not shadowed read-write syncs them first too.
    let mut k = launched(false);
    let first = step(&mut k, |k| k.l1_vmwrite(F::HOST_RSP.raw(), false));
    let again = step(&mut k, |k| k.l1_vmwrite(F::HOST_RIP.raw(), false));
    assert_eq!(first.reads, again.reads + kvm::RARE_SYNC.reads);
}

#[test]
fn only_a_vmwrite_of_a_field_not_shadowed_read_write_dirties_vmcs12() {
    let clean = step(&mut launched(false), |k| k.l1_run());
    let mut k = launched(false);
    k.l1_vmwrite(F::GUEST_RIP.raw(), false);
    k.take();
    assert_eq!(step(&mut k, |k| k.l1_run()), clean, "GUEST_RIP is consumed on every entry");
    let mut k = launched(false);
    k.l1_vmwrite(F::HOST_RSP.raw(), false);
    k.take();
    let dirty = step(&mut k, |k| k.l1_run());
    assert_eq!(dirty.writes, clean.writes + kvm::EARLY_RARE.writes + kvm::RARE.writes);
    assert_eq!(step(&mut k, |k| k.l1_run()), clean, "prepare_vmcs02_rare clears dirty_vmcs12");
}

#[test]
fn shadowing_fills_after_an_exit_and_drains_at_vmresume() {
    let (mut off, mut on) = (sandy_bridge(false), sandy_bridge(true));
    let exit = |k: &mut Kvm| step(k, |k| k.l2_exit_to_l1(false, false));
    assert_eq!(exit(&mut on), exit(&mut off) + kvm::SHADOW_FILL);
    let run = |k: &mut Kvm| step(k, |k| k.l1_run());
    assert_eq!(run(&mut on), run(&mut off) + kvm::SHADOW_DRAIN);
    // A VMWRITE of a read-only shadow field is written through to the shadow.
    let write = |k: &mut Kvm| step(k, |k| k.l1_vmwrite(F::VM_EXIT_REASON.raw(), false));
    assert_eq!(write(&mut on), write(&mut off) + kvm::SHADOW_WRITE_THROUGH);
}

#[test]
fn the_first_entry_after_vmxon_and_the_host_decide_what_vmcs02_gets() {
    // VMPTRLD, then VMLAUNCH.
    let launch = |k: &mut Kvm| {
        k.l1_vmptrld(Counts::default());
        step(k, |k| k.l1_run())
    };
    let first = |model: &str| launch(&mut Kvm::new(&bochs_caps(model), false));
    let sandy = first("corei7_sandy_bridge_2600k");
    let mut k = sandy_bridge(false);
    launch(&mut k);
    let later = launch(&mut k);
    assert_eq!(sandy, later + kvm::CONSTANT, "prepare_vmcs02_constant_state once");
    // TSC scaling (TSC_MULTIPLIER); APICv (the EOI-exit bitmaps of prepare_vmcs02_rare), which
    // no Bochs model has (no posted interrupts).
    let tsc = kvm::PREPARE_TSC_SCALING.writes;
    assert_eq!(first("corei7_skylake_x").writes, sandy.writes + tsc);
    let all = launch(&mut Kvm::new(&vmcs::caps::AllCaps, false));
    assert_eq!(all.writes, sandy.writes + tsc + kvm::RARE_APICV.writes);
}

#[test]
fn the_rare_sync_and_shadow_rows_are_the_schemas_sets() {
    let lazy = vmcs::fields::ALL.iter().filter(|f| lazy_bit(f.encoding as u64).is_some()).count();
    assert_eq!(kvm::RARE_SYNC.reads as usize, lazy, "sync_vmcs02_to_vmcs12_rare");
    let shadowed = vmcs::copy::SHADOW_READ_WRITE.len() + vmcs::copy::SHADOW_READ_ONLY.len();
    assert_eq!((kvm::SHADOW_FILL.writes as usize, kvm::SHADOW_DRAIN.reads as usize), (shadowed, 24));
}
