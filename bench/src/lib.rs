//! Benchmark support for nnjit: the shapes, the seeded problems and the contenders (nnjit's
//! entries and the Rust libraries a user would otherwise call for a Dense forward), shared by
//! the Criterion benchmark (`benches/dense.rs`) and the report binary (`src/bin/report.rs`).
//!
//! Every contender computes `y = x·W + b` for `x` `(N, D)`, `W` `(D, F)`, `b` `(F)`, into an
//! output it owns (preallocated where the library allows it). The peers run single-threaded
//! (faer `Par::Seq`, gemm `Parallelism::None`, candle via `RAYON_NUM_THREADS=1`, ndarray and
//! nalgebra use matrixmultiply without threading), so the comparison is kernel against kernel.

pub mod chart;
pub mod probe;
pub mod torch;

use std::hint::black_box;

use nnjit::kernel::{best_isa, dense, Activation, DenseProblem, FixedDense, Isa, PackedDense};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The benchmarked shapes `(N, D, F)`.
pub const SHAPES: [(usize, usize, usize); 10] = [
    (1, 3, 4),
    (1, 16, 16),
    (1, 64, 64),
    (1, 256, 256),
    (1, 1024, 1024),
    (8, 128, 128),
    (32, 256, 256),
    (64, 512, 512),
    (128, 1024, 1024),
    (256, 784, 128),
];

/// Makes the peers single-threaded. Call before any contender runs.
///
/// tract needs nothing: its default executor is single-threaded (`tract_linalg::multithread`).
pub fn single_threaded() {
    // Read by candle (and rayon) when they size their thread pools.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    // candle's own worker pool reads this first (falling back to the one above).
    std::env::set_var("CANDLE_NUM_THREADS", "1");
}

/// One seeded Dense problem.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Rows.
    pub n: usize,
    /// Input features.
    pub d: usize,
    /// Output features.
    pub f: usize,
    /// `(n, d)` row-major.
    pub x: Vec<f32>,
    /// `(d, f)` row-major.
    pub w: Vec<f32>,
    /// `(f)`.
    pub b: Vec<f32>,
}

impl Problem {
    /// Uniform `[-1, 1)` data from a seed derived from the shape.
    pub fn new(n: usize, d: usize, f: usize) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed ^ ((n as u64) << 32) ^ ((d as u64) << 16) ^ f as u64);
        let mut gen = |len: usize| (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect::<Vec<f32>>();
        let x = gen(n * d);
        let w = gen(d * f);
        let b = gen(f);
        Problem { n, d, f, x, w, b }
    }

    /// `2·N·D·F`.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.d * self.f) as f64
    }

    /// Bytes of `W`, `b`, `x` and `y` (f32).
    pub fn bytes(&self) -> f64 {
        4.0 * (self.d * self.f + self.f + self.n * self.d + self.n * self.f) as f64
    }

    /// Bytes of `W` alone.
    pub fn w_bytes(&self) -> f64 {
        4.0 * (self.d * self.f) as f64
    }

    /// `N×D×F` label.
    pub fn label(&self) -> String {
        format!("{}x{}x{}", self.n, self.d, self.f)
    }
}

type RunFn = Box<dyn FnMut(Option<&mut Vec<f32>>, u64)>;

/// A library's way of computing the Dense forward, with its setup (packing, conversions)
/// already done.
pub struct Contender {
    /// Display name.
    pub name: String,
    /// Whether it follows Flax's arithmetic contract bit for bit.
    pub exact: bool,
    run: RunFn,
}

impl Contender {
    fn new(name: impl Into<String>, exact: bool, mut run: impl FnMut(Option<&mut Vec<f32>>) + 'static) -> Self {
        // The repetition loop lives inside the boxed closure, where `run` has a concrete type
        // and is inlined: a batch of forwards costs one dynamic call, so at the tiny shapes
        // the timings are of the forwards rather than of the harness (about 3 ns per call
        // through two boxed closures here, more than a 3→4 forward itself).
        let batched = move |out: Option<&mut Vec<f32>>, reps: u64| match out {
            Some(o) => run(Some(o)),
            None => {
                for _ in 0..reps {
                    run(None);
                }
            }
        };
        Contender { name: name.into(), exact, run: Box::new(batched) }
    }

    /// One forward.
    #[inline]
    pub fn run(&mut self) {
        (self.run)(None, 1)
    }

    /// `reps` forwards in one call (see [`Contender::batch`]).
    #[inline]
    pub fn run_batch(&mut self, reps: u64) {
        (self.run)(None, reps)
    }

    /// Forwards per timed call so that a call lasts about a microsecond (1 for forwards
    /// that take longer): the harness's own cost, one dynamic call, is then spread over the
    /// batch. Every contender's inputs go through `black_box` on every forward, so the
    /// forwards of a batch are independent work, as in a serving loop.
    pub fn batch(&mut self) -> u64 {
        self.run();
        let t = std::time::Instant::now();
        for _ in 0..16 {
            self.run();
        }
        let per_ns = t.elapsed().as_secs_f64() * 1e9 / 16.0;
        (1000.0 / per_ns).clamp(1.0, 1024.0) as u64
    }

    /// One forward, returning `y` row-major.
    pub fn output(&mut self) -> Vec<f32> {
        let mut v = Vec::new();
        (self.run)(Some(&mut v), 1);
        v
    }
}

/// The problem's parameters as nnjit variables (`params/kernel`, `params/bias`).
pub fn variables(p: &Problem) -> nnjit::Variables {
    let mut v = nnjit::Variables::new();
    let k = nnjit::ndarray::Array2::from_shape_vec((p.d, p.f), p.w.clone()).expect("shape").into_dyn();
    v.insert("params/kernel", k).expect("path");
    v.insert("params/bias", nnjit::ndarray::Array1::from(p.b.clone()).into_dyn()).expect("path");
    v
}

/// Name of the main nnjit contender, which ratios are computed against.
pub const OURS: &str = "nnjit PackedDense";

/// Name of the const-generic nnjit contender (only at the shapes it is instantiated for).
pub const FIXED: &str = "nnjit FixedDense";

/// The exact entries a lifted model binds its parameters with, on the best path: the packed
/// one (any shape) and the const-generic one (dims known at compile time).
pub const LIFTED: [&str; 2] = [OURS, FIXED];

/// Name of the hand-written loop (a baseline for the const-generic entry, not a library).
pub const HANDWRITTEN: &str = "hand-written fixed loop";

/// Whether a contender is another library (not nnjit, not the hand-written loop).
///
/// ```
/// use nnjit_bench::{is_peer, FIXED, HANDWRITTEN, LIFTED};
/// assert!(is_peer("nalgebra SMatrix"));
/// assert!(!is_peer(FIXED) && !is_peer(HANDWRITTEN));
/// assert!(LIFTED.iter().all(|name| !is_peer(name)));
/// ```
pub fn is_peer(name: &str) -> bool {
    !name.starts_with("nnjit") && name != HANDWRITTEN
}

/// Every contender for `p`. `extra_isas` adds nnjit's PackedDense on each other available
/// SIMD path.
pub fn contenders(p: &Problem, extra_isas: bool) -> Vec<Contender> {
    let mut out = Vec::new();
    let (n, d, f) = (p.n, p.d, p.f);
    let isa = best_isa();

    // ---- nnjit ------------------------------------------------------------------------
    {
        let layer = PackedDense::new(isa, &p.w, Some(&p.b), d, f).expect("pack");
        let x = p.x.clone();
        let mut y = vec![0.0f32; n * f];
        out.push(Contender::new(OURS, true, move |o| {
            layer.apply(black_box(&x), n, &mut y, Activation::Identity).unwrap();
            black_box(&mut y);
            if let Some(o) = o {
                o.clone_from(&y);
            }
        }));
    }
    if extra_isas {
        for other in Isa::all_available() {
            if other == isa || other == Isa::Scalar {
                continue;
            }
            let layer = PackedDense::new(other, &p.w, Some(&p.b), d, f).expect("pack");
            let x = p.x.clone();
            let mut y = vec![0.0f32; n * f];
            out.push(Contender::new(format!("{OURS} ({other})"), true, move |o| {
                layer.apply(black_box(&x), n, &mut y, Activation::Identity).unwrap();
                black_box(&mut y);
                if let Some(o) = o {
                    o.clone_from(&y);
                }
            }));
        }
    }
    if let Some(c) = fixed(p) {
        out.push(c);
    }
    {
        let (x, w, b) = (p.x.clone(), p.w.clone(), p.b.clone());
        let mut y = vec![0.0f32; n * f];
        out.push(Contender::new("nnjit dense (unpacked)", true, move |o| {
            dense(
                isa,
                &DenseProblem { x: black_box(&x), w: &w, bias: Some(&b), n, d, f, act: Activation::Identity },
                &mut y,
            )
            .unwrap();
            black_box(&mut y);
            if let Some(o) = o {
                o.clone_from(&y);
            }
        }));
    }

    // ---- nnjit module-level APIs ----------------------------------------------------------
    {
        use nnjit::nn::{Lifted, Module};
        let vars = variables(p);
        let x = nnjit::ndarray::Array2::from_shape_vec((n, d), p.x.clone()).expect("shape").into_dyn();
        let (plain, lifted) = (nnjit::nn::Dense::new(f), nnjit::nn::JitDense::new(f));
        {
            let (vars, x) = (vars.clone(), x.clone());
            out.push(Contender::new("nnjit nn::Dense apply", true, move |o| {
                let y = plain.apply(black_box(&vars), black_box(&x)).unwrap();
                if let Some(o) = o {
                    *o = y.iter().copied().collect();
                }
                drop(black_box(y));
            }));
        }
        {
            let (vars, x, lifted) = (vars.clone(), x.clone(), lifted.clone());
            out.push(Contender::new("nnjit JitDense apply", true, move |o| {
                let y = lifted.apply(black_box(&vars), black_box(&x)).unwrap();
                if let Some(o) = o {
                    *o = y.iter().copied().collect();
                }
                drop(black_box(y));
            }));
        }
        {
            let mut y = vec![0.0f32; n * f];
            out.push(Contender::new("nnjit JitDense apply_into", true, move |o| {
                lifted.apply_into(black_box(&vars), black_box(&x), &mut y).unwrap();
                black_box(&mut y);
                if let Some(o) = o {
                    o.clone_from(&y);
                }
            }));
        }
    }

    // ---- peers ----------------------------------------------------------------------------
    out.push(ndarray_contender(p));
    out.push(ndarray_dot(p));
    if let Some(c) = handwritten(p) {
        out.push(c);
    }
    out.push(nalgebra_dmatrix(p));
    if let Some(c) = nalgebra_smatrix(p) {
        out.push(c);
    }
    out.push(faer_contender(p));
    out.push(gemm_contender(p));
    out.push(candle_contender(p));
    out
}

fn fixed(p: &Problem) -> Option<Contender> {
    fn make<const D: usize, const F: usize>(p: &Problem) -> Contender {
        let layer = FixedDense::<D, F>::new(best_isa(), &p.w, Some(&p.b)).expect("bind");
        let x: [f32; D] = p.x[..D].try_into().unwrap();
        Contender::new(FIXED, true, move |o| {
            let y = layer.apply(black_box(&x));
            black_box(&y);
            if let Some(o) = o {
                *o = y.to_vec();
            }
        })
    }
    match (p.n, p.d, p.f) {
        (1, 3, 4) => Some(make::<3, 4>(p)),
        (1, 16, 16) => Some(make::<16, 16>(p)),
        (1, 64, 64) => Some(make::<64, 64>(p)),
        _ => None,
    }
}

/// What a user would write by hand for a fixed shape: arrays, a double loop, `*` and `+`
/// (the baseline of the const-generic entry).
fn handwritten(p: &Problem) -> Option<Contender> {
    fn make<const D: usize, const F: usize>(p: &Problem) -> Contender {
        let mut w = [[0.0f32; F]; D];
        for (k, row) in w.iter_mut().enumerate() {
            row.copy_from_slice(&p.w[k * F..(k + 1) * F]);
        }
        let b: [f32; F] = p.b[..F].try_into().unwrap();
        let x: [f32; D] = p.x[..D].try_into().unwrap();
        Contender::new(HANDWRITTEN, false, move |o| {
            let x = black_box(&x);
            let mut y = b;
            for (xk, row) in x.iter().zip(w.iter()) {
                for (yj, wkj) in y.iter_mut().zip(row.iter()) {
                    *yj += xk * wkj;
                }
            }
            black_box(&y);
            if let Some(o) = o {
                *o = y.to_vec();
            }
        })
    }
    match (p.n, p.d, p.f) {
        (1, 3, 4) => Some(make::<3, 4>(p)),
        (1, 16, 16) => Some(make::<16, 16>(p)),
        (1, 64, 64) => Some(make::<64, 64>(p)),
        _ => None,
    }
}

/// ndarray as most users call it: `x.dot(&w) + &b`, allocating the result.
fn ndarray_dot(p: &Problem) -> Contender {
    use ndarray::{Array1, Array2};
    let x = Array2::from_shape_vec((p.n, p.d), p.x.clone()).unwrap();
    let w = Array2::from_shape_vec((p.d, p.f), p.w.clone()).unwrap();
    let b = Array1::from_vec(p.b.clone());
    Contender::new("ndarray x.dot(&w) + &b", false, move |o| {
        let y = black_box(&x).dot(&w) + &b;
        if let Some(o) = o {
            *o = y.iter().copied().collect();
        }
        drop(black_box(y));
    })
}

fn ndarray_contender(p: &Problem) -> Contender {
    use ndarray::{linalg::general_mat_mul, Array1, Array2};
    let x = Array2::from_shape_vec((p.n, p.d), p.x.clone()).unwrap();
    let w = Array2::from_shape_vec((p.d, p.f), p.w.clone()).unwrap();
    let b = Array1::from_vec(p.b.clone());
    let mut y = Array2::<f32>::zeros((p.n, p.f));
    Contender::new("ndarray dot + bias", false, move |o| {
        general_mat_mul(1.0, black_box(&x), &w, 0.0, &mut y);
        y += &b;
        black_box(&mut y);
        if let Some(o) = o {
            *o = y.iter().copied().collect();
        }
    })
}

fn nalgebra_dmatrix(p: &Problem) -> Contender {
    use nalgebra::DMatrix;
    let x = DMatrix::from_row_slice(p.n, p.d, &p.x);
    let w = DMatrix::from_row_slice(p.d, p.f, &p.w);
    let b = p.b.clone();
    let mut y = DMatrix::<f32>::zeros(p.n, p.f);
    Contender::new("nalgebra DMatrix", false, move |o| {
        y.gemm(1.0, black_box(&x), &w, 0.0);
        for (mut col, &bj) in y.column_iter_mut().zip(&b) {
            col.add_scalar_mut(bj);
        }
        black_box(&mut y);
        if let Some(o) = o {
            *o = y.transpose().iter().copied().collect();
        }
    })
}

fn nalgebra_smatrix(p: &Problem) -> Option<Contender> {
    macro_rules! make {
        ($d:literal, $f:literal) => {{
            use nalgebra::SMatrix;
            let x = SMatrix::<f32, 1, $d>::from_row_slice(&p.x);
            let w = SMatrix::<f32, $d, $f>::from_row_slice(&p.w);
            let b = SMatrix::<f32, 1, $f>::from_row_slice(&p.b);
            // Boxed so that the 64×64 case does not sit in the closure by value on the stack.
            let w = Box::new(w);
            Some(Contender::new("nalgebra SMatrix", false, move |o| {
                let y = black_box(&x) * &*w + b;
                black_box(&y);
                if let Some(o) = o {
                    *o = y.iter().copied().collect();
                }
            }))
        }};
    }
    match (p.n, p.d, p.f) {
        (1, 3, 4) => make!(3, 4),
        (1, 16, 16) => make!(16, 16),
        (1, 64, 64) => make!(64, 64),
        _ => None,
    }
}

fn faer_contender(p: &Problem) -> Contender {
    use faer::{linalg::matmul::matmul, Accum, Mat, Par};
    let (n, d, f) = (p.n, p.d, p.f);
    let x = Mat::<f32>::from_fn(n, d, |i, k| p.x[i * d + k]);
    let w = Mat::<f32>::from_fn(d, f, |k, j| p.w[k * f + j]);
    let b = p.b.clone();
    let mut y = Mat::<f32>::zeros(n, f);
    Contender::new("faer matmul", false, move |o| {
        for (j, &bj) in b.iter().enumerate() {
            y.col_mut(j).fill(bj);
        }
        matmul(&mut y, Accum::Add, black_box(&x), &w, 1.0, Par::Seq);
        black_box(&mut y);
        if let Some(o) = o {
            *o = (0..n).flat_map(|i| (0..f).map(move |j| (i, j))).map(|(i, j)| y[(i, j)]).collect();
        }
    })
}

fn gemm_contender(p: &Problem) -> Contender {
    let (n, d, f) = (p.n, p.d, p.f);
    let (x, w, b) = (p.x.clone(), p.w.clone(), p.b.clone());
    let mut y = vec![0.0f32; n * f];
    Contender::new("gemm crate", false, move |o| {
        gemm_forward(n, d, f, black_box(&x), &w, &b, &mut y, gemm::Parallelism::None);
        black_box(&mut y);
        if let Some(o) = o {
            o.clone_from(&y);
        }
    })
}

fn candle_contender(p: &Problem) -> Contender {
    use candle_core::{Device, Tensor};
    let dev = Device::Cpu;
    let x = Tensor::from_slice(&p.x, (p.n, p.d), &dev).unwrap();
    let w = Tensor::from_slice(&p.w, (p.d, p.f), &dev).unwrap();
    let b = Tensor::from_slice(&p.b, p.f, &dev).unwrap();
    Contender::new("candle matmul + bias", false, move |o| {
        let y = black_box(&x).matmul(&w).unwrap().broadcast_add(&b).unwrap();
        black_box(&y);
        if let Some(o) = o {
            *o = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        }
    })
}

/// Largest `|a - b| / (1 + |b|)` over two outputs (∞ if the lengths differ).
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).map(|(&x, &y)| ((x - y).abs() / (1.0 + y.abs())) as f64).fold(0.0, f64::max)
}

/// Checks every contender against nnjit's reference: bit-exact ones bit for bit, peers within
/// a float32 rounding tolerance. Returns a description of the first mismatch.
pub fn verify(p: &Problem, cs: &mut [Contender]) -> Result<(), String> {
    let mut want = vec![0.0f32; p.n * p.f];
    nnjit::kernel::reference::dense_reference(
        &DenseProblem { x: &p.x, w: &p.w, bias: Some(&p.b), n: p.n, d: p.d, f: p.f, act: Activation::Identity },
        &mut want,
    )
    .map_err(|e| e.to_string())?;
    for c in cs.iter_mut() {
        let got = c.output();
        if c.exact {
            let same = got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            if !same {
                return Err(format!("{} on {}: not bit-identical to the reference", c.name, p.label()));
            }
        } else {
            let e = max_rel_diff(&got, &want);
            if e > 1e-3 {
                return Err(format!("{} on {}: relative error {e:e}", c.name, p.label()));
            }
        }
    }
    Ok(())
}

/// `y = x·W + b` with the gemm crate (`y` is set to the bias, then `y += x·W`), row-major.
///
/// # Panics
/// If a buffer's length does not match `n`, `d`, `f`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_forward(
    n: usize,
    d: usize,
    f: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    par: gemm::Parallelism,
) {
    assert!(x.len() == n * d && w.len() == d * f && b.len() == f && y.len() == n * f, "buffer sizes");
    for row in y.chunks_exact_mut(f) {
        row.copy_from_slice(b);
    }
    // SAFETY: row-major (n, d), (d, f) and (n, f) buffers of exactly those sizes (asserted), with
    // column stride 1 and row strides d, f, f; `y` is a unique borrow, so it aliases no input.
    unsafe {
        gemm::gemm(
            n,
            f,
            d,
            y.as_mut_ptr(),
            1,
            f as isize,
            true,
            x.as_ptr(),
            1,
            d as isize,
            w.as_ptr(),
            1,
            f as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    };
}

/// The MLP of the lift benchmark: Dense → relu → Dense → relu → Dense (`#[nn::jit]` also makes
/// `JitMlp`).
#[nnjit::nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Output widths of the three Dense layers.
    pub widths: [usize; 3],
}

impl nnjit::nn::Module for Mlp {
    type Input = nnjit::nn::Tensor;
    type Output = nnjit::nn::Tensor;

    fn call(&self, s: &mut nnjit::nn::Scope<'_, '_>, x: nnjit::nn::Tensor) -> nnjit::Result<nnjit::nn::Tensor> {
        use nnjit::nn;
        let h = nn::relu(s.call(&nn::Dense::new(self.widths[0]), x)?);
        let h = nn::relu(s.call(&nn::Dense::new(self.widths[1]), h)?);
        s.call(&nn::Dense::new(self.widths[2]), h)
    }
}
