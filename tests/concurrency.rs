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
