//! Flax's naming rules against real Flax 0.12.8 / JAX 0.10.2 (`tests/data/flax_lift/naming.json`,
//! made by `tests/data/flax_lift/gen_flax_lift.py`): explicit names, a shared instance,
//! setup-style fields, lists and dicts, a setup `nn.jit` child, `nn::Sequential` at the top and
//! inside a compact parent (variables bit for bit, outputs within tolerance), and the
//! `NameInUseError` of every collision (Flax's text).

use ndarray::ArrayD;
use nnjit::nn::{self, Module, Scope, Tensor};
use nnjit::{Error, Variables};
use serde_json::Value;

mod flax_models;
mod golden_json;
use flax_models::{Block, BnMlp, DropMlp, JitBlock};
use golden_json::{array, variables};

const GOLDEN: &str = include_str!("data/flax_lift/naming.json");

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("naming.json parses")
}

fn sorted_paths(v: &Variables) -> Vec<String> {
    let mut p: Vec<String> = v.leaves().into_iter().map(|(p, _)| p).collect();
    p.sort();
    p
}

// ------------------------------------------------------------------------------ models

/// The models of `naming.cases` and `naming.errors`, by case name (the Flax class name is the
/// type name, as Flax's error text names it).
macro_rules! models {
    ($($(#[$doc:meta])* $name:ident => |$s:ident, $x:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        struct $name;
        impl Module for $name {
            type Input = Tensor;
            type Output = Tensor;
            fn call(&self, $s: &mut Scope, $x: Tensor) -> nnjit::Result<Tensor> {
                $body
            }
        }
    )*};
}

models! {
    /// `Dense(3) -> relu -> Dense(4, name="head")`.
    Named => |s, x| {
        let h = nn::relu(s.call(&nn::Dense::new(3), x)?);
        s.call(&nn::Dense::new(4).named("head"), h)
    };
    /// `d = Dense(3); y = d(relu(d(x)))` then `Dense(2)`.
    Shared => |s, x| {
        let dense = nn::Dense::new(3);
        let d = s.child(&dense)?;
        let h = d.call(s, x)?;
        let h = d.call(s, nn::relu(h))?;
        s.call(&nn::Dense::new(2), h)
    };
    /// setup: `self.enc = Dense(3); self.layers = [Dense(3), Dense(2)]`.
    SetupStyle => |s, x| {
        let enc = nn::Dense::new(3);
        let layers = [nn::Dense::new(3), nn::Dense::new(2)];
        let enc = s.child_named("enc", &enc)?;
        let layers = s.child_list("layers", &layers)?;
        let mut h = nn::relu(enc.call(s, x)?);
        for layer in &layers {
            h = layer.call(s, h)?;
        }
        Ok(h)
    };
    /// setup: `self.heads = {"a": Dense(2), "b": Dense(2)}`.
    SetupDict => |s, x| {
        let dense = nn::Dense::new(2);
        let a = s.child_named("heads_a", &dense)?;
        let b = s.child_named("heads_b", &dense)?;
        Ok(a.call(s, &x)? + b.call(s, &x)?)
    };
    /// setup: `self.block = nn.jit(Block)(); self.out = Dense(2)`.
    SetupJit => |s, x| {
        let h = s.call_named("block", &JitBlock, x)?;
        s.call_named("out", &nn::Dense::new(2), h)
    };
    /// `nn.Sequential([Dense(3), relu, Dense(2)])` in a compact parent.
    SeqWrap => |s, x| s.call(&nn::Sequential::new().layer(nn::Dense::new(3)).func(nn::relu).layer(nn::Dense::new(2)), x);
    /// An explicit `name="Dense_0"` then an unnamed Dense.
    AutoAfterExplicit => |s, x| {
        let h = s.call_named("Dense_0", &nn::Dense::new(3), x)?;
        s.call(&nn::Dense::new(3), h)
    };
    /// `nn.Dense(3, name="a")` twice.
    CollideExplicit => |s, x| {
        let h = s.call(&nn::Dense::new(3).named("a"), x)?;
        s.call(&nn::Dense::new(3).named("a"), h)
    };
    /// An explicit name equal to an auto-name already taken.
    CollideAuto => |s, x| {
        let h = s.call(&nn::Dense::new(3), x)?;
        s.call(&nn::Dense::new(3).named("Dense_0"), h)
    };
    /// `nn.jit(Block)(name="blk")` twice.
    CollideJit => |s, x| {
        let h = s.call(&JitBlock.named("blk"), x)?;
        s.call(&JitBlock.named("blk"), h)
    };
    /// setup: `self.a = Dense(3, name="b"); self.b = Dense(3)`.
    CollideSetup => |s, x| {
        let (da, db) = (nn::Dense::new(3), nn::Dense::new(3));
        let a = s.child_named("b", &da)?;
        let b = s.child_named("b", &db)?;
        let h = a.call(s, x)?;
        b.call(s, h)
    };
    /// A param and a submodule with the same name.
    CollideParamSubmodule => |s, x| {
        s.param("w", &nn::initializers::zeros(), &[1])?;
        s.call_named("w", &nn::Dense::new(3), x)
    };
}

fn init_apply(case: &str, seed: i64, x: &ArrayD<f32>) -> nnjit::Result<(Variables, ArrayD<f32>)> {
    fn go<M: Module<Input = Tensor, Output = Tensor>>(
        m: M,
        seed: i64,
        x: &ArrayD<f32>,
    ) -> nnjit::Result<(Variables, ArrayD<f32>)> {
        let v = m.init(nn::PRNGKey(seed), x)?;
        let y = m.apply(&v, x)?;
        Ok((v, y))
    }
    match case {
        "explicit_name" => go(Named, seed, x),
        "shared_instance" => go(Shared, seed, x),
        "setup_fields_and_list" => go(SetupStyle, seed, x),
        "setup_dict" => go(SetupDict, seed, x),
        "setup_jit_child" => go(SetupJit, seed, x),
        "sequential_top_level" => {
            go(nn::Sequential::new().layer(nn::Dense::new(3)).func(nn::relu).layer(nn::Dense::new(2)), seed, x)
        }
        "sequential_child" => go(SeqWrap, seed, x),
        "auto_after_explicit_dense_0" => go(AutoAfterExplicit, seed, x),
        "duplicate_explicit_name" => go(CollideExplicit, seed, x),
        "explicit_name_equals_auto_name" => go(CollideAuto, seed, x),
        "duplicate_jit_child_name" => go(CollideJit, seed, x),
        "setup_explicit_name_equals_field" => go(CollideSetup, seed, x),
        "param_and_submodule_same_name" => go(CollideParamSubmodule, seed, x),
        other => panic!("unknown case {other}"),
    }
}

#[test]
fn named_shared_setup_and_sequential_trees_match_flax() {
    let g = golden();
    let cases = g["naming"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16);
    for c in cases {
        let (case, seed) = (c["case"].as_str().unwrap(), c["seed"].as_i64().unwrap());
        let what = format!("{case} seed {seed}");
        let x = array(&c["x"]);
        let got = init_apply(case, seed, &x);
        if let Some(err) = c.get("error") {
            let e = got.err().unwrap_or_else(|| panic!("{what}: Flax raised, we did not"));
            assert!(matches!(e, Error::NameInUse { .. }), "{what}: {e:?}");
            assert_eq!(e.to_string(), err["message"].as_str().unwrap(), "{what}");
            continue;
        }
        let (v, y) = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        let want = variables(&c["variables"]);
        let paths: Vec<String> =
            c["variable_paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().into()).collect();
        assert_eq!(sorted_paths(&v), paths, "{what}");
        for (p, leaf) in want.leaves() {
            let a = v.get(&p).unwrap();
            assert!(a.iter().zip(leaf.array()).all(|(g, w)| g.to_bits() == w.to_bits()), "{what}: {p} bits");
        }
        let yw = array(&c["output"]);
        assert_eq!(y.shape(), yw.shape(), "{what}");
        assert!(y.iter().zip(&yw).all(|(g, w)| (g - w).abs() <= 1e-5 + 1e-5 * w.abs()), "{what}: {y} vs {yw}");
    }
}

#[test]
fn name_collisions_are_flax_name_in_use_errors() {
    let g = golden();
    let errors = g["naming"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5);
    let x = ndarray::array![[1.0f32, -2.0, 0.5]].into_dyn();
    for c in errors {
        let case = c["case"].as_str().unwrap();
        assert_eq!(c["type"], "NameInUseError", "{case}");
        for mode in ["init", "apply"] {
            let e = match mode {
                "init" => init_apply(case, 0, &x).unwrap_err(),
                // Apply hits the same error (with the variables of a tree that has the name once).
                _ => apply_only(case, &x),
            };
            let Error::NameInUse { module, path, existing, requested, .. } = &e else { panic!("{case} {mode}: {e:?}") };
            assert_eq!(e.to_string(), c["message"].as_str().unwrap(), "{case} {mode}");
            assert_eq!((*module, path.as_str()), (c["model"].as_str().unwrap(), ""), "{case}");
            // Both modules: the one holding the name and the one asking for it.
            let want = match case {
                "duplicate_jit_child_name" => ("JitBlock", "JitBlock"),
                "param_and_submodule_same_name" => ("", "Dense"),
                _ => ("Dense", "Dense"),
            };
            assert_eq!((*existing, *requested), want, "{case}");
        }
    }
}

/// The case's apply, given the variables of its first child (or of its param): the collision
/// is found at apply too.
fn apply_only(case: &str, x: &ArrayD<f32>) -> Error {
    let mut vars = Variables::new();
    let mut put = |owner: &str, child: Variables| {
        for (p, leaf) in child.leaves() {
            let (c, rest) = p.split_once('/').unwrap();
            vars.insert(&format!("{c}/{owner}/{rest}"), leaf.array().clone()).unwrap();
        }
    };
    let dense = || nn::Dense::new(3).init(nn::PRNGKey(0), x).unwrap();
    match case {
        "duplicate_explicit_name" => put("a", dense()),
        "explicit_name_equals_auto_name" => put("Dense_0", dense()),
        "duplicate_jit_child_name" => put("blk", Block.init(nn::PRNGKey(0), x).unwrap()),
        "param_and_submodule_same_name" => vars.insert("params/w", ArrayD::zeros(vec![1])).unwrap(),
        _ => {}
    }
    let r = match case {
        "duplicate_explicit_name" => CollideExplicit.apply(&vars, x),
        "explicit_name_equals_auto_name" => CollideAuto.apply(&vars, x),
        "duplicate_jit_child_name" => CollideJit.apply(&vars, x),
        "setup_explicit_name_equals_field" => CollideSetup.apply(&vars, x),
        "param_and_submodule_same_name" => CollideParamSubmodule.apply(&vars, x),
        other => panic!("{other}"),
    };
    r.expect_err(case)
}

#[test]
fn a_child_is_called_in_the_scope_that_bound_it() {
    struct Misuse;
    impl Module for Misuse {
        type Input = Tensor;
        type Output = Tensor;
        fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
            let dense = nn::Dense::new(2);
            let d = s.child(&dense)?;
            s.call(&Inner(&d), x)
        }
    }
    struct Inner<'a>(&'a nn::Child<'a, nn::Dense>);
    impl Module for Inner<'_> {
        type Input = Tensor;
        type Output = Tensor;
        fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
            self.0.call(s, x)
        }
        fn type_name(&self) -> &'static str {
            "Inner"
        }
    }
    let e = Misuse.init(nn::PRNGKey(0), [1.0f32]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { path, message } if path == "/Inner_0" && message.contains("Dense_0")),
        "{e:?}"
    );
    // Invalid names are errors too.
    struct BadName;
    impl Module for BadName {
        type Input = Tensor;
        type Output = Tensor;
        fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
            s.call_named("a/b", &nn::Dense::new(2), x)
        }
    }
    assert!(matches!(BadName.init(nn::PRNGKey(0), [1.0f32]), Err(Error::InvalidArgument { .. })));
}

// ------------------------------------------------------------------------------ tabulate

models! {
    /// `Dense(4) -> relu -> Dense(2)`.
    Mlp => |s, x| {
        let h = nn::relu(s.call(&nn::Dense::new(4), x)?);
        s.call(&nn::Dense::new(2), h)
    };
    /// `Dense(4) -> nn.jit(Block)() -> nn.jit(Block)()`.
    JitParent => |s, x| {
        let h = s.call(&nn::Dense::new(4), x)?;
        let h = s.call(&JitBlock, h)?;
        s.call(&JitBlock, h)
    };
}

#[test]
fn tabulate_prints_flax_tables() {
    let g = golden();
    let cases = g["tabulate"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    let x = ArrayD::<f32>::ones(vec![2, 3]);
    let rngs = nn::Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1));
    for c in cases {
        let case = c["case"].as_str().unwrap();
        let shape: Vec<usize> = c["x_shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(shape, [2, 3]);
        let r = rngs.clone();
        let table = match case {
            "mlp" => Mlp.tabulate(r, &x),
            "shared" => Shared.tabulate(r, &x),
            "batchnorm" => BnMlp { train: false }.tabulate(r, &x),
            "batchnorm_train" => BnMlp { train: true }.tabulate(r, &x),
            "named" => Named.tabulate(r, &x),
            "setup_style" => SetupStyle.tabulate(r, &x),
            "jit_parent" => JitParent.tabulate(r, &x),
            "dropout_train" => DropMlp { train: true }.tabulate(r, &x),
            other => panic!("{other}"),
        }
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = c["text"].as_str().unwrap();
        let got = table.to_string();
        assert_eq!(got, want, "{case}:\n{got}\nwant:\n{want}");
    }
}

#[test]
fn tabulate_sizes_use_flax_units() {
    // A 1,000 x 300 Dense: 300,300 params, 1.2 MB (Flax's _bytes_repr).
    let table = nn::Dense::new(300).tabulate(nn::PRNGKey(0), ArrayD::<f32>::ones(vec![1, 1000])).unwrap();
    let text = table.to_string();
    assert!(text.contains("300,300 (1.2 MB)"), "{text}");
    assert!(text.contains("Total Parameters: 300,300 (1.2 MB)"), "{text}");
    assert_eq!(table.total("params"), 300_300);
}
