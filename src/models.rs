//! The composite models of `gen_modules.py`, written as an nnjit user would, and lifted.

use nnjit::nn::{self, Module, Scope, Tensor};

/// Flax: `Dense(hidden) → relu → Dense(out)`.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Output features.
    pub out: usize,
}

impl Module for Mlp {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(self.hidden), x)?;
        let h = nn::relu(h);
        s.call(&nn::Dense::new(self.out), h)
    }
}

/// Flax: `Dense(hidden) → BatchNorm(momentum 0.9) → relu → Dropout(rate) → Dense(out)`, with
/// `train` as a static argument (a field, as Flax modules often take `deterministic`).
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct MlpBnDrop {
    /// Width of the hidden layer.
    pub hidden: usize,
    /// Output features.
    pub out: usize,
    /// Dropout rate.
    pub rate: f64,
    /// Training mode: batch statistics and dropout on.
    pub train: bool,
}

impl Module for MlpBnDrop {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(self.hidden), x)?;
        let bn = nn::BatchNorm::new().use_running_average(!self.train).momentum(0.9).epsilon(1e-5);
        let h = s.call(&bn, h)?;
        let h = nn::relu(h);
        let h = s.call(&nn::Dropout::new(self.rate).deterministic(!self.train), h)?;
        s.call(&nn::Dense::new(self.out), h)
    }
}
