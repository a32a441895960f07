//! Apply with arbitrary shapes and parameters: Dense and the lifted JitDense must return Ok or
//! Err (never panic), agree bit for bit, and propagate NaN/inf like the reference order. Also:
//! `tabulate` (and its printing) on the same input, and the composite `MlpBnDrop` in training
//! (a mutable `batch_stats` apply) followed by lifted applies with the updated variables, on
//! arbitrary (also reversed, negatively strided) views.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnjit::ndarray::{ArrayD, Axis, IxDyn};
use nnjit::nn::{self, Lifted, Module, Mutable, Rngs};
use nnjit::Variables;
use nnjit_suite::models::{JitMlpBnDrop, MlpBnDrop};

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

fn floats(bytes: &[u8], n: usize) -> Vec<f32> {
    (0..n).map(|i| {
        let c = bytes.get(i * 4..i * 4 + 4).map_or([0; 4], |c| [c[0], c[1], c[2], c[3]]);
        f32::from_le_bytes(c)
    }).collect()
}

fn dims(bytes: &[u8]) -> Vec<usize> {
    bytes.iter().map(|b| usize::from(*b % 9)).collect()
}

/// If the layer is `D → F`, `bind_fixed::<D, F>` must give `y` row by row, bit for bit.
fn check_fixed<const D: usize, const F: usize>(lifted: &nn::JitDense, vars: &Variables, x: &ArrayD<f32>, y: &ArrayD<f32>) {
    if x.shape().last() != Some(&D) || y.shape().last() != Some(&F) {
        return;
    }
    let fixed = lifted.bind_fixed::<D, F>(vars).expect("apply succeeded, so the parameters bind");
    let xs: Vec<f32> = x.iter().copied().collect();
    let ys: Vec<f32> = y.iter().copied().collect();
    for (row, want) in xs.chunks_exact(D).zip(ys.chunks_exact(F)) {
        let got = fixed.apply(row.try_into().unwrap()).expect("the shapes were checked at bind");
        assert!(got.iter().zip(want).all(|(p, q)| p.to_bits() == q.to_bits()), "bind_fixed != apply: {got:?} vs {want:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let head = take(&mut data, 8);
    if head.len() < 8 {
        return;
    }
    let features = usize::from(head[0] % 40);
    let x_shape = dims(take(&mut data, usize::from(head[1] % 4)));
    let k_shape = dims(take(&mut data, usize::from(head[2] % 4)));
    let b_shape = dims(take(&mut data, usize::from(head[3] % 3)));
    let use_bias = head[4] & 1 == 0;
    let seed = i64::from(head[5]);
    let x_len: usize = x_shape.iter().product();
    let k_len: usize = k_shape.iter().product();
    let b_len: usize = b_shape.iter().product();
    let x = ArrayD::from_shape_vec(IxDyn(&x_shape), floats(take(&mut data, x_len * 4), x_len)).unwrap();
    let mut vars = Variables::new();
    if head[6] & 1 == 0 {
        let k = ArrayD::from_shape_vec(IxDyn(&k_shape), floats(take(&mut data, k_len * 4), k_len)).unwrap();
        let _ = vars.insert("params/kernel", k);
    }
    if head[6] & 2 == 0 {
        let b = ArrayD::from_shape_vec(IxDyn(&b_shape), floats(take(&mut data, b_len * 4), b_len)).unwrap();
        let _ = vars.insert("params/bias", b);
    }
    let plain = nn::Dense::new(features).use_bias(use_bias);
    let lifted = nn::JitDense::from(plain.clone());
    let a = plain.apply(&vars, &x);
    let b = lifted.apply(&vars, &x);
    match (&a, &b) {
        (Ok(a), Ok(b)) => {
            assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "lifted != plain");
        }
        (Err(e1), Err(e2)) => assert_eq!(e1, e2),
        _ => panic!("plain and lifted disagree on success: {a:?} vs {b:?}"),
    }
    // The const-generic entry (inline kernels for narrow layers on x86) gives the same rows.
    if let Ok(a) = &a {
        check_fixed::<3, 4>(&lifted, &vars, &x, a);
        check_fixed::<1, 1>(&lifted, &vars, &x, a);
        check_fixed::<5, 3>(&lifted, &vars, &x, a);
        check_fixed::<16, 4>(&lifted, &vars, &x, a);
        check_fixed::<2, 9>(&lifted, &vars, &x, a);
    }
    // Init never panics either (small shapes only: init draws random numbers for every element).
    if x_len <= 1024 && features <= 32 {
        if let Ok(v) = plain.init(nn::PRNGKey(seed), &x) {
            let _ = lifted.bind(&v, &x).map(|bound| bound.apply(&x));
            let opts = nnjit::ForwardOptions { flax_jit_rngs: true, ..Default::default() };
            let _ = nnjit::nn_jit_forward_with(seed, &x, features, opts);
        }
        // tabulate (plain and lifted) gives the same table, and prints.
        let t1 = plain.tabulate(nn::PRNGKey(seed), &x);
        let t2 = lifted.tabulate(nn::PRNGKey(seed), &x);
        assert_eq!(t1.is_ok(), t2.is_ok());
        if let (Ok(t1), Ok(t2)) = (&t1, &t2) {
            assert_eq!(t1.rows().len(), t2.rows().len());
            let _ = t1.to_string();
        }
        composite(&x, features, head[7], seed);
    }
});

/// `MlpBnDrop` in training mode (mutable `batch_stats`, dropout), then the lifted eval model
/// applied with the updated variables, on `x` and on `x` reversed along every axis.
fn composite(x: &ArrayD<f32>, features: usize, flags: u8, seed: i64) {
    if x.ndim() == 0 {
        return;
    }
    let hidden = features.max(1);
    let rate = f64::from(flags % 5) / 4.0; // 0, 0.25, .., 1
    let train = MlpBnDrop { hidden, out: 3, rate, train: true };
    let eval = MlpBnDrop { train: false, ..train.clone() };
    let rngs = || Rngs::new(nn::PRNGKey(seed)).with("dropout", nn::PRNGKey(seed ^ 1));
    let Ok(mut vars) = eval.init(rngs(), x) else { return };
    let mut reversed = x.view();
    for ax in 0..reversed.ndim() {
        reversed.invert_axis(Axis(ax));
    }
    let inputs = [x.view(), reversed];
    for input in &inputs {
        let lifted = JitMlpBnDrop::from(train.clone()).apply_with(&vars, input, rngs(), Mutable::only(["batch_stats"]));
        let plain = train.apply_with(&vars, input, rngs(), Mutable::only(["batch_stats"]));
        match (&lifted, &plain) {
            (Ok((a, _)), Ok((b, _))) => {
                assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "train: lifted != plain")
            }
            (Err(_), Err(_)) => {}
            _ => panic!("train: lifted and plain disagree: {lifted:?} vs {plain:?}"),
        }
        if let Ok((_, updates)) = plain {
            vars.merge(updates);
            let lifted = JitMlpBnDrop::from(eval.clone());
            let a = lifted.apply(&vars, input);
            let b = eval.apply(&vars, input);
            let c = lifted.apply(&vars, input); // the cached plan, after the update
            match (&a, &b, &c) {
                (Ok(a), Ok(b), Ok(c)) => {
                    assert!(a.iter().zip(b.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "eval: lifted != plain");
                    assert!(a.iter().zip(c.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "eval: cached != first");
                }
                (Err(_), Err(_), Err(_)) => {}
                _ => panic!("eval: {a:?} vs {b:?} vs {c:?}"),
            }
            let _ = vars.to_string();
        }
    }
}
