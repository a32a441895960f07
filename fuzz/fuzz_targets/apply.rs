//! Apply with arbitrary shapes and parameters: Dense and the lifted JitDense must return Ok or
//! Err (never panic), agree bit for bit, and propagate NaN/inf like the reference order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{self, Lifted, Module};
use nnjit::Variables;

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
        let got = fixed.apply(row.try_into().unwrap());
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
            let _ = lifted.bind(&v).map(|bound| bound.apply(&x));
            let _ = lifted.init_flax_jit(nn::PRNGKey(seed), &x);
        }
    }
});
