//! Generated copy routines: both branches of every conditional copy, dirty groups, shadow bitmaps
//! against KVM's lists, the vmcs12 -> VMCS -> vmcs12 round trip, and VMREAD/VMWRITE counts per
//! nested round trip against KVM 7.2.8's per-routine counts.

use std::collections::BTreeSet;

mod common;

use common::{Rng, reference};
use vmcs::caps::{AllCaps, Cap, VmxCaps};
use vmcs::copy::{self, Group, PredicateMask, ShadowBitmaps, Tracked};
use vmcs::layouts::evmcs::Evmcs;
use vmcs::soft::SoftVmcs;
use vmcs::{SoftwareVmcs, Vmcs12, VmcsRead, VmcsWrite, fields};
use vmcs_gen::model::{CopySet, Role};
use vmcs_gen::{Caps, Schema};

/// A vmcs12 with a distinct non-zero value in every mapped field.
fn filled_vmcs12(rng: &mut Rng) -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    for &e in <Vmcs12 as SoftwareVmcs>::MAPPED {
        v.write_any(e as u64, rng.next() | 1).unwrap();
    }
    v
}

/// Run a set by name with the given backends (the generated functions, dispatched by name).
fn run(name: &str, src: &mut Tracked<Vmcs12>, soft: &mut SoftVmcs, when: PredicateMask) {
    let caps = AllCaps;
    match name {
        "prepare_rare" => copy::prepare_rare(src, soft, &caps, &when),
        "prepare" => copy::prepare(src.inner(), soft, &caps, &when),
        "load_all" => copy::load_all(src.inner(), soft, &caps, &when),
        "shadow_read_write" => copy::shadow_read_write(src.inner(), soft, &caps, &when),
        "shadow_read_only" => copy::shadow_read_only(src.inner(), soft, &caps, &when),
        "sync_rare" => copy::sync_rare(soft, src.inner_mut(), &caps, &when),
        "sync" => copy::sync(soft, src.inner_mut(), &caps, &when),
        "sync_exit_info" => copy::sync_exit_info(soft, src.inner_mut(), &caps, &when),
        "save_all" => copy::save_all(soft, src.inner_mut(), &caps, &when),
        other => panic!("set {other} is not dispatched by this test"),
    }
    .unwrap()
}

/// A software VMCS that can hold everything (read-only fields too: IA32_VMX_MISC bit 29).
fn soft_all() -> SoftVmcs {
    SoftVmcs::new(&AllCaps)
}

fn mask_of(schema: &Schema, names: &[usize]) -> PredicateMask {
    assert_eq!(PredicateMask::NAMES.len(), schema.predicates.len());
    PredicateMask(names.iter().fold(0, |m, &p| m | 1 << p))
}

/// Which fields a set copied: run it from a filled source into a zeroed destination.
fn copied(schema: &Schema, set: &CopySet, when: PredicateMask) -> BTreeSet<String> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut out = BTreeSet::new();
    let nonzero = |read: &dyn Fn(u64) -> u64| -> BTreeSet<String> {
        schema.fields.iter().filter(|f| read(f.encoding.raw() as u64) != 0).map(|f| f.name.clone()).collect()
    };
    if set.from == Role::Evmcs {
        // Every group dirty (no clean bit set).
        let mut src = Evmcs::default();
        for &e in <Evmcs as SoftwareVmcs>::MAPPED {
            src.write_any(e as u64, rng.next() | 1).unwrap();
        }
        src.hv_clean_fields = 0;
        let mut dst = Vmcs12::zeroed();
        copy::evmcs_to_vmcs12(&src, &mut dst, &AllCaps, &when).unwrap();
        return nonzero(&|e| dst.read_any(e).unwrap_or(0));
    }
    if set.to == Role::Evmcs {
        let src = filled_vmcs12(&mut rng);
        let mut dst = Evmcs::default();
        copy::vmcs12_to_evmcs(&src, &mut dst, &AllCaps, &when).unwrap();
        return nonzero(&|e| dst.read_any(e).unwrap_or(0));
    }
    if set.from == Role::Vmcs12 {
        let mut src = Tracked::new(filled_vmcs12(&mut rng));
        let mut soft = soft_all();
        run(&set.name, &mut src, &mut soft, when);
        for f in &schema.fields {
            if soft.read_raw(f.encoding.raw() as u64).unwrap_or(0) != 0 {
                out.insert(f.name.clone());
            }
        }
    } else {
        let mut soft = soft_all();
        for f in &schema.fields {
            let _ = soft.write_raw(f.encoding.raw() as u64, rng.next() | 1);
        }
        let mut dst = Tracked::new(Vmcs12::zeroed());
        run(&set.name, &mut dst, &mut soft, when);
        for f in &schema.fields {
            if dst.inner().read_raw(f.encoding.raw() as u64).unwrap_or(0) != 0 {
                out.insert(f.name.clone());
            }
        }
    }
    out
}

#[test]
fn every_conditional_copy_is_tested_on_both_branches() {
    let schema = Schema::shipped().unwrap();
    let all = PredicateMask(u64::MAX);
    let mut branches = 0;
    for set in &schema.sets {
        let everything = copied(&schema, set, all);
        let want: BTreeSet<String> = set.items.iter().map(|i| schema.fields[i.field].name.clone()).collect();
        assert_eq!(everything, want, "set {} with every predicate true", set.name);
        for item in set.items.iter().filter(|i| i.when.is_some()) {
            let name = &schema.fields[item.field].name;
            // Make the condition false by clearing every predicate it names.
            let named: Vec<usize> = item.when.as_ref().unwrap().caps().into_iter().copied().collect();
            let when = PredicateMask(!mask_of(&schema, &named).0);
            let got = copied(&schema, set, when);
            assert!(!got.contains(name), "set {}: {name} copied although its condition is false", set.name);
            branches += 1;
        }
    }
    assert!(branches > 0);
}

#[test]
fn pdptrs_only_with_nested_ept_and_pae_paging() {
    // Seed 004: PDPTRs move only when vmcs12 enables EPT and L2 uses PAE paging.
    let schema = Schema::shipped().unwrap();
    let p = |n: &str| schema.predicates.iter().position(|x| x.name == n).unwrap();
    let prepare = schema.set("prepare").unwrap();
    let sync = schema.set("sync").unwrap();
    let both = mask_of(&schema, &[p("nested_ept"), p("pae_paging"), p("l0_ept")]);
    assert!(copied(&schema, prepare, both).contains("GUEST_PDPTR0"));
    assert!(copied(&schema, sync, both).contains("GUEST_PDPTR3"));
    for only in [p("nested_ept"), p("pae_paging")] {
        let m = mask_of(&schema, &[only, p("l0_ept")]);
        assert!(!copied(&schema, prepare, m).contains("GUEST_PDPTR0"));
        assert!(!copied(&schema, sync, m).contains("GUEST_PDPTR3"));
    }
}

#[test]
fn absent_fields_are_skipped_not_read() {
    // A CPU without TSC scaling: prepare must not touch TSC_MULTIPLIER at all.
    let mut caps = VmxCaps::new();
    caps.set(0x480, 1 << 55);
    caps.set(0x48e, u64::MAX); // every primary control allowed, including "activate secondary controls"
    caps.set(0x48b, !(1u64 << (32 + 25))); // every secondary control but "use TSC scaling"
    let mut soft = SoftVmcs::new(&caps);
    let v = filled_vmcs12(&mut Rng(7));
    let when = PredicateMask(u64::MAX);
    copy::prepare(&v, &mut soft, &caps, &when).unwrap();
    assert_eq!(soft.instruction_error(), 0, "no VMWRITE failed");
    assert!(!soft.exists(fields::TSC_MULTIPLIER.raw()));
    assert_eq!(soft.read(fields::TSC_OFFSET), v.read(fields::TSC_OFFSET));
}

#[test]
fn dirty_groups_skip_clean_rare_state() {
    let mut v = Tracked::new(filled_vmcs12(&mut Rng(3)));
    let mut soft = soft_all();
    let when = PredicateMask(u64::MAX);
    copy::prepare_rare(&mut v, &mut soft, &AllCaps, &when).unwrap();
    assert_eq!(v.dirty_mask() & Group::ALL.iter().fold(0, |m, g| m | g.mask()), 0, "all groups clean");
    soft.reset_counts();
    copy::prepare_rare(&mut v, &mut soft, &AllCaps, &when).unwrap();
    assert_eq!((soft.reads(), soft.writes()), (0, 0), "nothing dirty, nothing copied");
    // L1 VMWRITEs one guest segment: only that group is copied again.
    v.write(fields::GUEST_ES_SELECTOR, 0x18).unwrap();
    assert!(copy::DirtyGroups::is_dirty(&v, Group::GuestSegments));
    assert!(!copy::DirtyGroups::is_dirty(&v, Group::GuestMisc));
    copy::prepare_rare(&mut v, &mut soft, &AllCaps, &when).unwrap();
    assert_eq!(soft.writes(), 36);
    assert_eq!(soft.read(fields::GUEST_ES_SELECTOR), Ok(0x18));
    // L0's own writes (syncing L2 state back) do not dirty anything.
    v.inner_mut().write_raw(fields::GUEST_CS_SELECTOR.raw(), 0x10).unwrap();
    assert!(!copy::DirtyGroups::is_dirty(&v, Group::GuestSegments));
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
    // Without PML, virtual-interrupt delivery, TPR shadow and the preemption timer, KVM drops those
    // RW fields at init: the processor could not shadow them.
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

#[test]
fn round_trip_preserves_every_existing_field() {
    let schema = Schema::shipped().unwrap();
    let layout = schema.layout("vmcs12").unwrap();
    let mut rng = Rng(0xdead_beef_1234_5678);
    for round in 0..200 {
        let mut msrs = std::collections::BTreeMap::new();
        let mut caps = VmxCaps::new();
        for i in 0x480..=0x493u32 {
            let v = match rng.next() % 3 {
                0 => rng.next() | rng.next(),
                1 => rng.next(),
                _ => u64::MAX,
            };
            msrs.insert(i, v);
            caps.set(i, v);
        }
        let model = Caps::Msrs(msrs);
        let original = filled_vmcs12(&mut rng);
        let mut soft = SoftVmcs::new(&caps);
        let when = PredicateMask(u64::MAX);
        copy::load_all(&original, &mut soft, &caps, &when).unwrap();
        let mut back = Vmcs12::zeroed();
        copy::save_all(&soft, &mut back, &caps, &when).unwrap();
        for (m, f) in layout.mapped() {
            let enc = schema.fields[f].encoding.raw() as u64;
            let exists = schema.field_exists(&model, f);
            let got = back.read_any(enc).unwrap();
            let want = match (exists, schema.fields[f].is_read_only()) {
                (false, _) => 0,                                  // never copied either way
                (true, true) => 0,                                // exit information: vmcs02's value
                (true, false) => original.read_any(enc).unwrap(), // the round trip
            };
            assert_eq!(got, want, "round {round}: {} ({})", schema.fields[f].name, m.name);
        }
    }
}

/// KVM 7.2.8's per-routine vmcs12 field counts (testdata/reference/README.md).
const KVM_PREPARE_RARE: u64 = 51;
const KVM_PREPARE: u64 = 24;
const KVM_SYNC_RARE: u64 = 35;
const KVM_SYNC: u64 = 23;

/// VMREADs + VMWRITEs of the hardware VMCS for one nested round trip: an L2 exit synced to vmcs12,
/// then L1 re-entering. With `kvm_dirty_flag`, rare state is tracked as KVM does it: one flag for
/// the whole vmcs12 (any dirty group makes every group dirty).
fn round_trip(
    v: &mut Tracked<Vmcs12>,
    soft: &mut SoftVmcs,
    when: PredicateMask,
    exit: bool,
    kvm_dirty_flag: bool,
) -> u64 {
    soft.reset_counts();
    if exit {
        copy::sync(soft, v.inner_mut(), &AllCaps, &when).unwrap();
    }
    if kvm_dirty_flag && Group::ALL.iter().any(|g| copy::DirtyGroups::is_dirty(v, *g)) {
        v.mark_all_dirty();
    }
    copy::prepare_rare(v, soft, &AllCaps, &when).unwrap();
    copy::prepare(v.inner(), soft, &AllCaps, &when).unwrap();
    soft.reads() + soft.writes()
}

/// Ours and KVM's counts for one scenario, from the same starting vmcs12 state.
fn both(v: &Tracked<Vmcs12>, when: PredicateMask, exit: bool) -> (u64, u64) {
    let (mut ours, mut kvm) = (*v, *v);
    let (mut a, mut b) = (soft_all(), soft_all());
    (round_trip(&mut ours, &mut a, when, exit, false), round_trip(&mut kvm, &mut b, when, exit, true))
}

#[test]
fn vmread_vmwrite_counts_never_exceed_kvm() {
    let schema = Schema::shipped().unwrap();
    let p = |n: &str| schema.predicates.iter().position(|x| x.name == n).unwrap();
    // A 64-bit L2 under nested EPT, not in PAE paging: the common case.
    let when =
        mask_of(&schema, &[p("nested_ept"), p("l0_ept"), p("tsc_offsetting"), p("host_apicv"), p("pfec_from_vmcs12")]);
    let fresh = Tracked::new(filled_vmcs12(&mut Rng(11)));
    let first = both(&fresh, when, false);
    let mut clean = fresh;
    copy::prepare_rare(&mut clean, &mut soft_all(), &AllCaps, &when).unwrap();
    let cpuid = both(&clean, when, true);
    let mut segment_changed = clean;
    segment_changed.write(fields::GUEST_FS_BASE, 0x7fff_0000).unwrap();
    let segment = both(&segment_changed, when, true);

    println!("VMREAD + VMWRITE per nested round trip: ours / KVM 7.2.8 (same conditions) / KVM's per-routine maximum");
    println!("  first launch:          {} / {} / {}", first.0, first.1, KVM_PREPARE_RARE + KVM_PREPARE);
    println!("  CPUID exit, clean:     {} / {} / {}", cpuid.0, cpuid.1, KVM_SYNC + KVM_PREPARE);
    println!("  L1 changed a segment:  {} / {} / {}", segment.0, segment.1, KVM_SYNC + KVM_PREPARE + KVM_PREPARE_RARE);
    for (ours, kvm) in [first, cpuid, segment] {
        assert!(ours <= kvm);
    }
    assert!(first.1 <= KVM_PREPARE_RARE + KVM_PREPARE);
    assert!(cpuid.1 <= KVM_SYNC + KVM_PREPARE);
    assert!(segment.1 <= KVM_SYNC + KVM_PREPARE + KVM_PREPARE_RARE);
    // A clean vmcs12 copies no rare state; one changed segment copies exactly its group (36
    // fields) where KVM's single dirty flag copies every rare field.
    assert_eq!(segment.0 - cpuid.0, 36);
    assert!(segment.0 < segment.1);

    // KVM_GET_NESTED_STATE while L2 runs: the hot and the rare sync.
    let soft = soft_all();
    let mut v = clean;
    copy::sync(&soft, v.inner_mut(), &AllCaps, &when).unwrap();
    copy::sync_rare(&soft, v.inner_mut(), &AllCaps, &when).unwrap();
    let state = soft.reads() + soft.writes();
    println!("  get_nested_state:      {state} / - / {}", KVM_SYNC + KVM_SYNC_RARE);
    assert!(state <= KVM_SYNC + KVM_SYNC_RARE);
    soft.reset_counts();
    assert_eq!(Cap::ALL.len(), schema.caps.len());
}
