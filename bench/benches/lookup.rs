//! vmcs12 lookup, raw read and raw write (KVM's read_any/write_any): ours against KVM's scheme in
//! C (see the crate docs).
//!
//! First the agreement check on every input; then interleaved rounds (ours and the baseline
//! alternate, which goes first alternating too), reporting the medians and the median of the
//! paired ratios, robust to a machine that other work slows down now and then; then criterion's
//! own measurement of each loop.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use vmcs_bench::{agreement_inputs, check_agreement, inputs, kvm, ours, patterned_vmcs12};

/// Interleaved rounds per operation.
const ROUNDS: usize = 301;
/// Passes over the 4096-encoding mix in one timed sample (~0.1 ms).
const PASSES: usize = 24;

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..PASSES {
        f();
    }
    start.elapsed().as_nanos() as f64 / (PASSES * vmcs_bench::INPUTS) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `ROUNDS` pairs of samples, ns per encoding: ours, the baseline, ours/baseline.
fn interleaved(name: &str, mut ours: impl FnMut(), mut base: impl FnMut()) {
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = time(&mut ours);
            (x, time(&mut base))
        } else {
            let y = time(&mut base);
            (time(&mut ours), y)
        };
        a.push(x);
        b.push(y);
        r.push(x / y);
    }
    let (ma, mb, mr) = (median(&mut a), median(&mut b), median(&mut r));
    let (lo, hi) = (r[ROUNDS / 4], r[3 * ROUNDS / 4]);
    println!(
        "{name:<9} ours {ma:5.2} ns  KVM's C {mb:5.2} ns  ratio ours/C {mr:.2} (median of {ROUNDS} paired rounds; quartiles {lo:.2}..{hi:.2})"
    );
}

fn main() {
    let mix = inputs();
    let all = agreement_inputs(&mix);
    match check_agreement(&all) {
        Ok(valid) => println!(
            "agreement: ours and KVM's C agree on all {} inputs ({valid} name a field); the mix: {} encodings, {:.1}% valid",
            all.len(),
            mix.len(),
            100.0 * mix.iter().filter(|&&e| kvm::lookup(e).is_some()).count() as f64 / mix.len() as f64
        ),
        Err(e) => panic!("ours and KVM's C disagree: {e}"),
    }
    let mut v = patterned_vmcs12();
    let mut w = patterned_vmcs12();
    interleaved("lookup", || ours::lookup_loop(&mix), || kvm::lookup_loop(&mix));
    let r = patterned_vmcs12();
    interleaved("read_any", || ours::read_loop(&r, &mix), || kvm::read_loop(&r, &mix));
    interleaved("write_any", || ours::write_loop(&mut v, &mix), || kvm::write_loop(&mut w, &mix));
    benches();
    Criterion::default().configure_from_args().final_summary();
}

fn criterion_loops(c: &mut Criterion) {
    let mix = inputs();
    let r = patterned_vmcs12();
    let (mut v, mut w) = (patterned_vmcs12(), patterned_vmcs12());
    for (group, run) in [("lookup", 0), ("read_any", 1), ("write_any", 2)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(mix.len() as u64));
        g.bench_function("ours", |b| {
            b.iter(|| match run {
                0 => ours::lookup_loop(&mix),
                1 => ours::read_loop(&r, &mix),
                _ => ours::write_loop(&mut v, &mix),
            })
        });
        g.bench_function("kvm_c", |b| {
            b.iter(|| match run {
                0 => kvm::lookup_loop(&mix),
                1 => kvm::read_loop(&r, &mix),
                _ => kvm::write_loop(&mut w, &mix),
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = criterion_loops
}
