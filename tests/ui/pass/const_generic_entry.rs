//! The const-generic entry: dims are const generics, arrays in and out.
use nnjit::nn::{self, Lifted, Module};

fn main() {
    let m = nn::JitDense::new(4);
    let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0]).unwrap();
    let fixed = m.bind_fixed::<3, 4>(&vars).unwrap();
    let y: [f32; 4] = fixed.apply(&[1.0, 2.0, 3.0]).unwrap();
    let x2 = ndarray::array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
    let batch2 = m.bind(&vars, &x2).unwrap().into_fixed::<3, 4, 2>().unwrap();
    let batch: [[f32; 4]; 2] = batch2.apply_batch(&[[1.0, 2.0, 3.0], [0.0; 3]]).unwrap();
    assert_eq!(y, batch[0]);
}
