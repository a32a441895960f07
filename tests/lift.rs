//! The lift: lifted types init and apply exactly like the originals (Dense, user composites,
//! mutable collections, RNG streams), compose in every direction, and prepare once per shape.

use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{self, Lifted, Module, Mutable, Rngs, Scope, Tensor};
use nnjit::Variables;
use nnjit_suite::models::{JitMlp, JitMlpBnDrop, Mlp, MlpBnDrop};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_input(rng: &mut ChaCha8Rng, shape: &[usize]) -> ArrayD<f32> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-3.0f32..3.0)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn same_bits(a: &ArrayD<f32>, b: &ArrayD<f32>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn property_lifted_equals_plain_over_random_shapes_and_seeds() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for case in 0..150 {
        let rank = rng.random_range(1..=3);
        let mut shape: Vec<usize> = (0..rank - 1).map(|_| rng.random_range(1..4)).collect();
        let d = rng.random_range(1..70);
        shape.push(d);
        let f = rng.random_range(1..70);
        let seed: i64 = rng.random();
        let x = random_input(&mut rng, &shape);
        let (plain, lifted) = (nn::Dense::new(f), nn::JitDense::new(f));
        let v1 = plain.init(nn::PRNGKey(seed), &x).unwrap();
        let v2 = lifted.init(nn::PRNGKey(seed), &x).unwrap();
        assert!(v1.bits_eq(&v2), "case {case}: init differs");
        let y1 = plain.apply(&v1, &x).unwrap();
        let y2 = lifted.apply(&v1, &x).unwrap();
        assert!(same_bits(&y1, &y2), "case {case}: shape {shape:?} F={f}");
        // Batched apply equals row-by-row apply.
        let rows = x.to_shape((x.len() / d, d)).unwrap();
        let y_rows = y2.to_shape((y2.len() / f, f)).unwrap();
        for (r, row) in rows.outer_iter().enumerate() {
            let yr = lifted.apply(&v1, row).unwrap();
            assert!(yr.iter().zip(y_rows.row(r)).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        // Composite.
        let (m, jm) = (Mlp { hidden: f, out: 1 + f % 7 }, JitMlp { hidden: f, out: 1 + f % 7 });
        let v = m.init(nn::PRNGKey(seed), &x).unwrap();
        assert!(v.bits_eq(&jm.init(nn::PRNGKey(seed), &x).unwrap()));
        assert!(same_bits(&m.apply(&v, &x).unwrap(), &jm.apply(&v, &x).unwrap()));
    }
}

#[test]
fn mutable_collections_and_rng_streams_cross_the_lift() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..30 {
        let shape = [rng.random_range(2..9), rng.random_range(1..20)];
        let x = random_input(&mut rng, &shape);
        let eval = MlpBnDrop { hidden: rng.random_range(1..30), out: rng.random_range(1..10), rate: 0.3, train: false };
        let train = MlpBnDrop { train: true, ..eval.clone() };
        let rngs = Rngs::new(nn::PRNGKey(case)).with("dropout", nn::PRNGKey(case + 1));
        let v = eval.init(rngs.clone(), &x).unwrap();
        assert!(v.bits_eq(&JitMlpBnDrop::from(eval.clone()).init(rngs, &x).unwrap()));
        let drop = Rngs::none().with("dropout", nn::PRNGKey(case + 2));
        let (y1, u1) = train.apply_with(&v, &x, drop.clone(), Mutable::only(["batch_stats"])).unwrap();
        let (y2, u2) = JitMlpBnDrop::from(train).apply_with(&v, &x, drop, Mutable::only(["batch_stats"])).unwrap();
        assert!(same_bits(&y1, &y2), "case {case}");
        assert!(u1.bits_eq(&u2));
        assert!(u1.get("batch_stats/BatchNorm_0/mean").is_some());
        let e1 = eval.apply(&v, &x).unwrap();
        assert!(same_bits(&e1, &JitMlpBnDrop::from(eval).apply(&v, &x).unwrap()));
    }
}

/// A lifted type used only here, so its cache counts only this test's shapes.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    features: usize,
}

impl Module for Probe {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&nn::Dense::new(self.features), x)
    }
}

#[test]
fn compiles_once_per_shape_then_reuses() {
    let m = JitProbe { features: 3 };
    let x = [1.0f32, 2.0];
    let cache = JitProbe::jit_cache();
    let packs = cache.pack_count();
    let vars = m.init(nn::PRNGKey(0), x).unwrap();
    assert_eq!(m.cache_size(), 0, "init prepares nothing");
    assert_eq!(cache.pack_count(), packs, "init packs nothing");
    let y = m.apply(&vars, x).unwrap();
    assert_eq!(m.cache_size(), 1);
    assert_eq!(cache.pack_count(), packs + 1);
    let traces = cache.stats().traces;
    for _ in 0..5 {
        assert_eq!(m.apply(&vars, x).unwrap(), y);
    }
    assert_eq!(m.cache_size(), 1, "a repeated shape reuses");
    assert_eq!(cache.stats().traces, traces, "a repeated shape traces nothing");
    assert_eq!(cache.pack_count(), packs + 1, "parameters packed once");
    m.apply(&vars, nnjit::ndarray::Array2::<f32>::ones((4, 2))).unwrap();
    assert_eq!(m.cache_size(), 2, "a new shape prepares once");
    assert_eq!(cache.stats().traces, traces + 1);
    // New parameter values (a new version) are packed again; the old program never serves them.
    let packs_before_v2 = cache.pack_count();
    let mut v2 = vars.clone();
    v2.get_mut("params/Dense_0/kernel").unwrap()[[0, 0]] = 10.0;
    let y2 = m.apply(&v2, x).unwrap();
    assert_eq!(y2, Probe { features: 3 }.apply(&v2, x).unwrap());
    assert_ne!(y2, y);
    assert_eq!(cache.pack_count(), packs_before_v2 + 1);
    assert_eq!(m.cache_size(), 2, "new parameter values are not a new shape");
    assert_eq!(m.apply(&vars, x).unwrap(), y, "the old values still give the old output");
}

/// An un-lifted parent whose child is lifted.
struct ParentOfLifted;
impl Module for ParentOfLifted {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::JitDense::new(6), x)?);
        s.call(&nn::Dense::new(2), &h)
    }
}

/// The same parent with plain children.
struct ParentOfPlain;
impl Module for ParentOfPlain {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(6), x)?);
        s.call(&nn::Dense::new(2), &h)
    }
}

/// The plain parent with its first child under the lifted child's name (`JitDense_0`, as
/// Flax names `nn.jit(nn.Dense)`): the tree of [`ParentOfLifted`].
struct ParentOfPlainNamedAsLifted;
impl Module for ParentOfPlainNamedAsLifted {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call_named("JitDense_0", &nn::Dense::new(6), x)?);
        s.call(&nn::Dense::new(2), &h)
    }
}

/// `variables` with the module names under each collection renamed by `map` (all at once).
fn renamed(variables: &Variables, map: &[(&str, &str)]) -> Variables {
    let mut out = Variables::new();
    for (path, leaf) in variables.leaves() {
        let mut parts: Vec<&str> = path.split('/').collect();
        if let Some((_, to)) = map.iter().find(|(from, _)| parts.get(1) == Some(from)) {
            parts[1] = to;
        }
        out.insert(&parts.join("/"), leaf.array().clone()).unwrap();
    }
    out
}

/// A module that runs another module in its own scope; lifting it over a lifted module is a
/// lift of a lift.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Wrap<M: Module> {
    inner: M,
}

impl<M: Module> Module for Wrap<M> {
    type Input = M::Input;
    type Output = M::Output;

    fn call(&self, s: &mut Scope<'_, '_>, x: M::Input) -> nnjit::Result<M::Output> {
        self.inner.call(s, x)
    }
}

/// A user loop over layers, with lifted or plain Dense layers (plain ones optionally under the
/// lifted layers' names, `JitDense_{i}`).
struct Deep {
    widths: Vec<usize>,
    lifted: bool,
    named_as_lifted: bool,
}
impl Module for Deep {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let mut h = x;
        for (i, &w) in self.widths.iter().enumerate() {
            h = if self.lifted {
                s.call(&nn::JitDense::new(w), h)?
            } else if self.named_as_lifted {
                s.call_named(&format!("JitDense_{i}"), &nn::Dense::new(w), h)?
            } else {
                s.call(&nn::Dense::new(w), h)?
            };
            h = nn::tanh(h);
        }
        Ok(h)
    }
}

#[test]
fn composition_in_every_direction() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = random_input(&mut rng, &[3, 5]);
    let check = |a: &dyn Fn(&Variables) -> ArrayD<f32>, b: &dyn Fn(&Variables) -> ArrayD<f32>, v: &Variables| {
        assert!(same_bits(&a(v), &b(v)));
    };
    // Lifted child inside an un-lifted parent: Flax's name for it (`JitDense_0`, so the next
    // Dense is `Dense_0`); the params are the plain child's derived under that name, and the
    // plain parent's variables moved to the lifted names give the same outputs.
    let v = ParentOfPlainNamedAsLifted.init(nn::PRNGKey(5), &x).unwrap();
    let lifted = ParentOfLifted.init(nn::PRNGKey(5), &x).unwrap();
    assert!(v.bits_eq(&lifted));
    assert!(lifted.get("params/JitDense_0/kernel").is_some() && lifted.get("params/Dense_0/kernel").is_some());
    let plain = ParentOfPlain.init(nn::PRNGKey(5), &x).unwrap();
    assert!(!plain.bits_eq(&lifted), "the name is part of every key below it");
    let moved = renamed(&plain, &[("Dense_0", "JitDense_0"), ("Dense_1", "Dense_0")]);
    assert!(same_bits(&ParentOfPlain.apply(&plain, &x).unwrap(), &ParentOfLifted.apply(&moved, &x).unwrap()));
    check(&|v| ParentOfPlainNamedAsLifted.apply(v, &x).unwrap(), &|v| ParentOfLifted.apply(v, &x).unwrap(), &v);
    // Lifted parent with plain children (JitMlp), and a lift of a lift.
    let mlp = Mlp { hidden: 7, out: 3 };
    let v = mlp.init(nn::PRNGKey(9), &x).unwrap();
    let lift2 = JitWrap { inner: JitMlp::from(mlp.clone()) };
    assert!(v.bits_eq(&lift2.init(nn::PRNGKey(9), &x).unwrap()));
    assert!(v.bits_eq(&Wrap { inner: mlp.clone() }.init(nn::PRNGKey(9), &x).unwrap()));
    check(&|v| mlp.apply(v, &x).unwrap(), &|v| lift2.apply(v, &x).unwrap(), &v);
    check(&|v| mlp.apply(v, &x).unwrap(), &|v| JitMlp::from(mlp.clone()).apply(v, &x).unwrap(), &v);
    // Loops over layers.
    let widths = vec![4, 9, 2, 6];
    let plain = Deep { widths: widths.clone(), lifted: false, named_as_lifted: false };
    let named = Deep { widths: widths.clone(), lifted: false, named_as_lifted: true };
    let lifted = Deep { widths, lifted: true, named_as_lifted: false };
    let v = named.init(nn::PRNGKey(1), &x).unwrap();
    assert!(v.bits_eq(&lifted.init(nn::PRNGKey(1), &x).unwrap()));
    assert!(v.get("params/JitDense_3/kernel").is_some());
    check(&|v| named.apply(v, &x).unwrap(), &|v| lifted.apply(v, &x).unwrap(), &v);
    let vp = plain.init(nn::PRNGKey(1), &x).unwrap();
    let map =
        [("Dense_0", "JitDense_0"), ("Dense_1", "JitDense_1"), ("Dense_2", "JitDense_2"), ("Dense_3", "JitDense_3")];
    assert!(same_bits(&plain.apply(&vp, &x).unwrap(), &lifted.apply(&renamed(&vp, &map), &x).unwrap()));
}

/// `Mlp` lifted as Flax's `nn.jit(Mlp)` computes it (`flax_jit`).
#[nn::jit(flax_jit, name = FlaxJitMlp)]
#[derive(Debug, Clone, PartialEq)]
struct FlaxMlp(Mlp);

impl Module for FlaxMlp {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

#[test]
fn conversions_and_flax_rng_opt_in() {
    let m = Mlp { hidden: 4, out: 2 };
    let j: JitMlp = m.clone().into();
    assert_eq!((j.hidden, j.out), (4, 2));
    assert_eq!(Mlp::from(j.clone()), m);
    assert_eq!(j.original(), &m);
    let x = [0.5f32, -1.0, 2.0];
    // Flax's nn.jit derivation gives other params than the plain init (a documented gotcha);
    // ours are equal by default.
    let plain = m.init(nn::PRNGKey(0), x).unwrap();
    assert!(plain.bits_eq(&j.init(nn::PRNGKey(0), x).unwrap()));
    let flax = FlaxJitMlp(m.clone()).init(nn::PRNGKey(0), x).unwrap();
    assert!(!plain.bits_eq(&flax));
    assert_eq!(plain.shapes(), flax.shapes());
    // Without RNG streams the fork has nothing to fork: the same outputs.
    assert_eq!(FlaxJitMlp(m.clone()).apply(&flax, x).unwrap(), m.apply(&flax, x).unwrap());
}

#[nn::jit(rngs = ["params"], name = NoDropoutRngs)]
#[derive(Debug, Clone, PartialEq)]
struct DropOnly {
    rate: f64,
}

impl Module for DropOnly {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&nn::Dropout::new(self.rate), x)
    }
}

#[nn::jit(variables = ["params"])]
#[derive(Debug, Clone, PartialEq)]
struct BnParamsOnly;

impl Module for BnParamsOnly {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&nn::BatchNorm::new().use_running_average(true), x)
    }
}

#[test]
fn lift_filters_rngs_and_collections() {
    let x = [1.0f32; 8];
    let v = Variables::new();
    let rngs = Rngs::none().with("dropout", nn::PRNGKey(1));
    assert!(DropOnly { rate: 0.5 }.apply_with(&v, x, rngs.clone(), Mutable::Nothing).is_ok());
    let e = NoDropoutRngs { rate: 0.5 }.apply_with(&v, x, rngs, Mutable::Nothing).unwrap_err();
    assert!(matches!(e, nnjit::Error::MissingRng { .. }), "{e:?}");
    let xb = nnjit::ndarray::array![[1.0f32, 2.0]];
    let vars = BnParamsOnly.init(nn::PRNGKey(0), &xb).unwrap();
    assert!(BnParamsOnly.apply(&vars, &xb).is_ok());
    let e = JitBnParamsOnly.apply(&vars, &xb).unwrap_err();
    assert!(matches!(e, nnjit::Error::MissingVariable { ref collection, .. } if collection == "batch_stats"), "{e:?}");
}

#[test]
fn bound_and_const_generic_entries_match_apply() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let m = nn::JitDense::new(4);
    let x = random_input(&mut rng, &[3]);
    let vars = m.init(nn::PRNGKey(42), &x).unwrap();
    let y = nn::Dense::new(4).apply(&vars, &x).unwrap();
    let fixed = m.bind_fixed::<3, 4>(&vars).unwrap();
    let xa: [f32; 3] = [x[0], x[1], x[2]];
    assert_eq!(fixed.apply(&xa).unwrap().map(f32::to_bits).to_vec(), y.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let bound = m.bind(&vars, &x).unwrap();
    let mut out = [0.0f32; 4];
    bound.apply_into(&xa, &mut out).unwrap();
    assert!(out.iter().zip(y.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(bound.apply_into(&xa, &mut [0.0; 3]).is_err());
    assert!(m.bind_fixed::<3, 5>(&vars).is_err());
    assert!(nn::JitDense::new(5).bind(&vars, &x).is_err());
    let mut out2 = vec![0.0f32; 4];
    m.apply_into(&vars, &x, &mut out2).unwrap();
    assert_eq!(out2, out.to_vec());
}

#[test]
fn tabulate_lists_every_module_path() {
    let m = MlpBnDrop { hidden: 5, out: 2, rate: 0.5, train: false };
    let x = nnjit::ndarray::Array2::<f32>::ones((4, 3));
    let t = m.tabulate(nn::PRNGKey(0), &x).unwrap();
    let paths: Vec<&str> = t.rows().iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["", "Dense_0", "BatchNorm_0", "Dropout_0", "Dense_1"]);
    assert_eq!(t.rows()[1].output, [4, 5]);
    assert_eq!(t.rows()[1].variables.len(), 2);
    assert_eq!(t.total("params"), 3 * 5 + 5 + 5 + 5 + 5 * 2 + 2);
    assert_eq!(t.total("batch_stats"), 10);
    let text = t.to_string();
    assert!(text.contains("│ BatchNorm_0 │ BatchNorm │") && text.contains("mean: float32[5]"), "{text}");
    assert!(text.contains("Total Parameters: 52 (208 B)"), "{text}");
    // The lifted twin tabulates the same way.
    assert_eq!(JitMlpBnDrop::from(m).tabulate(nn::PRNGKey(0), &x).unwrap().rows()[1..], t.rows()[1..]);
}

/// One tensor returned in a `Vec`: a host value that is not the array itself.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct InVec {
    f: usize,
}

impl Module for InVec {
    type Input = Tensor;
    type Output = Vec<Tensor>;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Vec<Tensor>> {
        Ok(vec![nn::relu(s.call(&nn::Dense::new(self.f), x)?)])
    }
}

#[test]
fn repeated_applies_return_every_output_kind() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let x = random_input(&mut rng, &[3, 5]);
    let (plain, lifted) = (InVec { f: 4 }, JitInVec { f: 4 });
    let vars = plain.init(nn::PRNGKey(5), &x).unwrap();
    let want = plain.apply(&vars, &x).unwrap();
    let hits = JitInVec::jit_cache().stats().hits;
    for i in 0..3 {
        let y = lifted.apply(&vars, &x).unwrap();
        assert_eq!(y.len(), 1, "apply {i}");
        assert!(same_bits(&y[0], &want[0]), "apply {i}");
    }
    // The later applies repeated the first (this thread's remembered program).
    assert!(JitInVec::jit_cache().stats().hits >= hits + 2);
    // And a single tensor, through the same repeat (JitMlp's program, returned as the array).
    let (plain, lifted) = (Mlp { hidden: 6, out: 2 }, JitMlp { hidden: 6, out: 2 });
    let vars = plain.init(nn::PRNGKey(6), &x).unwrap();
    let want = plain.apply(&vars, &x).unwrap();
    for i in 0..3 {
        assert!(same_bits(&lifted.apply(&vars, &x).unwrap(), &want), "JitMlp apply {i}");
    }
}
