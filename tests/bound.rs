//! The bound entries of every lifted module (`Lifted::bind` → `Bound`, `bind_fixed` /
//! `into_fixed` → `Fixed`): bit for bit equal to `apply`, checked dims, errors for what a bound
//! entry cannot run, several threads.

use ndarray::{Array2, ArrayD};
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};
use nnjit_suite::models::{JitMlp, JitMlpBnDrop, Mlp, MlpBnDrop};

fn input(n: usize, d: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| ((i * 131 + j * 7) % 97) as f32 / 97.0 - 0.5)
}

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn flat(a: &ArrayD<f32>) -> Vec<f32> {
    a.iter().copied().collect()
}

#[test]
fn bound_mlp_equals_apply_at_every_batch() {
    for n in [1usize, 3, 8, 33] {
        let x = input(n, 32);
        let m = JitMlp { hidden: 64, out: 10 };
        let vars = Mlp { hidden: 64, out: 10 }.init(nn::PRNGKey(n as i64), &x).unwrap();
        let want = m.apply(&vars, &x).unwrap();
        let bound = m.bind(&vars, &x).unwrap();
        assert_eq!(bound.input_shapes(), [&[n, 32][..]]);
        assert_eq!(bound.output_shapes(), [&[n, 10][..]]);
        let mut y = vec![0.0f32; n * 10];
        bound.apply_into(x.as_slice().unwrap(), &mut y).unwrap();
        assert_eq!(bits(&y), bits(&flat(&want)), "apply_into, batch {n}");
        let mut ws = bound.workspace();
        let mut y2 = vec![1.0f32; n * 10];
        bound.run(&mut ws, &[x.as_slice().unwrap()], &mut [&mut y2]).unwrap();
        assert_eq!(bits(&y2), bits(&y), "run, batch {n}");
        assert_eq!(bound.apply(&x).unwrap(), want, "apply, batch {n}");
    }
}

#[test]
fn bound_entries_check_their_dims() {
    let x = input(2, 5);
    let m = JitMlp { hidden: 4, out: 3 };
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let bound = m.bind(&vars, &x).unwrap();
    let xs = x.as_slice().unwrap();
    let mut y = [0.0f32; 6];
    assert!(matches!(bound.apply_into(&xs[..5], &mut y), Err(nnjit::Error::InputShape { .. })));
    assert!(matches!(bound.apply_into(xs, &mut y[..3]), Err(nnjit::Error::InputShape { .. })));
    let mut ws = bound.workspace();
    assert!(bound.run(&mut ws, &[xs, xs], &mut [&mut y]).is_err(), "one input");
    assert!(bound.run(&mut ws, &[xs], &mut []).is_err(), "one output");
    assert!(bound.apply(input(3, 5)).is_err(), "bound to 2 rows");
    // Const-generic dims are checked when bound.
    assert!(m.bind(&vars, &x).unwrap().into_fixed::<5, 3, 2>().is_ok());
    assert!(m.bind(&vars, &x).unwrap().into_fixed::<5, 3, 1>().is_err());
    assert!(m.bind(&vars, &x).unwrap().into_fixed::<5, 4, 2>().is_err());
    assert!(m.bind(&vars, &x).unwrap().into_fixed::<10, 3, 1>().is_err(), "2 rows of 5 are not one of 10");
    assert!(m.bind_fixed::<4, 3>(&vars).is_err(), "the first kernel is (5, 4)");
    // Missing or mis-shaped variables are errors at bind time.
    assert!(matches!(m.bind(&nnjit::Variables::new(), &x), Err(nnjit::Error::MissingVariable { .. })));
    let other = m.init(nn::PRNGKey(0), input(2, 6)).unwrap();
    assert!(matches!(m.bind(&other, &x), Err(nnjit::Error::VariableShape { .. })));
}

#[test]
fn fixed_entries_equal_apply() {
    let m = JitMlp { hidden: 64, out: 10 };
    let x1 = input(1, 32);
    let vars = m.init(nn::PRNGKey(5), &x1).unwrap();
    let fixed = m.bind_fixed::<32, 10>(&vars).unwrap();
    let xa: [f32; 32] = x1.as_slice().unwrap().try_into().unwrap();
    let y = fixed.apply(&xa).unwrap();
    assert_eq!(bits(&y), bits(&flat(&m.apply(&vars, &x1.row(0)).unwrap())));
    let x4 = input(4, 32);
    let fixed4 = m.bind(&vars, &x4).unwrap().into_fixed::<32, 10, 4>().unwrap();
    let mut rows = [[0.0f32; 32]; 4];
    rows.as_flattened_mut().copy_from_slice(x4.as_slice().unwrap());
    let y4 = fixed4.apply_batch(&rows).unwrap();
    assert_eq!(bits(y4.as_flattened()), bits(&flat(&m.apply(&vars, &x4).unwrap())));
    // One Dense layer runs its own monomorphised kernel: same bits.
    let d = nn::JitDense::new(7);
    let dv = d.init(nn::PRNGKey(1), xa).unwrap();
    let fd = d.bind_fixed::<32, 7>(&dv).unwrap();
    assert_eq!(bits(&fd.apply(&xa).unwrap()), bits(&flat(&d.apply(&dv, xa).unwrap())));
    // Dense + relu is one layer with relu in its epilogue: the fixed kernel's relu variant.
    let dr = JitDenseRelu { features: 7 };
    let rv = DenseRelu { features: 7 }.init(nn::PRNGKey(1), xa).unwrap();
    let fr = dr.bind_fixed::<32, 7>(&rv).unwrap();
    let want = flat(&dr.apply(&rv, xa).unwrap());
    assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0), "relu clipped some outputs");
    assert_eq!(bits(&fr.apply(&xa).unwrap()), bits(&want));
    let br = dr.bind(&rv, xa).unwrap();
    assert_eq!(br.program().num_steps(), 1, "relu fused into the Dense step");
    let mut y = [0.0f32; 7];
    br.apply_into(&xa, &mut y).unwrap();
    assert_eq!(bits(&y), bits(&want));
    // Narrow layers (3 → 4) run their kernel inline on x86, with and without relu; one row
    // and a batch of rows alike.
    let x3 = [[0.5f32, -1.25, 2.0], [-3.0, 0.25, 1.0]];
    let d3 = nn::JitDense::new(4);
    let d3v = d3.init(nn::PRNGKey(2), x3[0]).unwrap();
    let r3 = JitDenseRelu { features: 4 };
    let r3v = DenseRelu { features: 4 }.init(nn::PRNGKey(3), x3[0]).unwrap();
    let f3 = d3.bind_fixed::<3, 4>(&d3v).unwrap();
    let fr3 = r3.bind_fixed::<3, 4>(&r3v).unwrap();
    let b3 = d3.bind(&d3v, ndarray::arr2(&x3)).unwrap().into_fixed::<3, 4, 2>().unwrap();
    let br3 = r3.bind(&r3v, ndarray::arr2(&x3)).unwrap().into_fixed::<3, 4, 2>().unwrap();
    let mut clipped = false;
    for (i, row) in x3.iter().enumerate() {
        let want = flat(&d3.apply(&d3v, *row).unwrap());
        assert_eq!(bits(&f3.apply(row).unwrap()), bits(&want));
        assert_eq!(bits(&b3.apply_batch(&x3).unwrap()[i]), bits(&want));
        let want = flat(&r3.apply(&r3v, *row).unwrap());
        clipped |= want.contains(&0.0);
        assert_eq!(bits(&fr3.apply(row).unwrap()), bits(&want));
        assert_eq!(bits(&br3.apply_batch(&x3).unwrap()[i]), bits(&want));
    }
    assert!(clipped, "relu clipped some outputs");
}

/// `relu(Dense(x))`: a one-layer chain with relu fused into the kernel.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct DenseRelu {
    features: usize,
}

impl Module for DenseRelu {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        Ok(nn::relu(s.call(&nn::Dense::new(self.features), x)?))
    }
}

#[test]
fn eval_mode_batch_norm_and_dropout_bind_but_train_mode_does_not() {
    let x = input(4, 6);
    let eval = JitMlpBnDrop { hidden: 8, out: 3, rate: 0.3, train: false };
    let vars = MlpBnDrop { hidden: 8, out: 3, rate: 0.3, train: false }.init(nn::PRNGKey(2), &x).unwrap();
    let bound = eval.bind(&vars, &x).unwrap();
    assert_eq!(bound.apply(&x).unwrap(), eval.apply(&vars, &x).unwrap());
    let train = JitMlpBnDrop { train: true, ..eval };
    let e = train.bind(&vars, &x).unwrap_err().to_string();
    assert!(e.contains("apply_with") || e.contains("dropout") || e.contains("mutable"), "{e}");
}

/// Two outputs and a static argument.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Heads;

impl Module for Heads {
    type Input = (Tensor, bool);
    type Output = (Tensor, Tensor);
    fn call(&self, s: &mut Scope<'_, '_>, (x, scale): (Tensor, bool)) -> nnjit::Result<(Tensor, Tensor)> {
        let h = nn::relu(s.call(&nn::Dense::new(4), &x)?);
        let a = s.call(&nn::Dense::new(2), &h)?;
        let a = if scale { a * 2.0 } else { a };
        Ok((a, h))
    }
}

#[test]
fn several_outputs_and_static_arguments() {
    let x = input(3, 5);
    let vars = Heads.init(nn::PRNGKey(0), (&x, true)).unwrap();
    let (a, h) = JitHeads.apply(&vars, (&x, true)).unwrap();
    let bound = JitHeads.bind(&vars, (&x, true)).unwrap();
    let (ba, bh) = bound.apply((&x, true)).unwrap();
    assert_eq!((ba, bh), (a.clone(), h.clone()));
    assert!(bound.apply((&x, false)).is_err(), "bound to scale = true");
    let (mut ya, mut yh) = (vec![0.0f32; 6], vec![0.0f32; 12]);
    let mut ws = bound.workspace();
    bound.run(&mut ws, &[x.as_slice().unwrap()], &mut [&mut ya, &mut yh]).unwrap();
    assert_eq!(bits(&ya), bits(&flat(&a)));
    assert_eq!(bits(&yh), bits(&flat(&h)));
    // The same workspace on another program (other slot plan) is replanned, not misused.
    let mlp = JitMlp { hidden: 64, out: 10 };
    let x2 = input(8, 32);
    let v2 = mlp.init(nn::PRNGKey(0), &x2).unwrap();
    let b2 = mlp.bind(&v2, &x2).unwrap();
    let mut y2 = vec![0.0f32; 80];
    b2.run(&mut ws, &[x2.as_slice().unwrap()], &mut [&mut y2]).unwrap();
    assert_eq!(bits(&y2), bits(&flat(&mlp.apply(&v2, &x2).unwrap())));
    bound.run(&mut ws, &[x.as_slice().unwrap()], &mut [&mut ya, &mut yh]).unwrap();
    assert_eq!(bits(&ya), bits(&flat(&a)));
}

#[test]
fn one_bound_entry_from_many_threads() {
    let x = input(2, 32);
    let m = JitMlp { hidden: 64, out: 10 };
    let vars = m.init(nn::PRNGKey(9), &x).unwrap();
    let want = flat(&m.apply(&vars, &x).unwrap());
    let bound = m.bind(&vars, &x).unwrap();
    std::thread::scope(|t| {
        for i in 0..8 {
            let (bound, want, x) = (&bound, &want, &x);
            t.spawn(move || {
                let mut ws = bound.workspace();
                for _ in 0..200 {
                    let mut y = vec![0.0f32; 20];
                    if i % 2 == 0 {
                        bound.apply_into(x.as_slice().unwrap(), &mut y).unwrap();
                    } else {
                        bound.run(&mut ws, &[x.as_slice().unwrap()], &mut [&mut y]).unwrap();
                    }
                    assert_eq!(bits(&y), bits(want));
                }
            });
        }
    });
}

#[test]
fn a_bound_entry_keeps_the_parameters_it_was_bound_to() {
    let x = input(1, 4);
    let m = JitMlp { hidden: 3, out: 2 };
    let mut vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let before = flat(&m.apply(&vars, &x).unwrap());
    let bound = m.bind(&vars, &x).unwrap();
    vars.insert("params/Dense_1/bias", ndarray::ArrayD::from_elem(vec![2], 100.0f32)).unwrap();
    let mut y = [0.0f32; 2];
    bound.apply_into(x.as_slice().unwrap(), &mut y).unwrap();
    assert_eq!(bits(&y), bits(&before), "a snapshot: bind again for new values");
    let rebound = m.bind(&vars, &x).unwrap();
    rebound.apply_into(x.as_slice().unwrap(), &mut y).unwrap();
    assert_eq!(bits(&y), bits(&flat(&m.apply(&vars, &x).unwrap())));
}
