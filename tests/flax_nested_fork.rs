//! A `flax_jit` lift traced inside another lift's body: its RNG fork (Flax's `nn.jit` forks
//! every stream before each call) becomes a step of the enclosing program, replayed from the
//! streams given to every run.
//!
//! * `nested_forks_replay_the_eager_keys`: every nesting (a `flax_jit` child in a default
//!   lifted parent, in a `flax_jit` parent, in a plain parent inside a lifted grandparent, and
//!   three forks deep, one lifted instance called twice drawing in its own scope), Dropout in
//!   train mode: the lifted apply gives the eager path's bits for
//!   two dropout keys, the second from the cached program (no new trace), on 1 and 2 kernel
//!   threads and from two threads at once; the two keys give other masks.
//! * `nested_forks_match_flax`: the same models against real Flax 0.12.8 / JAX 0.10.2
//!   (`tests/data/flax_lift/nested_fork.json`, made by
//!   `tests/data/flax_lift/gen_flax_nested_fork.py`; all but the shared instance): variables
//!   bit for bit, train outputs for both keys and eval outputs within the usual tolerance.
//! * `a_nested_fork_follows_the_streams_of_each_call`: other stream sets (two streams, the
//!   `params` fallback) give the eager keys; no stream in train mode is the eager error value.

use std::sync::Mutex;

use ndarray::ArrayD;
use nnjit::jit::CacheStats;
use nnjit::kernel::parallel::set_num_threads;
use nnjit::nn::{self, Lifted, Module, Mutable, Rngs, Scope, Tensor};
use nnjit::Variables;
use serde_json::Value;

mod golden_json;
use golden_json::{array, assert_close, assert_vars, variables};

/// The tests of this file share the lifted types' caches (they count traces): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

// ------------------------------------------------------------------------------ models

/// `Dense(6) -> Dropout(0.5) -> Dense(3)`, lifted as Flax's `nn.jit(Block)`.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub train: bool,
}

impl Module for Block {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(6), x)?;
        let h = s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)?;
        s.call(&nn::Dense::new(3), h)
    }
}

/// `Dense(5) -> Dropout(0.5) -> nn.jit(Block) -> Dropout(0.5)`; `JitOuter` is Flax's
/// `nn.jit(Outer)`.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct Outer {
    pub train: bool,
}

impl Module for Outer {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(5), x)?;
        let h = s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)?;
        let h = s.call(&JitBlock { train: self.train }, h)?;
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `Outer` under a default lift (no fork of its own: it draws like the unlifted `Outer`).
#[nn::jit(name = LiftedOuter)]
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultOuter(Outer);

impl Module for DefaultOuter {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

/// `Dense(5) -> nn.jit(Block)`: a plain module with a lifted child.
#[derive(Debug, Clone, PartialEq)]
pub struct Mid {
    pub train: bool,
}

impl Module for Mid {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(5), x)?;
        s.call(&JitBlock { train: self.train }, h)
    }
}

/// `Dense(4) -> Mid -> Dropout(0.5)`; `JitGrand` is a default lift.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Grand {
    pub train: bool,
}

impl Module for Grand {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(4), x)?;
        let h = s.call(&Mid { train: self.train }, h)?;
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `Grand` as Flax's `nn.jit(Grand)`.
#[nn::jit(flax_jit, name = FlaxJitGrand)]
#[derive(Debug, Clone, PartialEq)]
pub struct ForkedGrand(Grand);

impl Module for ForkedGrand {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

/// `Dense(4) -> nn.jit(Outer) -> Dropout(0.5)`: forks three deep under `JitGrandOfJit`.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct GrandOfJit {
    pub train: bool,
}

impl Module for GrandOfJit {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(4), x)?;
        let h = s.call(&JitOuter { train: self.train }, h)?;
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `GrandOfJit` under a default lift.
#[nn::jit(name = LiftedGrandOfJit)]
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultGrandOfJit(GrandOfJit);

impl Module for DefaultGrandOfJit {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

/// `Dense(3) -> a dropout mask drawn in its own scope -> Dropout(0.5)`: its own `make_rng`
/// follows the fork at the same path.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct SelfDrop {
    pub train: bool,
}

impl Module for SelfDrop {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = s.call(&nn::Dense::new(3), x)?;
        if self.train {
            let key = s.make_rng("dropout")?;
            let mask = Tensor::bernoulli(&key, 0.5, h.shape());
            h = Tensor::select(&mask, &h / 0.5, 0.0);
        }
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `Dense(3) -> blk -> blk -> Dropout(0.5)` with one shared `nn.jit(SelfDrop)` instance: its
/// second call forks again at the path where the first one drew (the order of forks and
/// draws decides the counters). No Flax golden: Flax 0.12.8 restores a jitted call's RNG
/// counters from a process-wide cache, and two runs of the generator gave different outputs.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct SharedParent {
    pub train: bool,
}

impl Module for SharedParent {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(3), x)?;
        let block = JitSelfDrop { train: self.train };
        let blk = s.child(&block)?;
        let h = blk.call(s, h)?;
        let h = blk.call(s, h)?;
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `SharedParent` under a default lift.
#[nn::jit(name = LiftedSharedParent)]
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultSharedParent(SharedParent);

impl Module for DefaultSharedParent {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

/// The eager twin of a `flax_jit` lift at the top: Flax's fork, then the original body, with
/// no program anywhere above the children.
struct Forked<M>(M);

impl<M: Module<Input = Tensor, Output = Tensor>> Module for Forked<M> {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        s.fork_rngs()?;
        self.0.call(s, x)
    }
}

// ------------------------------------------------------------------------------ cases

type Run = fn(bool, &Variables, &ArrayD<f32>, Rngs) -> ArrayD<f32>;

/// A model with nested lifts: its lifted top, the eager path that must give the same bits,
/// its init (the lifted type's, eval mode), the lifted top's cache, and its golden case.
struct Case {
    name: &'static str,
    /// The case of `nested_fork.json`, where Flax gives a reference.
    golden: Option<&'static str>,
    init: fn(Rngs, &ArrayD<f32>) -> Variables,
    lifted: Run,
    eager: Run,
    stats: fn() -> CacheStats,
}

fn apply<M: Module<Input = Tensor, Output = Tensor>>(m: &M, v: &Variables, x: &ArrayD<f32>, r: Rngs) -> ArrayD<f32> {
    m.apply_with(v, x, r, Mutable::Nothing).unwrap().0
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "flax_jit child in a default lifted parent",
            golden: Some("outer"),
            init: |r, x| LiftedOuter(Outer { train: false }).init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&LiftedOuter(Outer { train: t }), v, x, r),
            eager: |t, v, x, r| apply(&Outer { train: t }, v, x, r),
            stats: || LiftedOuter::jit_cache().stats(),
        },
        Case {
            name: "flax_jit child in a flax_jit parent",
            golden: Some("jit_outer"),
            init: |r, x| JitOuter { train: false }.init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&JitOuter { train: t }, v, x, r),
            eager: |t, v, x, r| apply(&Forked(Outer { train: t }), v, x, r),
            stats: || JitOuter::jit_cache().stats(),
        },
        Case {
            name: "flax_jit child in a plain parent in a default lifted grandparent",
            golden: Some("grand"),
            init: |r, x| JitGrand { train: false }.init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&JitGrand { train: t }, v, x, r),
            eager: |t, v, x, r| apply(&Grand { train: t }, v, x, r),
            stats: || JitGrand::jit_cache().stats(),
        },
        Case {
            name: "flax_jit child in a plain parent in a flax_jit grandparent",
            golden: Some("jit_grand"),
            init: |r, x| FlaxJitGrand(Grand { train: false }).init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&FlaxJitGrand(Grand { train: t }), v, x, r),
            eager: |t, v, x, r| apply(&Forked(Grand { train: t }), v, x, r),
            stats: || FlaxJitGrand::jit_cache().stats(),
        },
        Case {
            name: "flax_jit child in a flax_jit parent in a default lifted grandparent",
            golden: Some("grand_of_jit"),
            init: |r, x| LiftedGrandOfJit(GrandOfJit { train: false }).init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&LiftedGrandOfJit(GrandOfJit { train: t }), v, x, r),
            eager: |t, v, x, r| apply(&GrandOfJit { train: t }, v, x, r),
            stats: || LiftedGrandOfJit::jit_cache().stats(),
        },
        Case {
            name: "flax_jit child in a flax_jit parent in a flax_jit grandparent",
            golden: Some("jit_grand_of_jit"),
            init: |r, x| JitGrandOfJit { train: false }.init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&JitGrandOfJit { train: t }, v, x, r),
            eager: |t, v, x, r| apply(&Forked(GrandOfJit { train: t }), v, x, r),
            stats: || JitGrandOfJit::jit_cache().stats(),
        },
        Case {
            name: "a flax_jit lift drawing in its own scope after its fork",
            golden: Some("jit_self_drop"),
            init: |r, x| JitSelfDrop { train: false }.init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&JitSelfDrop { train: t }, v, x, r),
            eager: |t, v, x, r| apply(&Forked(SelfDrop { train: t }), v, x, r),
            stats: || JitSelfDrop::jit_cache().stats(),
        },
        Case {
            name: "one flax_jit child called twice in a default lifted parent",
            golden: None,
            init: |r, x| LiftedSharedParent(SharedParent { train: false }).init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&LiftedSharedParent(SharedParent { train: t }), v, x, r),
            eager: |t, v, x, r| apply(&SharedParent { train: t }, v, x, r),
            stats: || LiftedSharedParent::jit_cache().stats(),
        },
        Case {
            name: "one flax_jit child called twice in a flax_jit parent",
            golden: None,
            init: |r, x| JitSharedParent { train: false }.init(r, x).unwrap(),
            lifted: |t, v, x, r| apply(&JitSharedParent { train: t }, v, x, r),
            eager: |t, v, x, r| apply(&Forked(SharedParent { train: t }), v, x, r),
            stats: || JitSharedParent::jit_cache().stats(),
        },
    ]
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn dropout(seed: i64) -> Rngs {
    Rngs::none().with("dropout", nn::PRNGKey(seed))
}

// ------------------------------------------------------------------------------ lifted ≡ eager

#[test]
fn nested_forks_replay_the_eager_keys() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 64 rows: wide enough for the kernels to split on two threads.
    let x = ArrayD::from_shape_fn(vec![64, 6], |i| ((i[0] * 7 + i[1] * 3) % 11) as f32 * 0.25 - 1.0);
    let init_rngs = Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1));
    for threads in [1, 2] {
        set_num_threads(threads);
        for c in cases() {
            let what = format!("{} ({threads} threads)", c.name);
            let v = (c.init)(init_rngs.clone(), &x);
            let before = (c.stats)();
            let mut outputs = Vec::new();
            for key in [11, 12] {
                let y = (c.lifted)(true, &v, &x, dropout(key));
                let want = (c.eager)(true, &v, &x, dropout(key));
                assert_eq!(bits(&y), bits(&want), "{what}: dropout key {key}: lifted differs from the eager path");
                outputs.push((y, (c.stats)()));
            }
            let (first, second) = (&outputs[0].1, &outputs[1].1);
            // At most one trace for this signature (the first thread count compiles it); the
            // second key runs the program compiled for the first.
            assert!(first.traces - before.traces <= 1, "{what}: {} traces", first.traces - before.traces);
            assert_eq!(second.traces, first.traces, "{what}: the second key traced again");
            assert!(second.hits > first.hits, "{what}: the second key did not hit the cache");
            assert_ne!(bits(&outputs[0].0), bits(&outputs[1].0), "{what}: two dropout keys, the same masks");
            // Dropout is active: train differs from eval.
            let eval = (c.lifted)(false, &v, &x, Rngs::none());
            assert_ne!(bits(&outputs[0].0), bits(&eval), "{what}: train mode output equals eval");
            // Two threads at once, each with its own key, on the cached program.
            let traces = (c.stats)().traces;
            std::thread::scope(|sc| {
                let runs: Vec<_> = [21, 22]
                    .into_iter()
                    .map(|key| {
                        let (v, x, c) = (&v, &x, &c);
                        sc.spawn(move || ((c.lifted)(true, v, x, dropout(key)), (c.eager)(true, v, x, dropout(key))))
                    })
                    .collect();
                for r in runs {
                    let (y, want) = r.join().unwrap();
                    assert_eq!(bits(&y), bits(&want), "{what}: concurrent apply differs from the eager path");
                }
            });
            assert_eq!((c.stats)().traces, traces, "{what}: concurrent applies traced again");
        }
    }
    set_num_threads(1);
}

#[test]
fn a_nested_fork_follows_the_streams_of_each_call() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let x = ArrayD::from_shape_fn(vec![3, 6], |i| (i[0] + 2 * i[1]) as f32 * 0.3 - 1.0);
    let v = JitOuter { train: false }.init(nn::PRNGKey(3), &x).unwrap();
    let m = JitOuter { train: true };
    // A stream the program did not see at trace time is another signature (another trace);
    // each call's own keys decide the masks, with one stream or two.
    let one = apply(&m, &v, &x, dropout(5));
    let two = apply(&m, &v, &x, dropout(5).with("params", nn::PRNGKey(9)));
    assert_eq!(bits(&one), bits(&apply(&Forked(Outer { train: true }), &v, &x, dropout(5))));
    let eager_two = apply(&Forked(Outer { train: true }), &v, &x, dropout(5).with("params", nn::PRNGKey(9)));
    assert_eq!(bits(&two), bits(&eager_two));
    // Without a dropout stream the fork falls back to `params`, as Flax's `make_rng` does.
    let params_only = apply(&m, &v, &x, Rngs::new(nn::PRNGKey(4)));
    assert_eq!(bits(&params_only), bits(&apply(&Forked(Outer { train: true }), &v, &x, Rngs::new(nn::PRNGKey(4)))));
    // No stream at all in train mode: the error value of the eager path.
    let err = JitOuter { train: true }.apply_with(&v, &x, Rngs::none(), Mutable::Nothing).unwrap_err();
    assert!(matches!(err, nnjit::Error::MissingRng { .. }), "{err:?}");
}

// ------------------------------------------------------------------------------ Flax golden

#[test]
fn nested_forks_match_flax() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let g: Value = serde_json::from_str(include_str!("data/flax_lift/nested_fork.json")).unwrap();
    let golden = g["nested_forks"]["cases"].as_array().unwrap();
    assert_eq!(golden.len(), 14);
    let seeded = |v: &Value, k: &str| nn::PRNGKey(v[k].as_i64().unwrap());
    for c in cases() {
        let Some(name) = c.golden else { continue };
        let mine: Vec<&Value> = golden.iter().filter(|g| g["case"] == name).collect();
        assert_eq!(mine.len(), 2, "{name}");
        for want in mine {
            let what = format!("{name} seed {}", want["seed"]);
            let x = array(&want["x"]);
            let r = &want["init_rngs"];
            let v = (c.init)(Rngs::new(seeded(r, "params")).with("dropout", seeded(r, "dropout")), &x);
            assert_vars(&what, &v, &variables(&want["variables"]));
            let trains = want["train"].as_array().unwrap();
            assert_eq!(trains.len(), 2);
            for t in trains {
                let key = t["apply_rngs"]["dropout"].as_i64().unwrap();
                let y = (c.lifted)(true, &v, &x, dropout(key));
                assert_close(&format!("{what} train, dropout key {key}"), &y, &array(&t["output_train"]));
            }
            assert_close(
                &format!("{what} eval"),
                &(c.lifted)(false, &v, &x, Rngs::none()),
                &array(&want["output_eval"]),
            );
        }
    }
}
