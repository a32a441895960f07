use std::hint::black_box;
use std::time::Instant;
use nnjit::kernel::*;

#[inline(never)]
fn packed(l: &PackedDense, x: &[f32], y: &mut [f32]) { l.apply(x, 1, y, Activation::Identity).unwrap() }

fn time(mut f: impl FnMut()) -> f64 {
    let iters = 5_000_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters { f(); }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / iters as f64);
    }
    best
}

macro_rules! fixed_at { ($isa:expr, $w:expr, $($d:literal)*) => {$({
    let l = FixedDense::<$d, 16>::new($isa, &$w[..$d * 16], Some(&$w[..16])).unwrap();
    let x = [0.5f32; $d];
    let tf = time(|| { black_box(black_box(&l).apply(black_box(&x))); });
    let p = PackedDense::new($isa, &$w[..$d * 16], Some(&$w[..16]), $d, 16).unwrap();
    let mut y = [0.0f32; 16];
    let tp = time(|| { packed(black_box(&p), black_box(&x), black_box(&mut y[..])); });
    println!("D={:3} F=16  fixed {tf:6.2} ns  packed {tp:6.2} ns", $d);
})*}}

fn main() {
    let isa = std::env::args().nth(1).and_then(|s| Isa::from_name(&s)).unwrap_or(best_isa());
    let w: Vec<f32> = (0..64*16).map(|i| (i as f32 * 0.37).sin()).collect();
    fixed_at!(isa, w, 1 2 4 8 16 32 64);
}
