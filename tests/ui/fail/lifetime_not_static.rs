use nnjit::nn::{self, Module, Scope, Tensor};

// The compilation cache keeps a lifted module's fields: the struct must be 'static, so a
// struct that borrows (a lifetime parameter) cannot be lifted.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<'a> {
    pub features: usize,
    pub label: &'a str,
}

impl Module for Tagged<'_> {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call_named(self.label, &nn::Dense::new(self.features), x)
    }
}

fn main() {}
