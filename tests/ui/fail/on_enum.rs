use nnjit::nn;

#[nn::jit]
pub enum Layer {
    Dense(usize),
}

fn main() {}
