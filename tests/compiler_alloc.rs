//! A repeated lifted apply allocates only its output (a counting global allocator; this file is
//! its own test binary so no other test allocates meanwhile).

mod common;

use nnjit::nn::{self, Lifted, Module};
use nnjit_suite::models::{JitMlp, JitMlpBnDrop, Mlp, MlpBnDrop};

use common::counting_alloc::allocations;

#[test]
fn repeated_lifted_applies_allocate_only_their_output() {
    let x = ndarray::Array2::<f32>::from_shape_fn((4, 32), |(i, j)| (i * 32 + j) as f32 * 0.01 - 0.5);
    let m = JitMlp { hidden: 64, out: 10 };
    let vars = Mlp { hidden: 64, out: 10 }.init(nn::PRNGKey(0), &x).unwrap();
    let first = m.apply(&vars, &x).unwrap(); // traces, compiles, packs
    for _ in 0..3 {
        let mut y = None;
        let n = allocations(|| y = Some(m.apply(&vars, &x).unwrap()));
        assert_eq!(y.unwrap(), first);
        assert_eq!(n, 1, "one allocation: the output buffer");
    }
    // Buffer donation: nothing at all.
    let mut out = vec![0.0f32; 40];
    m.apply_into(&vars, &x, &mut out).unwrap();
    assert_eq!(allocations(|| m.apply_into(&vars, &x, &mut out).unwrap()), 0);
    assert_eq!(out, first.into_raw_vec_and_offset().0);
    // A model with BatchNorm and Dropout in eval mode (intermediate buffers planned once).
    let bn = JitMlpBnDrop { hidden: 16, out: 3, rate: 0.2, train: false };
    let v = MlpBnDrop { hidden: 16, out: 3, rate: 0.2, train: false }.init(nn::PRNGKey(1), &x).unwrap();
    bn.apply(&v, &x).unwrap();
    assert_eq!(allocations(|| drop(bn.apply(&v, &x).unwrap())), 1);
    assert!(JitMlpBnDrop::jit_cache().size() >= 1);
    // The bound entries of a whole model: nothing at all once their workspace has run.
    let bound = m.bind(&vars, &x).unwrap();
    let xs = x.as_slice().unwrap();
    bound.apply_into(xs, &mut out).unwrap();
    assert_eq!(allocations(|| bound.apply_into(xs, &mut out).unwrap()), 0, "Bound::apply_into");
    let mut ws = bound.workspace();
    bound.run(&mut ws, &[xs], &mut [&mut out]).unwrap();
    assert_eq!(allocations(|| bound.run(&mut ws, &[xs], &mut [&mut out]).unwrap()), 0, "Bound::run");
    let x1 = [0.25f32; 32];
    let fixed = m.bind_fixed::<32, 10>(&vars).unwrap();
    fixed.apply(&x1).unwrap();
    let mut y = [0.0f32; 10];
    assert_eq!(allocations(|| y = fixed.apply(&x1).unwrap()), 0, "Fixed::apply");
    assert_eq!(y.to_vec(), m.apply(&vars, x1).unwrap().into_raw_vec_and_offset().0);
}
