//! `SoftVmcs` against the SDM's VMREAD/VMWRITE rules (Vol. 3C: VMX instruction reference,
//! VM-instruction error numbers, "Field Encoding in VMCS") and against Linux 7.2.8's field
//! encodings (testdata/reference). Expected results are
//! computed here from the encoding bits and raw MSR values, never from `SoftVmcs` internals.

mod common;

use common::Rng;
use std::collections::HashMap;

use vmcs::caps::{AllCaps, AllExcept, Cap, VmxCaps};
use vmcs::soft::SoftVmcs;
use vmcs::{VmcsError, VmcsRead, VmcsWrite, fields};

const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
const IA32_VMX_MISC: u32 = 0x485;
const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48B;
/// IA32_VMX_PROCBASED_CTLS allowed-1 of "activate secondary controls" (control bit 31).
const ACTIVATE_SECONDARY: u64 = 1 << 63;
/// IA32_VMX_PROCBASED_CTLS2 allowed-1 of "enable VPID" (control bit 5).
const ENABLE_VPID: u64 = 1 << (32 + 5);
/// IA32_VMX_MISC bit 29: VMWRITE may write VM-exit information fields.
const MISC_VMWRITE_ANY: u64 = 1 << 29;

const VIRTUAL_PROCESSOR_ID: u64 = 0x0000;
const GUEST_ES_SELECTOR: u64 = 0x0800;
const TSC_OFFSET: u64 = 0x2010;
const TSC_OFFSET_HIGH: u64 = 0x2011;
const GUEST_PHYSICAL_ADDRESS: u64 = 0x2400;
const PIN_BASED_VM_EXEC_CONTROL: u64 = 0x4000;
const VM_INSTRUCTION_ERROR: u64 = 0x4400;
const VM_EXIT_REASON: u64 = 0x4402;
const GUEST_RIP: u64 = 0x681e;

const PATTERN: u64 = 0xdead_beef_cafe_f00d;

fn msrs(values: &[(u32, u64)]) -> VmxCaps {
    let mut caps = VmxCaps::new();
    for &(index, value) in values {
        caps.set(index, value);
    }
    caps
}

/// Width from encoding bits 14:13 (SDM): 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural.
/// Returns the mask of bits a VMWRITE keeps for a non-high access.
fn width_mask(encoding: u64) -> u64 {
    match (encoding >> 13) & 3 {
        0 => 0xffff,
        2 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn is_64bit(encoding: u64) -> bool {
    (encoding >> 13) & 3 == 1
}

/// Access type bits 11:10 = 1: VM-exit information, read-only to VMWRITE.
fn is_read_only(encoding: u64) -> bool {
    (encoding >> 10) & 3 == 1
}

/// Every architectural encoding, with the high half of 64-bit fields.
fn all_encodings() -> Vec<u64> {
    fields::ALL
        .iter()
        .flat_map(|f| {
            let e = f.encoding as u64;
            if is_64bit(e) { vec![e, e | 1] } else { vec![e] }
        })
        .collect()
}

/// Reads every encoding that succeeds, except the VM-instruction error field (failures change it).
fn snapshot(v: &SoftVmcs) -> Vec<(u64, Result<u64, VmcsError>)> {
    all_encodings().into_iter().filter(|&e| e != VM_INSTRUCTION_ERROR).map(|e| (e, v.read_raw(e))).collect()
}

#[test]
fn unsupported_encodings_fail_with_error_12_and_change_nothing() {
    let mut v = SoftVmcs::new(&AllCaps);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for f in fields::ALL.iter() {
        v.write_raw(f.encoding as u64, rng.next()).unwrap();
    }
    let before = snapshot(&v);
    assert!(before.iter().all(|(_, r)| r.is_ok()));

    let bad: &[u64] = &[
        0x7ffe,                  // natural host-state index 0x1ff: no such field
        0x1000,                  // bit 12 reserved
        0x1000 | TSC_OFFSET,     // reserved bit 12 on an existing field
        0x4403,                  // high access of 32-bit VM_EXIT_REASON
        0x4001,                  // high access of 32-bit PIN_BASED_VM_EXEC_CONTROL
        0x0801,                  // high access of a 16-bit field
        0x681f,                  // high access of natural-width GUEST_RIP
        0x8000 | GUEST_RIP,      // bit 15 reserved
        0x8000_0000 | GUEST_RIP, // bit 31 reserved
        1 << 32,                 // above 32 bits
        (1 << 32) | TSC_OFFSET,  // a valid field in the low 32 bits, but > u32::MAX
        (1 << 63) | VM_EXIT_REASON,
        u64::MAX,
        u32::MAX as u64,
    ];
    for &e in bad {
        assert!(!v.exists(e), "{e:#x}");
        v.write_raw(VM_INSTRUCTION_ERROR, 0).unwrap();
        assert_eq!(v.instruction_error(), 0);
        assert_eq!(v.read_raw(e), Err(VmcsError::UnsupportedField(e)), "{e:#x}");
        assert_eq!(v.instruction_error(), 12, "read {e:#x}");
        v.write_raw(VM_INSTRUCTION_ERROR, 0).unwrap();
        assert_eq!(v.write_raw(e, PATTERN), Err(VmcsError::UnsupportedField(e)), "{e:#x}");
        assert_eq!(v.instruction_error(), 12, "write {e:#x}");
        assert_eq!(VmcsError::UnsupportedField(e).instruction_error(), Some(12));
    }
    assert_eq!(snapshot(&v), before);
}

#[test]
fn gated_field_exists_only_when_the_msrs_allow_its_control() {
    let with = msrs(&[(IA32_VMX_PROCBASED_CTLS, ACTIVATE_SECONDARY), (IA32_VMX_PROCBASED_CTLS2, ENABLE_VPID)]);
    let without_vpid = msrs(&[(IA32_VMX_PROCBASED_CTLS, ACTIVATE_SECONDARY), (IA32_VMX_PROCBASED_CTLS2, !ENABLE_VPID)]);
    // IA32_VMX_PROCBASED_CTLS2 does not exist without "activate secondary controls" allowed-1.
    let no_secondary = msrs(&[(IA32_VMX_PROCBASED_CTLS, !ACTIVATE_SECONDARY), (IA32_VMX_PROCBASED_CTLS2, ENABLE_VPID)]);

    for caps in [&without_vpid, &no_secondary] {
        let mut v = SoftVmcs::new(caps);
        assert!(!v.exists(VIRTUAL_PROCESSOR_ID));
        assert_eq!(v.read_raw(VIRTUAL_PROCESSOR_ID), Err(VmcsError::UnsupportedField(VIRTUAL_PROCESSOR_ID)));
        assert_eq!(v.instruction_error(), 12);
        assert_eq!(v.write_raw(VIRTUAL_PROCESSOR_ID, 1), Err(VmcsError::UnsupportedField(VIRTUAL_PROCESSOR_ID)));
        assert_eq!(v.read(fields::VIRTUAL_PROCESSOR_ID), Err(VmcsError::UnsupportedField(VIRTUAL_PROCESSOR_ID)));
        // Ungated fields are unaffected.
        v.write_raw(GUEST_ES_SELECTOR, 8).unwrap();
        assert_eq!(v.read_raw(GUEST_ES_SELECTOR), Ok(8));
    }

    let mut v = SoftVmcs::new(&with);
    assert!(v.exists(VIRTUAL_PROCESSOR_ID));
    assert_eq!(v.read_raw(VIRTUAL_PROCESSOR_ID), Ok(0));
    v.write(fields::VIRTUAL_PROCESSOR_ID, 0x1234).unwrap();
    assert_eq!(v.read(fields::VIRTUAL_PROCESSOR_ID), Ok(0x1234));
    assert_eq!(v.instruction_error(), 0);

    // The same through the other capability sets.
    assert!(SoftVmcs::new(&AllCaps).exists(VIRTUAL_PROCESSOR_ID));
    assert!(!SoftVmcs::new(&AllExcept(&[Cap::Proc2EnableVpid])).exists(VIRTUAL_PROCESSOR_ID));
    // The VMX capability MSRs all zero: only ungated fields exist.
    let zero = SoftVmcs::new(&VmxCaps::new());
    assert!(!zero.exists(VIRTUAL_PROCESSOR_ID));
    assert!(zero.exists(TSC_OFFSET) && zero.exists(TSC_OFFSET_HIGH) && zero.exists(GUEST_RIP));
}

#[test]
fn read_only_field_needs_vmwrite_any_field() {
    let mut v = SoftVmcs::new(&msrs(&[(IA32_VMX_MISC, !MISC_VMWRITE_ANY)]));
    assert_eq!(v.write_raw(VM_EXIT_REASON, 48), Err(VmcsError::ReadOnlyField(VM_EXIT_REASON)));
    assert_eq!(v.instruction_error(), 13);
    assert_eq!(v.read_raw(VM_INSTRUCTION_ERROR), Ok(13));
    assert_eq!(v.read_raw(VM_EXIT_REASON), Ok(0));
    // The VM-instruction error field is read-only too.
    assert_eq!(v.write_raw(VM_INSTRUCTION_ERROR, 0), Err(VmcsError::ReadOnlyField(VM_INSTRUCTION_ERROR)));
    // A successful VMWRITE or VMREAD does not clear the error.
    v.write_raw(TSC_OFFSET, 5).unwrap();
    assert_eq!(v.read_raw(TSC_OFFSET), Ok(5));
    assert_eq!(v.instruction_error(), 13);
    // Error 12 takes precedence: a read-only encoding that names no existing field.
    assert_eq!(v.write_raw(VM_EXIT_REASON | 1, 0), Err(VmcsError::UnsupportedField(VM_EXIT_REASON | 1)));
    assert_eq!(v.instruction_error(), 12);
    // GUEST_PHYSICAL_ADDRESS (read-only) exists only with EPT; here it does not.
    assert_eq!(v.write_raw(VM_EXIT_REASON, 1), Err(VmcsError::ReadOnlyField(VM_EXIT_REASON)));
    assert_eq!(v.instruction_error(), 13);
    assert_eq!(v.write_raw(GUEST_PHYSICAL_ADDRESS, 1), Err(VmcsError::UnsupportedField(GUEST_PHYSICAL_ADDRESS)));
    assert_eq!(v.instruction_error(), 12);

    let mut v = SoftVmcs::new(&msrs(&[(IA32_VMX_MISC, MISC_VMWRITE_ANY)]));
    assert_eq!(v.write_raw(VM_EXIT_REASON, PATTERN), Ok(()));
    assert_eq!(v.read_raw(VM_EXIT_REASON), Ok(PATTERN & 0xffff_ffff));
    assert_eq!(v.instruction_error(), 0);
    // The VM-instruction error field is an ordinary 32-bit field to VMREAD/VMWRITE.
    assert_eq!(v.read_raw(VM_EXIT_REASON | 1), Err(VmcsError::UnsupportedField(VM_EXIT_REASON | 1)));
    assert_eq!(v.read_raw(VM_INSTRUCTION_ERROR), Ok(12));
    v.write_raw(VM_INSTRUCTION_ERROR, PATTERN).unwrap();
    assert_eq!(v.instruction_error(), 0xcafe_f00d);
    assert_eq!(v.read_raw(VM_INSTRUCTION_ERROR), Ok(0xcafe_f00d));

    assert_eq!(VmcsError::ReadOnlyField(VM_EXIT_REASON).instruction_error(), Some(13));
}

#[test]
fn width_truncation() {
    let mut v = SoftVmcs::new(&VmxCaps::new());
    for (e, want) in [
        (GUEST_ES_SELECTOR, 0xf00d),
        (PIN_BASED_VM_EXEC_CONTROL, 0xcafe_f00d),
        (TSC_OFFSET, PATTERN),
        (GUEST_RIP, PATTERN),
    ] {
        v.write_raw(e, PATTERN).unwrap();
        assert_eq!(v.read_raw(e), Ok(want), "{e:#x}");
    }
    // Typed access agrees.
    assert_eq!(v.read(fields::GUEST_ES_SELECTOR), Ok(0xf00d_u16));
    assert_eq!(v.read(fields::PIN_BASED_VM_EXEC_CONTROL), Ok(0xcafe_f00d_u32));
    assert_eq!(v.read(fields::TSC_OFFSET), Ok(PATTERN));
    assert_eq!(v.read(fields::GUEST_RIP), Ok(PATTERN));
    assert_eq!(v.read(fields::TSC_OFFSET.high()), Ok(0xdead_beef_u32));
}

#[test]
fn high_and_low_access_of_a_64_bit_field() {
    let mut v = SoftVmcs::new(&VmxCaps::new());
    v.write_raw(TSC_OFFSET, 0x1111_2222_3333_4444).unwrap();
    // VMREAD high: bits 63:32, zero-extended.
    assert_eq!(v.read_raw(TSC_OFFSET_HIGH), Ok(0x1111_2222));
    // VMWRITE high: the low 32 bits of the source into bits 63:32, bits 31:0 kept.
    v.write_raw(TSC_OFFSET_HIGH, PATTERN).unwrap();
    assert_eq!(v.read_raw(TSC_OFFSET), Ok(0xcafe_f00d_3333_4444));
    assert_eq!(v.read_raw(TSC_OFFSET_HIGH), Ok(0xcafe_f00d));
    // VMWRITE full: all 64 bits, the high half follows.
    v.write_raw(TSC_OFFSET, 0x5555_6666_7777_8888).unwrap();
    assert_eq!(v.read_raw(TSC_OFFSET_HIGH), Ok(0x5555_6666));
    v.write(fields::TSC_OFFSET.high(), 0).unwrap();
    assert_eq!(v.read_raw(TSC_OFFSET), Ok(0x7777_8888));
    assert_eq!(v.instruction_error(), 0);
}

#[test]
fn counters_count_every_attempt() {
    let mut v = SoftVmcs::new(&VmxCaps::new());
    assert_eq!((v.reads(), v.writes()), (0, 0));
    v.read_raw(TSC_OFFSET).unwrap();
    v.read_raw(0x7ffe).unwrap_err();
    v.read_raw(u64::MAX).unwrap_err();
    v.read(fields::GUEST_RIP).unwrap();
    v.read_raw(VIRTUAL_PROCESSOR_ID).unwrap_err();
    assert_eq!((v.reads(), v.writes()), (5, 0));
    v.write_raw(TSC_OFFSET, 1).unwrap();
    v.write_raw(TSC_OFFSET_HIGH, 1).unwrap();
    v.write_raw(VM_EXIT_REASON, 1).unwrap_err();
    v.write_raw(0x1000, 1).unwrap_err();
    v.write(fields::GUEST_ES_SELECTOR, 1).unwrap();
    assert_eq!((v.reads(), v.writes()), (5, 5));
    // Neither is a VMREAD.
    let _ = v.exists(TSC_OFFSET);
    let _ = v.instruction_error();
    assert_eq!((v.reads(), v.writes()), (5, 5));
    v.reset_counts();
    assert_eq!((v.reads(), v.writes()), (0, 0));
    // Resetting counts touches no field.
    assert_eq!(v.read_raw(TSC_OFFSET), Ok((1 << 32) | 1));
    // The last failure was the write of 0x1000.
    assert_eq!(v.instruction_error(), 12);
    assert_eq!((v.reads(), v.writes()), (1, 0));
}

/// Linux 7.2.8 `enum vmcs_field` (testdata/reference): every encoding it names exists on the
/// maximal CPU and follows KVM's vmcs_field_width() (`*_HIGH` are 32-bit).
#[test]
fn linux_encodings_exist_with_their_widths() {
    let json = common::reference("vmcs-field-encodings.json");
    let encodings = json["encodings"].as_object().unwrap();
    assert!(encodings.len() > 150);
    let mut v = SoftVmcs::new(&AllCaps);
    for (name, e) in encodings {
        let e = e.as_u64().unwrap();
        assert!(v.exists(e), "{name} {e:#x}");
        v.write_raw(e & !1, 0).unwrap();
        v.write_raw(e, u64::MAX).unwrap();
        let want = if name.ends_with("_HIGH") {
            assert_eq!(e & 1, 1, "{name}");
            0xffff_ffff
        } else {
            match (e >> 13) & 3 {
                0 => 0xffff,
                2 => 0xffff_ffff,
                _ => u64::MAX,
            }
        };
        assert_eq!(v.read_raw(e), Ok(want), "{name}");
    }
}

fn random_caps(rng: &mut Rng) -> VmxCaps {
    let mut caps = VmxCaps::new();
    for index in 0x480..=0x493u32 {
        let v = match rng.next() % 4 {
            0 => 0,
            1 => rng.next() & rng.next(),
            2 => rng.next() | rng.next(),
            _ => rng.next(),
        };
        caps.set(index, v);
    }
    // Exercise both IA32_VMX_BASIC[55] settings (TRUE_* control MSRs or not) often.
    let basic = caps.raw(IA32_VMX_BASIC);
    caps.set(IA32_VMX_BASIC, if rng.next() & 3 == 0 { basic & !(1 << 55) } else { basic });
    caps
}

/// The model the property test checks against: values per full encoding, with the width rules of
/// the SDM computed from the encoding bits.
struct Model {
    values: HashMap<u64, u64>,
    misc_vmwrite_any: bool,
}

impl Model {
    fn get(&self, full: u64) -> u64 {
        self.values.get(&full).copied().unwrap_or(0)
    }

    fn read(&mut self, caps: &VmxCaps, e: u64) -> Result<u64, VmcsError> {
        if !fields::exists(e, caps) {
            self.values.insert(VM_INSTRUCTION_ERROR, 12);
            return Err(VmcsError::UnsupportedField(e));
        }
        let value = self.get(e & !1);
        Ok(if e & 1 == 1 { value >> 32 } else { value & width_mask(e) })
    }

    fn write(&mut self, caps: &VmxCaps, e: u64, value: u64) -> Result<(), VmcsError> {
        if !fields::exists(e, caps) {
            self.values.insert(VM_INSTRUCTION_ERROR, 12);
            return Err(VmcsError::UnsupportedField(e));
        }
        if is_read_only(e) && !self.misc_vmwrite_any {
            self.values.insert(VM_INSTRUCTION_ERROR, 13);
            return Err(VmcsError::ReadOnlyField(e));
        }
        let full = e & !1;
        let new = if e & 1 == 1 { (self.get(full) & 0xffff_ffff) | (value << 32) } else { value & width_mask(e) };
        self.values.insert(full, new);
        Ok(())
    }
}

#[test]
fn random_capability_sets_behave_like_hardware() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let encodings = all_encodings();
    let mut ok_reads = 0u64;
    let mut failed_writes = [0u64; 2];
    for round in 0..300 {
        let caps = random_caps(&mut rng);
        let misc_vmwrite_any = caps.raw(IA32_VMX_MISC) >> 29 & 1 == 1;
        let mut v = SoftVmcs::new(&caps);
        let mut model = Model { values: HashMap::new(), misc_vmwrite_any };

        // Existence agrees with fields::exists over the whole 16-bit encoding space and beyond.
        for e in (0..0x1_0000u64).chain([1 << 32, (1 << 32) | TSC_OFFSET, u64::MAX]) {
            assert_eq!(v.exists(e), fields::exists(e, &caps), "{e:#x} round {round}");
        }

        // Every architectural field (and high half): write then read a random value.
        for &e in &encodings {
            let value = rng.next();
            let exists = fields::exists(e, &caps);
            let writable = exists && (!is_read_only(e) || misc_vmwrite_any);
            let w = v.write_raw(e, value);
            assert_eq!(w.is_ok(), writable, "write {e:#x} round {round}");
            assert_eq!(w, model.write(&caps, e, value), "write {e:#x} round {round}");
            if let Err(err) = w {
                failed_writes[(err.instruction_error().unwrap() - 12) as usize] += 1;
            }
            let r = v.read_raw(e);
            assert_eq!(r.is_ok(), exists, "read {e:#x} round {round}");
            if writable {
                let want = if e & 1 == 1 { value & 0xffff_ffff } else { value & width_mask(e) };
                assert_eq!(r, Ok(want), "round trip {e:#x} round {round}");
            }
            assert_eq!(r, model.read(&caps, e), "read {e:#x} round {round}");
            ok_reads += r.is_ok() as u64;
            assert_eq!(v.instruction_error() as u64, model.get(VM_INSTRUCTION_ERROR), "{e:#x} round {round}");
        }

        // Random interleaved accesses, including encodings that name nothing.
        v.reset_counts();
        let (mut reads, mut writes) = (0, 0);
        for _ in 0..500 {
            let e = match rng.next() % 8 {
                0 => rng.next(),
                1 => rng.next() & 0xffff,
                2 => encodings[(rng.next() % encodings.len() as u64) as usize] | (1 << (rng.next() % 64)),
                _ => encodings[(rng.next() % encodings.len() as u64) as usize],
            };
            if rng.next() & 1 == 0 {
                let value = rng.next();
                assert_eq!(v.write_raw(e, value), model.write(&caps, e, value), "write {e:#x} round {round}");
                writes += 1;
            } else {
                assert_eq!(v.read_raw(e), model.read(&caps, e), "read {e:#x} round {round}");
                reads += 1;
            }
            assert_eq!(v.instruction_error() as u64, model.get(VM_INSTRUCTION_ERROR), "{e:#x} round {round}");
        }
        assert_eq!((v.reads(), v.writes()), (reads, writes));

        // Final state: every field holds what the model says.
        for &e in &encodings {
            assert_eq!(v.read_raw(e), model.read(&caps, e), "final {e:#x} round {round}");
        }
    }
    // The random capability sets exercised every outcome.
    assert!(ok_reads > 1000 && failed_writes.iter().all(|&n| n > 100), "{ok_reads} {failed_writes:?}");
}

#[test]
fn field_table_is_in_encoding_order_with_widths_from_the_encoding() {
    // SoftVmcs relies on this order; the widths are what the model above derives from the bits.
    assert!(fields::ALL.windows(2).all(|w| w[0].encoding < w[1].encoding));
    for f in fields::ALL.iter() {
        let e = f.encoding as u64;
        assert_eq!(e & 1, 0, "{}", f.name);
        let want = match (e >> 13) & 3 {
            0 => fields::FieldWidth::W16,
            1 => fields::FieldWidth::W64,
            2 => fields::FieldWidth::W32,
            _ => fields::FieldWidth::Natural,
        };
        assert_eq!(f.width, want, "{}", f.name);
        assert_eq!(f.kind == fields::FieldKind::ReadOnly, is_read_only(e), "{}", f.name);
    }
}

#[test]
fn soft_vmcs_is_cloneable_state() {
    let mut v = SoftVmcs::new(&AllExcept(&[Cap::MiscVmwriteAnyField]));
    v.write_raw(GUEST_RIP, 0xffff_8000_0000_1000).unwrap();
    let snapshot = v.clone();
    v.write_raw(GUEST_RIP, 0).unwrap();
    assert_eq!(snapshot.read_raw(GUEST_RIP), Ok(0xffff_8000_0000_1000));
    assert_eq!(v.write_raw(VM_EXIT_REASON, 0), Err(VmcsError::ReadOnlyField(VM_EXIT_REASON)));
}
