//! Regression tests for the defects a hostile tester found (issue 14): each failed before its fix.

use nnjit::ndarray::{array, s, ArrayD, IxDyn};
use nnjit::nn::{self, Lifted, Module, Mutable, Rngs};
use nnjit::Variables;

/// `Display for Variables` used `{p:width$}`, which panics for widths above 65,535.
#[test]
fn display_of_variables_with_a_70_000_character_path() {
    let mut v = Variables::new();
    let long = format!("params/{}", "x".repeat(70_000));
    v.insert(&long, ArrayD::zeros(IxDyn(&[1]))).unwrap();
    let text = v.to_string();
    assert!(text.contains(&long));
}

/// `tabulate` padded cells with `{cell:w$}`: a rank-30,001 input's shape is ~90,000 characters.
#[test]
fn tabulate_of_a_rank_30_001_input() {
    let x = ArrayD::<f32>::zeros(IxDyn(&vec![1; 30_001]));
    let table = nn::Dense::new(2).tabulate(nn::PRNGKey(0), &x).unwrap();
    let text = table.to_string();
    assert!(text.contains("Dense") && text.contains("Total Parameters: 4 (16 B)"), "{}", &text[..200.min(text.len())]);
}

/// BatchNorm returned `Err(IncompatibleLayout)` for inputs with negative strides (train and eval).
#[test]
fn batch_norm_accepts_negative_strides() {
    let x = array![[1.0f32, 2.0], [3.0, 6.0], [-1.0, 0.5]];
    let reversed = x.slice(s![..;-1, ..;-1]).into_dyn();
    let standard = reversed.as_standard_layout().into_owned();
    for train in [false, true] {
        let m = nn::BatchNorm::new().use_running_average(!train);
        let vars = m.init(nn::PRNGKey(0), &standard).unwrap();
        let run = |x: &dyn Fn() -> ArrayD<f32>| {
            if train {
                m.apply_with(&vars, x(), Rngs::none(), Mutable::only(["batch_stats"])).map(|(y, _)| y)
            } else {
                m.apply(&vars, x())
            }
        };
        let want = run(&|| standard.clone()).unwrap();
        // The view itself, and its `to_owned()` (which keeps the negative strides).
        let got_view = if train {
            m.apply_with(&vars, reversed.view(), Rngs::none(), Mutable::only(["batch_stats"])).map(|(y, _)| y)
        } else {
            m.apply(&vars, reversed.view())
        };
        assert_eq!(got_view.unwrap(), want, "view, train={train}");
        let owned = reversed.to_owned();
        assert!(owned.strides().iter().any(|&s| s < 0), "to_owned keeps negative strides");
        assert_eq!(run(&|| owned.clone()).unwrap(), want, "to_owned, train={train}");
    }
}

/// Dense on (0, 2^62, 1) built an output of shape [0, 2^62, 4] with `from_shape_vec_unchecked`:
/// a shape ndarray refuses (the product of its non-zero axes overflows isize).
#[test]
fn dense_refuses_an_output_shape_ndarray_cannot_hold() {
    let x = ArrayD::<f32>::zeros(IxDyn(&[0, 1 << 62, 1]));
    let mut vars = Variables::new();
    vars.insert("params/kernel", ArrayD::zeros(IxDyn(&[1, 4]))).unwrap();
    vars.insert("params/bias", ArrayD::zeros(IxDyn(&[4]))).unwrap();
    for r in [nn::Dense::new(4).apply(&vars, &x), nn::JitDense::new(4).apply(&vars, &x)] {
        match r {
            Err(nnjit::Error::SizeOverflow { shape, .. }) => assert_eq!(shape, [0, 1 << 62, 4]),
            other => panic!("{other:?}"),
        }
    }
    // Shapes ndarray accepts still work: (0, 2^58, 1) → (0, 2^58, 4).
    let x = ArrayD::<f32>::zeros(IxDyn(&[0, 1 << 58, 1]));
    assert_eq!(nn::Dense::new(4).apply(&vars, &x).unwrap().shape(), [0, 1 << 58, 4]);
}

/// `JitDense::bind` (now `Lifted::bind`) with a (0, 4) kernel said "expected shape (0, 4) but got shape (0, 4)".
#[test]
fn bind_with_an_empty_kernel_says_what_is_wrong() {
    let mut vars = Variables::new();
    vars.insert("params/kernel", ArrayD::zeros(IxDyn(&[0, 4]))).unwrap();
    vars.insert("params/bias", ArrayD::zeros(IxDyn(&[4]))).unwrap();
    let msg = nn::JitDense::new(4).bind(&vars, [1.0f32]).unwrap_err().to_string();
    assert!(!msg.contains("(0, 4) but got shape (0, 4)"), "{msg}");
    assert!(msg.contains("kernel") && msg.contains("(0, 4)"), "{msg}");
}
