//! VMREAD and VMWRITE: register and memory operands, errors 12 and 13, VMfailInvalid, faults,
//! widths, and exactly the fields that exist for L1's capabilities.

mod common;

use common::*;
use vmcs::caps::{Cap, Capabilities};
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::fields::FieldWidth;

const GP0: InsnResult = InsnResult::Fault { vector: 13, error_code: Some(0) };
const UD: InsnResult = InsnResult::Fault { vector: 6, error_code: None };

#[test]
fn no_current_vmcs_is_vmfail_invalid() {
    let mut w = World::new();
    vmxon(&mut w);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Err(InsnResult::FailInvalid));
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 1), InsnResult::FailInvalid);
}

#[test]
fn cpl3_is_gp() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.set(F::GUEST_SS_AR_BYTES.raw(), AR_DATA | 3 << 5);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Err(GP0));
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 1), GP0);
}

#[test]
fn unsupported_field_is_error_12_recorded_in_vmcs12() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    for bad in [0x7ffe, 0x1_0000_4402, F::GUEST_RIP.raw() | 1, 0x4402 | 1 << 12] {
        assert_eq!(vmread(&mut w, bad), Err(InsnResult::FailValid(12)), "{bad:#x}");
        assert_eq!(vmwrite(&mut w, bad, 0), InsnResult::FailValid(12), "{bad:#x}");
    }
    assert_eq!(vmread(&mut w, F::VM_INSTRUCTION_ERROR.raw()), Ok(12));
    // A later success does not clear it.
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 5), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::VM_INSTRUCTION_ERROR.raw()), Ok(12));
}

#[test]
fn read_only_fields_follow_l1s_misc_bit_29() {
    let mut w = World::with_caps(l1_caps("corei7_skylake_x", &[Cap::BasicTrueCtls]));
    assert!(!w.nested.caps().caps().has(Cap::MiscVmwriteAnyField));
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_REASON.raw(), 1), InsnResult::FailValid(13));
    assert_eq!(vmwrite(&mut w, F::IO_RCX.raw(), 1), InsnResult::FailValid(13));
    // Error 12 ranks above 13: a read-only encoding that does not exist.
    assert_eq!(vmwrite(&mut w, 0x4402 | 0x1fe, 1), InsnResult::FailValid(12));
    let mut w = World::new();
    assert!(w.nested.caps().caps().has(Cap::MiscVmwriteAnyField));
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::VM_EXIT_REASON.raw(), 0x12), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::VM_EXIT_REASON.raw()), Ok(0x12));
}

#[test]
fn exactly_the_fields_that_exist_for_l1s_caps_are_accepted() {
    for model in bochs_models() {
        let caps = l1_caps(&model, EMULATED);
        let mut w = World::with_caps(caps);
        vmxon_and_load(&mut w);
        let mut accepted = 0;
        let mut max_index = 0;
        for enc in 0u64..0x8000 {
            let exists = vmcs::fields::exists(enc, caps.caps());
            let r = vmread(&mut w, enc);
            assert_eq!(r.is_ok(), exists, "{model}: VMREAD {enc:#x} {r:?}");
            if exists {
                accepted += 1;
                max_index = max_index.max(enc >> 1 & 0x1ff);
            } else {
                assert_eq!(r, Err(InsnResult::FailValid(12)));
            }
        }
        assert!(accepted > 100, "{model}: {accepted}");
        assert_eq!(caps.caps().raw(0x48a), max_index << 1, "{model}: VMCS_ENUM");
    }
}

fn pattern(e: u32) -> u64 {
    0x8877_6655_4433_2211 ^ (e as u64).wrapping_mul(0x0001_0003_0005_0007)
}

#[test]
fn every_field_round_trips_with_its_width_and_high_access() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    let caps = *w.nested.caps().caps();
    for f in vmcs::fields::ALL.iter().filter(|f| vmcs::fields::exists(f.encoding as u64, &caps)) {
        let e = f.encoding as u64;
        let p = pattern(f.encoding);
        assert_eq!(vmwrite(&mut w, e, p), InsnResult::Succeed, "{}", f.name);
        let mask = match f.width {
            FieldWidth::W16 => 0xffff,
            FieldWidth::W32 => 0xffff_ffff,
            _ => u64::MAX,
        };
        assert_eq!(vmread(&mut w, e), Ok(p & mask), "{}", f.name);
        if f.width == FieldWidth::W64 {
            assert_eq!(vmread(&mut w, e | 1), Ok(p >> 32), "{} high", f.name);
            assert_eq!(vmwrite(&mut w, e | 1, 0x1_2345_6789), InsnResult::Succeed);
            assert_eq!(vmread(&mut w, e), Ok(0x2345_6789 << 32 | p & 0xffff_ffff), "{} high write", f.name);
        }
    }
}

#[test]
fn memory_operands_are_8_bytes_in_64_bit_mode_and_4_outside() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x1122_3344_5566_7788), InsnResult::Succeed);
    // VMREAD [rbx + 0x20], field in RCX.
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.cpu.gprs[3] = OPERAND;
    w.mem.put64(OPERAND + 0x20, u64::MAX);
    w.exec(R::Vmread, mem_info_reg2(3, 1), 0x20);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.mem.u64(OPERAND + 0x20), 0x1122_3344_5566_7788);
    // VMWRITE from memory.
    w.mem.put64(OPERAND + 0x40, 0xabcd_0000_0000_1234);
    w.exec(R::Vmwrite, mem_info_reg2(3, 1), 0x40);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(vmread(&mut w, F::GUEST_RIP.raw()), Ok(0xabcd_0000_0000_1234));
    // 32-bit mode: 4 bytes each way; registers are 32 bits.
    w.mode32();
    w.cpu.gprs[1] = 0xffff_ffff_0000_0000 | F::GUEST_RIP.raw();
    w.mem.put64(OPERAND + 0x20, u64::MAX);
    w.exec(R::Vmread, 1 << 7 | 3 << 15 | 1 << 22 | 3 << 23 | 1 << 28, 0x20);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.mem.u64(OPERAND + 0x20), 0xffff_ffff_0000_1234, "only the low dword written");
    w.cpu.gprs[0] = 0x5555_5555_6666_6666;
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.exec(R::Vmwrite, reg_info(0, 1), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.nested.current().get(F::GUEST_RIP.raw()), 0x6666_6666);
}

#[test]
fn vmread_field_error_ranks_above_the_memory_operand() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.cpu.gprs[1] = 0x7ffe;
    w.cpu.gprs[3] = 0x50_0000; // unmapped
    w.exec(R::Vmread, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), InsnResult::FailValid(12));
    // A good field with the unmapped destination: #PF for a write, flags untouched.
    w.set(F::GUEST_RFLAGS.raw(), 0x2 | 1);
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.exec(R::Vmread, mem_info_reg2(3, 1), 8);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(2) });
    assert_eq!(w.cpu.cr2, Some(0x50_0008));
    assert_eq!(w.get(F::GUEST_RFLAGS.raw()), 0x3);
}

#[test]
fn vmwrite_reads_its_source_before_the_field() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.cpu.gprs[1] = 0x7ffe;
    w.cpu.gprs[3] = 0x50_0000;
    w.exec(R::Vmwrite, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(0) });
}

#[test]
fn a_memory_operand_crossing_into_an_unmapped_page_faults_on_the_second_page() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x0102_0304_0506_0708), InsnResult::Succeed);
    // The last 4 bytes of 4 MiB - 4 are mapped, the next page is not.
    let at = 0x40_0000 - 4;
    w.mem.put32(at, 0xcccc_cccc);
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.cpu.gprs[3] = at;
    w.exec(R::Vmread, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 14, error_code: Some(2) });
    assert_eq!(w.cpu.cr2, Some(0x40_0000));
    assert_eq!(w.mem.u32(at), 0xcccc_cccc, "no partial write");
}

#[test]
fn rsp_as_an_operand_register_lives_in_vmcs01() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.set(F::GUEST_RSP.raw(), 0x4242);
    w.exec(R::Vmwrite, reg_info(4, 1), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.nested.current().get(F::GUEST_RIP.raw()), 0x4242);
    w.exec(R::Vmread, reg_info(4, 1), 0);
    assert_eq!(w.get(F::GUEST_RSP.raw()), 0x4242);
    // [rsp + 8] as a memory operand (SS would be the default segment; DS is encoded here).
    w.set(F::GUEST_RSP.raw(), OPERAND);
    w.exec(R::Vmread, mem_info_reg2(4, 1), 8);
    assert_eq!(w.mem.u64(OPERAND + 8), 0x4242);
}

#[test]
fn segment_checks_outside_64_bit_mode() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    w.mode32();
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.cpu.gprs[3] = OPERAND;
    let info32 = |seg: u32| 1 << 7 | seg << 15 | 1 << 22 | 3 << 23 | 1 << 28;
    // Beyond DS's limit: #GP(0); beyond SS's: #SS(0).
    w.set(F::GUEST_DS_LIMIT.raw(), 0xf_ffff);
    w.exec(R::Vmread, info32(3), 0);
    assert_eq!(w.result(), GP0);
    w.set(F::GUEST_SS_LIMIT.raw(), 0xf_ffff);
    w.exec(R::Vmread, info32(2), 0);
    assert_eq!(w.result(), InsnResult::Fault { vector: 12, error_code: Some(0) });
    // A read-only data segment cannot be written (VMREAD's destination), but can be read.
    w.set(F::GUEST_ES_AR_BYTES.raw(), 0xc091);
    w.exec(R::Vmread, info32(0), 0);
    assert_eq!(w.result(), GP0);
    w.exec(R::Vmwrite, info32(0), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    // An unusable segment.
    w.set(F::GUEST_FS_AR_BYTES.raw(), 1 << 16);
    w.exec(R::Vmwrite, info32(4), 0);
    assert_eq!(w.result(), GP0);
    // The segment base applies outside 64-bit mode.
    w.set(F::GUEST_GS_BASE.raw(), 0x1000);
    w.mem.put32(OPERAND + 0x1000, 0x77);
    w.exec(R::Vmwrite, info32(5), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!(w.nested.current().get(F::GUEST_RIP.raw()), 0x77);
}

#[test]
fn non_canonical_memory_operand_in_64_bit_mode() {
    let mut w = World::new();
    vmxon_and_load(&mut w);
    assert_eq!(vmwrite(&mut w, F::GUEST_RIP.raw(), 0x99), InsnResult::Succeed);
    w.cpu.gprs[1] = F::GUEST_RIP.raw();
    w.cpu.gprs[3] = 0x0000_8000_0000_0000;
    w.exec(R::Vmread, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), GP0);
    // Only FS/GS bases apply in 64-bit mode: a DS base is ignored.
    w.set(F::GUEST_DS_BASE.raw(), 0x1000);
    w.cpu.gprs[3] = OPERAND;
    w.exec(R::Vmread, mem_info_reg2(3, 1), 0);
    assert_eq!(w.result(), InsnResult::Succeed);
    assert_eq!((w.mem.u64(OPERAND), w.mem.u64(OPERAND + 0x1000)), (0x99, 0));
    // A register where memory is required: VMPTRLD with bit 10.
    w.exec(R::Vmptrld, reg_info(0, 0), 0);
    assert_eq!(w.result(), UD);
}
