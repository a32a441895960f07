//! `#[cfg]`-gated fields: the twin and both conversions carry the field's `#[cfg]`.
use nnjit::nn::{self, Module, Scope, Tensor};

#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Gated {
    pub hidden: usize,
    #[cfg(any())]
    pub never: usize,
    #[cfg(all())]
    pub out: usize,
    #[cfg(not(all()))]
    pub also_never: String,
}

impl Module for Gated {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(self.hidden), x)?);
        s.call(&nn::Dense::new(self.out), h)
    }
}

fn main() {
    let x = [0.5f32, -1.0, 2.0];
    let m = JitGated { hidden: 4, out: 2 };
    let plain = Gated::from(m.clone());
    assert_eq!(plain, Gated { hidden: 4, out: 2 });
    assert_eq!(JitGated::from(plain.clone()), m);
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    assert!(vars.bits_eq(&plain.init(nn::PRNGKey(0), &x).unwrap()));
    assert_eq!(m.apply(&vars, &x).unwrap(), plain.apply(&vars, &x).unwrap());
}
