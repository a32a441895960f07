//! Bad input gets a clear error value naming the path and shapes, never a panic or a wrong
//! answer; NaN and infinities propagate as IEEE arithmetic does in the reference order.

use nnjit::ndarray::{array, ArrayD, IxDyn};
use nnjit::nn::{self, Module, Mutable, Rngs};
use nnjit::{Error, Variables};
use nnjit_suite::models::MlpBnDrop;

fn dense_vars(d: usize, f: usize) -> Variables {
    nn::Dense::new(f).init(nn::PRNGKey(0), vec![1.0f32; d]).unwrap()
}

#[test]
fn wrong_input_width_names_path_and_both_shapes() {
    let vars = dense_vars(3, 4);
    let e = nn::Dense::new(4).apply(&vars, [1.0f32; 5]).unwrap_err();
    assert!(
        matches!(&e, Error::VariableShape { path, expected, found, .. }
        if path == "/kernel" && expected == &[5, 4] && found == &[3, 4]),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("/kernel") && msg.contains("(5, 4)") && msg.contains("(3, 4)"), "{msg}");
    // The lifted type reports the same error.
    let e2 = nn::JitDense::new(4).apply(&vars, [1.0f32; 5]).unwrap_err();
    assert_eq!(e, e2);
}

#[test]
fn missing_and_misshaped_params() {
    let e = nn::Dense::new(4).apply(&Variables::new(), [1.0f32; 3]).unwrap_err();
    assert!(
        matches!(&e, Error::MissingVariable { collection, path } if collection == "params" && path == "/kernel"),
        "{e:?}"
    );
    let mut vars = dense_vars(3, 4);
    vars.insert("params/bias", ArrayD::zeros(IxDyn(&[5]))).unwrap();
    let e = nn::Dense::new(4).apply(&vars, [1.0f32; 3]).unwrap_err();
    assert!(
        matches!(&e, Error::VariableShape { path, expected, found, .. }
        if path == "/bias" && expected == &[4] && found == &[5]),
        "{e:?}"
    );
    // Wrong features for existing params.
    let vars = dense_vars(3, 4);
    let e = nn::Dense::new(6).apply(&vars, [1.0f32; 3]).unwrap_err();
    assert!(matches!(e, Error::VariableShape { .. }));
    // Nested: the message names the full path.
    let m = nnjit_suite::models::Mlp { hidden: 5, out: 2 };
    let vars = m.init(nn::PRNGKey(1), [1.0f32; 3]).unwrap();
    let e = m.apply(&vars, [1.0f32; 4]).unwrap_err();
    assert!(e.to_string().contains("/Dense_0/kernel"), "{e}");
    let e = nnjit_suite::models::Mlp { hidden: 5, out: 3 }.apply(&vars, [1.0f32; 3]).unwrap_err();
    assert!(e.to_string().contains("/Dense_1/kernel"), "{e}");
}

#[test]
fn zero_and_absurd_feature_counts() {
    for e in [
        nn::Dense::new(0).init(nn::PRNGKey(0), [1.0f32]).unwrap_err(),
        nn::JitDense::new(0).init(nn::PRNGKey(0), [1.0f32]).unwrap_err(),
        nnjit::nn_jit_forward(0, &[1.0], 0).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(e.to_string().contains("features"));
    }
    // 10^11 features: a clean error, not an abort.
    let e = nn::Dense::new(100_000_000_000).init(nn::PRNGKey(0), [1.0f32; 3]).unwrap_err();
    assert!(matches!(e, Error::Allocation { .. } | Error::SizeOverflow { .. }), "{e:?}");
    let e = nn::Dense::new(usize::MAX / 2).init(nn::PRNGKey(0), [1.0f32; 3]).unwrap_err();
    assert!(matches!(e, Error::Allocation { .. } | Error::SizeOverflow { .. }), "{e:?}");
}

#[test]
fn empty_and_rank_zero_inputs() {
    let empty: [f32; 0] = [];
    for e in [
        nn::Dense::new(4).init(nn::PRNGKey(0), empty).unwrap_err(),
        nn::Dense::new(4).init(nn::PRNGKey(0), ArrayD::<f32>::zeros(IxDyn(&[]))).unwrap_err(),
        nn::Dense::new(4).init(nn::PRNGKey(0), ArrayD::<f32>::zeros(IxDyn(&[2, 0]))).unwrap_err(),
        nnjit::nn_jit_forward(0, &[], 4).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InputShape { .. }), "{e:?}");
    }
    // A batch of zero rows is a valid (empty) batch, as in JAX.
    let vars = dense_vars(3, 4);
    let y = nn::Dense::new(4).apply(&vars, ArrayD::<f32>::zeros(IxDyn(&[0, 3]))).unwrap();
    assert_eq!(y.shape(), &[0, 4]);
}

#[test]
fn missing_rng_stream_and_immutable_collection() {
    let x = array![[1.0f32, 2.0], [0.5, -1.0]];
    let eval = MlpBnDrop { hidden: 3, out: 2, rate: 0.5, train: false };
    let vars = eval.init(nn::PRNGKey(0), &x).unwrap();
    let train = MlpBnDrop { train: true, ..eval.clone() };
    let e = train.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"])).unwrap_err();
    assert!(matches!(&e, Error::MissingRng { stream, path } if stream == "dropout" && path == "/Dropout_0"), "{e:?}");
    assert!(e.to_string().contains("dropout"));
    let e = train.apply_with(&vars, &x, Rngs::none().with("dropout", nn::PRNGKey(1)), Mutable::Nothing).unwrap_err();
    assert!(matches!(&e, Error::ImmutableCollection { collection, .. } if collection == "batch_stats"), "{e:?}");
    // Eval needs neither.
    assert!(eval.apply(&vars, &x).is_ok());
    // Flax's fallback: with a `params` stream but no `dropout` stream, dropout draws from `params`.
    assert!(train.apply_with(&vars, &x, nn::PRNGKey(3), Mutable::only(["batch_stats"])).is_ok());
}

#[test]
fn bad_layer_arguments() {
    let x = [1.0f32, 2.0];
    let vars = Variables::new();
    for rate in [-0.1, 1.5, f64::NAN] {
        let e = nn::Dropout::new(rate).apply_with(&vars, x, nn::PRNGKey(0), Mutable::Nothing).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    }
    let e = nn::BatchNorm::new().epsilon(-1.0).init(nn::PRNGKey(0), &array![[1.0f32]]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
}

#[test]
fn non_finite_values_propagate_like_ieee() {
    let vars = dense_vars(3, 4);
    let k = vars.get("params/kernel").unwrap().clone();
    for x in [[f32::NAN, 1.0, 2.0], [f32::INFINITY, 0.0, 1.0], [f32::NEG_INFINITY, 1.0, f32::INFINITY], [1.0, 0.0, 0.0]]
    {
        let y = nn::Dense::new(4).apply(&vars, x).unwrap();
        let yl = nn::JitDense::new(4).apply(&vars, x).unwrap();
        for j in 0..4 {
            let mut acc = 0.0f32;
            for i in 0..3 {
                acc = x[i].mul_add(k[[i, j]], acc);
            }
            // The reference order, then the one canonical NaN for any NaN (x86 makes -NaN).
            let want = nnjit::kernel::reference::canon_nan(acc + 0.0);
            assert_eq!(y[j].to_bits(), want.to_bits(), "x={x:?} j={j}");
            assert_eq!(yl[j].to_bits(), want.to_bits());
        }
    }
    // NaN in params propagates too.
    let mut bad = vars.clone();
    bad.get_mut("params/kernel").unwrap()[[1, 2]] = f32::NAN;
    let y = nn::JitDense::new(4).apply(&bad, [1.0f32, 2.0, 3.0]).unwrap();
    assert!(y[2].to_bits() == f32::NAN.to_bits() && !y[0].is_nan());
}

#[test]
fn check_variables_reports_missing_extra_misshaped_and_wrong_collection() {
    let m = nnjit_suite::models::Mlp { hidden: 4, out: 2 };
    let x = [1.0f32, 2.0, 3.0];
    let good = m.init(nn::PRNGKey(0), x).unwrap();
    m.check_variables(&good, x).unwrap();
    // Extra variable.
    let mut extra = good.clone();
    extra.insert("params/Dense_2/kernel", ArrayD::zeros(IxDyn(&[2, 2]))).unwrap();
    let e = m.check_variables(&extra, x).unwrap_err();
    assert!(matches!(&e, Error::UnusedVariable { path, .. } if path == "/Dense_2/kernel"), "{e:?}");
    // Missing variable.
    let mut missing = Variables::new();
    missing.insert("params/Dense_0/kernel", good.get("params/Dense_0/kernel").unwrap().clone()).unwrap();
    let e = m.check_variables(&missing, x).unwrap_err();
    assert!(matches!(&e, Error::MissingVariable { path, .. } if path == "/Dense_0/bias"), "{e:?}");
    // Mis-shaped.
    let mut bad = good.clone();
    bad.insert("params/Dense_1/bias", ArrayD::zeros(IxDyn(&[3]))).unwrap();
    let e = m.check_variables(&bad, x).unwrap_err();
    assert!(matches!(&e, Error::VariableShape { path, .. } if path == "/Dense_1/bias"), "{e:?}");
    // Wrong collection: params stored under batch_stats.
    let mut wrong = Variables::new();
    for (p, l) in good.leaves() {
        wrong.insert(&p.replacen("params", "batch_stats", 1), l.array().clone()).unwrap();
    }
    let e = m.check_variables(&wrong, x).unwrap_err();
    assert!(matches!(&e, Error::MissingVariable { collection, .. } if collection == "params"), "{e:?}");
}
