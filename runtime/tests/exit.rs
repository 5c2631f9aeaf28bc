//! The generated exit types: decoding values from the references (KVM 7.2.8, the VM-entry check
//! catalogue), building qualifications as an L0 reflecting an exit would, and every bitfield
//! against the simplest model of a bit range (shift and mask), for random values.

mod common;

use common::{Rng, hex, reference};
use vmcs::VmInstructionError;
use vmcs::exit::*;
use vmcs_gen::Schema;
use vmcs_gen::model::{Bitfield, Decode};

#[test]
fn exit_reason_values_of_the_references() {
    let r = reference("vmx-exits.json");
    for v in r["exit_reason_values"].as_array().unwrap() {
        let e = VmExitReason::from_bits(hex(&v["value"]) as u32);
        let basic = v["basic"].as_u64().unwrap() as u16;
        assert_eq!(e.basic_raw(), basic, "{v}");
        assert_eq!(e.basic(), ExitReason::from_number(basic), "{v}");
        assert!(e.basic().is_some(), "{v}");
        assert_eq!(e.entry_failure(), v["entry_failure"].as_bool().unwrap(), "{v}");
        assert_eq!(e.enclave_mode(), v["enclave_mode"].as_bool().unwrap_or(false), "{v}");
        // Built back from its parts, as L0 writes it into vmcs12.
        let built = VmExitReason::default()
            .with_basic(e.basic().unwrap())
            .with_entry_failure(e.entry_failure())
            .with_enclave_mode(e.enclave_mode());
        assert_eq!(built, e, "{v}");
    }
}

#[test]
fn interruption_info_of_the_references() {
    let r = reference("vmx-exits.json");
    for v in r["interruption_info_values"].as_array().unwrap() {
        let i = InterruptionInfo::from_bits(hex(&v["value"]) as u32);
        assert_eq!(i.valid(), v["valid"].as_bool().unwrap(), "{v}");
        assert_eq!(i.kind_raw() as u64, v["type"].as_u64().unwrap(), "{v}");
        assert_eq!(i.vector() as u64, v["vector"].as_u64().unwrap(), "{v}");
    }
    // KVM's NMI exit, built: valid | NMI | vector 2.
    let nmi = InterruptionInfo::default().with_valid(true).with_kind(InterruptionType::Nmi).with_vector(2);
    assert_eq!(nmi.bits(), 0x8000_0202);
    assert_eq!(nmi.kind(), Some(InterruptionType::Nmi));
    // Type 1 is reserved: no value.
    assert_eq!(InterruptionInfo::from_bits(0x8000_0100).kind(), None);
}

#[test]
fn ept_violation_bits_of_the_reference() {
    let r = reference("vmx-exits.json");
    for (bit, name) in r["ept_violation_bits"].as_object().unwrap() {
        let bit: u32 = bit.parse().unwrap();
        let shown = format!("{:?}", EptViolationQualification::from_bits(1 << bit));
        assert!(shown.contains(&format!("{}: true", name.as_str().unwrap())), "bit {bit}: {shown}");
        assert_eq!(shown.matches(": true").count(), 1, "bit {bit}: {shown}");
    }
}

/// Qualifications worked out by hand from the SDM's tables for instructions a guest runs.
#[test]
fn qualifications_of_known_instructions() {
    // MOV RBX, CR8: CR 8, MOV from CR, register 3.
    let q = CrAccessQualification::from_bits(0x318);
    assert_eq!((q.cr(), q.access_type(), q.gpr()), (8, CrAccessType::MovFromCr, 3));
    let built = CrAccessQualification::default().with_cr(8).with_access_type(CrAccessType::MovFromCr).with_gpr(3);
    assert_eq!(built.bits(), 0x318);
    // LMSW from memory with source 0x0001: type 3, memory operand, data in 31:16.
    let q = CrAccessQualification::from_bits(0x0001_0070);
    assert_eq!((q.access_type(), q.lmsw_memory_operand(), q.lmsw_source()), (CrAccessType::Lmsw, true, 1));
    // OUT 0x80, AL: byte, OUT, immediate, port 0x80.
    let q = IoQualification::from_bits(0x0080_0040);
    assert_eq!((q.size(), q.input(), q.immediate_operand(), q.port()), (Some(IoSize::Byte), false, true, 0x80));
    // REP INSW with DX = 0x3f8: word, IN, string, REP.
    let q = IoQualification::from_bits(0x03f8_0039);
    assert_eq!((q.size(), q.input(), q.string(), q.rep(), q.port()), (Some(IoSize::Word), true, true, true, 0x3f8));
    assert_eq!(IoQualification::from_bits(2).size(), None, "size 2 is not used");
    // A task switch through an IDT task gate to selector 0x28.
    let q = TaskSwitchQualification::from_bits(0xc000_0028);
    assert_eq!((q.selector(), q.source()), (0x28, TaskSwitchSource::TaskGate));
    // MOV DR7, RCX: DR 7, MOV to DR, register 1.
    let q = DrAccessQualification::from_bits(0x107);
    assert_eq!((q.dr(), q.direction(), q.gpr()), (7, DrAccessDirection::MovToDr, 1));
    // #DB from single-step with B0 set.
    let q = DebugQualification::from_bits(0x4001);
    assert_eq!((q.breakpoints(), q.single_step(), q.debug_register_access()), (1, true, false));
    // A setter keeps the other ranges and drops what does not fit.
    assert_eq!(IoQualification::from_bits(0x0080_0040).with_port(0x3f8).bits(), 0x03f8_0040);
    assert_eq!(CrAccessQualification::default().with_cr(0x13).cr(), 3);
}

#[test]
fn qualification_decoded_by_reason() {
    match Qualification::decode(ExitReason::IoInstruction, 0x0080_0040) {
        Qualification::IoInstruction(q) => assert_eq!(q.port(), 0x80),
        other => panic!("{other:?}"),
    }
    assert_eq!(Qualification::decode(ExitReason::Cpuid, 7), Qualification::Other(7));
    let schema = Schema::shipped().unwrap();
    for r in &schema.reasons {
        let reason = ExitReason::from_number(r.number).unwrap();
        let decoded = Qualification::decode(reason, 0);
        assert_eq!(r.qualification.is_none(), decoded == Qualification::Other(0), "{}", r.name);
    }
}

#[test]
fn exit_reasons_name_and_number() {
    let schema = Schema::shipped().unwrap();
    assert_eq!(ExitReason::ALL.len(), schema.reasons.len());
    for n in 0..=u16::MAX {
        let ours = ExitReason::from_number(n);
        let model = schema.reasons.iter().find(|r| r.number == n);
        assert_eq!(ours.map(|r| (r.number(), r.name())), model.map(|r| (r.number, r.name.as_str())), "{n}");
    }
    assert_eq!(ExitReason::CrAccess.to_string(), "CR_ACCESS (28)");
    assert_eq!(u16::from(ExitReason::Vmcall), 18);
}

#[test]
fn instruction_errors_name_number_and_text() {
    let schema = Schema::shipped().unwrap();
    for n in 0..64 {
        let e = VmInstructionError::from_number(n);
        assert_eq!(e.number(), n);
        let model = schema.instruction_errors.iter().find(|x| x.number == n);
        assert_eq!(e.name(), model.map(|m| m.name.as_str()), "{n}");
        assert_eq!(e == VmInstructionError::Unknown(n), model.is_none(), "{n}");
    }
    let e = VmInstructionError::UnsupportedComponent;
    assert_eq!(e.to_string(), "VM-instruction error 12: VMREAD/VMWRITE from/to unsupported VMCS component");
    assert_eq!(
        VmInstructionError::from_number(14).to_string(),
        "VM-instruction error 14 (not a number the schema names)"
    );
    let err: &dyn core::error::Error = &e;
    assert!(err.source().is_none());
}

/// What `{:?}` of a bitfield type must print for `value`, from the model alone: each range is
/// `(value >> lo) & mask`, shown as a flag, a number, or the named value.
fn model_debug(b: &Bitfield, value: u64) -> String {
    let mut parts = Vec::new();
    for bits in &b.bits {
        let v = (value >> bits.lo) & (u64::MAX >> (64 - bits.width()));
        let shown = match &bits.decode {
            Decode::Plain if bits.width() == 1 => (v == 1).to_string(),
            Decode::Plain => v.to_string(),
            Decode::ExitReason => match ExitReason::from_number(v as u16) {
                Some(r) => format!("Some({r:?})"),
                None => "None".into(),
            },
            Decode::Values { values, .. } => {
                let total = values.len() as u64 == 1 << bits.width();
                match (values.iter().find(|x| x.value == v), total) {
                    (Some(x), true) => camel(&x.name),
                    (Some(x), false) => format!("Some({})", camel(&x.name)),
                    (None, _) => "None".into(),
                }
            }
        };
        parts.push(format!("{}: {shown}", bits.name));
    }
    let reserved = value & b.reserved_mask();
    if reserved != 0 {
        parts.push(format!("reserved: {reserved:#x}"));
    }
    format!("{} {{ {} }}", camel(&b.name), parts.join(", "))
}

fn camel(s: &str) -> String {
    s.split('_').map(|p| p[..1].to_ascii_uppercase() + &p[1..]).collect()
}

macro_rules! views {
    ($($ty:ident: $repr:ty),* $(,)?) => {
        /// (type name, Debug of the view of a value truncated to the field's width).
        fn views() -> Vec<(&'static str, fn(u64) -> String)> {
            vec![$((stringify!($ty), |v| format!("{:?}", $ty::from_bits(v as $repr)))),*]
        }
    };
}

views!(
    VmExitReason: u32,
    InterruptionInfo: u32,
    DebugQualification: u64,
    TaskSwitchQualification: u64,
    CrAccessQualification: u64,
    DrAccessQualification: u64,
    IoQualification: u64,
    EptViolationQualification: u64,
);

#[test]
fn every_bitfield_against_the_model() {
    let schema = Schema::shipped().unwrap();
    let views = views();
    let names: Vec<String> = schema.bitfields.iter().map(|b| camel(&b.name)).collect();
    assert_eq!(views.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), names, "a view per bitfield");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (b, (_, show)) in schema.bitfields.iter().zip(&views) {
        let width_mask = if b.width == 64 { u64::MAX } else { (1 << b.width) - 1 };
        for i in 0..4000 {
            // Sparse and dense values, and each single bit.
            let r = rng.next();
            let v = match i % 3 {
                0 => r,
                1 => r & rng.next() & rng.next(),
                _ => 1u64.rotate_left(i as u32 / 3),
            } & width_mask;
            assert_eq!(show(v), model_debug(b, v), "{} {v:#x}", b.name);
        }
    }
}

#[test]
fn errors_print_encodings_in_hex() {
    use vmcs::VmcsError;
    assert_eq!(
        VmcsError::UnsupportedField(0x2032).to_string(),
        "VM-instruction error 12: VMREAD/VMWRITE from/to unsupported VMCS component (encoding 0x2032)"
    );
    assert_eq!(
        VmcsError::ReadOnlyField(0x4402).to_string(),
        "VM-instruction error 13: VMWRITE to read-only VMCS component (encoding 0x4402)"
    );
    assert_eq!(
        VmcsError::InstructionError(7).to_string(),
        "VM-instruction error 7: VM entry with invalid control field(s)"
    );
    #[cfg(target_arch = "x86_64")]
    {
        use vmcs::hw::{EnterError, VmxError};
        let e = EnterError::Vmxon(VmxError::FailValid(VmInstructionError::VmxonInVmxRoot));
        assert_eq!(
            e.to_string(),
            "VMXON failed: VMfailValid: VM-instruction error 15: VMXON executed in VMX root operation"
        );
        let source = core::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(
            source.as_deref(),
            Some("VMfailValid: VM-instruction error 15: VMXON executed in VMX root operation")
        );
    }
}
