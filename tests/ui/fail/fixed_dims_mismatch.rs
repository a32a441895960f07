use nnjit::nn::{self, Lifted, Module};

fn main() {
    let m = nn::JitDense::new(4);
    let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0]).unwrap();
    let fixed = m.bind_fixed::<3, 4>(&vars).unwrap();
    // D is 3 at compile time: a 4-element input does not type-check.
    let _y = fixed.apply(&[1.0, 2.0, 3.0, 4.0]);
    // F is 4 at compile time: the output is not a [f32; 5].
    let _z: [f32; 5] = fixed.apply(&[1.0, 2.0, 3.0]).unwrap();
}
