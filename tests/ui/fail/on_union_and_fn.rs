use nnjit::nn;

#[nn::jit]
union Bits {
    f: f32,
    u: u32,
}

#[nn::jit]
fn forward(x: f32) -> f32 {
    x
}

fn main() {}
