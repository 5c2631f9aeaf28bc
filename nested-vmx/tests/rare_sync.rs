//! The deferred rare sync (KVM's need_sync_vmcs02_to_vmcs12_rare): after a nested exit L2's
//! segments, descriptor tables and pending debug exceptions stay in vmcs02 until something needs
//! them in vmcs12 — L1's VMREAD of one, VMCLEAR or VMPTRLD releasing vmcs12 — and a VMRESUME
//! meanwhile checks vmcs12 as KVM does, leaving the rest of L2's state to the processor.

mod common;

use common::nested::*;
use common::*;
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{Layout, Vmcs12, VmcsWrite};
use vmcs_nested_vmx::count::Counted;
use vmcs_nested_vmx::vmx::Outcome;

/// KVM's sync_vmcs02_to_vmcs12_rare: 35 fields.
const RARE_FIELDS: u32 = 35;

/// L2 ran (its ES selector, FS base and TR base now differ from vmcs12's) and exited to L1 on
/// CPUID; vmcs12 has the exit's non-rare state.
fn exited() -> (World, SoftVmcs) {
    let mut w = ready();
    let mut v02 = enter(&mut w, true);
    for (f, v) in
        [(F::GUEST_ES_SELECTOR.raw(), 0x28), (F::GUEST_FS_BASE.raw(), 0x7000), (F::GUEST_TR_BASE.raw(), 0x3100)]
    {
        v02.write_raw(f, v).unwrap();
    }
    l2_exit(&mut v02, R::Cpuid.number() as u32, 0x4002);
    let c = Counted::new(&mut v02);
    w.nested.sync_exit(&c, true, 0xd01).unwrap();
    assert!(w.nested.rare_pending());
    (w, v02)
}

fn sync_rare(w: &mut World, v02: &mut SoftVmcs) -> u32 {
    let c = Counted::new(v02);
    w.nested.sync_rare(&c).unwrap();
    assert!(!w.nested.rare_pending());
    let n = c.counts();
    assert_eq!(n.writes, 0);
    n.reads
}

/// VMREAD by registers (RCX = field, into RDX), as `vmread` does, returning the raw outcome.
fn vmread_outcome(w: &mut World, field: u64) -> Outcome {
    w.cpu.gprs[1] = field;
    w.cpu.gprs[2] = 0xdead;
    w.exec(R::Vmread, reg_info(2, 1), 0)
}

#[test]
fn l1s_vmread_of_a_rare_field_syncs_it_first_and_once() {
    let (mut w, mut v02) = exited();
    // Fields the exit synced are read at once.
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0x4002));
    assert_eq!(vmread(&mut w, F::VM_EXIT_REASON.raw()), Ok(R::Cpuid.number() as u64));
    // A rare one first needs vmcs02: nothing happens to L1 yet.
    assert_eq!(vmread_outcome(&mut w, F::GUEST_ES_SELECTOR.raw()), Outcome::SyncRare);
    assert_eq!(w.result(), InsnResult::NotRetired);
    assert_eq!(w.cpu.gprs[2], 0xdead, "the destination is untouched");
    assert_eq!(sync_rare(&mut w, &mut v02), RARE_FIELDS);
    assert_eq!(vmread(&mut w, F::GUEST_ES_SELECTOR.raw()), Ok(0x28));
    assert_eq!(vmread(&mut w, F::GUEST_FS_BASE.raw()), Ok(0x7000));
    // Synced until the next exit.
    assert_eq!(sync_rare(&mut w, &mut v02), 0);
}

#[test]
fn l1s_vmwrite_of_a_rare_field_outlives_the_deferred_sync() {
    let (mut w, mut v02) = exited();
    assert_eq!(vmwrite(&mut w, F::GUEST_ES_SELECTOR.raw(), 0x33), InsnResult::Succeed, "no sync for a VMWRITE");
    assert_eq!(vmread(&mut w, F::GUEST_ES_SELECTOR.raw()), Ok(0x33), "L1's value needs no sync");
    assert_eq!(vmread_outcome(&mut w, F::GUEST_FS_BASE.raw()), Outcome::SyncRare);
    assert_eq!(sync_rare(&mut w, &mut v02), RARE_FIELDS - 1, "all but the field L1 wrote");
    assert_eq!(vmread(&mut w, F::GUEST_ES_SELECTOR.raw()), Ok(0x33));
    assert_eq!(vmread(&mut w, F::GUEST_FS_BASE.raw()), Ok(0x7000));
}

#[test]
fn vmresume_with_the_rare_state_pending_checks_what_kvm_checks() {
    // A TR L2 cannot run with: KVM leaves that rule (tr_usable, 26.3.1.2) to the processor.
    let (mut w, mut v02) = exited();
    assert_eq!(vmwrite(&mut w, F::GUEST_TR_AR_BYTES.raw(), 0x1_0000), InsnResult::Succeed);
    assert_eq!(w.exec(R::Vmresume, 0, 0), Outcome::EnterL2 { launch: false }, "vmcs02's entry judges it");
    // Once synced, vmcs12 is current and every rule runs.
    sync_rare(&mut w, &mut v02);
    let Outcome::EntryFailed { reason, .. } = w.exec(R::Vmresume, 0, 0) else { panic!("entered") };
    assert_eq!(reason.bits(), 0x8000_0021);
    let rule = w.nested.last_entry_failure().unwrap().rule.name();
    assert!(rule.starts_with("tr_"), "{rule}");
    // What KVM checks in software fails VMRESUME whatever is pending: a guest rule (exit 33) ...
    let (mut w, _) = exited();
    assert_eq!(vmwrite(&mut w, F::GUEST_CR0.raw(), 0x31), InsnResult::Succeed);
    assert!(matches!(w.exec(R::Vmresume, 0, 0), Outcome::EntryFailed { .. }));
    assert_eq!(w.nested.last_entry_failure().unwrap().rule.name(), "guest_cr0_fixed0_pe_pg");
    // ... and the host state (VMfailValid 8).
    let (mut w, _) = exited();
    assert_eq!(vmwrite(&mut w, F::HOST_CS_SELECTOR.raw(), 0), InsnResult::Succeed);
    assert_eq!(w.exec(R::Vmresume, 0, 0), Outcome::ResumeL1);
    assert_eq!(w.result(), InsnResult::FailValid(8));
}

#[test]
fn vmclear_and_vmptrld_sync_the_rare_state_before_vmcs12_leaves() {
    let es = Vmcs12::locate(F::GUEST_ES_SELECTOR.raw()).unwrap().offset as u64;
    let (mut w, mut v02) = exited();
    let (info, q) = pointer_operand(&mut w, OPERAND, VMCS_A);
    assert_eq!(w.exec(R::Vmclear, info, q), Outcome::SyncRare);
    assert_eq!(w.result(), InsnResult::NotRetired);
    sync_rare(&mut w, &mut v02);
    assert_eq!(w.exec(R::Vmclear, info, q), Outcome::ResumeL1);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.mem.u32(VMCS_A + es) & 0xffff, 0x28, "the region holds L2's selector");
    // VMPTRLD of another VMCS releases vmcs12 the same way.
    let (mut w, mut v02) = exited();
    w.mem.put32(VMCS_B, Vmcs12::REVISION);
    let (info, q) = pointer_operand(&mut w, OPERAND, VMCS_B);
    assert_eq!(w.exec(R::Vmptrld, info, q), Outcome::SyncRare);
    sync_rare(&mut w, &mut v02);
    assert_eq!(w.exec(R::Vmptrld, info, q), Outcome::ResumeL1);
    assert_eq!(w.mem.u32(VMCS_A + es) & 0xffff, 0x28);
    // VMPTRLD of the current VMCS releases nothing.
    let (mut w, _) = exited();
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    assert!(w.nested.rare_pending());
}
