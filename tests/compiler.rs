//! The lift as a compiler: trace once per key, then run the program and never the body; the
//! defects of the old lift (repacking, stale variables, unbounded cache), soundness of tracing,
//! lifted == plain over random compositions, concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{self, HostFn, Lifted, Module, Mutable, Rngs, Scope, Tensor};
use nnjit::{Error, Variables};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> ArrayD<f32> {
    let n = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()).unwrap()
}

fn same_bits(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
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

/// Four identical lifted blocks at one shape, in a plain parent.
struct FourBlocks {
    lifted: bool,
}

impl Module for FourBlocks {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for i in 0..4 {
            let name = format!("block{i}");
            h = if self.lifted {
                s.call_named(&name, &JitBlock { width: 16 }, h)?
            } else {
                s.call_named(&name, &Block { width: 16 }, h)?
            };
        }
        Ok(h)
    }
}

#[test]
fn identical_lifted_children_pack_once() {
    let x = random(&mut ChaCha8Rng::seed_from_u64(1), &[1, 8]);
    let vars = FourBlocks { lifted: false }.init(nn::PRNGKey(0), &x).unwrap();
    let want = FourBlocks { lifted: false }.apply(&vars, &x).unwrap();
    let got = FourBlocks { lifted: true }.apply(&vars, &x).unwrap();
    assert!(same_bits(&want, &got));
    let packs = JitBlock::jit_cache().pack_count();
    let traces = JitBlock::jit_cache().stats().traces;
    for _ in 0..10 {
        assert!(same_bits(&want, &FourBlocks { lifted: true }.apply(&vars, &x).unwrap()));
    }
    assert_eq!(JitBlock::jit_cache().pack_count(), packs, "no repacking after the first apply");
    assert_eq!(JitBlock::jit_cache().stats().traces, traces, "one program serves all four blocks");
}

/// Counts how often its body runs (a side effect a compiled program must never repeat).
static BODY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Counted {
    f: usize,
}

impl Module for Counted {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        BODY_RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(nn::gelu(s.call(&nn::Dense::new(self.f), x)?) * 0.5)
    }
}

#[test]
fn the_body_runs_once_per_key_then_never() {
    let x = [1.0f32, -2.0, 0.5];
    let vars = Counted { f: 4 }.init(nn::PRNGKey(0), x).unwrap();
    let before = BODY_RUNS.load(Ordering::SeqCst);
    let m = JitCounted { f: 4 };
    let y = m.apply(&vars, x).unwrap();
    assert_eq!(BODY_RUNS.load(Ordering::SeqCst), before + 1, "traced once");
    for _ in 0..5 {
        assert_eq!(m.apply(&vars, x).unwrap(), y);
        // Another instance with equal fields reuses the program (Flax's test_jit_reuse).
        assert_eq!(JitCounted { f: 4 }.apply(&vars, [3.0f32, 2.0, 1.0]).unwrap().len(), 4);
    }
    assert_eq!(BODY_RUNS.load(Ordering::SeqCst), before + 1, "never called again");
    assert_eq!(y, Counted { f: 4 }.apply(&vars, x).unwrap());
    // A changed field is another key: traced again.
    let vars8 = Counted { f: 8 }.init(nn::PRNGKey(0), x).unwrap();
    let before = BODY_RUNS.load(Ordering::SeqCst);
    JitCounted { f: 8 }.apply(&vars8, x).unwrap();
    JitCounted { f: 8 }.apply(&vars8, x).unwrap();
    assert_eq!(BODY_RUNS.load(Ordering::SeqCst), before + 1);
}

/// Writes a variable on every mutable apply (`put_variable`), and reads params.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Stateful;

impl Module for Stateful {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let y = s.call(&nn::Dense::new(2), &x)?;
        if s.is_mutable_collection("params") {
            s.put_variable("params", "seen", x.sum(&[-1], false))?;
        }
        Ok(y)
    }
}

#[test]
fn an_apply_after_a_mutable_apply_sees_exactly_its_variables() {
    let x = [1.0f32, 2.0];
    let vars = Stateful.init(nn::PRNGKey(0), x).unwrap();
    let m = JitStateful;
    let (y_mut, upd) = m.apply_with(&vars, x, Rngs::none(), Mutable::All).unwrap();
    let (y_plain, upd_plain) = Stateful.apply_with(&vars, x, Rngs::none(), Mutable::All).unwrap();
    assert_eq!(y_mut, y_plain);
    assert!(upd.bits_eq(&upd_plain));
    assert_eq!(upd.get("params/seen").unwrap()[[]], 3.0);
    // Immutable apply with the same variables: same output, nothing stale.
    assert_eq!(m.apply(&vars, x).unwrap(), Stateful.apply(&vars, x).unwrap());
    // With no variables at all: the error, never an answer.
    let err = m.apply(&Variables::new(), x).unwrap_err();
    assert!(matches!(err, Error::MissingVariable { .. }), "{err}");
    // With other parameter values: those values.
    let mut other = vars.clone();
    other.get_mut("params/Dense_0/kernel").unwrap().fill(0.0);
    assert_eq!(m.apply(&other, x).unwrap(), Stateful.apply(&other, x).unwrap());
    assert_ne!(m.apply(&other, x).unwrap(), y_plain);
}

#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Tiny;

impl Module for Tiny {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&nn::Dense::new(3), x)
    }
}

#[test]
fn the_cache_is_bounded_and_hashed() {
    let cache = JitTiny::jit_cache();
    cache.clear();
    cache.set_capacity(16);
    let vars = Tiny.init(nn::PRNGKey(0), [1.0f32, 2.0]).unwrap();
    for n in 1..=100 {
        let x = ArrayD::<f32>::ones(IxDyn(&[n, 2]));
        assert_eq!(JitTiny.apply(&vars, &x).unwrap(), Tiny.apply(&vars, &x).unwrap());
    }
    let s = cache.stats();
    assert_eq!(s.size, 16, "bounded by the capacity");
    assert_eq!(s.evictions, 84);
    // The least recently used were evicted: the last 16 shapes hit.
    let traces = s.traces;
    for n in 85..=100 {
        JitTiny.apply(&vars, ArrayD::<f32>::ones(IxDyn(&[n, 2]))).unwrap();
    }
    assert_eq!(cache.stats().traces, traces);
    // A hit compares only the entries that share its hash (none scanned otherwise).
    cache.set_capacity(1000);
    for n in 1..=600 {
        JitTiny.apply(&vars, ArrayD::<f32>::ones(IxDyn(&[n, 2]))).unwrap();
    }
    let before = cache.stats().compares;
    JitTiny.apply(&vars, ArrayD::<f32>::ones(IxDyn(&[7, 2]))).unwrap();
    assert!(cache.stats().compares - before <= 1, "lookup compared {} entries", cache.stats().compares - before);
    cache.set_capacity(nnjit::jit::DEFAULT_CAPACITY);
}

/// Reads values while traced, every way there is.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Peek {
    how: u8,
}

impl Module for Peek {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let y = s.call(&nn::Dense::new(2), &x)?;
        match self.how {
            0 => {
                let a = y.to_array()?;
                Ok(Tensor::from(a))
            }
            1 => {
                if y.sum(&[0, 1], false).item()? > 0.0 {
                    Ok(y)
                } else {
                    Ok(-y)
                }
            }
            2 => {
                let mask = y.gt(0.0).to_bool_array()?;
                Ok(if mask.iter().all(|&b| b) { y } else { x })
            }
            3 => Ok(Tensor::from(y.clone().into_array()?)),
            4 => {
                let k = s.make_rng("params")?.to_key()?;
                Ok(y * (k.words()[0] as f32))
            }
            5 => {
                let w = s.param("extra", &nn::initializers::ones(), &[1])?;
                Ok(y * w.item()?)
            }
            _ => Ok(Tensor::from(y.cast(nn::DType::I32).to_i32_array()?.mapv(|v| v as f32))),
        }
    }
}

#[test]
fn reading_values_while_traced_is_an_error_that_says_where_and_what() {
    let x = ndarray::array![[1.0f32, 2.0]];
    for how in 0..7u8 {
        let vars = Peek { how }.init(Rngs::new(nn::PRNGKey(0)), &x).unwrap(); // eager: fine
        let err = JitPeek { how }.apply_with(&vars, &x, Rngs::new(nn::PRNGKey(1)), Mutable::Nothing).unwrap_err();
        match &err {
            Error::TracedValue { path, operation } => {
                assert_eq!(path, "", "how {how}");
                assert!(!operation.is_empty());
                let msg = err.to_string();
                assert!(msg.contains("host_callback") && msg.contains("shapes"), "{msg}");
            }
            e => panic!("how {how}: expected TracedValue, got {e}"),
        }
        // Plain apply computes as usual.
        assert!(Peek { how }.apply_with(&vars, &x, Rngs::new(nn::PRNGKey(1)), Mutable::Nothing).is_ok());
    }
}

/// Host code inside a compiled module: runs on every call with that call's values.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Clipped;

impl Module for Clipped {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let y = s.call(&nn::Dense::new(3), x)?;
        let shape = y.shape().to_vec();
        let clip = HostFn::new("clip", &shape, |xs| Ok(xs[0].mapv(|v| v.clamp(-0.5, 0.5))));
        Ok(Tensor::host_callback(&[&y], clip) + 1.0)
    }
}

#[test]
fn host_callbacks_run_on_every_call_with_current_values() {
    let vars = Clipped.init(nn::PRNGKey(0), [1.0f32, 2.0]).unwrap();
    for x in [[1.0f32, 2.0], [-3.0, 0.1], [0.0, 0.0]] {
        assert_eq!(JitClipped.apply(&vars, x).unwrap(), Clipped.apply(&vars, x).unwrap());
    }
    let text = JitClipped.lower(&vars, [1.0f32, 2.0]).unwrap().to_string();
    assert!(text.contains("host_callback[clip]"), "{text}");
}

/// Flax's `__call__(self, x, train)`: a static argument and two outputs.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Heads;

impl Module for Heads {
    type Input = (Tensor, bool);
    type Output = (Tensor, Tensor);
    fn call(&self, s: &mut Scope<'_, '_>, (x, train): (Tensor, bool)) -> nnjit::Result<(Tensor, Tensor)> {
        let h = s.call(&nn::Dense::new(4), &x)?;
        let h = s.call(&nn::Dropout::new(0.5).deterministic(!train), h)?;
        let a = s.call(&nn::Dense::new(2), &h)?;
        let b = nn::softmax(s.call(&nn::Dense::new(3), &h)?);
        Ok((a, b))
    }
}

#[test]
fn static_arguments_are_keys_and_outputs_can_be_tuples() {
    let x = random(&mut ChaCha8Rng::seed_from_u64(3), &[5, 6]);
    let vars = Heads.init(nn::PRNGKey(0), (&x, false)).unwrap();
    let cache = JitHeads::jit_cache();
    cache.clear();
    for train in [false, true, false, true] {
        let rngs = Rngs::none().with("dropout", nn::PRNGKey(9));
        let ((a1, b1), _) = Heads.apply_with(&vars, (&x, train), rngs.clone(), Mutable::Nothing).unwrap();
        let ((a2, b2), _) = JitHeads.apply_with(&vars, (&x, train), rngs, Mutable::Nothing).unwrap();
        assert!(same_bits(&a1, &a2) && same_bits(&b1, &b2), "train = {train}");
    }
    assert_eq!(cache.size(), 2, "train=false and train=true are two programs");
}

#[test]
fn lower_prints_the_fused_program() {
    let m = nnjit_suite::models::JitMlp { hidden: 8, out: 3 };
    let x = ndarray::array![[1.0f32, 2.0]];
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let p = m.lower(&vars, &x).unwrap();
    let text = p.to_string();
    assert!(text.contains("dense+bias+relu(%x0, %v0, %v1) : f32[1,8] packed   # /Dense_0"), "{text}");
    assert!(text.contains("%out0 = dense+bias(%b0, %v2, %v3) : f32[1,3] packed   # /Dense_1"), "{text}");
    assert_eq!(p.num_steps(), 2, "relu fused into the first Dense");
}

/// One random layer of a random composition.
#[derive(Debug, Clone, PartialEq)]
enum Layer {
    Dense(usize),
    Act(u8),
    Norm,
    Drop(u8),
    Residual(usize),
    Lifted(Box<Stack>),
}

/// A random stack of layers (lifted or not as a whole).
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Stack {
    layers: Vec<Layer>,
    train: bool,
}

impl Module for Stack {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for l in &self.layers {
            h = match l {
                Layer::Dense(f) => s.call(&nn::Dense::new(*f), h)?,
                Layer::Act(0) => nn::relu(h),
                Layer::Act(1) => nn::gelu(h),
                Layer::Act(2) => nn::tanh(&h) * 2.0 - 0.5,
                Layer::Act(3) => nn::leaky_relu(h, 0.2),
                Layer::Act(4) => nn::elu(&h, 0.7).maximum(-0.3),
                Layer::Act(_) => nn::sigmoid(h),
                Layer::Norm => s.call(&nn::BatchNorm::new().use_running_average(!self.train), h)?,
                Layer::Drop(r) => s.call(&nn::Dropout::new(f64::from(*r) / 10.0).deterministic(!self.train), h)?,
                Layer::Residual(w) => {
                    let d = h.shape()[h.ndim() - 1];
                    let inner = s.call(&nn::Dense::new(*w), &h)?;
                    s.call(&nn::Dense::new(d), nn::relu(inner))? + &h
                }
                Layer::Lifted(inner) => {
                    let inner = JitStack { layers: inner.layers.clone(), train: self.train };
                    s.call(&inner, h)?
                }
            };
        }
        Ok(h)
    }
}

fn random_layers(rng: &mut ChaCha8Rng, depth: usize) -> Vec<Layer> {
    (0..rng.random_range(1..6))
        .map(|_| match rng.random_range(0..9) {
            0 | 1 => Layer::Dense(rng.random_range(1..12)),
            2 | 3 => Layer::Act(rng.random_range(0..6)),
            4 => Layer::Norm,
            5 => Layer::Drop(rng.random_range(0..10)),
            6 | 7 => Layer::Residual(rng.random_range(1..9)),
            _ if depth < 2 => Layer::Lifted(Box::new(Stack { layers: random_layers(rng, depth + 1), train: false })),
            _ => Layer::Dense(3),
        })
        .collect()
}

#[test]
fn property_lifted_equals_plain_over_random_compositions() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..120 {
        let layers = random_layers(&mut rng, 0);
        let batch = rng.random_range(1..5);
        let d = rng.random_range(1..7);
        let x = random(&mut rng, &[batch, d]);
        let seed: u32 = rng.random();
        let threads = if case % 3 == 0 { 2 } else { 1 };
        nnjit::kernel::parallel::set_num_threads(threads);
        let rngs = Rngs::new(nn::PRNGKey(i64::from(seed))).with("dropout", nn::PRNGKey(i64::from(seed) + 1));
        let eval = Stack { layers: layers.clone(), train: false };
        let vars = eval.init(rngs.clone(), &x).unwrap();
        for train in [false, true] {
            let plain = Stack { layers: layers.clone(), train };
            let lifted = JitStack { layers: layers.clone(), train };
            let mutable = if train { Mutable::only(["batch_stats"]) } else { Mutable::Nothing };
            let a = plain.apply_with(&vars, &x, rngs.clone(), mutable.clone());
            let b = lifted.apply_with(&vars, &x, rngs.clone(), mutable.clone());
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e1), Err(e2)) => {
                    assert_eq!(e1.to_string(), e2.to_string(), "case {case}");
                    continue;
                }
                (a, b) => panic!("case {case}: {layers:?}: plain {:?} vs lifted {:?}", a.map(|_| ()), b.map(|_| ())),
            };
            assert!(same_bits(&a.0, &b.0), "case {case} train {train}: {layers:?}\n{:?}\n{:?}", a.0, b.0);
            assert!(a.1.bits_eq(&b.1), "case {case}: updated collections differ");
            // Twice: the second run is the cached program.
            let c = lifted.apply_with(&vars, &x, rngs.clone(), mutable).unwrap();
            assert!(same_bits(&a.0, &c.0) && a.1.bits_eq(&c.1), "case {case}: cached run differs");
        }
    }
    nnjit::kernel::parallel::set_num_threads(1);
}

/// The same block as [`Block`], its own lifted type (pack counts are per type, and the test
/// above counts them while this one publishes new parameter versions).
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Block2 {
    width: usize,
}

impl Module for Block2 {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        Block { width: self.width }.call(s, x)
    }
}

#[test]
fn concurrent_applies_traces_and_new_parameter_versions() {
    let x = random(&mut ChaCha8Rng::seed_from_u64(5), &[3, 8]);
    let vars = Arc::new(Block2 { width: 12 }.init(nn::PRNGKey(0), &x).unwrap());
    let want = Block2 { width: 12 }.apply(&vars, &x).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|sc| {
        for t in 0..8 {
            let (vars, x, want) = (Arc::clone(&vars), x.clone(), want.clone());
            sc.spawn(move || {
                for i in 0..300 {
                    let y = JitBlock2 { width: 12 }.apply(&vars, &x).unwrap();
                    assert!(same_bits(&y, &want), "thread {t} iteration {i}");
                }
            });
        }
        // Others trace new shapes and publish new parameter versions meanwhile.
        for t in 0..3 {
            let (vars, stop) = (Arc::clone(&vars), Arc::clone(&stop));
            sc.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 200 {
                    let mut v = (*vars).clone();
                    v.get_mut("params/Dense_0/bias").unwrap().fill(i as f32);
                    let xi = ArrayD::<f32>::ones(IxDyn(&[1 + (i + t) % 9, 8]));
                    let y = JitBlock2 { width: 12 }.apply(&v, &xi).unwrap();
                    assert!(same_bits(&y, &Block2 { width: 12 }.apply(&v, &xi).unwrap()));
                    i += 1;
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
    });
}

/// Flax's `if self.has_variable('cache', 'x')`: the body branches on the variables' structure.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Cached;

impl Module for Cached {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let y = s.call(&nn::Dense::new(2), &x)?;
        if s.has_variable("cache", "offset") {
            let offset = s.variable("cache", "offset", &[2], || Ok(ArrayD::zeros(IxDyn(&[2]))))?;
            return Ok(y + offset);
        }
        Ok(y)
    }
}

#[test]
fn has_variable_answers_are_part_of_what_a_program_is_valid_for() {
    let x = ndarray::array![[1.0f32, -2.0, 0.5]];
    let vars = Cached.init(nn::PRNGKey(0), &x).unwrap();
    assert!(vars.get("cache/offset").is_none());
    let mut with = vars.clone();
    with.insert("cache/offset", ndarray::ArrayD::from_elem(vec![2], 10.0f32)).unwrap();
    JitCached::jit_cache().clear();
    // Without, with, without: each answer has its own program, none reused for the other.
    for v in [&vars, &with, &vars, &with] {
        let want = Cached.apply(v, &x).unwrap();
        assert!(same_bits(&JitCached.apply(v, &x).unwrap(), &want));
    }
    assert_eq!(JitCached::jit_cache().stats().traces, 2);
}

/// A repeated plain apply runs the program bound last time on this thread: only while the
/// variables (their generation), the input shape, the module's fields and the cache entry are
/// the same.
#[test]
fn a_repeated_apply_sees_exactly_the_variables_it_is_given() {
    let x = ndarray::array![[0.5f32, -1.0, 2.0], [1.0, 0.0, -3.0]];
    let m = nnjit_suite::models::JitMlp { hidden: 5, out: 2 };
    let plain = nnjit_suite::models::Mlp { hidden: 5, out: 2 };
    let mut vars = plain.init(nn::PRNGKey(0), &x).unwrap();
    for _ in 0..3 {
        assert!(same_bits(&m.apply(&vars, &x).unwrap(), &plain.apply(&vars, &x).unwrap()));
    }
    // New values: a new generation, so not the remembered binding.
    vars.insert("params/Dense_1/bias", ArrayD::from_elem(IxDyn(&[2]), 7.0f32)).unwrap();
    let want = plain.apply(&vars, &x).unwrap();
    assert!(same_bits(&m.apply(&vars, &x).unwrap(), &want));
    let mut out = vec![0.0f32; 4];
    m.apply_into(&vars, &x, &mut out).unwrap();
    assert_eq!(out, want.iter().copied().collect::<Vec<_>>());
    // Other fields, another program; a cleared cache traces again.
    let wide = nnjit_suite::models::JitMlp { hidden: 5, out: 3 };
    assert!(wide.apply(&vars, &x).is_err(), "the variables are for out = 2");
    let cache = nnjit_suite::models::JitMlp::jit_cache();
    let traces = cache.stats().traces;
    cache.clear();
    assert!(same_bits(&m.apply(&vars, &x).unwrap(), &want));
    assert_eq!(cache.stats().traces, traces + 1);
    // Empty variables: an error, never the remembered parameters.
    assert!(matches!(m.apply(&Variables::new(), &x), Err(Error::MissingVariable { .. })));
}

/// A repeated plain apply makes each output anew, for a small output (a clone of a kept
/// zeroed array) and a large one (allocated and shaped): the plain bits every time, and an
/// output the caller changed never shows in the next.
#[test]
fn repeated_applies_return_fresh_outputs_small_and_large() {
    for rows in [2usize, 300] {
        // 2 × 2 outputs are below the template bound of 1,024 floats; 300 × 4 above it.
        let x = ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |ix| (ix[0] * 3 + ix[1]) as f32 * 0.01 - 0.5);
        let m = nnjit_suite::models::JitMlp { hidden: 5, out: if rows == 2 { 2 } else { 4 } };
        let plain = nnjit_suite::models::Mlp { hidden: m.hidden, out: m.out };
        let vars = plain.init(nn::PRNGKey(1), &x).unwrap();
        let want = plain.apply(&vars, &x).unwrap();
        for _ in 0..3 {
            let mut y = m.apply(&vars, &x).unwrap();
            assert!(same_bits(&y, &want), "{rows} rows");
            assert_eq!(y.shape(), want.shape());
            assert!(y.is_standard_layout());
            y.fill(f32::NAN); // the caller's own array
        }
    }
}
