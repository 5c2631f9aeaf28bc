//! The generated VM-entry checker: a valid state passes on every Bochs model; the generated code
//! agrees with vmcs-gen's interpreter of the same schema rules on perturbed states; single faults
//! give the rule, SDM section and outcome the reference names; absent fields are never read.

mod common;

use std::cell::RefCell;

use common::Rng;
use common::entry::{Memory, bochs_models, fact_values, facts, get, interpreter_caps, vmcs};
use vmcs::caps::VmxCaps;
use vmcs::entry::{self, EntryError, Facts, Outcome, Rule, Selection, Tier};
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{VmcsError, VmcsRead, VmcsWrite};

fn first(v: &SoftVmcs, caps: &VmxCaps, facts: &Facts, mem: &Memory) -> Option<Rule> {
    match entry::check(v, caps, facts, mem) {
        Ok(()) => None,
        Err(EntryError::Failed(f)) => Some(f.rule),
        Err(EntryError::Read(e)) => panic!("read error {e:?}"),
    }
}

#[test]
fn baseline_passes_on_every_bochs_model() {
    for (model, caps) in bochs_models() {
        let v = vmcs(&caps);
        let all = entry::failures(&v, &caps, &facts(), &Memory::default(), Selection::ALL).unwrap();
        let names: Vec<_> = all.iter().map(|r| r.name()).collect();
        assert!(all.is_empty(), "{model}: {names:?}");
    }
}

/// Records every encoding read, to prove absent fields are never read.
struct Recording<'a>(&'a SoftVmcs, RefCell<Vec<u64>>);

impl VmcsRead for Recording<'_> {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.1.borrow_mut().push(encoding);
        self.0.read_raw(encoding)
    }
}

#[test]
fn fields_absent_for_the_capabilities_are_never_read() {
    for (model, caps) in bochs_models() {
        // Every control bit the model allows set: every gate that can hold does.
        let mut v = vmcs(&caps);
        for (enc, msr) in [(0x4000u64, 0x48d), (0x4002, 0x48e), (0x400c, 0x48f), (0x4012, 0x490), (0x401e, 0x48b)] {
            if v.exists(enc) {
                v.write_raw(enc, caps.raw(msr) >> 32).unwrap();
            }
        }
        let rec = Recording(&v, RefCell::new(Vec::new()));
        entry::failures(&rec, &caps, &facts(), &Memory::default(), Selection::ALL).unwrap();
        let reads = rec.1.into_inner();
        assert!(reads.len() > 80, "{model}: only {} reads", reads.len());
        for enc in reads {
            assert!(v.exists(enc), "{model}: read absent field {enc:#x}");
        }
    }
}

/// The failures the interpreter finds, by rule name (and MSR-load entry), in check order.
fn interpreted(
    schema: &vmcs_gen::Schema,
    v: &SoftVmcs,
    caps: &VmxCaps,
    f: &Facts,
    mem: &Memory,
) -> Vec<(String, Option<u32>)> {
    use vmcs::entry::GuestMemory;
    let icaps = interpreter_caps(caps);
    let facts = fact_values(schema, f);
    let field = |id: usize| v.read_raw(schema.fields[id].encoding.raw() as u64).ok();
    let memory = |a: u64, bytes: u32| mem.read(a, bytes);
    let wrmsr_faults = |i: u32, value: u64| mem.wrmsr_faults(i, value);
    let inputs = vmcs_gen::checks::eval::Inputs {
        schema,
        caps: &icaps,
        facts: &facts,
        field: &field,
        memory: &memory,
        wrmsr_faults: &wrmsr_faults,
    };
    inputs.failures().unwrap().into_iter().map(|x| (schema.checks.rules[x.rule].name.clone(), x.entry)).collect()
}

/// The failures the generated checker finds, as [`interpreted`] lists them.
fn generated(v: &SoftVmcs, caps: &VmxCaps, f: &Facts, mem: &Memory) -> Vec<(String, Option<u32>)> {
    let mut out = Vec::new();
    entry::for_each_failure(v, caps, f, mem, Selection::ALL, |x| out.push((x.rule.name().to_string(), x.entry)))
        .unwrap();
    out
}

#[test]
fn generated_checker_agrees_with_the_schema_interpreter() {
    let schema = vmcs_gen::Schema::shipped().unwrap();
    assert_eq!(schema.checks.rules.len(), Rule::ALL.len());
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    let mut disagreements = 0;
    let mut failing_seen = std::collections::BTreeSet::new();
    for (model, caps) in bochs_models() {
        let existing: Vec<u64> =
            vmcs::fields::ALL.iter().map(|f| f.encoding as u64).filter(|e| vmcs(&caps).exists(*e)).collect();
        for round in 0..400 {
            let mut v = vmcs(&caps);
            let mut f = facts();
            let mut mem = Memory::default();
            for _ in 0..1 + rng.next() % 4 {
                let enc = existing[(rng.next() % existing.len() as u64) as usize];
                let old = get(&v, enc);
                let new = match rng.next() % 4 {
                    0 => old ^ 1 << (rng.next() % 64),
                    1 => rng.next() % 16,
                    2 => rng.next(),
                    _ => old ^ (1 << (rng.next() % 64)) ^ (1 << (rng.next() % 64)),
                };
                let _ = v.write_raw(enc, new);
            }
            if round % 8 == 0 {
                f.in_smm = rng.next().is_multiple_of(2);
                f.vmlaunch = rng.next().is_multiple_of(2);
                f.maxphyaddr = [36, 40, 46, 52][(rng.next() % 4) as usize];
            }
            // Memory the rules read: VTPR, the linked VMCS's revision, PAE PDPTEs, MSR-load entries.
            mem.write(get(&v, F::VIRTUAL_APIC_PAGE_ADDR.raw()).wrapping_add(0x80), 4, rng.next() & 0xff);
            mem.write(get(&v, F::GUEST_CR3.raw()) & 0xffff_ffe0, 8, rng.next() & 0x1e7);
            if round % 4 == 0 {
                let _ = v.write_raw(F::VM_ENTRY_MSR_LOAD_COUNT.raw(), rng.next() % 5);
                let list = get(&v, F::VM_ENTRY_MSR_LOAD_ADDR.raw());
                for n in 0..4 {
                    let index = [0x174, 0xc000_0100, 0x808, 0x9b, 0x79, 0xc000_0102, 0x4000_0000, 0x8ff]
                        [rng.next() as usize % 8];
                    let reserved = if rng.next().is_multiple_of(8) { 1 << (rng.next() % 32) } else { 0 };
                    mem.write(list.wrapping_add(16 * n), 8, index | reserved << 32);
                    mem.write(list.wrapping_add(16 * n + 8), 8, [0, 1 << 47, u64::MAX][rng.next() as usize % 3]);
                }
            }
            let generated = generated(&v, &caps, &f, &mem);
            let reference = interpreted(&schema, &v, &caps, &f, &mem);
            if generated != reference {
                disagreements += 1;
                eprintln!("{model} round {round}: generated {generated:?}\n  interpreter {reference:?}");
            }
            failing_seen.extend(generated.into_iter().map(|(name, _)| name));
        }
    }
    assert_eq!(disagreements, 0);
    // The perturbations reach a good share of the rules (the Bochs run covers each one).
    assert!(failing_seen.len() > 120, "only {} rules ever failed", failing_seen.len());
}

#[test]
fn single_faults_give_the_rule_section_and_outcome_of_the_reference() {
    let (_, caps) = bochs_models().into_iter().find(|(m, _)| m == "corei7_skylake_x").unwrap();
    let (f, mem) = (facts(), Memory::default());
    let case = |edits: &[(u64, u64)]| {
        let mut v = vmcs(&caps);
        for (enc, val) in edits {
            v.write_raw(*enc, *val).unwrap();
        }
        first(&v, &caps, &f, &mem)
    };
    let proc = get(&vmcs(&caps), F::CPU_BASED_VM_EXEC_CONTROL.raw());
    // E6: "use I/O bitmaps" with a misaligned bitmap A is VMfailValid(7), SDM 26.2.1.1.
    let r = case(&[(F::CPU_BASED_VM_EXEC_CONTROL.raw(), proc | 1 << 25), (F::IO_BITMAP_A.raw(), 0x10_0800)]).unwrap();
    assert_eq!((r.name(), r.section(), r.outcome()), ("io_bitmap_a_aligned", "26.2.1.1", Outcome::VmFailValid(7)));
    // Bochs 2.7: host TR selector 0 gives error 8.
    let r = case(&[(F::HOST_TR_SELECTOR.raw(), 0)]).unwrap();
    assert_eq!((r.name(), r.outcome()), ("host_tr_selector_nonzero", Outcome::VmFailValid(8)));
    // Bochs 2.7: guest RFLAGS 0 gives exit reason 0x80000021 (RFLAGS bit 1 must be 1, R3).
    let r = case(&[(F::GUEST_RFLAGS.raw(), 0)]).unwrap();
    assert_eq!(r.outcome().exit_reason(), Some(0x8000_0021));
    assert_eq!((r.name(), r.reference()), ("rflags_fixed1", "R3"));
    // L1: a misaligned link pointer is exit 33 with qualification 4.
    let r = case(&[(F::VMCS_LINK_POINTER.raw(), 0x1234)]).unwrap();
    assert_eq!(r.outcome(), Outcome::EntryFailure { reason: 33, qualification: 4 });
    // S10: CS type 3 needs "unrestricted guest".
    let r = case(&[(F::GUEST_CS_AR_BYTES.raw(), 0xa093)]).unwrap();
    assert_eq!((r.name(), r.section()), ("cs_type", "26.3.1.2"));
    // Tier order: a control fault beats a host fault beats a guest fault.
    let r = case(&[(F::GUEST_RFLAGS.raw(), 0), (F::HOST_TR_SELECTOR.raw(), 0)]).unwrap();
    assert_eq!(r.tier(), Tier::Host);
    let r =
        case(&[(F::GUEST_RFLAGS.raw(), 0), (F::HOST_TR_SELECTOR.raw(), 0), (F::CR3_TARGET_COUNT.raw(), 5)]).unwrap();
    assert_eq!((r.name(), r.tier()), ("cr3_target_count", Tier::Controls));
    // P7: VMLAUNCH of a launched VMCS is error 4 before anything else.
    let launched = Facts { launched: true, ..f };
    let mut v = vmcs(&caps);
    v.write_raw(F::GUEST_RFLAGS.raw(), 0).unwrap();
    let Err(EntryError::Failed(x)) = entry::check(&v, &caps, &launched, &mem) else { panic!() };
    assert_eq!((x.rule.name(), x.outcome()), ("vmlaunch_needs_clear", Outcome::VmFailValid(4)));
}

#[test]
fn memory_rules_read_what_the_fields_point_at() {
    let (_, caps) = bochs_models().into_iter().find(|(m, _)| m == "corei7_skylake_x").unwrap();
    let f = facts();
    let mut v = vmcs(&caps);
    // L2: a link pointer to a VMCS with another revision identifier: exit 33, qualification 4.
    v.write_raw(F::VMCS_LINK_POINTER.raw(), 0x7000).unwrap();
    let mut mem = Memory::default();
    mem.write(0x7000, 4, caps.raw(0x480) & 0x7fff_ffff);
    assert_eq!(first(&v, &caps, &f, &mem), None);
    mem.write(0x7000, 4, (caps.raw(0x480) & 0x7fff_ffff) + 1);
    assert_eq!(first(&v, &caps, &f, &mem).map(|r| r.name()), Some("link_revision"));
    // Unreadable memory reads as all ones: bit 31 set without "VMCS shadowing" also fails.
    v.write_raw(F::VMCS_LINK_POINTER.raw(), 0xff_0000_0000).unwrap();
    let all = entry::failures(&v, &caps, &f, &mem, Selection::ALL).unwrap();
    let names: Vec<_> = all.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["link_revision", "link_shadow_indicator"]);
    // Q1: a 32-bit PAE guest without EPT; PDPTE 2 present with reserved bit 5: qualification 2.
    let mut v = vmcs(&caps);
    let entry_ctls = get(&v, F::VM_ENTRY_CONTROLS.raw()) & !(1 << 9);
    v.write_raw(F::VM_ENTRY_CONTROLS.raw(), entry_ctls).unwrap();
    v.write_raw(F::GUEST_CS_AR_BYTES.raw(), 0xc09b).unwrap();
    v.write_raw(F::GUEST_CR3.raw(), 0x8000).unwrap();
    let mut mem = Memory::default();
    assert_eq!(first(&v, &caps, &f, &mem), None);
    mem.write(0x8010, 8, 0x1 | 0x20);
    let r = first(&v, &caps, &f, &mem).unwrap();
    assert_eq!((r.name(), r.outcome()), ("pdpte2_in_memory", Outcome::EntryFailure { reason: 33, qualification: 2 }));
}

#[test]
fn selections_limit_the_rules() {
    let (_, caps) = bochs_models().into_iter().find(|(m, _)| m == "corei7_skylake_x").unwrap();
    let (f, mem) = (facts(), Memory::default());
    let mut v = vmcs(&caps);
    v.write_raw(F::HOST_TR_SELECTOR.raw(), 0).unwrap();
    v.write_raw(F::GUEST_TR_AR_BYTES.raw(), 0x89).unwrap(); // an available TSS: S21
    assert_eq!(entry::check_only(&v, &caps, &f, &mem, Selection::CONTROLS), Ok(()));
    let all = entry::failures(&v, &caps, &f, &mem, Selection::ALL).unwrap();
    assert_eq!(all.iter().map(|r| r.name()).collect::<Vec<_>>(), ["host_tr_selector_nonzero", "tr_type_ia32e"]);
    // KVM leaves the guest segment checks to hardware: a restore audit sees only the host fault.
    let kvm = entry::failures(&v, &caps, &f, &mem, Selection::KVM_RESTORE).unwrap();
    assert_eq!(kvm.iter().map(|r| r.name()).collect::<Vec<_>>(), ["host_tr_selector_nonzero"]);
}

/// The boundary mutations of vmcs-gen: on every Bochs model the generated checker agrees with the
/// interpreter, and together they make most rules the first failure somewhere.
#[test]
fn boundary_mutations_agree_and_reach_the_rules() {
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let mutations = vmcs_gen::checks::mutate::all(&schema);
    let fixes: Vec<_> = schema.checks.rules.iter().map(|r| vmcs_gen::checks::mutate::fixes(&schema, r)).collect();
    assert!(mutations.len() > 1000, "{} mutations", mutations.len());
    let mut first_seen = std::collections::BTreeSet::new();
    let mut disagreements = 0;
    for (model, caps) in bochs_models() {
        let f = facts();
        let fv = fact_values(&schema, &f);
        for m in &mutations {
            let (mut v, mut mem) = (vmcs(&caps), Memory::default());
            if !common::entry::apply_repaired(&schema, m, &fixes, &mut v, &mut mem, &caps, &f, &fv, Selection::ALL) {
                continue;
            }
            if generated(&v, &caps, &f, &mem) != interpreted(&schema, &v, &caps, &f, &mem) {
                disagreements += 1;
            }
            if let Err(EntryError::Failed(x)) = entry::check(&v, &caps, &f, &mem) {
                first_seen.insert(x.rule.name());
            }
        }
        let _ = model;
    }
    assert_eq!(disagreements, 0);
    // The rest need what no Bochs model has (posted interrupts, PT, tertiary controls, 5-level
    // paging, ...), a VMM fact this state fixes (SMM, legacy mode, RTM), or a capability a model
    // lacks; the Bochs run reports them per model.
    let never: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).filter(|n| !first_seen.contains(n)).collect();
    assert!(never.len() <= 40, "{} rules never the first failure: {never:?}", never.len());
}

#[test]
fn msr_load_rules_run_on_each_entry_and_name_it() {
    let (_, caps) = bochs_models().into_iter().find(|(m, _)| m == "corei7_skylake_x").unwrap();
    let f = facts();
    let mut v = vmcs(&caps);
    let list = get(&v, F::VM_ENTRY_MSR_LOAD_ADDR.raw());
    let mut mem = Memory::default();
    let mut entry = |n: u64, index: u64, data: u64| {
        mem.write(list + 16 * n, 8, index);
        mem.write(list + 16 * n + 8, 8, data);
    };
    // Three entries loading IA32_SYSENTER_CS, IA32_KERNEL_GS_BASE and IA32_SYSENTER_ESP: valid.
    entry(0, 0x174, 0);
    entry(1, 0xc000_0102, 0xffff_8000_0000_0000);
    entry(2, 0x175, 0x1000);
    v.write_raw(F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 3).unwrap();
    assert_eq!(entry::check(&v, &caps, &f, &mem), Ok(()));
    let fails = |v: &SoftVmcs, mem: &Memory, f: &Facts| match entry::check(v, &caps, f, mem) {
        Err(EntryError::Failed(x)) => Some((x.rule.name(), x.outcome())),
        _ => None,
    };
    let at = |n: u32| Outcome::EntryFailure { reason: 34, qualification: n };
    // M2 on entry 2: exit 34, qualification 2 (entries are numbered from 1).
    let mut m = mem.clone();
    m.write(list + 16, 4, 0xc000_0100);
    assert_eq!(fails(&v, &m, &f), Some(("msr_load_not_fs_gs_base", at(2))));
    // The list's count bounds it: with two entries, a bad third is never read.
    let mut m3 = mem.clone();
    m3.write(list + 32, 4, 0x808);
    assert_eq!(fails(&v, &m3, &f), Some(("msr_load_not_x2apic", at(3))));
    let mut two = v.clone();
    two.write_raw(F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 2).unwrap();
    assert_eq!(fails(&two, &m3, &f), None);
    // M1: reserved bits 63:32 of the first entry.
    let mut m = mem.clone();
    m.write(list + 4, 4, 1 << 7);
    assert_eq!(fails(&v, &m, &f), Some(("msr_load_reserved", at(1))));
    // M4: IA32_SMM_MONITOR_CTL only in SMM.
    let mut m = mem.clone();
    m.write(list, 4, 0x9b);
    assert_eq!(fails(&v, &m, &f), Some(("msr_load_smm_only", at(1))));
    let smm = Facts { in_smm: true, ..f };
    assert_ne!(fails(&v, &m, &smm).map(|x| x.0), Some("msr_load_smm_only"));
    // M5 and M6: the microcode MSRs, and a WRMSR the environment says faults.
    let mut m = mem.clone();
    m.write(list + 32, 4, 0x79);
    assert_eq!(fails(&v, &m, &f), Some(("msr_load_not_microcode", at(3))));
    let mut m = mem.clone();
    m.write(list + 24, 8, 0x8000_0000_0000_0000);
    assert_eq!(fails(&v, &m, &f), Some(("msr_load_wrmsr", at(2))));
    // Unreadable memory reads as all ones: reserved bits set.
    let mut far = v.clone();
    far.write_raw(F::VM_ENTRY_MSR_LOAD_ADDR.raw(), 0x1_0000_0000).unwrap();
    assert_eq!(fails(&far, &mem, &f), Some(("msr_load_reserved", at(1))));
    // An earlier tier wins: a guest-state fault is exit 33, whatever the list holds.
    let mut bad = v.clone();
    bad.write_raw(F::GUEST_RFLAGS.raw(), 0).unwrap();
    let mut m = mem.clone();
    m.write(list, 4, 0xc000_0101);
    assert_eq!(fails(&bad, &m, &f).map(|x| x.0), Some("rflags_fixed1"));
    // The audit lists each failing entry; the restore selection skips MSR loading (KVM does not
    // load the list on KVM_SET_NESTED_STATE).
    m.write(list + 32, 4, 0xc000_0100);
    let mut all = Vec::new();
    entry::for_each_failure(&v, &caps, &f, &m, Selection::ALL, |x| all.push((x.rule.name(), x.entry))).unwrap();
    assert_eq!(all, [("msr_load_not_fs_gs_base", Some(1)), ("msr_load_not_fs_gs_base", Some(3))]);
    assert_eq!(entry::check_only(&v, &caps, &f, &m, Selection::KVM_RESTORE), Ok(()));
    // A VMM that loads the list itself (a nested L0) checks everything before it.
    assert_eq!(entry::check_only(&v, &caps, &f, &m, Selection::BEFORE_MSR_LOADING), Ok(()));
    let before = entry::check_only(&bad, &caps, &f, &m, Selection::BEFORE_MSR_LOADING);
    assert!(matches!(before, Err(EntryError::Failed(x)) if x.rule.name() == "rflags_fixed1"), "{before:?}");
    // A count beyond the recommended maximum (512 × (IA32_VMX_MISC[27:25] + 1)) is walked only
    // that far.
    let mut huge = v.clone();
    huge.write_raw(F::VM_ENTRY_MSR_LOAD_COUNT.raw(), 0xffff_ffff).unwrap();
    let limit = 512 * ((caps.raw(0x485) >> 25 & 7) + 1);
    let mut m = Memory::default();
    m.write(list + 16 * limit, 4, 0xc000_0100);
    assert_eq!(fails(&huge, &m, &f), None);
    m.write(list + 16 * (limit - 1), 4, 0xc000_0100);
    assert_eq!(fails(&huge, &m, &f), Some(("msr_load_not_fs_gs_base", at(limit as u32))));
}
