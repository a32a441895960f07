//! Criterion benchmark of the checkpoint loaders: a Dense 3→4 checkpoint (two tiny arrays:
//! header parsing and tree building dominate) and a Dense 1024→1024 one (4 MiB: copying and
//! converting the data dominates), as safetensors and as Flax msgpack.
//!
//! `cargo bench -p nnjit-bench --bench checkpoints`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nnjit::io::{flax, safetensors};
use nnjit::nn::{self, Module};

fn loads(c: &mut Criterion) {
    let mut g = c.benchmark_group("checkpoints");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (d, f) in [(3usize, 4usize), (1024, 1024)] {
        let vars = nn::Dense::new(f).init(nn::PRNGKey(0), nnjit::ndarray::Array1::<f32>::ones(d)).unwrap();
        let st = safetensors::save(&vars).unwrap();
        let fx = flax::to_bytes(&vars).unwrap();
        g.bench_function(format!("safetensors::load Dense {d}→{f}"), |b| {
            b.iter(|| safetensors::load(black_box(&st)).unwrap())
        });
        g.bench_function(format!("flax::from_bytes Dense {d}→{f}"), |b| {
            b.iter(|| flax::from_bytes(black_box(&fx)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, loads);
criterion_main!(benches);
