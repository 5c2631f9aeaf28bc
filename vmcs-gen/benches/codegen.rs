//! Compiling the shipped schema: load (parse, validate, model), emit (every artifact, formatted),
//! and both, as build.rs does on every schema change.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcs_gen::{Schema, SchemaSources, emit};

/// The embedded schema, loaded; panics with the diagnostics if it does not load.
fn load() -> Schema {
    Schema::load(&SchemaSources::embedded())
        .unwrap_or_else(|diags| panic!("the embedded schema does not load:\n{diags}"))
}

fn codegen(c: &mut Criterion) {
    let schema = load();
    let artifacts = emit::all(&schema);
    let bytes: usize = artifacts.iter().map(|a| a.contents.len()).sum();
    eprintln!(
        "schema: {} fields, {} layouts; {} artifacts, {bytes} bytes of Rust",
        schema.fields.len(),
        schema.layouts.len(),
        artifacts.len()
    );

    let mut g = c.benchmark_group("codegen");
    g.sample_size(20);
    g.bench_function("load", |b| b.iter(|| Schema::load(black_box(&SchemaSources::embedded()))));
    g.bench_function("emit", |b| b.iter(|| emit::all(black_box(&schema))));
    g.bench_function("load+emit", |b| b.iter(|| emit::all(&load())));
    g.finish();
}

criterion_group!(benches, codegen);
criterion_main!(benches);
