//! Whole models, one thread: nnjit's entries against their floor (the packed kernels alone) and
//! the Rust crates a user would pick to run the same trained MLP (ndarray, nalgebra, candle,
//! tract-onnx), for the MLPs 32→64→64→10 and 784→512→512→10 at batches 1, 8, 64 and 256, and
//! four identical lifted blocks inside a plain parent.
//!
//! `cargo run --release -p nnjit-bench --bin models [-- --quick] [--only "32→64→64→10, 1"] [--threads [--torch PYTHON]]`
//!
//! `--threads` times only the lifted 784→512→512→10 (`apply_into`) on one and on two threads
//! (`parallel::set_num_threads`), interleaved, at batches 1, 8, 64 and 1024, and prints each
//! batch's speed-up paired by round; both outputs are checked bit for bit first. With
//! `--torch PYTHON` (an interpreter with `torch` and `numpy`), eager PyTorch runs the same
//! model on one and two threads in a child process (`bench/src/torch.rs`,
//! `bench/python/torch_mlp.py`), its output checked within float32 rounding, its samples
//! interleaved with ours round by round.
//!
//! Every contender is built from the same parameters (nnjit's `Variables`:
//! `params/Dense_i/kernel` `(in, out)` and `params/Dense_i/bias`) and listed in [`CONTENDERS`];
//! each one's output is checked before timing (nnjit entries bit for bit against the plain
//! apply, the other crates within float32 rounding). Contenders are timed in interleaved rounds
//! of short samples (`probe::interleaved_samples`), so machine load hits them alike; the table
//! gives median ns per forward and each entry's ratio to the floor, paired by round (the median
//! of its per-round ratios, `probe::paired_ratios`), and the lifted apply against the fastest
//! peer, paired the same way. Every crate runs on one thread: candle
//! through `RAYON_NUM_THREADS`/`CANDLE_NUM_THREADS` (`nnjit_bench::single_threaded`), tract with
//! its default single-thread executor, ndarray and nalgebra through matrixmultiply without
//! threading. Writes `bench/results/models.csv` and `bench/results/models.svg` (ratio to the
//! floor per model and batch).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use ndarray::{Array1, Array2, ArrayD};
use nnjit::kernel::{best_isa, Activation, PackedDense};
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};
use nnjit::Variables;
use nnjit_bench::chart::{Bar, BarChart, Group, Layout, Series};
use nnjit_bench::probe::{calibrate, interleaved_samples, median, paired_ratio, paired_ratios, sample_ns};
use nnjit_bench::torch::Torch;
use nnjit_bench::{max_rel_diff, single_threaded};

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

/// `--threads`: the lifted 784→512→512→10 on one and two threads, and PyTorch's where
/// `torch` is given (see the module docs).
fn threads(sample: Duration, rounds: usize, mut torch: Option<Torch>) {
    if let Some(t) = torch.as_mut() {
        println!("PyTorch: {}", t.version().expect("PyTorch's version"));
    }
    for n in [1usize, 8, 64, 1024] {
        let case = Case::new(784, &[512, 512, 10], n);
        let mut runs: Vec<Box<dyn FnMut()>> = Vec::new();
        for t in THREADS {
            let (lifted, vars, x) = (JitMlp { widths: case.widths.clone() }, case.vars.clone(), case.x.clone());
            let mut out = vec![0.0f32; case.want.len()];
            nnjit::kernel::parallel::set_num_threads(t);
            lifted.apply_into(&vars, &x, &mut out).expect("apply_into");
            let same = out.iter().zip(&case.want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "batch {n} on {t} threads: not bit for bit the plain apply");
            runs.push(Box::new(move || {
                nnjit::kernel::parallel::set_num_threads(t);
                lifted.apply_into(&vars, black_box(&x), &mut out).expect("apply_into");
                black_box(&mut out);
            }));
        }
        let model = case.model();
        let Some(torch) = torch.as_mut() else {
            let mut refs: Vec<&mut dyn FnMut()> = runs.iter_mut().map(|r| &mut **r as &mut dyn FnMut()).collect();
            let s = interleaved_samples(&mut refs, sample, rounds);
            println!(
                "{model}, batch {n}: 1 thread {:.0} ns, 2 threads {:.0} ns, speed-up {:.2}x (paired by round)",
                median(&s[0]),
                median(&s[1]),
                paired_ratio(&s[0], &s[1])
            );
            continue;
        };
        let layers: Vec<_> = (0..case.widths.len()).map(|i| case.layer(i)).collect();
        let got = torch.load(&layers, &case.xs(), n, case.d).expect("PyTorch's load");
        let err = max_rel_diff(&got, &case.want);
        assert!(err <= TOLERANCE, "PyTorch at {model}, batch {n}: relative error {err:e}");
        let s = interleaved_with_torch(&mut runs, torch, sample, rounds);
        let (ours, theirs) = (&s[..2], &s[2..]);
        println!(
            "{model}, batch {n}: nnjit 1 thread {:.0} ns, 2 threads {:.0} ns ({:.2}x); PyTorch 1 thread {:.0} ns, \
             2 threads {:.0} ns ({:.2}x); nnjit / PyTorch {:.2} on 1 thread, {:.2} on 2 (paired by round; \
             PyTorch's max relative difference {err:.1e})",
            median(&ours[0]),
            median(&ours[1]),
            paired_ratio(&ours[0], &ours[1]),
            median(&theirs[0]),
            median(&theirs[1]),
            paired_ratio(&theirs[0], &theirs[1]),
            paired_ratio(&ours[0], &theirs[0]),
            paired_ratio(&ours[1], &theirs[1]),
        );
    }
}

/// The thread counts of `--threads`.
const THREADS: [usize; 2] = [1, 2];

/// Samples of `ours` (one per thread count) and of PyTorch on each thread count, in
/// interleaved rounds as [`interleaved_samples`]: `[ours on 1, ours on 2, PyTorch on 1, PyTorch
/// on 2][round]`. Each timed sample follows an untimed one as long: after the other process
/// ran, our two threads at batches 8 and 64 took several milliseconds to scale again (1.0×
/// with only the usual eighth of a sample to warm up, 1.4–1.5× after a whole one).
fn interleaved_with_torch(
    ours: &mut [Box<dyn FnMut()>],
    torch: &mut Torch,
    sample: Duration,
    rounds: usize,
) -> Vec<Vec<f64>> {
    let mut iters: Vec<u64> = ours.iter_mut().map(|f| calibrate(&mut **f, sample)).collect();
    for t in THREADS {
        torch.set_threads(t).expect("PyTorch's threads");
        iters.push(torch.calibrate(sample).expect("PyTorch's calibration"));
    }
    let mut times = vec![Vec::with_capacity(rounds); iters.len()];
    for _ in 0..rounds.max(1) {
        for (i, f) in ours.iter_mut().enumerate() {
            sample_ns(&mut **f, iters[i]);
            times[i].push(sample_ns(&mut **f, iters[i]));
        }
        for (j, t) in THREADS.into_iter().enumerate() {
            let k = ours.len() + j;
            torch.set_threads(t).expect("PyTorch's threads");
            torch.sample_ns(iters[k]).expect("PyTorch's sample");
            times[k].push(torch.sample_ns(iters[k]).expect("PyTorch's sample"));
        }
    }
    times
}

fn input(n: usize, d: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 131 + j * 7) % 97) as f32 / 97.0 - 0.5)
}

fn same_bits(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// One model at one batch: what every contender is built from.
struct Case {
    /// Input features.
    d: usize,
    /// Output widths of the Dense layers (relu between them).
    widths: Vec<usize>,
    /// Rows.
    n: usize,
    /// The input, `(n, d)`.
    x: Array2<f32>,
    /// The parameters, initialised by nnjit (`params/Dense_i/{kernel,bias}`).
    vars: Variables,
    /// The plain apply's output, row-major: every contender is checked against it.
    want: Vec<f32>,
}

impl Case {
    fn new(d: usize, widths: &[usize], n: usize) -> Case {
        let x = input(n, d);
        let plain = Mlp { widths: widths.to_vec() };
        let vars = plain.init(nn::PRNGKey(0), &x).expect("init");
        let want = plain.apply(&vars, &x).expect("apply").iter().copied().collect();
        Case { d, widths: widths.to_vec(), n, x, vars, want }
    }

    /// `32→64→64→10`.
    fn model(&self) -> String {
        format!("{}→{}", self.d, self.widths.iter().map(ToString::to_string).collect::<Vec<_>>().join("→"))
    }

    /// Layer `i`'s kernel `(in, out)` and bias `(out)`, row-major.
    fn layer(&self, i: usize) -> (Vec<f32>, Vec<f32>) {
        let k = self.vars.get(&format!("params/Dense_{i}/kernel")).expect("kernel");
        let b = self.vars.get(&format!("params/Dense_{i}/bias")).expect("bias");
        (k.iter().copied().collect(), b.iter().copied().collect())
    }

    /// Layer `i`'s `(in, out)` widths.
    fn dims(&self, i: usize) -> (usize, usize) {
        (if i == 0 { self.d } else { self.widths[i - 1] }, self.widths[i])
    }

    fn xs(&self) -> Vec<f32> {
        self.x.iter().copied().collect()
    }
}

type RunFn = Box<dyn FnMut(Option<&mut Vec<f32>>)>;

/// One way of running the model, its setup done: `run(None)` is one timed forward,
/// `run(Some(out))` one forward that also copies the output (row-major) into `out`.
struct Contender {
    name: &'static str,
    /// nnjit's own entries (and the floor): bit for bit equal to the plain apply. The others
    /// (the peers) are checked within float32 rounding.
    exact: bool,
    run: RunFn,
}

impl Contender {
    fn new(name: &'static str, exact: bool, run: impl FnMut(Option<&mut Vec<f32>>) + 'static) -> Option<Contender> {
        Some(Contender { name, exact, run: Box::new(run) })
    }
}

/// Builds a contender for a case (`None`: it does not run at that model or batch).
type Maker = fn(&Case) -> Option<Contender>;

/// Every contender, in the table's order; the first is the floor that ratios are taken to.
const CONTENDERS: &[Maker] = &[
    floor,
    lifted_apply,
    lifted_apply_into,
    bound_entry,
    fixed_entry,
    plain_apply,
    ndarray_peer,
    nalgebra_peer,
    candle_peer,
    tract_peer,
];

/// The packed kernels alone (relu fused), on preallocated buffers: what no entry can beat.
struct Floor {
    layers: Vec<PackedDense>,
    bufs: Vec<Vec<f32>>,
    n: usize,
}

impl Floor {
    fn new(case: &Case) -> Floor {
        let layers = (0..case.widths.len())
            .map(|i| {
                let (k, b) = case.layer(i);
                let (din, f) = case.dims(i);
                PackedDense::new(best_isa(), &k, Some(&b), din, f).expect("pack")
            })
            .collect();
        let bufs = case.widths.iter().map(|&f| vec![0.0f32; case.n * f]).collect();
        Floor { layers, bufs, n: case.n }
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

fn floor(case: &Case) -> Option<Contender> {
    let mut floor = Floor::new(case);
    let xs = case.xs();
    Contender::new("floor", true, move |o| {
        let y = black_box(floor.run(black_box(&xs)));
        if let Some(o) = o {
            o.clear();
            o.extend_from_slice(y);
        }
    })
}

fn lifted_apply(case: &Case) -> Option<Contender> {
    let lifted = JitMlp { widths: case.widths.clone() };
    let (vars, x) = (case.vars.clone(), case.x.clone());
    Contender::new("lifted apply", true, move |o| {
        let y = lifted.apply(&vars, black_box(&x)).expect("apply");
        if let Some(o) = o {
            *o = y.iter().copied().collect();
        }
        drop(black_box(y));
    })
}

fn lifted_apply_into(case: &Case) -> Option<Contender> {
    let lifted = JitMlp { widths: case.widths.clone() };
    let (vars, x) = (case.vars.clone(), case.x.clone());
    let mut out = vec![0.0f32; case.want.len()];
    Contender::new("lifted apply_into", true, move |o| {
        lifted.apply_into(&vars, black_box(&x), &mut out).expect("apply_into");
        black_box(&mut out);
        if let Some(o) = o {
            o.clone_from(&out);
        }
    })
}

/// `Lifted::bind` → `Bound::apply_into`: the program bound to the parameters once, on caller
/// buffers.
fn bound_entry(case: &Case) -> Option<Contender> {
    let lifted = JitMlp { widths: case.widths.clone() };
    let bound = lifted.bind(&case.vars, &case.x).expect("bind");
    let xs = case.xs();
    let mut out = vec![0.0f32; case.want.len()];
    Contender::new("bound apply_into", true, move |o| {
        bound.apply_into(black_box(&xs), &mut out).expect("bound");
        black_box(&mut out);
        if let Some(o) = o {
            o.clone_from(&out);
        }
    })
}

/// `Bound::into_fixed::<D, F, B>` → `Fixed::apply_batch`: widths and batch as const generics,
/// arrays in and out (instantiated for the shapes below).
fn fixed_entry(case: &Case) -> Option<Contender> {
    fn make<const D: usize, const F: usize, const B: usize>(case: &Case) -> Option<Contender> {
        let lifted = JitMlp { widths: case.widths.clone() };
        let fixed = lifted.bind(&case.vars, &case.x).ok()?.into_fixed::<D, F, B>().ok()?;
        let mut x = [[0.0f32; D]; B];
        x.as_flattened_mut().copy_from_slice(&case.xs());
        Contender::new("const-generic apply", true, move |o| {
            let y = fixed.apply_batch(black_box(&x)).expect("fixed");
            if let Some(o) = o {
                *o = y.as_flattened().to_vec();
            }
            black_box(y);
        })
    }
    match (case.d, *case.widths.last()?, case.n) {
        (32, 10, 1) => make::<32, 10, 1>(case),
        (32, 10, 8) => make::<32, 10, 8>(case),
        (32, 10, 64) => make::<32, 10, 64>(case),
        (784, 10, 1) => make::<784, 10, 1>(case),
        (784, 10, 8) => make::<784, 10, 8>(case),
        _ => None,
    }
}

fn plain_apply(case: &Case) -> Option<Contender> {
    let plain = Mlp { widths: case.widths.clone() };
    let (vars, x) = (case.vars.clone(), case.x.clone());
    Contender::new("plain apply", true, move |o| {
        let y = plain.apply(&vars, black_box(&x)).expect("apply");
        if let Some(o) = o {
            *o = y.iter().copied().collect();
        }
        drop(black_box(y));
    })
}

/// ndarray: `x.dot(&w) + &b` and relu per layer (what a user would write by hand).
fn ndarray_peer(case: &Case) -> Option<Contender> {
    let layers: Vec<(Array2<f32>, Array1<f32>)> = (0..case.widths.len())
        .map(|i| {
            let (k, b) = case.layer(i);
            (Array2::from_shape_vec(case.dims(i), k).expect("kernel"), Array1::from(b))
        })
        .collect();
    let x = case.x.clone();
    Contender::new("ndarray", false, move |o| {
        let mut h = black_box(&x).clone();
        for (i, (w, b)) in layers.iter().enumerate() {
            h = h.dot(w) + b;
            if i + 1 < layers.len() {
                h.mapv_inplace(nnjit::layers::relu_scalar);
            }
        }
        if let Some(o) = o {
            *o = h.iter().copied().collect();
        }
        drop(black_box(h));
    })
}

/// nalgebra (column-major), on preallocated buffers: each layer's weight as a `DMatrix`
/// `(out, in)`; at batch 1 a `DVector` and `gemv`, above it the batch's columns (`x` row-major
/// `(n, d)` is `xᵀ` column-major) and `gemm`; the bias copied in first (`beta = 1`), then relu.
fn nalgebra_peer(case: &Case) -> Option<Contender> {
    use nalgebra::{DMatrix, DVector};
    let layers: Vec<(DMatrix<f32>, DVector<f32>)> = (0..case.widths.len())
        .map(|i| {
            let (k, b) = case.layer(i);
            let (din, f) = case.dims(i);
            // Row-major (in, out) is column-major (out, in): the transpose, as nalgebra wants it.
            (DMatrix::from_column_slice(f, din, &k), DVector::from_vec(b))
        })
        .collect();
    let last = layers.len() - 1;
    let relu = |v: &mut f32| *v = nnjit::layers::relu_scalar(*v);
    if case.n == 1 {
        let x = DVector::from_vec(case.xs());
        let mut hs: Vec<DVector<f32>> = case.widths.iter().map(|&f| DVector::zeros(f)).collect();
        return Contender::new("nalgebra", false, move |o| {
            for (i, (w, b)) in layers.iter().enumerate() {
                let (prev, rest) = hs.split_at_mut(i);
                let input = if i == 0 { black_box(&x) } else { &prev[i - 1] };
                let h = &mut rest[0];
                h.copy_from(b);
                h.gemv(1.0, w, input, 1.0);
                if i < last {
                    h.apply(relu);
                }
            }
            black_box(&mut hs);
            if let Some(o) = o {
                *o = hs[last].as_slice().to_vec();
            }
        });
    }
    let n = case.n;
    let x = DMatrix::from_column_slice(case.d, n, &case.xs());
    let mut hs: Vec<DMatrix<f32>> = case.widths.iter().map(|&f| DMatrix::zeros(f, n)).collect();
    Contender::new("nalgebra", false, move |o| {
        for (i, (w, b)) in layers.iter().enumerate() {
            let (prev, rest) = hs.split_at_mut(i);
            let input = if i == 0 { black_box(&x) } else { &prev[i - 1] };
            let h = &mut rest[0];
            for mut col in h.column_iter_mut() {
                col.copy_from(b);
            }
            h.gemm(1.0, w, input, 1.0);
            if i < last {
                h.apply(relu);
            }
        }
        black_box(&mut hs);
        if let Some(o) = o {
            // Column-major (out, n) is row-major (n, out).
            *o = hs[last].as_slice().to_vec();
        }
    })
}

/// candle: one `candle_nn::Linear` per layer (weight `(out, in)` as candle stores it, so the
/// kernel transposed once) and `relu` between them, on the CPU device.
fn candle_peer(case: &Case) -> Option<Contender> {
    use candle_core::{Device, Tensor};
    use candle_nn::{Linear, Module as _};
    let dev = Device::Cpu;
    let layers: Vec<Linear> = (0..case.widths.len())
        .map(|i| {
            let (k, b) = case.layer(i);
            let (din, f) = case.dims(i);
            let w = Tensor::from_slice(&k, (din, f), &dev).and_then(|k| k.t()?.contiguous()).expect("weight");
            Linear::new(w, Some(Tensor::from_slice(&b, f, &dev).expect("bias")))
        })
        .collect();
    let x = Tensor::from_slice(&case.xs(), (case.n, case.d), &dev).expect("input");
    Contender::new("candle", false, move |o| {
        let mut h = black_box(&x).clone();
        for (i, layer) in layers.iter().enumerate() {
            h = layer.forward(&h).expect("forward");
            if i + 1 < layers.len() {
                h = h.relu().expect("relu");
            }
        }
        if let Some(o) = o {
            *o = h.flatten_all().and_then(|h| h.to_vec1::<f32>()).expect("output");
        }
        drop(black_box(h));
    })
}

/// The case's model as an ONNX graph (opset 13): the parameters as initializers, `Gemm` per
/// layer (`x·W + b`, `W` `(in, out)` as nnjit stores it) and `Relu` between them, input `x` and
/// output `y` of fixed shapes.
fn onnx_model(case: &Case) -> tract_onnx::pb::ModelProto {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
    use tract_onnx::pb::{
        type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
        ValueInfoProto,
    };
    let value_info = |name: &str, dims: [usize; 2]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tensor = |name: String, dims: &[usize], data: Vec<f32>| TensorProto {
        name,
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        float_data: data,
        ..Default::default()
    };
    let (mut node, mut initializer) = (Vec::new(), Vec::new());
    let mut h = "x".to_string();
    let last = case.widths.len() - 1;
    for i in 0..=last {
        let (k, b) = case.layer(i);
        let (din, f) = case.dims(i);
        initializer.push(tensor(format!("W{i}"), &[din, f], k));
        initializer.push(tensor(format!("b{i}"), &[f], b));
        let z = if i == last { "y".to_string() } else { format!("z{i}") };
        node.push(NodeProto {
            input: vec![h, format!("W{i}"), format!("b{i}")],
            output: vec![z.clone()],
            name: format!("Dense_{i}"),
            op_type: "Gemm".into(),
            ..Default::default()
        });
        h = z;
        if i < last {
            let r = format!("h{i}");
            node.push(NodeProto {
                input: vec![h],
                output: vec![r.clone()],
                name: format!("relu_{i}"),
                op_type: "Relu".into(),
                ..Default::default()
            });
            h = r;
        }
    }
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
        producer_name: "nnjit-bench".into(),
        graph: Some(GraphProto {
            name: case.model(),
            node,
            initializer,
            input: vec![value_info("x", [case.n, case.d])],
            output: vec![value_info("y", [case.n, case.widths[last]])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// tract-onnx: the ONNX graph of [`onnx_model`], loaded, optimized for its fixed input shape
/// and made runnable, as tract's README does; run through one spawned state kept across calls
/// (what a serving loop would keep), the input an `Arc`'d tensor made once.
fn tract_peer(case: &Case) -> Option<Contender> {
    use tract_onnx::prelude::*;
    let plan = tract_onnx::onnx()
        .model_for_proto_model(&onnx_model(case))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract model");
    let mut state = plan.spawn().expect("tract state");
    let x = tract_onnx::prelude::Tensor::from_shape(&[case.n, case.d], &case.xs()).expect("input").into_tvalue();
    Contender::new("tract-onnx", false, move |o| {
        let y = state.run(tvec!(black_box(&x).clone())).expect("tract run");
        if let Some(o) = o {
            *o = y[0].to_plain_array_view::<f32>().expect("f32 output").iter().copied().collect();
        }
        drop(black_box(y));
    })
}

/// Largest relative difference a peer may show against the plain apply (float32 rounding
/// through a different summation order; the 784-wide sums are the longest).
const TOLERANCE: f64 = 1e-4;

/// One timed entry of the table.
struct Row {
    model: String,
    n: usize,
    name: &'static str,
    exact: bool,
    ns: f64,
    /// Time relative to the floor, paired by round.
    ratio: f64,
    /// The lifted apply's time relative to this entry's, paired by round.
    lifted_over: f64,
    err: f64,
}

fn main() {
    single_threaded();
    let quick = std::env::args().any(|a| a == "--quick");
    // `--only "32→64→64→10, 1"`: the cases whose "model, batch" contains this text (a rerun of
    // one row), printed only (the CSV and chart keep the last full run).
    let only = std::env::args().skip_while(|a| a != "--only").nth(1);
    // Short samples in many rounds: a round's contenders run close together in time, so the
    // paired ratios see the same machine.
    let (sample, rounds) = if quick { (Duration::from_millis(5), 15) } else { (Duration::from_millis(15), 60) };
    if std::env::args().any(|a| a == "--threads") {
        // `--torch PYTHON`: PyTorch too, in a child process of this interpreter.
        let torch = std::env::args().skip_while(|a| a != "--torch").nth(1);
        threads(sample, rounds, torch.map(|p| Torch::spawn(&p).expect("starting the Python child")));
        return;
    }
    let mut rows: Vec<Row> = Vec::new();
    for (d, widths) in [(32usize, vec![64usize, 64, 10]), (784, vec![512, 512, 10])] {
        for n in [1usize, 8, 64, 256] {
            let case = Case::new(d, &widths, n);
            if only.as_ref().is_some_and(|o| !format!("{}, {n}", case.model()).contains(o.as_str())) {
                continue;
            }
            let mut cs: Vec<Contender> = CONTENDERS.iter().filter_map(|make| make(&case)).collect();
            assert_eq!(cs[0].name, "floor", "ratios are taken to the first contender");
            // Check every output before timing.
            let mut errs = Vec::with_capacity(cs.len());
            for c in &mut cs {
                let mut got = Vec::new();
                (c.run)(Some(&mut got));
                let err = max_rel_diff(&got, &case.want);
                if c.exact {
                    let same = got.len() == case.want.len()
                        && got.iter().zip(&case.want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{} at {}, batch {n}: not bit for bit the plain apply", c.name, case.model());
                } else {
                    assert!(err <= TOLERANCE, "{} at {}, batch {n}: relative error {err:e}", c.name, case.model());
                }
                errs.push(err);
            }
            let mut runs: Vec<Box<dyn FnMut() + '_>> =
                cs.iter_mut().map(|c| Box::new(move || (c.run)(None)) as Box<dyn FnMut()>).collect();
            let mut refs: Vec<&mut dyn FnMut()> = runs.iter_mut().map(|r| &mut **r as &mut dyn FnMut()).collect();
            let samples = interleaved_samples(&mut refs, sample, rounds);
            drop(refs);
            drop(runs);
            let ratios = paired_ratios(&samples);
            let lifted = cs.iter().position(|c| c.name == "lifted apply").map(|i| samples[i].clone());
            for (((c, s), &ratio), &err) in cs.iter().zip(&samples).zip(&ratios).zip(&errs) {
                let (ns, lifted_over) = (median(s), lifted.as_ref().map_or(f64::NAN, |l| paired_ratio(l, s)));
                rows.push(Row { model: case.model(), n, name: c.name, exact: c.exact, ns, ratio, lifted_over, err });
            }
            eprintln!("timed {}, batch {n}", case.model());
        }
    }
    table(&rows);
    let mut csv = String::from("model,batch,entry,ns,ratio_to_floor,lifted_apply_over_entry,max_rel_diff\n");
    for r in &rows {
        let (m, n, name, ns, ratio, over, err) = (&r.model, r.n, r.name, r.ns, r.ratio, r.lifted_over, r.err);
        let _ = writeln!(csv, "{m},{n},{name},{ns:.1},{ratio:.3},{over:.3},{err:.1e}");
    }
    if only.is_some() {
        return; // a rerun of some rows: the files keep the full run
    }
    // Four identical lifted blocks at one shape, against the same blocks un-lifted.
    for (width, n) in [(64usize, 1usize), (256, 8)] {
        let x = input(n, width);
        let (plain, lifted) = (FourBlocks { lifted: false, width }, FourBlocks { lifted: true, width });
        let vars = plain.init(nn::PRNGKey(0), &x).expect("init");
        let want = plain.apply(&vars, &x).expect("apply");
        assert!(same_bits(&want, &lifted.apply(&vars, &x).expect("lifted")));
        let packs = JitBlock::jit_cache().pack_count();
        let samples = interleaved_samples(
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
        let (t, ratio) = ([median(&samples[0]), median(&samples[1])], paired_ratios(&samples)[1]);
        println!(
            "four identical blocks {width}-wide, batch {n}: plain {:.0} ns, lifted children {:.0} ns ({ratio:.2}×)",
            t[0], t[1]
        );
        let _ = writeln!(csv, "four blocks {width},{n},plain apply,{:.1},,,", t[0]);
        let _ = writeln!(csv, "four blocks {width},{n},lifted children,{:.1},{ratio:.3},,", t[1]);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    for (file, text) in [("models.csv", csv), ("models.svg", svg(&rows))] {
        let path = dir.join(file);
        match std::fs::write(&path, text) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// The Markdown table: per model and batch the floor's ns, then every other entry's ns and
/// ratio to the floor (`–` where an entry does not run), the fastest peer and the lifted
/// `apply`'s time relative to it.
fn table(rows: &[Row]) {
    let mut names: Vec<&str> = Vec::new();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for r in rows {
        if r.name != "floor" && !names.contains(&r.name) {
            names.push(r.name);
        }
        if !groups.contains(&(r.model.as_str(), r.n)) {
            groups.push((&r.model, r.n));
        }
    }
    println!(
        "| model, batch | floor (packed kernels) | {} | best peer | lifted apply ÷ best peer |",
        names.join(" | ")
    );
    println!("|---|---|{}---|---|", "---|".repeat(names.len()));
    for (model, n) in groups {
        let at: Vec<&Row> = rows.iter().filter(|r| r.model == model && r.n == n).collect();
        let ns_of = |name: &str| at.iter().find(|r| r.name == name).map(|r| r.ns);
        let mut line = format!("| {model}, {n} | {} |", ns_of("floor").map_or("–".into(), group));
        for &name in &names {
            match at.iter().find(|r| r.name == name) {
                Some(r) => {
                    let _ = write!(line, " {} ({:.2}×) |", group(r.ns), r.ratio);
                }
                None => line.push_str(" – |"),
            }
        }
        // The fastest peer by its time paired with the floor's; the lifted apply against it
        // paired round by round.
        match at.iter().filter(|r| !r.exact).min_by(|a, b| a.ratio.total_cmp(&b.ratio)) {
            Some(p) => {
                let _ = write!(line, " {} {} | {:.2}× |", p.name, group(p.ns), p.lifted_over);
            }
            None => line.push_str(" – | – |"),
        }
        println!("{line}");
    }
}

/// `1234567.8` as `1,234,568`.
fn group(ns: f64) -> String {
    let digits = format!("{:.0}", ns);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Grouped bars per model and batch: each contender's median time relative to the floor (log
/// scale; 1× is the packed kernels alone), nnjit's entries in greens, the peers in other hues.
fn svg(rows: &[Row]) -> String {
    const OURS: [&str; 5] = ["#1b9e77", "#66c2a5", "#0d5c46", "#a6d854", "#b3e2cd"];
    const PEERS: [&str; 6] = ["#d95f02", "#7570b3", "#e7298a", "#e6ab02", "#a6761d", "#666666"];
    let mut names: Vec<(&str, bool)> = Vec::new();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for r in rows.iter().filter(|r| r.name != "floor") {
        if !names.iter().any(|(n, _)| *n == r.name) {
            names.push((r.name, r.exact));
        }
        if !groups.contains(&(r.model.as_str(), r.n)) {
            groups.push((&r.model, r.n));
        }
    }
    let (mut ours, mut peers) = (0, 0);
    let series = names
        .iter()
        .map(|&(name, exact)| {
            let (palette, i): (&[&str], &mut usize) =
                if exact { (&OURS[..], &mut ours) } else { (&PEERS[..], &mut peers) };
            *i += 1;
            let label = if exact { format!("nnjit {name}") } else { name.to_string() };
            Series { label, color: palette[(*i - 1) % palette.len()] }
        })
        .collect();
    // One section per model: its batches are consecutive groups.
    let mut sections: Vec<(String, usize)> = Vec::new();
    for &(model, _) in &groups {
        match sections.last_mut() {
            Some((last, count)) if last == model => *count += 1,
            _ => sections.push((model.to_string(), 1)),
        }
    }
    let groups = groups
        .iter()
        .map(|&(model, n)| Group {
            label: format!("batch {n}"),
            bars: names
                .iter()
                .map(|&(name, _)| {
                    let r = rows.iter().find(|r| r.model == model && r.n == n && r.name == name)?;
                    let title = format!("{name} {model}, batch {n}: {:.0} ns, {:.2}× floor", r.ns, r.ratio);
                    Some(Bar { ratio: r.ratio, title })
                })
                .collect(),
        })
        .collect();
    BarChart {
        title: "Whole MLPs, one thread: time / floor (the packed kernels alone; log scale, lower is better)".into(),
        subtitle: format!(
            "median ns per forward, contenders interleaved, every output checked first; nnjit path {}",
            best_isa()
        ),
        reference: "floor".into(),
        series,
        groups,
        sections,
        layout: Layout {
            bar: 11.0,
            group_gap: 18.0,
            group_inset: 8.0,
            left: 60.0,
            top: 50.0,
            plot_h: 340.0,
            subtitle_y: 38.0,
            right: 90.0,
            min_width: 760.0,
            below: 70.0,
            group_label_dy: 15.0,
            legend_cols: 4,
            legend_col_w: 180.0,
            legend_dy: 52.0,
        },
    }
    .svg()
}
