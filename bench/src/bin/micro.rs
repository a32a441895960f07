use nnjit::kernel::*;
use std::time::Instant;

fn min_ns(mut f: impl FnMut(), reps: usize) -> f64 {
    for _ in 0..reps {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..25 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / reps as f64);
    }
    best
}

fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .map(|s| {
            let v: Vec<usize> = s.split('x').map(|t| t.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect();
    for &(n, d, f) in &shapes {
        let p = nnjit_bench::Problem::new(n, d, f);
        let mut y = vec![0.0f32; n * f];
        let reps = (2_000_000 / (n * d * f)).max(3);
        print!("{n}x{d}x{f}:");
        for isa in Isa::all_available() {
            let pk = PackedDense::new(isa, &p.w, Some(&p.b), d, f).unwrap();
            let t_p = min_ns(|| pk.apply(&p.x, n, &mut y, Activation::Identity).unwrap(), reps);
            let t_d =
                min_ns(|| dense(isa, &p.x, &p.w, Some(&p.b), &mut y, n, d, f, Activation::Identity).unwrap(), reps);
            print!("  {isa}: packed {t_p:9.1} dense {t_d:9.1}");
        }
        println!();
    }
}
