//! Criterion benchmark of the lift at batch 1: `Dense(3→4)` and an MLP 32→64→64→10,
//! un-lifted (`Dense`, `Mlp`) against lifted (`JitDense`, `JitMlp`), the lifted zero-allocation
//! entries (`apply_into`, `bind`, `bind_fixed::<3, 4>`), a hand-written fixed-size loop,
//! ndarray's `dot` (1-D and batch-1 2-D inputs), and for the MLP ndarray by hand and the floor
//! (the three packed kernels alone).
//!
//! `cargo bench -p nnjit-bench --bench lift`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nnjit::kernel::{best_isa, Activation, PackedDense};
use nnjit::ndarray::{Array2, Axis, Ix1, Ix2};
use nnjit::nn::{self, Lifted, Module};
use nnjit_bench::{JitMlp, Mlp};

fn dense_3x4(c: &mut Criterion) {
    let x = [0.5f32, -1.25, 2.0];
    let plain = nn::Dense::new(4);
    let lifted = nn::JitDense::new(4);
    let vars = plain.init(nn::PRNGKey(0), x).unwrap();
    let bound = lifted.bind(&vars, x).unwrap();
    let fixed = lifted.bind_fixed::<3, 4>(&vars).unwrap();
    let k = vars.get("params/kernel").unwrap().clone().into_dimensionality::<Ix2>().unwrap();
    let b = vars.get("params/bias").unwrap().clone().into_dimensionality::<nnjit::ndarray::Ix1>().unwrap();
    let mut w = [[0.0f32; 4]; 3];
    for (i, row) in w.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = k[[i, j]];
        }
    }
    let bias: [f32; 4] = [b[0], b[1], b[2], b[3]];
    let xa = nnjit::ndarray::arr1(&x);
    let mut out = [0.0f32; 4];
    let mut g = c.benchmark_group("lift/dense_3x4");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.bench_function("un-lifted Dense::apply", |bch| {
        bch.iter(|| plain.apply(black_box(&vars), black_box(&x)).unwrap())
    });
    g.bench_function("lifted JitDense::apply", |bch| {
        bch.iter(|| lifted.apply(black_box(&vars), black_box(&x)).unwrap())
    });
    g.bench_function("lifted JitDense::apply_into", |bch| {
        bch.iter(|| lifted.apply_into(black_box(&vars), black_box(&x), &mut out).unwrap())
    });
    g.bench_function("lifted bind → apply_into", |bch| {
        bch.iter(|| bound.apply_into(black_box(&x), &mut out).unwrap())
    });
    g.bench_function("lifted bind_fixed::<3, 4> → apply", |bch| bch.iter(|| fixed.apply(black_box(&x)).unwrap()));
    g.bench_function("hand-written fixed loop", |bch| {
        bch.iter(|| {
            let x = black_box(&x);
            let mut y = bias;
            for (xk, row) in x.iter().zip(w.iter()) {
                for (yj, wkj) in y.iter_mut().zip(row.iter()) {
                    *yj += xk * wkj;
                }
            }
            y
        })
    });
    g.bench_function("ndarray x.dot(&w) + &b", |bch| bch.iter(|| black_box(&xa).dot(&k) + &b));
    // Batch 1 as Flax sees it: x of shape (1, D), a 2-D product.
    let x2 = xa.clone().insert_axis(Axis(0));
    let x2d = x2.clone().into_dyn();
    g.bench_function("ndarray (1, D) x.dot(&w) + &b", |bch| bch.iter(|| black_box(&x2).dot(&k) + &b));
    g.bench_function("un-lifted Dense::apply (1, D)", |bch| {
        bch.iter(|| plain.apply(black_box(&vars), black_box(&x2d)).unwrap())
    });
    g.bench_function("lifted JitDense::apply (1, D)", |bch| {
        bch.iter(|| lifted.apply(black_box(&vars), black_box(&x2d)).unwrap())
    });
    g.finish();
}

fn mlp(c: &mut Criterion) {
    let x = Array2::from_shape_fn((1, 32), |(_, j)| (j as f32 * 0.37).sin());
    let plain = Mlp { widths: [64, 64, 10] };
    let lifted = JitMlp { widths: [64, 64, 10] };
    let vars = plain.init(nn::PRNGKey(0), &x).unwrap();
    let mut g = c.benchmark_group("lift/mlp_32_64_64_10");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.bench_function("un-lifted Mlp::apply", |bch| bch.iter(|| plain.apply(black_box(&vars), black_box(&x)).unwrap()));
    g.bench_function("lifted JitMlp::apply", |bch| bch.iter(|| lifted.apply(black_box(&vars), black_box(&x)).unwrap()));

    // ndarray by hand: x·W + b and relu per layer (the un-lifted target).
    let layer = |i: usize| {
        let k = vars.get(&format!("params/Dense_{i}/kernel")).unwrap().clone().into_dimensionality::<Ix2>().unwrap();
        let b = vars.get(&format!("params/Dense_{i}/bias")).unwrap().clone().into_dimensionality::<Ix1>().unwrap();
        (k, b)
    };
    let (l0, l1, l2) = (layer(0), layer(1), layer(2));
    g.bench_function("ndarray dot + bias + relu, 3 layers", |bch| {
        bch.iter(|| {
            let h = (black_box(&x).dot(&l0.0) + &l0.1).mapv_into(nnjit::layers::relu_scalar);
            let h = (h.dot(&l1.0) + &l1.1).mapv_into(nnjit::layers::relu_scalar);
            h.dot(&l2.0) + &l2.1
        })
    });

    // The floor: the three packed kernels back to back (relu fused), no module system, no
    // allocation. What any apply of this MLP costs at least on this machine.
    let packed = [&l0, &l1, &l2].map(|(k, b)| {
        PackedDense::new(best_isa(), k.as_slice().unwrap(), Some(b.as_slice().unwrap()), k.nrows(), k.ncols()).unwrap()
    });
    let (mut h0, mut h1, mut y) = ([0.0f32; 64], [0.0f32; 64], [0.0f32; 10]);
    let xs = x.as_slice().unwrap();
    g.bench_function("floor: 3 packed kernels, relu fused", |bch| {
        bch.iter(|| {
            packed[0].apply(black_box(xs), 1, &mut h0, Activation::Relu).unwrap();
            packed[1].apply(&h0, 1, &mut h1, Activation::Relu).unwrap();
            packed[2].apply(&h1, 1, &mut y, Activation::Identity).unwrap();
            black_box(&y);
        })
    });
    g.finish();
}

criterion_group!(benches, dense_3x4, mlp);
criterion_main!(benches);
