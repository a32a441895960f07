//! Runs one lift entry point in a loop, for instruction counts under callgrind:
//!
//! `valgrind --tool=callgrind target/release/calls <entry> [iterations]`
//!
//! Entries: `plain`, `lifted`, `apply_into`, `bound`, `fixed`, `ndarray` (1-D `x.dot(&w) + &b`),
//! `ndarray2` (the same with `x` of shape `(1, D)`), `mlp_plain`, `mlp_lifted`.
//! Callgrind counts are repeatable whatever else the machine runs, so per-call instruction
//! counts (total ÷ iterations) show where overhead goes without a quiet machine.

use std::hint::black_box;

use nnjit::ndarray::Array2;
use nnjit::nn::{self, Lifted, Module};
use nnjit_bench::{JitMlp, Mlp};

fn main() {
    let mut args = std::env::args().skip(1);
    let entry = args.next().unwrap_or_else(|| "plain".into());
    let iters: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let x = [0.5f32, -1.25, 2.0];
    let plain = nn::Dense::new(4);
    let lifted = nn::JitDense::new(4);
    let vars = plain.init(nn::PRNGKey(0), x).expect("init");
    let xm = Array2::from_shape_fn((1, 32), |(_, j)| (j as f32 * 0.37).sin());
    let mlp = Mlp { widths: [64, 64, 10] };
    let jmlp = JitMlp { widths: [64, 64, 10] };
    let mvars = mlp.init(nn::PRNGKey(0), &xm).expect("init");
    let bound = lifted.bind(&vars, x).expect("bind");
    let fixed = lifted.bind_fixed::<3, 4>(&vars).expect("bind");
    let mut out = [0.0f32; 4];
    let k =
        vars.get("params/kernel").expect("kernel").clone().into_dimensionality::<nnjit::ndarray::Ix2>().expect("2-D");
    let b = vars.get("params/bias").expect("bias").clone().into_dimensionality::<nnjit::ndarray::Ix1>().expect("1-D");
    let xa = nnjit::ndarray::arr1(&x);
    let x2 = xa.clone().insert_axis(nnjit::ndarray::Axis(0));
    for _ in 0..iters {
        match entry.as_str() {
            "plain" => drop(black_box(plain.apply(black_box(&vars), black_box(&x)))),
            "lifted" => drop(black_box(lifted.apply(black_box(&vars), black_box(&x)))),
            "apply_into" => drop(black_box(lifted.apply_into(black_box(&vars), black_box(&x), &mut out))),
            "bound" => drop(black_box(bound.apply_into(black_box(&x), &mut out))),
            "fixed" => drop(black_box(fixed.apply(black_box(&x)))),
            "ndarray" => drop(black_box(black_box(&xa).dot(&k) + &b)),
            "ndarray2" => drop(black_box(black_box(&x2).dot(&k) + &b)),
            "mlp_plain" => drop(black_box(mlp.apply(black_box(&mvars), black_box(&xm)))),
            "mlp_lifted" => drop(black_box(jmlp.apply(black_box(&mvars), black_box(&xm)))),
            other => {
                eprintln!("unknown entry {other:?}");
                std::process::exit(2);
            }
        }
    }
    black_box(out);
}
