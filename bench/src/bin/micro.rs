use nnjit_bench::probe::median_ns;
use nnjit::kernel::*;
use std::time::Duration;

fn main() {
    for &(n, d, f) in &[(1usize, 256usize, 256usize), (1, 1024, 1024), (1, 512, 2048), (1, 2048, 512)] {
        let p = nnjit_bench::Problem::new(n, d, f);
        let mut y = vec![0.0f32; n * f];
        let t_dense = median_ns(|| dense(best_isa(), &p.x, &p.w, Some(&p.b), &mut y, n, d, f, Activation::Identity).unwrap(), Duration::from_millis(30), 11);
        let pk = PackedDense::new(best_isa(), &p.w, Some(&p.b), d, f).unwrap();
        let t_p = median_ns(|| pk.apply(&p.x, n, &mut y, Activation::Identity).unwrap(), Duration::from_millis(30), 11);
        println!("{n}x{d}x{f}: dense {t_dense:9.1}  packed {t_p:9.1}");
    }
}
