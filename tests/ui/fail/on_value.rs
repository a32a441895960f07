use nnjit::nn;

// The lift applies to a module type, not to a module value.
#[nn::jit]
static MODEL: usize = 4;

fn main() {}
