//! Generated copy routines: membership against KVM 7.2.8's routines, both branches of every
//! condition, fields absent for the capabilities never touched, dirty tracking and the lazy sync,
//! and the shadow bitmaps against KVM's lists (the seed-004 PDPTRs: copy_defects.rs).

use std::collections::BTreeSet;

mod common;
mod copy_support;

use common::{Rng, reference};
use copy_support::{TestHooks, VPID01, VPID02};
use vmcs::caps::{AllCaps, VmxCaps};
use vmcs::copy::{self, ShadowBitmaps, Tracked};
use vmcs::soft::SoftVmcs;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite, fields};
use vmcs_gen::Schema;
use vmcs_gen::model::{CopySet, Role, Runs, Term};

const SENTINEL: u64 = 0xdede_dede_dede_dede;

/// A vmcs12 with a distinct value in every mapped field; `controls` in every control field.
fn filled_vmcs12(rng: &mut Rng, controls: u64) -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    for &e in <Vmcs12 as Layout>::MAPPED {
        v.write_raw(e as u64, rng.next() | 1).unwrap();
    }
    for f in [
        fields::PIN_BASED_VM_EXEC_CONTROL,
        fields::CPU_BASED_VM_EXEC_CONTROL,
        fields::SECONDARY_VM_EXEC_CONTROL,
        fields::VM_EXIT_CONTROLS,
        fields::VM_ENTRY_CONTROLS,
    ] {
        v.write(f, controls as u32).unwrap();
    }
    v
}

/// A processor VMCS holding every field (read-only ones writable: IA32_VMX_MISC bit 29), each
/// set to the sentinel.
fn soft_filled() -> SoftVmcs {
    let mut s = SoftVmcs::new(&AllCaps);
    for f in fields::ALL {
        s.write_raw(f.encoding as u64, SENTINEL).unwrap();
    }
    s.reset_counts();
    s
}

fn hooks_all(on: bool) -> TestHooks {
    let mut h = TestHooks::new();
    h.run_pending = on;
    h.l0_ept = on;
    h.l0_vpid = on;
    h.pae_paging = on;
    h.l1_pae_paging = on;
    h.guest_ibt_or_shstk = on;
    h.guest_shstk = on;
    h.pfec_from_vmcs12 = on;
    h.host_apicv = on;
    h.vpmu_perf_global_ctrl = on;
    h.encls_exiting = on;
    h
}

/// Run a set by name; returns the destination (a processor VMCS, or vmcs12 as raw reads).
fn run(name: &str, v12: &mut Tracked<Vmcs12>, soft: &mut SoftVmcs, hooks: &mut TestHooks) {
    let c = &AllCaps;
    match name {
        "prepare_early" => copy::prepare_early(v12.inner(), soft, c, hooks),
        "prepare_rare" => copy::prepare_rare(v12, soft, c, hooks),
        "prepare" => copy::prepare(v12.inner(), soft, c, hooks),
        "prepare_pages" => copy::prepare_pages(v12.inner(), soft, c, hooks),
        "prepare_late" => copy::prepare_late(v12, soft, c, hooks),
        "load_host_state" => copy::load_host_state(v12.inner(), soft, c, hooks),
        "sync" => copy::sync(soft, v12, c, hooks),
        "sync_rare" => {
            v12.defer_lazy();
            copy::sync_rare(soft, v12, c)
        }
        "exit_info" => copy::exit_info(soft, v12, c, hooks),
        "entry_failure_info" => copy::entry_failure_info(soft, v12, c, hooks),
        "shadow_read_write" => copy::shadow_read_write(v12.inner(), soft, c),
        "shadow_read_only" => copy::shadow_read_only(v12.inner(), soft, c),
        other => panic!("set {other} is not dispatched by this test"),
    }
    .unwrap()
}

/// The fields a set wrote: from a filled vmcs12 into a sentinel-filled VMCS, or from a filled VMCS
/// into a sentinel-filled vmcs12.
fn written(schema: &Schema, set: &CopySet, on: bool) -> BTreeSet<String> {
    let controls = if on { u64::MAX } else { 0 };
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut hooks = hooks_all(on);
    let mut soft = soft_filled();
    let mut v12 = Tracked::new(filled_vmcs12(&mut rng, controls));
    if set.from != Role::Vmcs12 {
        for f in fields::ALL {
            soft.write_raw(f.encoding as u64, rng.next() | 1).unwrap();
        }
        let mut sentinel = Vmcs12::zeroed();
        for &e in <Vmcs12 as Layout>::MAPPED {
            sentinel.write_raw(e as u64, SENTINEL).unwrap();
        }
        for f in [fields::PIN_BASED_VM_EXEC_CONTROL, fields::CPU_BASED_VM_EXEC_CONTROL] {
            sentinel.write(f, controls as u32).unwrap();
        }
        for f in [fields::SECONDARY_VM_EXEC_CONTROL, fields::VM_EXIT_CONTROLS, fields::VM_ENTRY_CONTROLS] {
            sentinel.write(f, controls as u32).unwrap();
        }
        v12 = Tracked::new(sentinel);
        // What L1 wrote since the exit is kept by the lazy sync: here, nothing.
        for b in 0..copy::DIRTY_BITS {
            v12.clean(b);
        }
    }
    let before: Vec<(String, u64)> = schema
        .fields
        .iter()
        .map(|f| {
            let e = f.encoding.raw() as u64;
            let v =
                if set.to == Role::Vmcs12 { v12.inner().read_raw(e).unwrap_or(0) } else { soft.read_raw(e).unwrap() };
            (f.name.clone(), v)
        })
        .collect();
    run(&set.name, &mut v12, &mut soft, &mut hooks);
    schema
        .fields
        .iter()
        .zip(before)
        .filter(|(f, (_, old))| {
            let e = f.encoding.raw() as u64;
            let now =
                if set.to == Role::Vmcs12 { v12.inner().read_raw(e).unwrap_or(0) } else { soft.read_raw(e).unwrap() };
            now != *old
        })
        .map(|(f, _)| f.name.clone())
        .collect()
}

#[test]
fn every_condition_is_tested_on_both_branches() {
    let schema = Schema::shipped().unwrap();
    let mut conditional = 0;
    for set in schema.sets.iter().filter(|s| !matches!(s.from, Role::Evmcs) && !matches!(s.to, Role::Evmcs)) {
        let names = |pick: &dyn Fn(&vmcs_gen::model::CopyItem) -> bool| -> BTreeSet<String> {
            set.items.iter().filter(|i| pick(i)).map(|i| schema.fields[i.field].name.clone()).collect()
        };
        // Everything on (predicates true, every control bit of vmcs12 set): all entries but those
        // whose `unless` then holds; their `else`, if any, writes instead.
        let on = names(&|i| i.unless.is_none() || i.otherwise.is_some());
        // Everything off: unconditional entries, `unless` ones, and every `else`.
        let off = names(&|i| (i.when.is_none() && i.unless.is_none()) || i.when.is_none() || i.otherwise.is_some());
        // A value equal to what the destination held already cannot be seen: the merges into
        // vmcs12's entry controls (every bit set) and constants that happen to match.
        let invisible = |s: &BTreeSet<String>, got: &BTreeSet<String>| -> BTreeSet<String> { s - got };
        let got_on = written(&schema, set, true);
        let got_off = written(&schema, set, false);
        let unseen_on = invisible(&on, &got_on);
        assert!(got_on.is_subset(&on), "set {} (all on) wrote {:?} beyond its entries", set.name, &got_on - &on);
        assert!(got_off.is_subset(&off), "set {} (all off) wrote {:?}", set.name, &got_off - &off);
        assert!(unseen_on.iter().all(|n| n == "VM_ENTRY_CONTROLS"), "set {}: {unseen_on:?} not written", set.name);
        let unseen_off = invisible(&off, &got_off);
        assert!(
            unseen_off.iter().all(|n| n == "VM_ENTRY_CONTROLS"),
            "set {} (off): {unseen_off:?} not written",
            set.name
        );
        conditional += set.items.iter().filter(|i| i.when.is_some() || i.unless.is_some()).count();
    }
    assert!(conditional > 50, "{conditional}");
}

/// The schema's value of a condition for these predicates and vmcs12 control words.
fn eval(schema: &Schema, g: &vmcs_gen::gate::Gate<Term>, preds: &TestHooks, v12: &Vmcs12) -> bool {
    use vmcs_gen::gate::Gate;
    fn control(schema: &Schema, c: usize, v12: &Vmcs12) -> bool {
        let (f, bit) = schema.control_bit(c).unwrap();
        let own = v12.read_raw(schema.fields[f].encoding.raw() as u64).unwrap() >> bit & 1 == 1;
        let req = schema.msr_of(c).requires.as_ref().is_none_or(|r| r.eval(&mut |c: &usize| control(schema, *c, v12)));
        own && req
    }
    let pred = |p: usize| match schema.predicates[p].name.as_str() {
        "run_pending" => preds.run_pending,
        "l0_ept" => preds.l0_ept,
        "l0_vpid" => preds.l0_vpid,
        "pae_paging" => preds.pae_paging,
        "l1_pae_paging" => preds.l1_pae_paging,
        "guest_ibt_or_shstk" => preds.guest_ibt_or_shstk,
        "guest_shstk" => preds.guest_shstk,
        "pfec_from_vmcs12" => preds.pfec_from_vmcs12,
        "host_apicv" => preds.host_apicv,
        "vpmu_perf_global_ctrl" => preds.vpmu_perf_global_ctrl,
        "encls_exiting" => preds.encls_exiting,
        other => panic!("predicate {other} unknown to this test"),
    };
    match g {
        Gate::Cap(Term::Pred(p)) => pred(*p),
        Gate::Cap(Term::Control(c)) => control(schema, *c, v12),
        _ => g.eval(&mut |t: &Term| eval(schema, &Gate::Cap(*t), preds, v12)),
    }
}

#[test]
fn conditions_evaluate_as_the_schema_says() {
    // Differential: for random predicates and control words, each entry writes exactly when the
    // schema's condition holds (or has an `else`).
    let schema = Schema::shipped().unwrap();
    let mut rng = Rng(0x5eed_0000_c0de_0001);
    let mut decided = 0;
    for trial in 0..300 {
        let mut hooks = TestHooks::new();
        for b in [
            &mut hooks.run_pending,
            &mut hooks.l0_ept,
            &mut hooks.l0_vpid,
            &mut hooks.pae_paging,
            &mut hooks.l1_pae_paging,
            &mut hooks.guest_ibt_or_shstk,
            &mut hooks.guest_shstk,
            &mut hooks.pfec_from_vmcs12,
            &mut hooks.host_apicv,
            &mut hooks.vpmu_perf_global_ctrl,
            &mut hooks.encls_exiting,
        ] {
            *b = rng.next() & 1 == 1;
        }
        let controls = [rng.next(), rng.next() | (trial & 1) << 31, rng.next(), rng.next(), rng.next()];
        let ctl = [
            fields::PIN_BASED_VM_EXEC_CONTROL,
            fields::CPU_BASED_VM_EXEC_CONTROL,
            fields::SECONDARY_VM_EXEC_CONTROL,
            fields::VM_EXIT_CONTROLS,
            fields::VM_ENTRY_CONTROLS,
        ];
        for set in schema.sets.iter().filter(|s| matches!(s.runs, Runs::Entry | Runs::Exit)) {
            let mut v = filled_vmcs12(&mut rng, 0);
            let mut soft = soft_filled();
            if set.to == Role::Vmcs12 {
                for f in fields::ALL {
                    soft.write_raw(f.encoding as u64, rng.next() | 1).unwrap();
                }
                for &e in <Vmcs12 as Layout>::MAPPED {
                    v.write_raw(e as u64, SENTINEL).unwrap();
                }
            }
            for (f, c) in ctl.iter().zip(controls) {
                v.write(*f, c as u32).unwrap();
            }
            let snapshot = v;
            let soft_before = soft.clone();
            let mut v12 = Tracked::new(v);
            let mut h = hooks.clone();
            run(&set.name, &mut v12, &mut soft, &mut h);
            for item in set.items.iter().filter(|i| {
                i.treat.merge.is_none() && !ctl.iter().any(|c| c.raw() == schema.fields[i.field].encoding.raw() as u64)
            }) {
                let e = schema.fields[item.field].encoding.raw() as u64;
                let now =
                    if set.to == Role::Vmcs12 { v12.inner().read_raw(e).unwrap() } else { soft.read_raw(e).unwrap() };
                let before = if set.to == Role::Vmcs12 {
                    snapshot.read_raw(e).unwrap()
                } else {
                    soft_before.read_raw(e).unwrap()
                };
                let written = now != before;
                let cond = item.when.as_ref().is_none_or(|g| eval(&schema, g, &hooks, &snapshot))
                    && !item.unless.as_ref().is_some_and(|g| eval(&schema, g, &hooks, &snapshot));
                let want = cond || item.otherwise.is_some();
                assert_eq!(written, want, "set {} {} (trial {trial})", set.name, schema.fields[item.field].name);
                decided += 1;
            }
        }
    }
    assert!(decided > 50_000, "{decided}");
}

/// Names of vmcs12 fields `prepare_vmcs02_rare` copies (Linux 7.2.8 `nested.c`), as the schema spells them.
const KVM_PREPARE_VMCS02_RARE: &[&str] = &[
    "GUEST_ES_SELECTOR",
    "GUEST_CS_SELECTOR",
    "GUEST_SS_SELECTOR",
    "GUEST_DS_SELECTOR",
    "GUEST_FS_SELECTOR",
    "GUEST_GS_SELECTOR",
    "GUEST_LDTR_SELECTOR",
    "GUEST_TR_SELECTOR",
    "GUEST_ES_LIMIT",
    "GUEST_CS_LIMIT",
    "GUEST_SS_LIMIT",
    "GUEST_DS_LIMIT",
    "GUEST_FS_LIMIT",
    "GUEST_GS_LIMIT",
    "GUEST_LDTR_LIMIT",
    "GUEST_TR_LIMIT",
    "GUEST_GDTR_LIMIT",
    "GUEST_IDTR_LIMIT",
    "GUEST_CS_AR_BYTES",
    "GUEST_SS_AR_BYTES",
    "GUEST_ES_AR_BYTES",
    "GUEST_DS_AR_BYTES",
    "GUEST_FS_AR_BYTES",
    "GUEST_GS_AR_BYTES",
    "GUEST_LDTR_AR_BYTES",
    "GUEST_TR_AR_BYTES",
    "GUEST_ES_BASE",
    "GUEST_CS_BASE",
    "GUEST_SS_BASE",
    "GUEST_DS_BASE",
    "GUEST_FS_BASE",
    "GUEST_GS_BASE",
    "GUEST_LDTR_BASE",
    "GUEST_TR_BASE",
    "GUEST_GDTR_BASE",
    "GUEST_IDTR_BASE",
    "GUEST_SYSENTER_CS",
    "GUEST_PENDING_DBG_EXCEPTIONS",
    "GUEST_SYSENTER_ESP",
    "GUEST_SYSENTER_EIP",
    "GUEST_BNDCFGS",
    "XSS_EXIT_BITMAP",
    "PAGE_FAULT_ERROR_CODE_MASK",
    "PAGE_FAULT_ERROR_CODE_MATCH",
    "EOI_EXIT_BITMAP0",
    "EOI_EXIT_BITMAP1",
    "EOI_EXIT_BITMAP2",
    "EOI_EXIT_BITMAP3",
    "GUEST_S_CET",
    "GUEST_SSP",
    "GUEST_INTR_SSP_TABLE",
];
const KVM_PREPARE_VMCS02: &[&str] = &[
    "GUEST_DR7",
    "GUEST_IA32_DEBUGCTL",
    "GUEST_RFLAGS",
    "CR0_GUEST_HOST_MASK",
    "GUEST_IA32_PAT",
    "GUEST_CR0",
    "GUEST_CR4",
    "GUEST_CR3",
    "GUEST_PDPTR0",
    "GUEST_PDPTR1",
    "GUEST_PDPTR2",
    "GUEST_PDPTR3",
    "GUEST_RSP",
    "GUEST_RIP",
    "EXCEPTION_BITMAP",
    "TSC_OFFSET",
    "TSC_MULTIPLIER",
    "VIRTUAL_PROCESSOR_ID",
    "EPT_POINTER",
    "CR0_READ_SHADOW",
    "CR4_READ_SHADOW",
    "CR4_GUEST_HOST_MASK",
    "GUEST_IA32_EFER",
    "GUEST_IA32_PERF_GLOBAL_CTRL",
];
const KVM_PREPARE_VMCS02_EARLY: &[&str] = &[
    "PIN_BASED_VM_EXEC_CONTROL",
    "CPU_BASED_VM_EXEC_CONTROL",
    "SECONDARY_VM_EXEC_CONTROL",
    "POSTED_INTR_NV",
    "TPR_THRESHOLD",
    "GUEST_INTR_STATUS",
    "VM_ENTRY_CONTROLS",
    "VM_ENTRY_INTR_INFO_FIELD",
    "VM_ENTRY_EXCEPTION_ERROR_CODE",
    "VM_ENTRY_INSTRUCTION_LEN",
    "GUEST_INTERRUPTIBILITY_INFO",
];
const KVM_SYNC_VMCS02_TO_VMCS12: &[&str] = &[
    "GUEST_CR0",
    "GUEST_CR4",
    "GUEST_RSP",
    "GUEST_RIP",
    "GUEST_RFLAGS",
    "GUEST_CS_AR_BYTES",
    "GUEST_SS_AR_BYTES",
    "GUEST_INTERRUPTIBILITY_INFO",
    "GUEST_ACTIVITY_STATE",
    "VMX_PREEMPTION_TIMER_VALUE",
    "GUEST_CR3",
    "GUEST_PDPTR0",
    "GUEST_PDPTR1",
    "GUEST_PDPTR2",
    "GUEST_PDPTR3",
    "GUEST_LINEAR_ADDRESS",
    "GUEST_INTR_STATUS",
    "VM_ENTRY_CONTROLS",
    "GUEST_DR7",
    "GUEST_IA32_EFER",
    "GUEST_S_CET",
    "GUEST_SSP",
    "GUEST_INTR_SSP_TABLE",
];

fn members(schema: &Schema, sets: &[&str]) -> BTreeSet<String> {
    sets.iter().flat_map(|s| schema.set(s).unwrap().items.iter().map(|i| schema.fields[i.field].name.clone())).collect()
}

fn kvm(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn membership_equals_kvm_routines() {
    let schema = Schema::shipped().unwrap();
    assert_eq!(KVM_PREPARE_VMCS02_RARE.len(), 51);
    assert_eq!(KVM_PREPARE_VMCS02.len(), 24);
    assert_eq!(KVM_SYNC_VMCS02_TO_VMCS12.len(), 23);
    // The entry path reads exactly what KVM's early, rare and main preparation read (the early
    // rare part, constant state and vmcs12 pages add the link pointer, MSR bitmap and pages; the
    // preemption timer and ENCLS bitmap are read in prepare_vmcs02_early).
    let entry = members(&schema, &["prepare_early", "prepare_rare", "prepare", "prepare_pages", "prepare_late"]);
    let mut want = kvm(KVM_PREPARE_VMCS02_RARE);
    want.extend(kvm(KVM_PREPARE_VMCS02));
    want.extend(kvm(KVM_PREPARE_VMCS02_EARLY));
    want.extend(kvm(&[
        "VMCS_LINK_POINTER",
        "MSR_BITMAP",
        "APIC_ACCESS_ADDR",
        "VIRTUAL_APIC_PAGE_ADDR",
        "POSTED_INTR_DESC_ADDR",
        "VMX_PREEMPTION_TIMER_VALUE",
        "ENCLS_EXITING_BITMAP",
    ]));
    assert_eq!(entry, want);
    let rare: BTreeSet<String> = members(&schema, &["prepare_rare"]);
    assert!(kvm(KVM_PREPARE_VMCS02_RARE).is_subset(&rare));
    assert_eq!(members(&schema, &["sync"]), kvm(KVM_SYNC_VMCS02_TO_VMCS12));
    let sync_rare = members(&schema, &["sync_rare"]);
    assert_eq!(sync_rare.len(), 35);
    assert!(!sync_rare.contains("GUEST_CS_AR_BYTES") && !sync_rare.contains("GUEST_SS_AR_BYTES"));
    for s in &schema.sets {
        assert!(s.runs != Runs::Lazy || s.name == "sync_rare");
    }
}

#[test]
fn absent_fields_are_skipped_not_read() {
    // A processor without TSC scaling: prepare must not touch TSC_MULTIPLIER at all.
    let mut caps = VmxCaps::new();
    caps.set(0x480, 1 << 55);
    caps.set(0x48e, u64::MAX);
    caps.set(0x48b, !(1u64 << (32 + 25)));
    let mut soft = SoftVmcs::new(&caps);
    let v = filled_vmcs12(&mut Rng(7), u64::MAX);
    let mut hooks = TestHooks::new();
    copy::prepare(&v, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.instruction_error(), 0, "no VMREAD or VMWRITE failed");
    assert!(!soft.exists(fields::TSC_MULTIPLIER.raw()));
    assert!(soft.read(fields::TSC_OFFSET).is_ok_and(|o| o != 0));
}

#[test]
fn dirty_tracking_copies_what_changed() {
    let caps = AllCaps;
    let mut v12 = Tracked::new(filled_vmcs12(&mut Rng(3), 0));
    let mut soft = soft_filled();
    let mut hooks = TestHooks::new();
    copy::nested_entry(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(v12.dirty_count(), 0, "every tracked entry clean after an entry");
    soft.reset_counts();
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!((soft.reads(), soft.writes()), (0, 0), "nothing changed, nothing copied");
    // L1 VMWRITEs one guest segment field: exactly that field is copied.
    v12.write(fields::GUEST_ES_SELECTOR, 0x18).unwrap();
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!((soft.writes(), soft.read(fields::GUEST_ES_SELECTOR)), (1, Ok(0x18)));
    // A predicate that changes makes the entries that name it copy again (EOI-exit bitmaps).
    soft.reset_counts();
    hooks.host_apicv = true;
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.writes(), 4);
    assert_eq!(soft.read(fields::EOI_EXIT_BITMAP2), v12.read(fields::EOI_EXIT_BITMAP2));
    // L0's writes of a value vmcs02 holds dirty nothing; a value it computed dirties what changed.
    v12.write_untracked(fields::GUEST_CS_SELECTOR.raw(), 0x10).unwrap();
    assert_eq!(v12.dirty_count(), 0);
    // A control field's write dirties nothing: the set compares the bits it depends on.
    soft.reset_counts();
    v12.write_l0(fields::VM_ENTRY_CONTROLS.raw(), 1 << 16).unwrap();
    assert_eq!(v12.dirty_count(), 0);
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.writes(), 1, "'load BNDCFGS' turned on: GUEST_BNDCFGS alone");
    assert_eq!(soft.read(fields::GUEST_BNDCFGS), v12.read(fields::GUEST_BNDCFGS));
    // L1 opens an interrupt window, then activates secondary controls that are all 0: no bit an
    // entry depends on changed (KVM shadows this field read-write and copies nothing either).
    for proc in [1 << 2, 1 << 2 | 1 << 31] {
        soft.reset_counts();
        v12.write(fields::CPU_BASED_VM_EXEC_CONTROL, proc).unwrap();
        copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
        assert_eq!(soft.writes(), 0, "proc-based controls {proc:#x}");
    }
    // 'Use MSR bitmaps' is the MSR-bitmap hook's input: it runs again.
    soft.reset_counts();
    v12.write(fields::CPU_BASED_VM_EXEC_CONTROL, 1 << 2 | 1 << 31 | 1 << 28).unwrap();
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.writes(), 1);
    assert_eq!(soft.read(fields::MSR_BITMAP), Ok(0x9000));
}

#[test]
fn a_failed_entry_forgets_no_changed_control_bit() {
    // VPID enabled, then disabled by L1; the entry that should give L2 L1's VPID fails in the
    // VPID hook. The next entry must still recompute it (the set did not complete with the new bit).
    let caps = AllCaps;
    let mut v12 = Tracked::new(filled_vmcs12(&mut Rng(5), 0));
    v12.write(fields::CPU_BASED_VM_EXEC_CONTROL, 1 << 31).unwrap();
    v12.write(fields::SECONDARY_VM_EXEC_CONTROL, 1 << 5).unwrap();
    let mut soft = soft_filled();
    let mut hooks = TestHooks::new();
    copy::nested_entry(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.read(fields::VIRTUAL_PROCESSOR_ID), Ok(VPID02));
    v12.write(fields::SECONDARY_VM_EXEC_CONTROL, 0).unwrap();
    hooks.fail_vpid = true;
    assert!(copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).is_err());
    hooks.fail_vpid = false;
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!(soft.read(fields::VIRTUAL_PROCESSOR_ID), Ok(VPID01), "L1's VPID once 'enable VPID' is off");
}

#[test]
fn lazy_sync_keeps_what_l1_wrote_since_the_exit() {
    let caps = AllCaps;
    let mut v12 = Tracked::new(filled_vmcs12(&mut Rng(4), u64::MAX));
    let mut soft = soft_filled();
    let mut hooks = TestHooks::new();
    copy::nested_entry(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    // L2 runs: the processor changes segments in vmcs02. The exit defers the rare sync.
    soft.write(fields::GUEST_DS_SELECTOR, 0x2b).unwrap();
    soft.write(fields::GUEST_FS_BASE, 0x7000).unwrap();
    copy::exit_to_vmcs12(copy::ExitKind::Exit, &soft, &mut v12, &caps, &mut hooks).unwrap();
    assert!(v12.lazy_pending() && v12.needs_lazy_sync(fields::GUEST_DS_SELECTOR.raw()));
    assert!(!v12.needs_lazy_sync(fields::GUEST_RIP.raw()), "synced on every exit");
    // L1 writes FS base before reading anything: the deferred sync must not undo it.
    v12.write(fields::GUEST_FS_BASE, 0x9000).unwrap();
    assert!(!v12.needs_lazy_sync(fields::GUEST_FS_BASE.raw()));
    soft.reset_counts();
    copy::sync_rare(&soft, &mut v12, &caps).unwrap();
    assert_eq!(soft.reads(), 34, "35 rare fields but the one L1 wrote");
    assert_eq!((v12.read(fields::GUEST_DS_SELECTOR), v12.read(fields::GUEST_FS_BASE)), (Ok(0x2b), Ok(0x9000)));
    assert!(!v12.lazy_pending());
    soft.reset_counts();
    copy::sync_rare(&soft, &mut v12, &caps).unwrap();
    assert_eq!(soft.reads(), 0, "nothing pending");
    // The next entry copies the one field L1 wrote.
    soft.reset_counts();
    copy::prepare_rare(&mut v12, &mut soft, &caps, &mut hooks).unwrap();
    assert_eq!((soft.writes(), soft.read(fields::GUEST_FS_BASE)), (1, Ok(0x9000)));
}

#[test]
fn shadow_lists_equal_kvm() {
    let r = reference("shadow-fields.json");
    let list = |k: &str| -> BTreeSet<u32> {
        r[k].as_array().unwrap().iter().map(|e| e["encoding"].as_u64().unwrap() as u32).filter(|e| e & 1 == 0).collect()
    };
    assert_eq!(copy::SHADOW_READ_ONLY.iter().copied().collect::<BTreeSet<_>>(), list("SHADOW_FIELD_RO"));
    assert_eq!(copy::SHADOW_READ_WRITE.iter().copied().collect::<BTreeSet<_>>(), list("SHADOW_FIELD_RW"));
}

#[test]
fn shadow_bitmaps_clear_exactly_the_shadowed_fields() {
    let r = reference("shadow-fields.json");
    let encs =
        |k: &str| -> Vec<u64> { r[k].as_array().unwrap().iter().map(|e| e["encoding"].as_u64().unwrap()).collect() };
    let (ro, rw) = (encs("SHADOW_FIELD_RO"), encs("SHADOW_FIELD_RW"));
    let b = ShadowBitmaps::new(&AllCaps);
    for enc in 0..0x8000u64 {
        let read_shadowed = ro.contains(&enc) || rw.contains(&enc);
        assert_eq!(b.read_exits(enc), !read_shadowed, "VMREAD {enc:#x}");
        assert_eq!(b.write_exits(enc), !rw.contains(&enc), "VMWRITE {enc:#x}");
    }
    assert!(b.read_exits(1 << 40 | 0x4402), "bits above 14 always exit");
    // Without PML, virtual-interrupt delivery, TPR shadow and the preemption timer, KVM 7.2.8
    // drops those RW fields at init: the processor could not shadow them.
    let mut caps = VmxCaps::new();
    caps.set(0x48b, !(1u64 << (32 + 17)) & !(1 << (32 + 9)));
    caps.set(0x482, !(1u64 << (32 + 21)));
    caps.set(0x481, !(1u64 << (32 + 6)));
    let b = ShadowBitmaps::new(&caps);
    for gone in [0x0812u64, 0x0810, 0x401c, 0x482e] {
        assert!(b.read_exits(gone) && b.write_exits(gone), "{gone:#x} must exit");
    }
    assert!(!b.read_exits(0x681e) && !b.write_exits(0x681e));
}
