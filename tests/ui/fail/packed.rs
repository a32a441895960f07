use nnjit::nn;

#[nn::jit]
#[repr(packed)]
pub struct Tight {
    pub features: usize,
}

fn main() {}
