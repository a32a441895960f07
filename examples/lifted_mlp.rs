//! A user module lifted with `#[nn::jit]`: an MLP 32 → 64 → 64 → 10.
//!
//!     cargo run --release --example lifted_mlp
//!
//! Shows that the lifted twin inits and applies exactly like the original, that it prepares
//! once per input shape, and roughly how fast each path is (a quick timing, not a benchmark:
//! see `bench/` for those).

use std::time::Instant;

use nnjit::ndarray::Array2;
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};

/// Dense → relu → Dense → relu → Dense.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Hidden widths.
    pub hidden: [usize; 2],
    /// Output features.
    pub out: usize,
}

impl Module for Mlp {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for &w in &self.hidden {
            h = nn::relu(s.call(&nn::Dense::new(w), h)?);
        }
        s.call(&nn::Dense::new(self.out), h)
    }
}

fn time_ns(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() -> nnjit::Result<()> {
    let plain = Mlp { hidden: [64, 64], out: 10 };
    let lifted = JitMlp { hidden: [64, 64], out: 10 }; // same fields, same construction
    let x = Array2::from_shape_fn((1, 32), |(_, j)| (j as f32 * 0.37).sin());

    let vars = plain.init(nn::PRNGKey(0), &x)?;
    assert!(vars.bits_eq(&lifted.init(nn::PRNGKey(0), &x)?), "lifted init == plain init");
    println!("{}\n", lifted.tabulate(nn::PRNGKey(0), &x)?);

    let y_plain = plain.apply(&vars, &x)?;
    let y_lifted = lifted.apply(&vars, &x)?;
    assert!(y_plain.iter().zip(y_lifted.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    println!("output {:?}: {y_lifted}", y_lifted.shape());
    println!("lifted == plain, bit for bit; shapes prepared: {}", lifted.cache_size());

    let batch = Array2::from_shape_fn((8, 32), |(i, j)| ((i * 32 + j) as f32 * 0.11).cos());
    lifted.apply(&vars, &batch)?;
    lifted.apply(&vars, &batch)?;
    println!("after two applies at batch 8: shapes prepared: {}", lifted.cache_size());

    let tp = time_ns(20_000, || drop(plain.apply(&vars, &x)));
    let tl = time_ns(20_000, || drop(lifted.apply(&vars, &x)));
    println!("apply at batch 1 (quick timing): plain {tp:.0} ns, lifted {tl:.0} ns");
    Ok(())
}
