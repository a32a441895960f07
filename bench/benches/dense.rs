//! Criterion comparison of Dense forwards: nnjit (PackedDense, FixedDense, unpacked `dense`)
//! against ndarray, nalgebra, faer, gemm and candle, at the shapes of `nnjit_bench::SHAPES`.
//!
//! `cargo bench -p nnjit-bench` (filter with e.g. `-- 1x64x64`). Every contender is checked
//! against nnjit's reference before it is timed. The module-level APIs (`nn::Dense`, the
//! lifted `JitDense`) are added in `nnjit_bench::contenders` (rows `nnjit nn::Dense apply`, `nnjit JitDense apply`, `nnjit JitDense apply_into`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nnjit_bench::{contenders, single_threaded, verify, Problem, SHAPES};

fn dense(c: &mut Criterion) {
    single_threaded();
    for &(n, d, f) in &SHAPES {
        let p = Problem::new(n, d, f);
        let mut cs = contenders(&p, false);
        verify(&p, &mut cs).expect("contenders agree with the reference");
        let mut g = c.benchmark_group(format!("dense/{}", p.label()));
        g.throughput(Throughput::Elements((n * d * f) as u64));
        let heavy = p.flops() > 1e8;
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(if heavy { 2000 } else { 800 }))
            .sample_size(if heavy { 10 } else { 30 });
        for mut contender in cs {
            g.bench_function(BenchmarkId::from_parameter(&contender.name), |b| b.iter(|| contender.run()));
        }
        g.finish();
    }
}

criterion_group!(benches, dense);
criterion_main!(benches);
