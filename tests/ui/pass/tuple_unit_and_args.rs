//! Tuple and unit structs lift too; `name =`, `variables =` and `rngs =` are accepted.
use nnjit::nn::{self, Module, Scope, Tensor};

#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Pair(pub usize, usize);

impl Module for Pair {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(self.0), x)?;
        s.call(&nn::Dense::new(self.1), h)
    }
}

#[nn::jit(name = FastRelu, variables = ["params"], rngs = ["params", "dropout"])]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Relu;

impl Module for Relu {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, _: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        Ok(nn::relu(x))
    }
}

fn main() {
    let x = [1.0f32, -2.0];
    let m = JitPair(3, 1);
    let vars = m.init(nn::PRNGKey(1), &x).unwrap();
    assert_eq!(Pair::from(m.clone()).apply(&vars, &x).unwrap(), m.apply(&vars, &x).unwrap());
    let y = FastRelu.apply(&nnjit::Variables::new(), &x).unwrap();
    assert_eq!(y.as_slice().unwrap(), &[1.0, 0.0]);
    let _: Relu = FastRelu.into();
}
