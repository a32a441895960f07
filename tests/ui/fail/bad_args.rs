use nnjit::nn;

// Every argument problem is reported at once.
#[nn::jit(nme = Fast, name = A, name = B, variables = "params", rngs = [1], static_argnums)]
#[derive(Debug, Clone)]
pub struct Mlp {
    pub hidden: usize,
}

fn main() {}
