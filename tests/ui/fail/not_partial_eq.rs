use nnjit::nn::{self, Module, Scope, Tensor};

// The compilation cache compares a lifted module's fields: the struct must be PartialEq.
#[nn::jit]
#[derive(Debug, Clone)]
pub struct Mlp {
    pub hidden: usize,
}

impl Module for Mlp {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call(&nn::Dense::new(self.hidden), x)
    }
}

fn main() {
    let _ = JitMlp { hidden: 3 };
}
