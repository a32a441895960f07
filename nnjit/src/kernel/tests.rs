//! Every path and entry against [`reference::dense_reference`], bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reference::dense_reference;
use super::*;

const NS: [usize; 9] = [1, 2, 3, 4, 5, 7, 8, 9, 17];
const DF: [usize; 20] = [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257];
const ACTS: [Activation; 2] = [Activation::Identity, Activation::Relu];

/// The special values mixed into inputs.
const SPECIALS: [f32; 12] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    -0.0,
    0.0,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE / 4.0, // subnormal
    1.0e-40,                  // subnormal
    -1.0e-45,                 // smallest subnormal
    1.0e30,
];

/// Values of both signs spread over many binades, so that any reordering of a sum, a
/// missing fusion or a double rounding changes bits; `specials` mixes in 1 special in 8.
fn data(rng: &mut ChaCha8Rng, len: usize, specials: bool) -> Vec<f32> {
    (0..len)
        .map(|_| {
            if specials && rng.random_range(0..8) == 0 {
                return SPECIALS[rng.random_range(0..SPECIALS.len())];
            }
            let m = rng.random::<f32>() * 2.0 - 1.0;
            m * (2.0f32).powi(rng.random_range(-8..8))
        })
        .collect()
}

/// Bit equality, NaNs included: every path outputs the one canonical NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits()
}

fn assert_same(got: &[f32], want: &[f32], ctx: &dyn Fn() -> String) {
    assert_eq!(got.len(), want.len(), "{}", ctx());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(g, w),
            "{}: element {i}: got {g:e} ({:08X}), want {w:e} ({:08X})",
            ctx(),
            g.to_bits(),
            w.to_bits()
        );
    }
}

struct Case {
    n: usize,
    d: usize,
    f: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    act: Activation,
}

impl Case {
    fn new(n: usize, d: usize, f: usize, bias: bool, act: Activation, specials: bool, seed: u64) -> Case {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ((n as u64) << 40) ^ ((d as u64) << 20) ^ f as u64);
        let x = data(&mut rng, n * d, specials);
        let w = data(&mut rng, d * f, specials);
        let b = bias.then(|| data(&mut rng, f, specials));
        Case { n, d, f, x, w, b, act }
    }

    fn problem(&self) -> DenseProblem<'_> {
        DenseProblem { x: &self.x, w: &self.w, bias: self.b.as_deref(), n: self.n, d: self.d, f: self.f, act: self.act }
    }

    fn reference(&self) -> Vec<f32> {
        let mut y = vec![f32::NAN; self.n * self.f];
        dense_reference(&self.problem(), &mut y).unwrap();
        y
    }

    fn name(&self, isa: Isa, entry: &str) -> String {
        format!("{entry} on {isa}: n={} d={} f={} bias={} act={:?}", self.n, self.d, self.f, self.b.is_some(), self.act)
    }

    /// `dense` and `PackedDense` on every available path.
    fn check(&self) {
        let want = self.reference();
        for isa in Isa::all_available() {
            let mut y = vec![f32::NAN; self.n * self.f];
            dense(isa, &self.problem(), &mut y).unwrap();
            assert_same(&y, &want, &|| self.name(isa, "dense"));

            let p = PackedDense::new(isa, &self.w, self.b.as_deref(), self.d, self.f).unwrap();
            let mut y = vec![-7.0; self.n * self.f];
            p.apply(&self.x, self.n, &mut y, self.act).unwrap();
            assert_same(&y, &want, &|| self.name(isa, "PackedDense"));
        }
    }
}

#[test]
fn paths_available() {
    let all = Isa::all_available();
    assert_eq!(all[0], Isa::Scalar);
    assert!(all.contains(&best_isa()));
    for isa in Isa::ALL {
        assert_eq!(Isa::from_name(isa.name()), Some(isa));
        assert_eq!(isa.to_string(), isa.name());
    }
    assert_eq!(Isa::from_name(" Avx2 "), Some(Isa::Avx2));
    assert_eq!(Isa::from_name("sse"), None);
    #[cfg(target_arch = "x86_64")]
    assert!(!Isa::Neon.is_available());
    #[cfg(not(target_arch = "x86_64"))]
    assert!(!Isa::Avx2.is_available() && !Isa::Avx512.is_available());
    eprintln!("kernel paths available here: {all:?}, best {}", best_isa());
}

/// f32::mul_add must be a fused multiply-add (one rounding) — also without hardware FMA.
#[test]
fn mul_add_is_fused() {
    let a = 1.0f32 + f32::EPSILON; // 1 + 2^-23
                                   // a·a = 1 + 2^-22 + 2^-46 exactly; fused: (a·a - (1 + 2^-22)) = 2^-46, unfused: 0.
    assert_eq!(a.mul_add(a, -(1.0 + 2.0 * f32::EPSILON)), 2.0f32.powi(-46));
}

#[test]
fn known_answer() {
    let x = [1.0f32, 2.0, 3.0];
    let w: Vec<f32> = [
        0x3F8119F6u32,
        0x3EFEC15A,
        0xBEE1B1D7,
        0x3E393C2B,
        0x3EB57B06,
        0xBE060209,
        0xBD5764B6,
        0xBF4FB587,
        0xBF793182,
        0x3F3CD726,
        0x3F0C53FF,
        0xBEA4E8CD,
    ]
    .iter()
    .map(|&b| f32::from_bits(b))
    .collect();
    let want = [0xBF99F2CAu32, 0x401CB947, 0x3F8C9B3E, 0xC01A1E4E];
    let bias = [0.0f32; 4];
    let check = |y: &[f32], what: &str| {
        let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, want, "{what}");
    };
    let mut y = [0.0f32; 4];
    dense_reference(
        &DenseProblem { x: &x, w: &w, bias: Some(&bias), n: 1, d: 3, f: 4, act: Activation::Identity },
        &mut y,
    )
    .unwrap();
    check(&y, "reference");
    for isa in Isa::all_available() {
        for b in [None, Some(&bias[..])] {
            let mut y = [0.0f32; 4];
            dense(isa, &DenseProblem { x: &x, w: &w, bias: b, n: 1, d: 3, f: 4, act: Activation::Identity }, &mut y)
                .unwrap();
            check(&y, &format!("dense {isa}"));
            let p = PackedDense::new(isa, &w, b, 3, 4).unwrap();
            p.apply(&x, 1, &mut y, Activation::Identity).unwrap();
            check(&y, &format!("packed {isa}"));
            let fx = FixedDense::<3, 4>::new(isa, &w, b).unwrap();
            check(&fx.apply(&x), &format!("fixed {isa}"));
            check(&fx.apply_batch(&[x])[0], &format!("fixed batch {isa}"));
        }
    }
}

/// Every F of the list, every N, a few D; every bias/activation variant.
#[test]
fn sweep_f() {
    let mut cases = 0;
    for &f in &DF {
        for &n in &NS {
            for d in [1, 3, 17] {
                for (v, act) in ACTS.iter().enumerate() {
                    Case::new(n, d, f, v == 0 || n % 2 == 1, *act, false, 1).check();
                    cases += 1;
                }
            }
        }
    }
    eprintln!("sweep_f: {cases} cases");
}

/// Every D of the list, a few N and F.
#[test]
fn sweep_d() {
    let mut cases = 0;
    for &d in &DF {
        for n in [1, 5, 9] {
            for f in [1, 15, 17, 64, 65] {
                let act = ACTS[(d + f) % 2];
                Case::new(n, d, f, (n + d) % 2 == 0, act, false, 2).check();
                cases += 1;
            }
        }
    }
    eprintln!("sweep_d: {cases} cases");
}

/// A few larger shapes that exercise full GEMM tiles with several row and column blocks.
#[test]
fn larger_shapes() {
    for (n, d, f) in [(17, 257, 257), (13, 129, 255), (8, 256, 256), (1, 257, 257), (2, 64, 513), (3, 33, 200)] {
        for bias in [false, true] {
            Case::new(n, d, f, bias, if bias { Activation::Relu } else { Activation::Identity }, false, 3).check();
        }
    }
}

/// Layers of 64 Ki weights or more alternate the order of their column tiles from one pass to
/// the next on a thread (module `sweep`): two passes in a row (both orders), on one thread and
/// split by columns, give the reference bits (several column tiles, a partial last one,
/// specials).
#[test]
fn large_layers_in_both_orders() {
    for (n, d, f, specials) in [(1, 257, 300, false), (2, 129, 600, true), (7, 66, 1000, true)] {
        assert!(d * f >= 1 << 16);
        let c = Case::new(n, d, f, true, Activation::Relu, specials, 5);
        let want = c.reference();
        for isa in Isa::all_available() {
            let p = PackedDense::new(isa, &c.w, c.b.as_deref(), d, f).unwrap();
            for pass in 0..2 {
                let mut y = vec![-7.0; n * f];
                p.apply(&c.x, n, &mut y, c.act).unwrap();
                assert_same(&y, &want, &|| c.name(isa, &format!("PackedDense pass {pass}")));
            }
            for pass in 0..2 {
                let mut y = vec![-7.0; n * f];
                parallel::apply_split(&p, &c.x, n, &mut y, c.act, parallel::Split::Columns(2)).unwrap();
                assert_same(&y, &want, &|| c.name(isa, &format!("two column ranges, pass {pass}")));
            }
        }
    }
}

/// Large unpacked weights with one or two rows take the k-blocked driver (chains carried in
/// `y` between blocks of k): odd D and F, partial tiles, specials.
#[test]
fn kblocked_unpacked() {
    for (n, d, f, specials) in [(1, 1023, 300, false), (2, 515, 517, false), (1, 601, 449, true), (2, 262, 1001, true)]
    {
        assert!(d * f >= 1 << 18);
        for (bias, act) in [(true, Activation::Relu), (false, Activation::Identity)] {
            Case::new(n, d, f, bias, act, specials, 4).check();
        }
    }
}

/// Large unpacked weights with 32 rows or more and rows of 256 floats or more, or 8 rows or more
/// and rows 4 KiB apart: each column tile's weights are copied a block of the contraction at a
/// time (chains carried in `y` between blocks): partial last blocks of k, a partial column tile,
/// partial row blocks, specials; one thread and two (split by columns, and by rows). The
/// smallest shapes that take the path (valgrind runs this test).
#[test]
fn copied_blocks_unpacked() {
    let shapes = [(9, 257, 1024, true, Activation::Relu, false), (32, 1009, 260, false, Activation::Identity, true)];
    for (n, d, f, bias, act, specials) in shapes {
        assert!(simd::copies_pay(n, f) && d * f >= 1 << 18);
        let c = Case::new(n, d, f, bias, act, specials, 6);
        let want = c.reference();
        for isa in Isa::all_available() {
            for threads in [1, 2] {
                let mut y = vec![-7.0; n * f];
                parallel::dense_threads(isa, &c.problem(), &mut y, threads).unwrap();
                assert_same(&y, &want, &|| c.name(isa, &format!("dense on {threads} threads")));
            }
        }
    }
}

/// NaN, ±inf, ±0, subnormals and overflow mixed into x, W and b.
#[test]
fn special_values() {
    let mut seed = 100;
    for &n in &[1, 2, 7, 17] {
        for &d in &[1, 2, 3, 16, 33] {
            for &f in &[1, 4, 16, 17, 33, 65, 130] {
                for act in ACTS {
                    seed += 1;
                    Case::new(n, d, f, seed % 3 != 0, act, true, seed).check();
                }
            }
        }
    }
}

/// `-0.0` and NaN survive Relu; +0.0 + (-0.0) = +0.0 in the bias add; no bias → no add.
#[test]
fn relu_and_signed_zero() {
    // D = 0: y = +0.0 + b.
    let b = [-0.0f32, f32::NAN, -1.0, 2.0, -f32::INFINITY, 1e-40];
    for isa in Isa::all_available() {
        let mut y = [1.0f32; 6];
        dense(isa, &DenseProblem { x: &[], w: &[], bias: Some(&b), n: 1, d: 0, f: 6, act: Activation::Relu }, &mut y)
            .unwrap();
        assert_eq!(y[0].to_bits(), 0.0f32.to_bits(), "{isa}"); // +0 + -0 = +0
        assert_eq!(y[1].to_bits(), f32::NAN.to_bits(), "{isa}");
        assert_eq!(&y[2..], &[0.0, 2.0, 0.0, 1e-40]);
        // An accumulator of -0.0 (product underflowing to -0) stays -0.0 without bias, also
        // through Relu.
        let x = [-1.0e-30f32];
        let w = [1.0e-30f32; 3];
        let mut y = [1.0f32; 3];
        dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 1, d: 1, f: 3, act: Activation::Relu }, &mut y)
            .unwrap();
        assert!(y.iter().all(|v| v.to_bits() == (-0.0f32).to_bits()), "{isa}: {y:?}");
        let p = PackedDense::new(isa, &w, None, 1, 3).unwrap();
        p.apply(&x, 1, &mut y, Activation::Relu).unwrap();
        assert!(y.iter().all(|v| v.to_bits() == (-0.0f32).to_bits()), "{isa}: {y:?}");
        let fx = FixedDense::<1, 3>::new(isa, &w, None).unwrap();
        assert!(fx.apply_act(&x, Activation::Relu).iter().all(|v| v.to_bits() == (-0.0f32).to_bits()));
        // NaN from inf·0, and inf - inf.
        let x = [f32::INFINITY, 1.0];
        let w = [0.0f32, 1.0, 1.0, f32::NEG_INFINITY];
        let mut y = [0.0f32; 2];
        dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 1, d: 2, f: 2, act: Activation::Relu }, &mut y)
            .unwrap();
        assert!(y[0].is_nan() && y[1].is_nan(), "{isa}: {y:?}");
    }
}

/// D = 0 (y = bias or +0.0), N = 0 and F = 0 (nothing written, Ok).
#[test]
fn degenerate_shapes() {
    for isa in Isa::all_available() {
        for (n, f) in [(1, 5), (3, 17), (2, 1)] {
            let b: Vec<f32> = (0..f).map(|j| j as f32 - 2.0).collect();
            for act in ACTS {
                let c = Case { n, d: 0, f, x: vec![], w: vec![], b: Some(b.clone()), act };
                c.check();
                let c = Case { n, d: 0, f, x: vec![], w: vec![], b: None, act };
                c.check();
                let mut y = vec![f32::NAN; n * f];
                dense(isa, &DenseProblem { x: &[], w: &[], bias: None, n, d: 0, f, act }, &mut y).unwrap();
                assert!(y.iter().all(|v| v.to_bits() == 0), "{isa}");
            }
        }
        for (n, d, f) in [(0, 3, 4), (5, 3, 0), (0, 0, 0), (0, 7, 0), (4, 0, 0)] {
            let x = vec![1.0; n * d];
            let w = vec![1.0; d * f];
            let b = vec![1.0; f];
            let mut y = vec![];
            dense(isa, &DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu }, &mut y).unwrap();
            let p = PackedDense::new(isa, &w, Some(&b), d, f).unwrap();
            p.apply(&x, n, &mut y, Activation::Identity).unwrap();
        }
        let p = FixedDense::<0, 3>::new(isa, &[], Some(&[1.0, -1.0, -0.0])).unwrap();
        let y = p.apply_act(&[], Activation::Relu);
        assert_eq!(y.map(f32::to_bits), [1.0f32.to_bits(), 0, 0]);
        let p = FixedDense::<4, 0>::new(isa, &[], None).unwrap();
        assert_eq!(p.apply(&[1.0; 4]), [0.0f32; 0]);
        assert_eq!(p.apply_batch(&[[1.0; 4]; 3]), [[0.0f32; 0]; 3]);
        let p = FixedDense::<3, 2>::new(isa, &[1.0; 6], None).unwrap();
        let empty: [[f32; 2]; 0] = p.apply_batch::<0>(&[]);
        assert!(empty.is_empty());
    }
}

#[test]
fn errors_never_panic() {
    let x = [1.0f32; 6];
    let w = [1.0f32; 6];
    let b = [1.0f32; 3];
    let mut y = [0.0f32; 6];
    let id = Activation::Identity;
    for isa in Isa::ALL {
        if !isa.is_available() {
            assert!(dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 3, f: 2, act: id }, &mut y).is_err());
            assert!(PackedDense::new(isa, &w, None, 3, 2).is_err());
            assert!(FixedDense::<3, 2>::new(isa, &w, None).is_err());
            continue;
        }
        assert!(dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 3, f: 2, act: id }, &mut y[..4]).is_ok());
        assert!(dense(isa, &DenseProblem { x: &x[..5], w: &w, bias: None, n: 2, d: 3, f: 2, act: id }, &mut y[..4])
            .is_err());
        assert!(dense(isa, &DenseProblem { x: &x, w: &w[..5], bias: None, n: 2, d: 3, f: 2, act: id }, &mut y[..4])
            .is_err());
        assert!(
            dense(isa, &DenseProblem { x: &x, w: &w, bias: Some(&b), n: 2, d: 3, f: 2, act: id }, &mut y[..4]).is_err()
        );
        assert!(dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 3, f: 2, act: id }, &mut y).is_err());
        assert!(
            dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: usize::MAX, d: 3, f: 2, act: id }, &mut y).is_err()
        );
        assert!(dense(
            isa,
            &DenseProblem { x: &[], w: &[], bias: None, n: usize::MAX, d: 0, f: usize::MAX, act: id },
            &mut []
        )
        .is_err());
        assert!(dense(
            isa,
            &DenseProblem { x: &[], w: &[], bias: None, n: 0, d: usize::MAX, f: usize::MAX, act: id },
            &mut []
        )
        .is_err());
        let e = dense(isa, &DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 3, f: 2, act: id }, &mut y).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");

        assert!(PackedDense::new(isa, &w, None, 2, 2).is_err());
        assert!(PackedDense::new(isa, &w, Some(&b), 3, 2).is_err());
        assert!(PackedDense::new(isa, &w, None, usize::MAX, 2).is_err());
        // d = 0 with an absurd f: nothing to store for W, a bias-less layer of width f.
        assert!(PackedDense::new(isa, &[], None, 0, usize::MAX).is_err());
        let p = PackedDense::new(isa, &w, Some(&b[..2]), 3, 2).unwrap();
        assert!(p.apply(&x, 2, &mut y[..4], id).is_ok());
        assert!(p.apply(&x, 2, &mut y[..3], id).is_err());
        assert!(p.apply(&x[..4], 2, &mut y[..4], id).is_err());
        assert!(p.apply(&x, usize::MAX, &mut y[..4], id).is_err());

        assert!(FixedDense::<3, 2>::new(isa, &w[..5], None).is_err());
        assert!(FixedDense::<3, 2>::new(isa, &w, Some(&b)).is_err());
        assert!(FixedDense::<2, 3>::new(isa, &w, Some(&b)).is_ok());
    }
}

#[test]
fn traits_and_accessors() {
    fn check<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    check::<PackedDense>();
    check::<FixedDense<3, 4>>();
    check::<Isa>();
    check::<Activation>();
    assert_eq!(Activation::default(), Activation::Identity);
    let p = PackedDense::new(best_isa(), &[1.0; 12], None, 3, 4).unwrap();
    assert_eq!((p.d(), p.f(), p.isa(), p.has_bias()), (3, 4, best_isa(), false));
    let q = p.clone();
    assert!(format!("{q:?}").contains("PackedDense"));
    let fx = FixedDense::<3, 4>::new(best_isa(), &[1.0; 12], None).unwrap();
    assert_eq!(fx.isa(), best_isa());
    assert_eq!(fx.packed().f(), 4);
    assert_eq!(fx.clone().apply(&[1.0, 2.0, 3.0]), [6.0; 4]);
}

/// The documented panel layout: W[k, j] at (j / L)·D·L + k·L + j % L, zero padding.
#[test]
fn panel_layout() {
    let (d, f) = (3, 21);
    let w: Vec<f32> = (0..d * f).map(|i| i as f32 + 1.0).collect();
    for isa in Isa::all_available() {
        let l = isa.lanes();
        let p = PackedDense::new(isa, &w, None, d, f).unwrap();
        let s = p.packed_slice();
        assert_eq!(s.len(), f.div_ceil(l) * l * d);
        assert_eq!(p.packed_w() as usize % 64, 0);
        for (i, &v) in s.iter().enumerate() {
            let (panel, k, c) = (i / (d * l), (i / l) % d, i % l);
            let j = panel * l + c;
            let want = if l == 1 {
                w[i]
            } else if j < f {
                w[k * f + j]
            } else {
                0.0
            };
            assert_eq!(v, want, "{isa} at {i}");
        }
    }
}

fn check_fixed<const D: usize, const F: usize>() {
    check_fixed_with::<D, F>(false);
    check_fixed_with::<D, F>(true);
}

/// [`FixedDense`] against the reference on every path; `specials` also mixes NaN, ±inf, ±0
/// and subnormals into the weights and bias (the inputs always have some).
fn check_fixed_with<const D: usize, const F: usize>(specials: bool) {
    let mut rng = ChaCha8Rng::seed_from_u64((D * 1000 + F) as u64 ^ u64::from(specials) << 40);
    let w = data(&mut rng, D * F, specials);
    let b = data(&mut rng, F, specials);
    let xs = data(&mut rng, 17 * D, true);
    for isa in Isa::all_available() {
        for (bias, act) in [
            (None, Activation::Identity),
            (Some(&b[..]), Activation::Relu),
            (Some(&b[..]), Activation::Identity),
            (None, Activation::Relu),
        ] {
            let fx = FixedDense::<D, F>::new(isa, &w, bias).unwrap();
            let mut want = vec![0.0f32; 17 * F];
            dense_reference(&DenseProblem { x: &xs, w: &w, bias, n: 17, d: D, f: F, act }, &mut want).unwrap();
            let ctx = |what: &str| format!("FixedDense<{D}, {F}> {what} on {isa}, bias={}, {act:?}", bias.is_some());
            for r in 0..17 {
                let x: [f32; D] = std::array::from_fn(|k| xs[r * D + k]);
                let y = fx.apply_act(&x, act);
                assert_same(&y, &want[r * F..(r + 1) * F], &|| ctx("apply"));
                if act == Activation::Identity {
                    assert_same(&fx.apply(&x), &want[r * F..(r + 1) * F], &|| ctx("apply"));
                }
            }
            macro_rules! batch {
                ($($n:literal)*) => {$({
                    let x: [[f32; D]; $n] = std::array::from_fn(|r| std::array::from_fn(|k| xs[r * D + k]));
                    let y = fx.apply_batch_act::<$n>(&x, act);
                    assert_same(y.as_flattened(), &want[..$n * F], &|| ctx(concat!("apply_batch::<", $n, ">")));
                    if act == Activation::Identity {
                        let y = fx.apply_batch::<$n>(&x);
                        assert_same(y.as_flattened(), &want[..$n * F], &|| ctx("apply_batch"));
                    }
                })*};
            }
            batch!(1 2 3 5 7 17);
        }
    }
}

#[test]
fn fixed_dense() {
    check_fixed::<1, 1>();
    check_fixed::<2, 5>();
    check_fixed::<3, 4>();
    check_fixed::<7, 17>();
    check_fixed::<8, 8>();
    check_fixed::<15, 33>();
    check_fixed::<16, 16>();
    check_fixed::<17, 31>();
    check_fixed::<31, 65>();
    check_fixed::<33, 129>();
    check_fixed::<64, 64>();
    check_fixed::<65, 127>();
    check_fixed::<128, 129>();
    check_fixed::<257, 16>();
    check_fixed::<5, 257>();
    check_fixed::<3, 136>();
}

/// Instantiates [`check_fixed`] for each `D x F` listed.
macro_rules! fixed_shapes {
    ($($d:literal x $f:literal),* $(,)?) => {{
        let mut n = 0;
        $(check_fixed::<$d, $f>(); n += 1;)*
        n
    }};
}

/// The compact single-row kernels (module `small`): every `F` in 1..=17 (128-bit, 256-bit
/// and 512-bit vectors, full and partial), every `D` in 0..=17, and the edges of one tile
/// (64 columns with AVX2, 128 with AVX-512) and of the unrolled range.
#[test]
fn fixed_dense_compact_shapes() {
    let narrow = fixed_shapes!(
        1 x 1, 1 x 2, 1 x 3, 1 x 4, 1 x 5, 1 x 6, 1 x 7, 1 x 8,
        2 x 1, 2 x 2, 2 x 3, 2 x 4, 2 x 5, 2 x 6, 2 x 7, 2 x 8,
        3 x 1, 3 x 2, 3 x 3, 3 x 5, 3 x 6, 3 x 7, 3 x 8,
        4 x 4, 5 x 3, 6 x 8, 7 x 2, 9 x 4, 10 x 7, 11 x 1, 12 x 6, 13 x 5, 14 x 3, 15 x 8, 16 x 4,
        17 x 2, 17 x 4, 17 x 8, 31 x 3, 32 x 4, 33 x 8, 64 x 4, 64 x 8, 0 x 4, 0 x 7,
    );
    let wide = fixed_shapes!(
        1 x 9, 2 x 10, 3 x 11, 4 x 12, 5 x 13, 6 x 14, 7 x 15, 8 x 16, 9 x 17,
        10 x 31, 11 x 32, 12 x 33, 13 x 63, 14 x 64, 15 x 65, 16 x 96, 17 x 127, 1 x 128, 2 x 129,
        31 x 16, 32 x 17, 33 x 32, 31 x 31, 32 x 32, 33 x 33, 64 x 64, 64 x 33, 17 x 64, 65 x 65,
        0 x 16, 0 x 33, 16 x 0, 40 x 200,
    );
    eprintln!("fixed_dense_compact_shapes: {} instantiations", narrow + wide);
}

/// A product that underflows to -0.0 keeps its sign without a bias (also through Relu), and
/// -0.0 + +0.0 = +0.0 with a zero bias, on every compact width.
#[test]
fn fixed_dense_signed_zero() {
    fn check<const D: usize, const F: usize>() {
        let x = [-1.0e-30f32; D];
        let w = vec![1.0e-30f32; D * F];
        let neg = (-0.0f32).to_bits();
        for isa in Isa::all_available() {
            let fx = FixedDense::<D, F>::new(isa, &w, None).unwrap();
            for act in ACTS {
                let y = fx.apply_act(&x, act);
                assert!(y.iter().all(|v| v.to_bits() == neg), "{isa} {D}x{F} {act:?}: {y:?}");
            }
            let fx = FixedDense::<D, F>::new(isa, &w, Some(&[0.0; F])).unwrap();
            assert!(fx.apply(&x).iter().all(|v| v.to_bits() == 0), "{isa} {D}x{F} bias");
        }
    }
    check::<1, 1>();
    check::<1, 4>();
    check::<2, 3>();
    check::<3, 8>();
    check::<1, 5>();
    check::<2, 16>();
    check::<3, 33>();
    check::<4, 64>();
    check::<1, 128>();
}

/// A clone owns its parameters: it still works after the original is dropped.
#[test]
fn fixed_dense_clone_owns_its_parameters() {
    for isa in Isa::all_available() {
        let w: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let fx = FixedDense::<3, 4>::new(isa, &w, Some(&[1.0, 2.0, 3.0, 4.0])).unwrap();
        let want = fx.apply(&[1.0, -1.0, 0.5]);
        let copy = fx.clone();
        drop(fx);
        assert_eq!(copy.apply(&[1.0, -1.0, 0.5]), want, "{isa}");
        assert_eq!(want, [1.0, 2.5, 4.0, 5.5]);
        let wide = FixedDense::<2, 300>::new(isa, &[1.0; 600], None).unwrap();
        let copy = wide.clone();
        drop(wide);
        assert_eq!(copy.apply(&[1.0, 2.0]), [3.0; 300], "{isa}");
        assert!(format!("{copy:?}").contains("FixedDense"));
    }
}

/// The narrow one-row kernels of `PackedDense` (`F <= 8`: 128/256-bit vectors inside wider
/// panels, `D <= 8` unrolled, longer `D` in a loop), with specials, one and two rows.
#[test]
fn packed_narrow_rows() {
    let mut seed = 500;
    for f in 1..=9 {
        for d in (0..=12).chain([17, 31, 32, 33, 64]) {
            for n in [1, 2] {
                for (bias, act) in [(true, Activation::Identity), (false, Activation::Relu), (true, Activation::Relu)] {
                    seed += 1;
                    Case::new(n, d, f, bias, act, seed % 2 == 0, seed).check();
                }
            }
        }
    }
}

#[test]
fn best_isa_env_override_parses() {
    // The override itself is read once per process; check the parser it relies on.
    for (s, want) in
        [("scalar", Some(Isa::Scalar)), ("AVX512", Some(Isa::Avx512)), ("neon\n", Some(Isa::Neon)), ("", None)]
    {
        assert_eq!(Isa::from_name(s), want);
    }
}

/// NaNs with different payloads and signs in `x`, `W` and `b`, and NaNs made by `inf · 0`
/// (x86's default NaN is negative, ARM's positive): every path and entry outputs exactly the
/// canonical NaN, so lifted and plain results agree bit for bit even there.
#[test]
fn nan_outputs_are_canonical() {
    let nan = |bits: u32| f32::from_bits(bits);
    let (d, f) = (3, 9);
    // Row 0: NaN meets NaN in the chain; row 1: inf · 0 makes a NaN; row 2: NaN only in b.
    let x = [nan(0xFFFF_2E00), 1.0, 2.0, f32::INFINITY, 1.0, 1.0, 1.0, 1.0, 1.0];
    let mut w = vec![0.5f32; d * f];
    w[0] = nan(0x7F80_0001); // a signalling NaN
    w[1] = nan(0xFFFF_FFFF);
    w[2] = 0.0; // inf · 0 in row 1
    let mut b = vec![0.25f32; f];
    b[5] = nan(0xFFC0_0001);
    for act in ACTS {
        let mut want = vec![0.0f32; 3 * f];
        dense_reference(&DenseProblem { x: &x, w: &w, bias: Some(&b), n: 3, d, f, act }, &mut want).unwrap();
        for (i, v) in want.iter().enumerate() {
            let (r, j) = (i / f, i % f);
            let expect_nan = match r {
                0 => true,                       // x[0] is NaN
                1 => matches!(j, 0 | 1 | 2 | 5), // inf · NaN, inf · 0, NaN bias
                _ => matches!(j, 0 | 1 | 5),     // NaN weights, NaN bias
            };
            assert_eq!(v.is_nan(), expect_nan, "reference output {i} = {v}");
            if v.is_nan() {
                assert_eq!(v.to_bits(), 0x7FC0_0000, "reference output {i}");
            }
        }
        for isa in Isa::all_available() {
            let ctx = || format!("{isa} {act:?}");
            let mut y = vec![1.0f32; 3 * f];
            dense(isa, &DenseProblem { x: &x, w: &w, bias: Some(&b), n: 3, d, f, act }, &mut y).unwrap();
            assert_same(&y, &want, &ctx);
            let packed = PackedDense::new(isa, &w, Some(&b), d, f).unwrap();
            let mut y = vec![1.0f32; 3 * f];
            packed.apply(&x, 3, &mut y, act).unwrap();
            assert_same(&y, &want, &ctx);
            let fixed = FixedDense::<3, 9>::new(isa, &w, Some(&b)).unwrap();
            for r in 0..3 {
                let xr: [f32; 3] = x[r * d..(r + 1) * d].try_into().unwrap();
                assert_same(&fixed.apply_act(&xr, act), &want[r * f..(r + 1) * f], &ctx);
            }
        }
    }
}
