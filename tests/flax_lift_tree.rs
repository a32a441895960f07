//! Flax parity of the lifted tree against real Flax 0.12.8 / JAX 0.10.2
//! (`tests/data/flax_lift/lift_tree.json`, made by `tests/data/flax_lift/gen_flax_lift.py`):
//!
//! * `lift_names`: an unnamed lifted child is `JitBlock_0` (`nn.jit(Block)`), a nested lift
//!   `JitJitBlock_0`, one counter per class name (`Block_0, JitBlock_0, Block_1`), an explicit
//!   name overrides; the variables (bits) and outputs of every case with a `flax_jit` lift.
//! * `rng_forks`: Dropout and BatchNorm under `nn.jit` in train mode, top level and as a child:
//!   variables bit for bit, outputs within tolerance.
//! * A default lift (no `flax_jit`) names its children as Flax does but draws like its original:
//!   its parent equals the plain parent whose child has the lifted child's name.

use ndarray::ArrayD;
use nnjit::nn::{self, Module, Mutable, Rngs, Scope, Tensor};
use nnjit::Variables;
use serde_json::Value;

mod flax_models;
mod golden_json;
use flax_models::{Block, BnMlp, DropMlp, JitBlock, JitBnMlp, JitDropMlp};
use golden_json::{array, assert_close, assert_vars, variables};

const GOLDEN: &str = include_str!("data/flax_lift/lift_tree.json");

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("lift_tree.json parses")
}

// ------------------------------------------------------------------------------ models

/// `nn.jit(nn.jit(Block))`: a lift of the lifted block (its type name is `JitBlock`).
#[nn::jit(flax_jit, name = JitJitBlock)]
#[derive(Debug, Clone, PartialEq)]
pub struct LiftOfJitBlock;

impl Module for LiftOfJitBlock {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        JitBlock.call(s, x)
    }
    fn type_name(&self) -> &'static str {
        JitBlock.type_name()
    }
}

/// The block again, lifted without `flax_jit` (type name `Block`, so its lift is `JitBlock`).
#[nn::jit(name = DefaultJitBlock)]
#[derive(Debug, Clone, PartialEq)]
pub struct SameBlock;

impl Module for SameBlock {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        Block.call(s, x)
    }
    fn type_name(&self) -> &'static str {
        "Block"
    }
}

/// The parents of `lift_names`: `Dense(4)` then the children `kinds` names.
struct Parent(String);

impl Module for Parent {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let x = s.call(&nn::Dense::new(4), x)?;
        match self.0.as_str() {
            "parent_jit_children" => {
                let x = s.call(&JitBlock, x)?;
                s.call(&JitBlock, x)
            }
            "parent_plain_children" => {
                let x = s.call(&Block, x)?;
                s.call(&Block, x)
            }
            "parent_named_jit_child" => {
                let x = s.call(&JitBlock.named("blk"), x)?;
                s.call(&JitBlock, x)
            }
            "parent_jit_of_jit_child" => {
                let x = s.call(&JitJitBlock, x)?;
                s.call(&JitBlock, x)
            }
            "parent_mixed_children" => {
                let x = s.call(&Block, x)?;
                let x = s.call(&JitBlock, x)?;
                s.call(&Block, x)
            }
            // The default lift: names as Flax, numbers as the plain block.
            "default_jit_children" => {
                let x = s.call(&DefaultJitBlock, x)?;
                s.call(&DefaultJitBlock, x)
            }
            // The plain block under the lifted block's names.
            "plain_children_named_jit" => {
                let x = s.call_named("JitBlock_0", &Block, x)?;
                s.call_named("JitBlock_1", &Block, x)
            }
            other => Err(nnjit::Error::invalid("", format!("unknown case {other}"))),
        }
    }
}

fn lift_case(case: &str, seed: i64, x: &ArrayD<f32>) -> nnjit::Result<(Variables, ArrayD<f32>)> {
    let key = nn::PRNGKey(seed);
    let run = |m: &dyn Fn() -> nnjit::Result<(Variables, ArrayD<f32>)>| m();
    match case {
        "top_level_jit_block" => run(&|| {
            let v = JitBlock.init(key, x)?;
            Ok((v.clone(), JitBlock.apply(&v, x)?))
        }),
        "top_level_plain_block" => run(&|| {
            let v = Block.init(key, x)?;
            Ok((v.clone(), Block.apply(&v, x)?))
        }),
        "top_level_jit_of_jit_block" => run(&|| {
            let v = JitJitBlock.init(key, x)?;
            Ok((v.clone(), JitJitBlock.apply(&v, x)?))
        }),
        parent => {
            let m = Parent(parent.to_string());
            let v = m.init(key, x)?;
            let y = m.apply(&v, x)?;
            Ok((v, y))
        }
    }
}

#[test]
fn lifted_class_names_are_flax_names() {
    let g = golden();
    let names = &g["lift_names"]["lifted_class_names"];
    assert_eq!(JitBlock.type_name(), names["nn.jit(Block)"].as_str().unwrap());
    assert_eq!(JitJitBlock.type_name(), names["nn.jit(nn.jit(Block))"].as_str().unwrap());
    assert_eq!(nn::JitDense::new(2).type_name(), names["nn.jit(nn.Dense)"].as_str().unwrap());
    assert_eq!(DefaultJitBlock.type_name(), "JitBlock");
}

#[test]
fn lift_names_variables_and_outputs_match_flax() {
    let g = golden();
    let cases = g["lift_names"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16);
    for c in cases {
        let (case, seed) = (c["case"].as_str().unwrap(), c["seed"].as_i64().unwrap());
        let what = format!("{case} seed {seed}");
        let x = array(&c["x"]);
        let (v, y) = lift_case(case, seed, &x).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_vars(&what, &v, &variables(&c["variables"]));
        assert_close(&what, &y, &array(&c["output"]));
    }
}

#[test]
fn golden_variables_load_into_the_lifted_parent() {
    // A Flax checkpoint of a parent with nn.jit children applies to the Rust parent.
    let g = golden();
    for c in g["lift_names"]["cases"].as_array().unwrap() {
        if c["case"] != "parent_jit_children" {
            continue;
        }
        let x = array(&c["x"]);
        let vars = variables(&c["variables"]);
        Parent("parent_jit_children".into()).check_variables(&vars, &x).expect("same tree as Flax");
        assert_close("apply", &Parent("parent_jit_children".into()).apply(&vars, &x).unwrap(), &array(&c["output"]));
        // The default lift has the same tree and the same forward pass.
        assert_close(
            "default lift",
            &Parent("default_jit_children".into()).apply(&vars, &x).unwrap(),
            &array(&c["output"]),
        );
    }
}

#[test]
fn default_lift_draws_like_the_plain_block_under_its_name() {
    let x = ndarray::array![[0.5f32, -1.0, 2.0], [1.5, 0.25, -0.75]].into_dyn();
    for seed in [0, 7, 11] {
        let lifted = Parent("default_jit_children".into()).init(nn::PRNGKey(seed), &x).unwrap();
        let plain_named = Parent("plain_children_named_jit".into()).init(nn::PRNGKey(seed), &x).unwrap();
        assert!(lifted.bits_eq(&plain_named), "seed {seed}");
        assert!(lifted.get("params/JitBlock_1/Dense_1/kernel").is_some());
        // ... while the Flax-exact lift forks its RNGs: other kernels.
        let flax = Parent("parent_jit_children".into()).init(nn::PRNGKey(seed), &x).unwrap();
        assert!(!flax.bits_eq(&lifted));
        assert_eq!(
            Parent("default_jit_children".into()).apply(&lifted, &x).unwrap(),
            Parent("plain_children_named_jit".into()).apply(&lifted, &x).unwrap()
        );
    }
}

// ------------------------------------------------------------------------------ rng forks

/// `Dense(5) -> DropMlp (plain or lifted) -> Dropout(0.5)`.
struct DropParent {
    lifted: bool,
    train: bool,
}

impl Module for DropParent {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(5), x)?;
        let h = if self.lifted {
            s.call(&JitDropMlp { train: self.train }, h)?
        } else {
            s.call(&DropMlp { train: self.train }, h)?
        };
        s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)
    }
}

/// `Dense(4) -> BnMlp (plain or lifted)`.
struct BnParent {
    lifted: bool,
    train: bool,
}

impl Module for BnParent {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(4), x)?;
        if self.lifted {
            s.call(&JitBnMlp { train: self.train }, h)
        } else {
            s.call(&BnMlp { train: self.train }, h)
        }
    }
}

fn rngs_of(v: &Value) -> Rngs {
    v.as_object().unwrap().iter().fold(Rngs::none(), |r, (k, s)| r.with(k.clone(), nn::PRNGKey(s.as_i64().unwrap())))
}

fn case_of<'a>(g: &'a Value, name: &str) -> Vec<&'a Value> {
    g["rng_forks"]["cases"].as_array().unwrap().iter().filter(|c| c["case"] == name).collect()
}

#[test]
fn dropout_at_the_top_forks_as_flax_nn_jit() {
    let g = golden();
    let cases = case_of(&g, "dropout_top_level");
    assert_eq!(cases.len(), 2);
    for c in cases {
        let what = format!("dropout_top_level seed {}", c["seed"]);
        let (x, init_rngs, apply_rngs) = (array(&c["x"]), rngs_of(&c["init_rngs"]), rngs_of(&c["apply_rngs"]));
        let (p, j) = (&c["plain"], &c["jit"]);
        // Init, eval and train mode (train-mode init: the output of init_with_output).
        let vp = DropMlp { train: false }.init(init_rngs.clone(), &x).unwrap();
        let vj = JitDropMlp { train: false }.init(init_rngs.clone(), &x).unwrap();
        assert_vars(&format!("{what} plain init"), &vp, &variables(&p["variables"]));
        assert_vars(&format!("{what} jit init"), &vj, &variables(&j["variables"]));
        let (ypt, _) = DropMlp { train: true }.init_with_output(init_rngs.clone(), &x).unwrap();
        let (yjt, vjt) = JitDropMlp { train: true }.init_with_output(init_rngs.clone(), &x).unwrap();
        assert_close(&format!("{what} plain init output"), &ypt, &array(&p["init_train_output"]));
        assert_close(&format!("{what} jit init output"), &yjt, &array(&j["init_train_output"]));
        assert!(vjt.bits_eq(&vj));
        // Apply in train mode: the fork changes the masks, also with the plain variables.
        let train = |lifted: bool, vars: &Variables| {
            let r = apply_rngs.clone();
            if lifted {
                JitDropMlp { train: true }.apply_with(vars, &x, r, Mutable::Nothing).unwrap().0
            } else {
                DropMlp { train: true }.apply_with(vars, &x, r, Mutable::Nothing).unwrap().0
            }
        };
        assert_close(&format!("{what} plain train"), &train(false, &vp), &array(&p["output_train"]));
        assert_close(&format!("{what} jit train"), &train(true, &vj), &array(&j["output_train"]));
        assert_close(
            &format!("{what} jit train, plain variables"),
            &train(true, &vp),
            &array(&j["output_train_with_plain_variables"]),
        );
        assert_close(
            &format!("{what} jit eval"),
            &JitDropMlp { train: false }.apply(&vp, &x).unwrap(),
            &array(&j["output_eval_with_plain_variables"]),
        );
        assert!(!c["train_outputs_equal_same_variables"].as_bool().unwrap());
    }
}

#[test]
fn dropout_in_a_lifted_child_forks_as_flax_nn_jit() {
    let g = golden();
    let cases = case_of(&g, "dropout_child");
    assert_eq!(cases.len(), 2);
    for c in cases {
        let (x, init_rngs, apply_rngs) = (array(&c["x"]), rngs_of(&c["init_rngs"]), rngs_of(&c["apply_rngs"]));
        for (lifted, key) in [(false, "plain"), (true, "jit")] {
            let what = format!("dropout_child seed {} {key}", c["seed"]);
            let want = &c[key];
            let v = DropParent { lifted, train: false }.init(init_rngs.clone(), &x).unwrap();
            assert_vars(&what, &v, &variables(&want["variables"]));
            let (y, _) =
                DropParent { lifted, train: true }.apply_with(&v, &x, apply_rngs.clone(), Mutable::Nothing).unwrap();
            assert_close(&format!("{what} train"), &y, &array(&want["output_train"]));
            let ye = DropParent { lifted, train: false }.apply(&v, &x).unwrap();
            assert_close(&format!("{what} eval"), &ye, &array(&want["output_eval"]));
        }
    }
}

#[test]
fn batchnorm_under_nn_jit_matches_flax() {
    let g = golden();
    for name in ["batchnorm_top_level", "batchnorm_child"] {
        let cases = case_of(&g, name);
        assert_eq!(cases.len(), 2, "{name}");
        for c in cases {
            let x = array(&c["x"]);
            let seed = c["seed"].as_i64().unwrap();
            for (lifted, key) in [(false, "plain"), (true, "jit")] {
                let what = format!("{name} seed {seed} {key}");
                let want = &c[key];
                let init = |train: bool| -> Variables {
                    let k = nn::PRNGKey(seed);
                    match (name, lifted) {
                        ("batchnorm_top_level", false) => BnMlp { train }.init(k, &x),
                        ("batchnorm_top_level", true) => JitBnMlp { train }.init(k, &x),
                        (_, lifted) => BnParent { lifted, train }.init(k, &x),
                    }
                    .unwrap()
                };
                let train = |vars: &Variables| -> (ArrayD<f32>, Variables) {
                    let m = Mutable::only(["batch_stats"]);
                    match (name, lifted) {
                        ("batchnorm_top_level", false) => BnMlp { train: true }.apply_with(vars, &x, Rngs::none(), m),
                        ("batchnorm_top_level", true) => JitBnMlp { train: true }.apply_with(vars, &x, Rngs::none(), m),
                        (_, lifted) => BnParent { lifted, train: true }.apply_with(vars, &x, Rngs::none(), m),
                    }
                    .unwrap()
                };
                let v = init(false);
                assert_vars(&what, &v, &variables(&want["variables"]));
                let (y, upd) = train(&v);
                assert_close(&format!("{what} train"), &y, &array(&want["output_train"]));
                let stats = variables(&serde_json::json!({ "batch_stats": want["updated_batch_stats"] }));
                for (p, leaf) in stats.leaves() {
                    assert_close(&format!("{what} {p}"), upd.get(&p).expect("updated stat"), leaf.array());
                }
                if let Some(yp) = want.get("output_train_with_plain_variables") {
                    let vp = variables(&c["plain"]["variables"]);
                    assert_close(&format!("{what} plain variables"), &train(&vp).0, &array(yp));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ jitted numerics

/// `nn.Dense(24, kernel_init=…)`, lifted with `flax_jit` (Flax's `nn.jit(nn.Dense)`).
#[nn::jit(flax_jit, name = FlaxJitDense)]
#[derive(Debug, Clone, PartialEq)]
pub struct DenseInit(nn::Dense);

impl Module for DenseInit {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        self.0.call(s, x)
    }
}

#[test]
fn flax_jit_switch_inits_with_jitted_numerics() {
    // init_numerics.json `flax_jit_dense`: nn.jit(nn.Dense)(24, kernel_init=...).init(PRNGKey(seed), x);
    // normal(0.02) differs from the eager numerics on the same key in 30-37 of 120 elements.
    let g: Value = serde_json::from_str(include_str!("data/flax_lift/init_numerics.json")).unwrap();
    let cases = g["flax_jit_dense"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let (seed, kinit) = (c["seed"].as_i64().unwrap(), c["kernel_init"].as_str().unwrap());
        let init = match kinit {
            "normal(0.02)" => nn::initializers::normal(0.02),
            "lecun_normal" => nn::initializers::lecun_normal(),
            "variance_scaling(2.0, fan_in, normal)" => nn::initializers::variance_scaling(
                2.0,
                nn::initializers::FanMode::FanIn,
                nn::initializers::Distribution::Normal,
            ),
            other => panic!("{other}"),
        };
        let x = array(&c["x"]);
        let dense = nn::Dense::new(24).kernel_init(init);
        let v = FlaxJitDense(dense.clone()).init(nn::PRNGKey(seed), &x).unwrap();
        let k = v.get("params/kernel").unwrap();
        let want = array(&c["jit_kernel"]);
        let diff = k.iter().zip(&want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(diff, 0, "seed {seed} {kinit}: {diff} kernel elements differ from Flax's nn.jit");
        let eager = array(&c["jit_kernel_eager_numerics"]);
        let n = want.iter().zip(&eager).filter(|(a, b)| a.to_bits() != b.to_bits()).count() as u64;
        assert_eq!(n, c["elements_differing_from_eager_numerics"].as_u64().unwrap());
        // The plain Dense keeps the eager numerics and the unforked key.
        let plain = dense.init(nn::PRNGKey(seed), &x).unwrap();
        let pk = plain.get("params/kernel").unwrap();
        assert!(pk.iter().zip(&array(&c["plain_kernel"])).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// A default lift whose body calls a `flax_jit` lift (`DropMlp`'s twin).
#[nn::jit(name = JitOuter)]
#[derive(Debug, Clone, PartialEq)]
pub struct Outer;

impl Module for Outer {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&JitDropMlp { train: true }, x)
    }
}

#[test]
fn a_flax_jit_fork_inside_a_compiled_apply_is_replayed_by_the_program() {
    let x = ndarray::Array2::<f32>::ones((2, 5)).into_dyn();
    let vars = Outer.init(nn::PRNGKey(0), &x).unwrap();
    assert!(vars.get("params/JitDropMlp_0/Dense_1/kernel").is_some());
    // Unlifted, the fork runs eagerly; inside the outer lift's compiled program it is a step of
    // the program, drawn from each call's streams (tests/flax_nested_fork.rs covers the rest).
    for key in [1, 2] {
        let rngs = Rngs::none().with("dropout", nn::PRNGKey(key));
        let eager = Outer.apply_with(&vars, &x, rngs.clone(), Mutable::Nothing).unwrap().0;
        let lifted = JitOuter.apply_with(&vars, &x, rngs, Mutable::Nothing).unwrap().0;
        assert_eq!(eager.shape(), &[2, 3]);
        let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        assert_eq!(bits(&lifted), bits(&eager), "dropout key {key}");
    }
}
