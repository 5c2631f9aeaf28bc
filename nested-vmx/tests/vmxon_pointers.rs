//! VMXON, VMXOFF, VMCLEAR, VMPTRLD and VMPTRST: every outcome, on an in-memory L1.

mod common;

use common::*;
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::{Layout, Vmcs12};
use vmcs_nested_vmx::vmx::{INVALID_POINTER, Outcome};

const REV: u32 = Vmcs12::REVISION;
const UD: InsnResult = InsnResult::Fault { vector: 6, error_code: None };
const GP0: InsnResult = InsnResult::Fault { vector: 13, error_code: Some(0) };

fn vmxon_with(w: &mut World, ptr: u64) -> InsnResult {
    let (info, q) = pointer_operand(w, OPERAND, ptr);
    w.exec(R::Vmxon, info, q);
    w.result()
}

fn vmclear(w: &mut World, ptr: u64) -> InsnResult {
    let (info, q) = pointer_operand(w, OPERAND, ptr);
    w.exec(R::Vmclear, info, q);
    w.result()
}

#[test]
fn vmxon_needs_cr4_vmxe_as_l1_sees_it() {
    let mut w = World::new();
    w.mem.put32(VMXON_REGION, REV);
    // The processor's CR4 has VMXE (required in VMX non-root), but L0 owns the bit and L1's
    // read shadow says 0: L1 has not set it.
    w.set(F::CR4_GUEST_HOST_MASK.raw(), 1 << 13);
    w.set(F::CR4_READ_SHADOW.raw(), 0x20);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), UD);
    w.set(F::CR4_READ_SHADOW.raw(), 0x2020);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::Succeed);
}

#[test]
fn vmxon_at_cpl3_is_gp_and_ranks_above_already_on() {
    let mut w = World::new();
    vmxon(&mut w);
    w.set(F::GUEST_SS_AR_BYTES.raw(), AR_DATA | 3 << 5);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), GP0);
}

#[test]
fn vmxon_twice_is_vmfail_15() {
    let mut w = World::new();
    vmxon(&mut w);
    // No current VMCS: VMfail(15) is VMfailInvalid.
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::FailInvalid);
    w.mem.put32(VMCS_A, REV);
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::FailValid(15));
}

#[test]
fn vmxon_checks_cr0_fixed_bits_and_feature_control() {
    let mut w = World::new();
    w.mem.put32(VMXON_REGION, REV);
    // L1 cleared CR0.NE (L0 keeps it set in hardware): FIXED0 violated as L1 sees it.
    w.set(F::CR0_GUEST_HOST_MASK.raw(), 1 << 5);
    w.set(F::CR0_READ_SHADOW.raw(), 0);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), GP0);
    w.set(F::CR0_READ_SHADOW.raw(), 1 << 5);
    w.cpu.feature_control = 1; // locked, VMX outside SMX disabled
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), GP0);
    w.cpu.feature_control = 4; // not locked
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), GP0);
    w.cpu.feature_control = 5;
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::Succeed);
}

#[test]
fn vmxon_pointer_and_revision_failures_are_vmfail_invalid() {
    let mut w = World::new();
    w.mem.put32(VMXON_REGION, REV);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION + 8), InsnResult::FailInvalid, "unaligned");
    assert_eq!(vmxon_with(&mut w, 1 << 39), InsnResult::FailInvalid, "beyond MAXPHYADDR");
    w.mem.put32(VMXON_REGION, REV + 1);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::FailInvalid, "wrong revision");
    w.mem.put32(VMXON_REGION, REV | 1 << 31);
    assert_eq!(vmxon_with(&mut w, VMXON_REGION), InsnResult::FailInvalid, "shadow bit");
    assert_eq!(vmxon_with(&mut w, 0x8000_0000), InsnResult::FailInvalid, "outside L1 memory");
    assert!(!w.nested.vmxon());
}

#[test]
fn vmxon_operand_page_fault_leaves_flags_and_rip() {
    let mut w = World::new();
    w.mem.put32(VMXON_REGION, REV);
    w.set(F::GUEST_RFLAGS.raw(), 0x2 | 1 | 1 << 6); // CF and ZF set before
    // The operand at 5 MiB is beyond the 4 MiB the page tables map: #PF, not present, read.
    w.cpu.gprs[3] = 0x50_0000;
    w.exec(R::Vmxon, mem_info(3), 0x10);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(0) });
    assert_eq!(w.cpu.cr2, Some(0x50_0010));
    assert_eq!(w.get(F::GUEST_RFLAGS.raw()), 0x2 | 1 | 1 << 6);
    assert!(!w.nested.vmxon());
}

#[test]
fn vmx_instructions_outside_vmx_operation_are_ud() {
    let mut w = World::new();
    for reason in [R::Vmxoff, R::Vmclear, R::Vmptrld, R::Vmptrst, R::Vmread, R::Vmwrite, R::Vmlaunch, R::Vmresume] {
        w.exec(reason, mem_info(3), 0);
        assert_eq!(w.result(), UD, "{reason:?}");
    }
}

#[test]
fn vmxoff_leaves_vmx_operation_without_writing_back() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x1234), InsnResult::Succeed);
    w.exec(R::Vmxoff, 0, 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert!(!w.nested.vmxon());
    assert_eq!(w.nested.current_pointer(), INVALID_POINTER);
    // The region was never written back (L1 must VMCLEAR first).
    assert_eq!(w.mem.u64(VMCS_A + Vmcs12::locate(F::GUEST_RIP.raw()).unwrap().offset as u64), 0);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Err(UD));
}

#[test]
fn vmclear_errors_2_and_3() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmclear(&mut w, VMCS_B + 4), InsnResult::FailValid(2));
    assert_eq!(vmclear(&mut w, 1 << 40), InsnResult::FailValid(2));
    assert_eq!(vmclear(&mut w, VMXON_REGION), InsnResult::FailValid(3));
}

#[test]
fn vmclear_of_current_writes_the_vmcs12_layout_and_clears_launch_state() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x1234_5678_9abc), InsnResult::Succeed);
    assert_eq!(vmwrite(&mut w, F::GUEST_CS_SELECTOR.raw(), 0x28), InsnResult::Succeed);
    w.mem.put32(VMCS_A + 8, 1); // launched, as L0 records it
    assert_eq!(vmclear(&mut w, VMCS_A), InsnResult::Succeed);
    assert_eq!(w.nested.current_pointer(), INVALID_POINTER);
    let at = |e: u64| VMCS_A + Vmcs12::locate(e).unwrap().offset as u64;
    assert_eq!(w.mem.u64(at(F::GUEST_RIP.raw())), 0x1234_5678_9abc);
    assert_eq!(w.mem.0[at(F::GUEST_CS_SELECTOR.raw()) as usize], 0x28);
    assert_eq!(w.mem.u32(VMCS_A), REV);
    assert_eq!(w.mem.u32(VMCS_A + 8), 0, "launch state clear");
    // No current VMCS now.
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Err(InsnResult::FailInvalid));
}

#[test]
fn vmclear_of_another_vmcs_writes_only_its_launch_state() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.mem.put32(VMCS_B, REV);
    w.mem.put32(VMCS_B + 8, 1);
    w.mem.put64(VMCS_B + 0x100, 0x5555);
    assert_eq!(vmclear(&mut w, VMCS_B), InsnResult::Succeed);
    assert_eq!((w.mem.u32(VMCS_B + 8), w.mem.u64(VMCS_B + 0x100)), (0, 0x5555));
    assert_eq!(w.nested.current_pointer(), VMCS_A);
}

#[test]
fn vmptrld_errors_9_10_11() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmptrld(&mut w, VMCS_B + 0x10), InsnResult::FailValid(9));
    assert_eq!(vmptrld(&mut w, VMXON_REGION), InsnResult::FailValid(10));
    w.mem.put32(VMCS_B, 0x2b);
    assert_eq!(vmptrld(&mut w, VMCS_B), InsnResult::FailValid(11), "hardware revision, not vmcs12's");
    // A shadow VMCS needs L1's VMCS-shadowing capability, which this L1 lacks.
    w.mem.put32(VMCS_B, REV | 1 << 31);
    assert_eq!(vmptrld(&mut w, VMCS_B), InsnResult::FailValid(11));
    assert_eq!(w.nested.current_pointer(), VMCS_A);
}

#[test]
fn vmptrld_without_current_vmcs_fails_invalid() {
    let mut w = World::new();
    vmxon(&mut w);
    assert_eq!(vmptrld(&mut w, VMCS_B + 0x10), InsnResult::FailInvalid);
}

#[test]
fn vmptrld_of_the_current_pointer_does_not_reread_memory() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RSP.raw(), 7), InsnResult::Succeed);
    let rsp_at = VMCS_A + Vmcs12::locate(F::GUEST_RSP.raw()).unwrap().offset as u64;
    w.mem.put64(rsp_at, 99);
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RSP.raw()), Ok(7));
}

#[test]
fn two_vmcs12_juggled_and_a_byte_copy_of_a_cleared_region() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0xaaaa), InsnResult::Succeed);
    w.mem.put32(VMCS_B, REV);
    assert_eq!(vmptrld(&mut w, VMCS_B), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0));
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0xbbbb), InsnResult::Succeed);
    // Back to A: switching wrote B's cache back and reads A from memory.
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0xaaaa));
    assert_eq!(vmptrld(&mut w, VMCS_B), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0xbbbb));
    // An architectural field vmcs12 has no member for (GUEST_SMBASE) survives the same way.
    assert_eq!(vmwrite(&mut w, F::GUEST_SMBASE.raw(), 0x3_0000), InsnResult::Succeed);
    assert_eq!(vmclear(&mut w, VMCS_B), InsnResult::Succeed);
    // L1 copies the cleared region byte for byte and loads the copy.
    let copy = 0x20_5000u64;
    let region: Vec<u8> = w.mem.0[VMCS_B as usize..VMCS_B as usize + 4096].to_vec();
    w.mem.0[copy as usize..copy as usize + 4096].copy_from_slice(&region);
    assert_eq!(vmptrld(&mut w, copy), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0xbbbb));
    assert_eq!(vmread(&mut w, F::GUEST_SMBASE.raw()), Ok(0x3_0000));
}

#[test]
fn vmptrst_stores_the_current_pointer_or_all_ones() {
    let mut w = World::new();
    vmxon(&mut w);
    w.cpu.gprs[3] = OPERAND;
    w.exec(R::Vmptrst, mem_info(3), 8);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.mem.u64(OPERAND + 8), u64::MAX);
    w.mem.put32(VMCS_A, REV);
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    w.cpu.gprs[3] = OPERAND;
    w.exec(R::Vmptrst, mem_info(3), 8);
    assert_eq!(w.mem.u64(OPERAND + 8), VMCS_A);
    // A register operand is #UD.
    w.exec(R::Vmptrst, reg_info(0, 0), 0);
    assert_eq!(w.result(), UD);
}

#[test]
fn vmptrst_to_a_read_only_page_is_a_write_page_fault() {
    let mut w = World::new();
    vmxon(&mut w);
    w.mem.put64(0x3008, 0x20_0000 | 0x81); // 2..4 MiB present, read-only
    w.cpu.gprs[3] = OPERAND;
    w.mem.put64(OPERAND, 0x77);
    w.exec(R::Vmptrst, mem_info(3), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(3) });
    assert_eq!(w.mem.u64(OPERAND), 0x77, "nothing written");
    // With CR0.WP clear, a supervisor write to a read-only page succeeds.
    w.set(F::GUEST_CR0.raw(), 0x8000_0031);
    w.exec(R::Vmptrst, mem_info(3), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.mem.u64(OPERAND), u64::MAX);
}

#[test]
fn memory_outside_l1_is_reported_to_l0() {
    let mut w = World::new();
    vmxon(&mut w);
    // Map 4..6 MiB: present in L1's paging, outside its 4 MiB of memory.
    w.mem.put64(0x3010, 0x40_0000 | 0x83);
    w.cpu.gprs[3] = 0x40_0000;
    assert!(matches!(w.exec(R::Vmptrst, mem_info(3), 0), Outcome::Memory(_)));
}

#[test]
fn vmcall_in_vmx_root_is_vmfail_1_as_on_a_processor_without_an_smm_monitor() {
    let mut w = World::new();
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), UD, "outside VMX operation");
    vmxon(&mut w);
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), InsnResult::FailInvalid, "no current VMCS");
    w.mem.put32(VMCS_A, REV);
    assert_eq!(vmptrld(&mut w, VMCS_A), InsnResult::Succeed);
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), InsnResult::FailValid(1));
    // Compatibility mode (IA-32e, CS.L = 0) and virtual-8086 mode: #UD, before the CPL check.
    w.set(F::GUEST_SS_AR_BYTES.raw(), AR_DATA | 3 << 5);
    w.set(F::GUEST_CS_AR_BYTES.raw(), AR_CODE32);
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), UD, "compatibility mode");
    w.set(F::GUEST_CS_AR_BYTES.raw(), AR_CODE64);
    let rflags = w.get(F::GUEST_RFLAGS.raw());
    w.set(F::GUEST_RFLAGS.raw(), rflags | 1 << 17);
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), UD, "virtual-8086 mode");
    w.set(F::GUEST_RFLAGS.raw(), rflags);
    w.exec(R::Vmcall, 0, 0);
    assert_eq!(w.result(), GP0, "CPL 3");
}
