//! Modules, variables and lifted kernels are `Send + Sync`; one lifted model applied from 8
//! threads at once (while another thread prepares new shapes) gives the single-threaded bits.

use nnjit::ndarray::{Array2, ArrayD};
use nnjit::nn::{self, Lifted, Module};
use nnjit_suite::models::{JitMlp, Mlp};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<nnjit::Variables>();
    assert_send_sync::<nn::Dense>();
    assert_send_sync::<nn::JitDense>();
    assert_send_sync::<nn::BatchNorm>();
    assert_send_sync::<nn::Dropout>();
    assert_send_sync::<nn::Rngs>();
    assert_send_sync::<nnjit::jit::JitCache>();
    assert_send_sync::<nnjit::jit::Bound<nn::JitDense>>();
    assert_send_sync::<nnjit::jit::Fixed<3, 4>>();
    assert_send_sync::<nnjit::jit::Bound<JitMlp>>();
    assert_send_sync::<nnjit::kernel::PackedDense>();
    assert_send_sync::<nnjit::kernel::FixedDense<3, 4>>();
    assert_send_sync::<nnjit::Error>();
    assert_send_sync::<JitMlp>();
}

fn input(rows: usize, d: usize, salt: f32) -> ArrayD<f32> {
    Array2::from_shape_fn((rows, d), |(i, j)| ((i * d + j) as f32 * 0.37 + salt).sin()).into_dyn()
}

#[test]
fn eight_threads_share_one_lifted_model() {
    let model = JitMlp { hidden: 48, out: 7 };
    let x = input(3, 20, 0.0);
    let vars = Mlp { hidden: 48, out: 7 }.init(nn::PRNGKey(1), &x).unwrap();
    let want = Mlp { hidden: 48, out: 7 }.apply(&vars, &x).unwrap();
    let others: Vec<ArrayD<f32>> = (1..=12).map(|r| input(r + 3, 20, r as f32)).collect();
    let wants: Vec<ArrayD<f32>> = others.iter().map(|o| Mlp { hidden: 48, out: 7 }.apply(&vars, o).unwrap()).collect();
    let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (model, vars, x, want) = (&model, &vars, &x, &want);
            s.spawn(move || {
                for i in 0..300 {
                    let y = model.apply(vars, x).unwrap();
                    assert_eq!(bits(&y), bits(want), "thread {t}, iteration {i}");
                }
            });
        }
        // Meanwhile, new shapes are prepared (and new parameter versions bound).
        let (model, vars, others, wants) = (&model, &vars, &others, &wants);
        s.spawn(move || {
            for (o, w) in others.iter().zip(wants) {
                assert_eq!(bits(&model.apply(vars, o).unwrap()), bits(w));
            }
            let mut changed = vars.clone();
            changed.get_mut("params/Dense_1/bias").unwrap()[0] = 1.0;
            let y = model.apply(&changed, &others[0]).unwrap();
            assert_eq!(bits(&y), bits(&Mlp { hidden: 48, out: 7 }.apply(&changed, &others[0]).unwrap()));
        });
    });
    assert!(model.cache_size() >= 13);
}

/// A model of its own, so no other test applies it (its cache's counts are this test's).
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
struct Counted {
    f: usize,
}

impl Module for Counted {
    type Input = nn::Tensor;
    type Output = nn::Tensor;
    fn call(&self, s: &mut nn::Scope<'_, '_>, x: nn::Tensor) -> nnjit::Result<nn::Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(self.f), x)?);
        s.call(&nn::Dense::new(self.f), h)
    }
}

#[test]
fn cache_hits_are_exact_under_concurrent_repeats() {
    const THREADS: u64 = 4;
    const APPLIES: u64 = 500;
    let model = JitCounted { f: 6 };
    let x = input(2, 5, 0.5);
    let vars = model.init(nn::PRNGKey(3), &x).unwrap();
    let cache = JitCounted::jit_cache();
    let before = cache.stats();
    let counted = |s: nnjit::jit::CacheStats| (s.hits - before.hits) + (s.traces - before.traces);
    model.apply(&vars, &x).unwrap(); // traced here, so no two threads trace it at once
    let barrier = std::sync::Barrier::new(THREADS as usize + 1);
    let running = std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (model, vars, x, barrier) = (&model, &vars, &x, &barrier);
            s.spawn(move || {
                for _ in 0..APPLIES {
                    model.apply(vars, x).unwrap();
                }
                barrier.wait(); // counted while every thread still holds its count
                barrier.wait();
            });
        }
        barrier.wait();
        let running = cache.stats();
        barrier.wait();
        running
    });
    // Every apply is a trace or a hit: the first of each thread found the program in the cache,
    // the rest repeated it through the thread's own count.
    assert_eq!(counted(running), THREADS * APPLIES + 1, "while the threads ran");
    // The threads' counts were folded into the cache's when they ended: none lost, none twice.
    assert_eq!(counted(cache.stats()), THREADS * APPLIES + 1, "after the threads ended");
    assert_eq!(cache.stats().traces - before.traces, 1);
}
