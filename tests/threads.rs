//! Module applies on several threads (`set_num_threads`): plain and lifted Dense and a lifted
//! composite give the bits of one thread, for shapes split by rows and by columns.
//!
//! The thread count is process-wide, so this file holds one test (its own process).

use nnjit::kernel::parallel::{choose_split, num_threads, set_num_threads, Split};
use nnjit::ndarray::{Array2, ArrayD};
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};

#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Mlp {
    hidden: usize,
    out: usize,
}

impl Module for Mlp {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(self.hidden), x)?);
        s.call(&nn::Dense::new(self.out), h)
    }
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn threads_change_speed_not_bits() {
    if std::env::var_os("NNJIT_NUM_THREADS").is_none() {
        assert_eq!(num_threads(), 1, "the default is the calling thread only");
    }
    // (rows, in, out, split on 2 threads): a narrow GEMM split by rows, a batch-1 GEMV, a
    // few-row product and a wide GEMM split by columns.
    for (n, d, f, by_rows) in [(48, 256, 64, true), (1, 700, 900, false), (3, 512, 640, false), (48, 256, 192, false)] {
        set_num_threads(2);
        let want = if by_rows { Split::Rows(2) } else { Split::Columns(2) };
        assert_eq!(choose_split(n, d, f, num_threads()), want, "{n}x{d}x{f}");
        let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 31 + j * 7) % 23) as f32 * 0.125 - 1.4);
        let mut x = x.into_dyn();
        x[[0, 1]] = f32::NAN;
        x[[n - 1, d - 2]] = f32::INFINITY;
        let plain = nn::Dense::new(f);
        let vars = plain.init(nn::PRNGKey(7), &x).unwrap();
        let lifted = nn::JitDense::new(f);
        let mlp = JitMlp { hidden: f, out: 33 };
        let mvars = mlp.init(nn::PRNGKey(3), &x).unwrap();
        let mut outs = Vec::new();
        for threads in [1, 2, 3] {
            set_num_threads(threads);
            let mut into = vec![0.0f32; n * f];
            lifted.apply_into(&vars, &x, &mut into).unwrap();
            let into = ArrayD::from_shape_vec(vec![n, f], into).unwrap();
            let bound = lifted.bind(&vars, &x).unwrap().apply(&x).unwrap();
            outs.push([
                bits(&plain.apply(&vars, &x).unwrap()),
                bits(&lifted.apply(&vars, &x).unwrap()),
                bits(&into),
                bits(&bound),
                bits(&mlp.apply(&mvars, &x).unwrap()),
                bits(&Mlp::from(mlp.clone()).apply(&mvars, &x).unwrap()),
            ]);
        }
        let one = &outs[0];
        assert!(one[1..4].iter().all(|o| *o == one[0]), "{n}x{d}x{f}: entries differ on one thread");
        assert_eq!(one[4], one[5], "{n}x{d}x{f}: lifted and plain MLP differ on one thread");
        for (t, o) in outs.iter().enumerate().skip(1) {
            assert_eq!(o, one, "{n}x{d}x{f}: {} threads changed the bits", t + 1);
        }
    }
    // A chain program with ≥ 64 rows per thread splits by row blocks through every layer.
    let x = Array2::from_shape_fn((200, 64), |(i, j)| ((i * 13 + j * 5) % 29) as f32 * 0.07 - 1.0).into_dyn();
    let mlp = JitMlp { hidden: 64, out: 8 };
    let vars = mlp.init(nn::PRNGKey(5), &x).unwrap();
    let mut outs = Vec::new();
    for threads in [1, 2, 3] {
        set_num_threads(threads);
        let mut into = vec![0.0f32; 200 * 8];
        mlp.apply_into(&vars, &x, &mut into).unwrap();
        let bound = mlp.bind(&vars, &x).unwrap().apply(&x).unwrap();
        outs.push((
            bits(&mlp.apply(&vars, &x).unwrap()),
            into.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            bits(&bound),
        ));
    }
    let plain = bits(&Mlp::from(mlp.clone()).apply(&vars, &x).unwrap());
    for (t, (a, b, c)) in outs.iter().enumerate() {
        assert!(*a == plain && *b == plain && *c == plain, "row-split chain, {} threads", t + 1);
    }
    set_num_threads(1);
}
