//! The generated VM-entry checker on a typical valid vmcs12 (the one L0 sees on every nested
//! VMLAUNCH/VMRESUME): every rule (none fails, so all are evaluated), and the control-field checks
//! alone. Baseline: vmcs-gen's interpreter of the same rules on the same vmcs12 (what checking
//! from the model, without generating code, costs).
//!
//! The vmcs12: the valid 64-bit entry state of the tests (runtime/tests/common/entry.rs) in KVM's
//! vmcs12, with the capability MSRs KVM 7.2.8 gives L1 (testdata/reference/kvm-nested-caps-max.json).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcs::entry::{self, NoMemory, Selection};
use vmcs::{Vmcs12, VmcsRead, VmcsWrite};

#[path = "../tests/common/mod.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let caps = common::kvm_l1_caps();
    let mut v = Vmcs12::zeroed();
    v.hdr = vmcs::nested_state::VMCS12_REVISION;
    for (enc, value) in common::entry::baseline(&caps) {
        let _ = v.write_raw(enc, value);
    }
    let facts = common::entry::facts();
    assert_eq!(entry::check(&v, &caps, &facts, &NoMemory), Ok(()), "the bench vmcs12 must be valid");
    let evaluated = entry::Rule::ALL.len();
    // What L0 keeps per vCPU: L1's capabilities evaluated once.
    let checker = entry::Checker::new(&caps, facts);
    let mut g = c.benchmark_group("entry_check");
    g.bench_function(format!("generated, all {evaluated} rules"), |b| {
        b.iter(|| black_box(&checker).check(black_box(&v), &NoMemory))
    });
    g.bench_function("generated, controls only", |b| {
        b.iter(|| black_box(&checker).check_only(black_box(&v), &NoMemory, Selection::CONTROLS))
    });
    g.bench_function("evaluating the capabilities (Checker::new, once per vCPU)", |b| {
        b.iter(|| entry::Checker::new(black_box(&caps), facts))
    });
    // Baseline: the interpreter, reading the same vmcs12 through VmcsRead.
    let schema = vmcs_gen::Schema::shipped().unwrap();
    let icaps = common::entry::interpreter_caps(&caps);
    let fv = common::entry::fact_values(&schema, &facts);
    let field = |id: usize| v.read_raw(schema.fields[id].encoding.raw() as u64).ok();
    let memory = |_: u64, _: u32| None;
    let inputs = vmcs_gen::checks::eval::Inputs {
        schema: &schema,
        caps: &icaps,
        facts: &fv,
        field: &field,
        memory: &memory,
        wrmsr_faults: &|_, _| false,
    };
    assert_eq!(inputs.first_failure(|_| true), Ok(None), "the interpreter agrees the vmcs12 is valid");
    g.bench_function(format!("interpreter (baseline), all {evaluated} rules"), |b| {
        b.iter(|| black_box(&inputs).first_failure(|_| true))
    });
    g.bench_function("interpreter (baseline), controls only", |b| {
        b.iter(|| black_box(&inputs).first_failure(|r| r.tier == vmcs_gen::model::Tier::Controls))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
