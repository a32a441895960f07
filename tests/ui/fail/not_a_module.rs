use nnjit::nn;

// A struct that does not implement nn::Module cannot be lifted.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hidden: usize,
}

fn main() {
    let _ = JitConfig { hidden: 3 };
}
