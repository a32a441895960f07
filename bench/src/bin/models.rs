//! Whole models, one thread: the compiled lift against its floor (the packed kernels alone),
//! the eager (plain) apply and ndarray, for the MLPs 32→64→64→10 and 784→512→512→10 at batches
//! 1, 8, 64 and 256, and four identical lifted blocks inside a plain parent.
//!
//! `cargo run --release -p nnjit-bench --bin models [-- --quick]`
//!
//! Every contender's output is checked before timing (nnjit entries bit for bit against the
//! plain apply, ndarray within float32 rounding). Contenders are timed in interleaved rounds
//! (`probe::interleaved_medians`), so machine load hits them alike; the table gives median
//! ns per forward and each entry's ratio to the floor. Writes `bench/results/models.csv`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use ndarray::{Array2, ArrayD};
use nnjit::kernel::{best_isa, Activation, PackedDense};
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};
use nnjit::Variables;
use nnjit_bench::probe::interleaved_medians;

/// `Dense → relu → … → Dense` with the given widths.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Mlp {
    widths: Vec<usize>,
}

impl Module for Mlp {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for (i, &f) in self.widths.iter().enumerate() {
            h = s.call(&nn::Dense::new(f), h)?;
            if i + 1 < self.widths.len() {
                h = nn::relu(h);
            }
        }
        Ok(h)
    }
}

/// `x + Dense(relu(Dense(x)))`.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Block {
    width: usize,
}

impl Module for Block {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(self.width), &x)?);
        Ok(s.call(&nn::Dense::new(x.shape()[x.ndim() - 1]), h)? + &x)
    }
}

/// Four identical blocks (lifted or not) in a plain parent.
struct FourBlocks {
    lifted: bool,
    width: usize,
}

impl Module for FourBlocks {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for i in 0..4 {
            let name = format!("block{i}");
            h = if self.lifted {
                s.call_named(&name, &JitBlock { width: self.width }, h)?
            } else {
                s.call_named(&name, &Block { width: self.width }, h)?
            };
        }
        Ok(h)
    }
}

fn input(n: usize, d: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 131 + j * 7) % 97) as f32 / 97.0 - 0.5)
}

fn same_bits(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The packed kernels alone (relu fused), on preallocated buffers: what no entry can beat.
struct Floor {
    layers: Vec<PackedDense>,
    bufs: Vec<Vec<f32>>,
    n: usize,
}

impl Floor {
    fn new(vars: &Variables, d: usize, widths: &[usize], n: usize) -> Floor {
        let mut din = d;
        let mut layers = Vec::new();
        for (i, &f) in widths.iter().enumerate() {
            let k = vars.get(&format!("params/Dense_{i}/kernel")).expect("kernel");
            let b = vars.get(&format!("params/Dense_{i}/bias")).expect("bias");
            let (k, b) = (k.as_standard_layout(), b.as_standard_layout());
            layers.push(
                PackedDense::new(best_isa(), k.as_slice().expect("std"), Some(b.as_slice().expect("std")), din, f)
                    .expect("pack"),
            );
            din = f;
        }
        let bufs = widths.iter().map(|&f| vec![0.0f32; n * f]).collect();
        Floor { layers, bufs, n }
    }

    fn run(&mut self, x: &[f32]) -> &[f32] {
        let last = self.layers.len() - 1;
        for i in 0..self.layers.len() {
            let act = if i < last { Activation::Relu } else { Activation::Identity };
            let (prev, rest) = self.bufs.split_at_mut(i);
            let input: &[f32] = if i == 0 { x } else { &prev[i - 1] };
            self.layers[i].apply(input, self.n, &mut rest[0], act).expect("shapes");
        }
        &self.bufs[last]
    }
}

/// ndarray: `x.dot(&w) + &b` and relu per layer (what a user would write by hand).
fn ndarray_forward(x: &Array2<f32>, layers: &[(Array2<f32>, ndarray::Array1<f32>)]) -> Array2<f32> {
    let mut h = x.clone();
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h.dot(w) + b;
        if i + 1 < layers.len() {
            h.mapv_inplace(nnjit::layers::relu_scalar);
        }
    }
    h
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (sample, rounds) = if quick { (Duration::from_millis(20), 5) } else { (Duration::from_millis(60), 15) };
    let mut csv = String::from("model,batch,entry,ns,ratio_to_floor\n");
    println!(
        "| model, batch | floor (packed kernels) | lifted `apply` | lifted `apply_into` | plain `apply` | ndarray |"
    );
    println!("|---|---|---|---|---|---|");
    for (d, widths) in [(32usize, vec![64usize, 64, 10]), (784, vec![512, 512, 10])] {
        for n in [1usize, 8, 64, 256] {
            let x = input(n, d);
            let plain = Mlp { widths: widths.clone() };
            let lifted = JitMlp { widths: widths.clone() };
            let vars = plain.init(nn::PRNGKey(0), &x).expect("init");
            let want = plain.apply(&vars, &x).expect("apply");
            assert!(same_bits(&want, &lifted.apply(&vars, &x).expect("lifted")), "lifted == plain");
            let mut floor = Floor::new(&vars, d, &widths, n);
            let xs = x.as_slice().expect("std").to_vec();
            assert!(floor.run(&xs).iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "floor");
            let mut out = vec![0.0f32; want.len()];
            lifted.apply_into(&vars, &x, &mut out).expect("apply_into");
            assert!(out.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "apply_into");
            let nd_layers: Vec<(Array2<f32>, ndarray::Array1<f32>)> = (0..widths.len())
                .map(|i| {
                    let k = vars.get(&format!("params/Dense_{i}/kernel")).expect("k").clone();
                    let b = vars.get(&format!("params/Dense_{i}/bias")).expect("b").clone();
                    (k.into_dimensionality().expect("2-D"), b.into_dimensionality().expect("1-D"))
                })
                .collect();
            let nd = ndarray_forward(&x, &nd_layers);
            let close = nd.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()));
            assert!(close, "ndarray within rounding");
            let t = interleaved_medians(
                &mut [
                    &mut || {
                        black_box(floor.run(black_box(&xs)));
                    },
                    &mut || {
                        black_box(lifted.apply(&vars, black_box(&x)).expect("apply"));
                    },
                    &mut || lifted.apply_into(&vars, black_box(&x), &mut out).expect("apply_into"),
                    &mut || {
                        black_box(plain.apply(&vars, black_box(&x)).expect("apply"));
                    },
                    &mut || {
                        black_box(ndarray_forward(black_box(&x), &nd_layers));
                    },
                ],
                sample,
                rounds,
            );
            let model = format!("{d}→{}", widths.iter().map(ToString::to_string).collect::<Vec<_>>().join("→"));
            let cell = |i: usize| format!("{:.0} ({:.2}×)", t[i], t[i] / t[0]);
            println!("| {model}, {n} | {:.0} | {} | {} | {} | {} |", t[0], cell(1), cell(2), cell(3), cell(4));
            for (i, name) in ["floor", "lifted apply", "lifted apply_into", "plain apply", "ndarray"].iter().enumerate()
            {
                let _ = writeln!(csv, "{model},{n},{name},{:.1},{:.3}", t[i], t[i] / t[0]);
            }
        }
    }
    // Four identical lifted blocks at one shape, against the same blocks un-lifted.
    for (width, n) in [(64usize, 1usize), (256, 8)] {
        let x = input(n, width);
        let (plain, lifted) = (FourBlocks { lifted: false, width }, FourBlocks { lifted: true, width });
        let vars = plain.init(nn::PRNGKey(0), &x).expect("init");
        let want = plain.apply(&vars, &x).expect("apply");
        assert!(same_bits(&want, &lifted.apply(&vars, &x).expect("lifted")));
        let packs = JitBlock::jit_cache().pack_count();
        let t = interleaved_medians(
            &mut [
                &mut || {
                    black_box(plain.apply(&vars, black_box(&x)).expect("apply"));
                },
                &mut || {
                    black_box(lifted.apply(&vars, black_box(&x)).expect("apply"));
                },
            ],
            sample,
            rounds,
        );
        assert_eq!(JitBlock::jit_cache().pack_count(), packs, "no repacking while timed");
        println!(
            "four identical blocks {width}-wide, batch {n}: plain {:.0} ns, lifted children {:.0} ns ({:.2}×)",
            t[0],
            t[1],
            t[1] / t[0]
        );
        let _ = writeln!(csv, "four blocks {width},{n},plain apply,{:.1},", t[0]);
        let _ = writeln!(csv, "four blocks {width},{n},lifted children,{:.1},{:.3}", t[1], t[1] / t[0]);
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/models.csv");
    if let Err(e) = std::fs::write(&path, csv) {
        eprintln!("could not write {}: {e}", path.display());
    }
}
