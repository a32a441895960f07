//! Property tests (proptest, with shrinking): lifted == plain bit for bit, batch == row by row,
//! JAX's key algebra, and sampler bounds.

use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{self, Lifted, Module};
use nnjit::random::{self, fold_in, Key};
use nnjit_suite::models::{JitMlp, Mlp};
use proptest::prelude::*;

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

/// (batch dims, D, F, seed, values)
fn dense_case() -> impl Strategy<Value = (Vec<usize>, usize, usize, i64, Vec<f32>)> {
    (prop::collection::vec(1usize..4, 0..3), 1usize..48, 1usize..48, any::<i64>()).prop_flat_map(
        |(batch, d, f, seed)| {
            let n: usize = batch.iter().product::<usize>() * d;
            let values = prop::collection::vec(
                prop_oneof![8 => -4.0f32..4.0, 1 => Just(0.0f32), 1 => Just(-0.0f32), 1 => any::<f32>()],
                n,
            );
            (Just(batch), Just(d), Just(f), Just(seed), values)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lifted_equals_plain((batch, d, f, seed, values) in dense_case()) {
        let mut shape = batch.clone();
        shape.push(d);
        let x = ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap();
        let v = nn::Dense::new(f).init(nn::PRNGKey(seed), &x).unwrap();
        prop_assert!(v.bits_eq(&nn::JitDense::new(f).init(nn::PRNGKey(seed), &x).unwrap()));
        let plain = nn::Dense::new(f).apply(&v, &x).unwrap();
        prop_assert_eq!(bits(&plain), bits(&nn::JitDense::new(f).apply(&v, &x).unwrap()));
        // Batched apply equals row-by-row apply.
        let rows = x.to_shape((x.len() / d, d)).unwrap();
        let mut by_row = Vec::new();
        for r in rows.outer_iter() {
            by_row.extend(bits(&nn::Dense::new(f).apply(&v, r).unwrap()));
        }
        prop_assert_eq!(bits(&plain), by_row);
        // A composite, lifted vs plain.
        let (m, jm) = (Mlp { hidden: f, out: d }, JitMlp { hidden: f, out: d });
        let vm = m.init(nn::PRNGKey(seed), &x).unwrap();
        prop_assert_eq!(bits(&m.apply(&vm, &x).unwrap()), bits(&jm.apply(&vm, &x).unwrap()));
        prop_assert!(jm.cache_size() >= 1);
    }

    #[test]
    fn split_is_fold_in(k0 in any::<u32>(), k1 in any::<u32>(), n in 1usize..40) {
        let key = Key::from_words([k0, k1]);
        let keys = random::split(key, n).unwrap();
        for (i, k) in keys.iter().enumerate() {
            prop_assert_eq!(*k, fold_in(key, i as u32));
        }
        let [a, b] = key.split::<2>();
        prop_assert_eq!((a, b), (keys.first().copied().unwrap_or(a), fold_in(key, 1)));
    }

    #[test]
    fn truncated_normal_stays_inside(seed in any::<i64>(), lo in -3.0f32..0.0, width in 0.1f32..4.0) {
        let hi = lo + width;
        let t = random::truncated_normal(nn::PRNGKey(seed), lo, hi, &[257]).unwrap();
        for v in t.iter() {
            prop_assert!(*v > lo && *v < hi, "{} not in ({}, {})", v, lo, hi);
        }
    }

    #[test]
    fn uniform_and_bernoulli_in_range(seed in any::<i64>(), p in 0.0f32..1.0) {
        let u = random::uniform(nn::PRNGKey(seed), &[300], 0.0, 1.0).unwrap();
        prop_assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
        let b = random::bernoulli(nn::PRNGKey(seed), p, &[300]).unwrap();
        // The mask is exactly `uniform < p` on the same key.
        prop_assert!(b.iter().zip(u.iter()).all(|(m, v)| *m == (*v < p)));
    }

    #[test]
    fn seeds_keep_only_the_low_32_bits(seed in any::<i64>()) {
        prop_assert_eq!(nn::PRNGKey(seed).words(), [0, seed as u32]);
        prop_assert_eq!(nn::PRNGKey(seed), nn::PRNGKey(seed.wrapping_add(1 << 32)));
    }
}
