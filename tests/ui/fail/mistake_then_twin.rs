use nnjit::nn::{self, Module, Scope, Tensor};

// One mistake (an unknown argument) gives one message: the twin's name still exists (as an
// alias of the struct), so the code below that uses it is not reported again.
#[nn::jit(static_argnums = 1)]
#[derive(Debug, Clone, PartialEq)]
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
    let x = [1.0f32, 2.0];
    let m = JitMlp { hidden: 3 };
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let _ = m.apply(&vars, &x).unwrap();
    let _: Mlp = m;
}
