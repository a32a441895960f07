//! The golden models that several Flax parity tests build (`mod flax_models;` in each test
//! binary that does), each the Rust twin of a class in `tests/data/flax_lift/gen_flax_lift.py`,
//! with its `nn.jit` lift (`Jit…`, Flax's RNG forks: `flax_jit`).

// Each test binary uses part of the models (and of their lifted twins).
#![allow(dead_code)]

use nnjit::nn::{self, Module, Scope, Tensor};

/// `Dense(3) -> relu -> Dense(3)`, lifted as Flax's `nn.jit(Block)` computes it.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct Block;

impl Module for Block {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = nn::relu(s.call(&nn::Dense::new(3), x)?);
        s.call(&nn::Dense::new(3), h)
    }
}

/// `Dense(8) -> Dropout(0.5, deterministic=not train) -> Dense(3)`.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct DropMlp {
    pub train: bool,
}

impl Module for DropMlp {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(8), x)?;
        let h = s.call(&nn::Dropout::new(0.5).deterministic(!self.train), h)?;
        s.call(&nn::Dense::new(3), h)
    }
}

/// `Dense(6) -> BatchNorm(use_running_average=not train, momentum 0.9, eps 1e-5) -> relu ->
/// Dense(2)`.
#[nn::jit(flax_jit)]
#[derive(Debug, Clone, PartialEq)]
pub struct BnMlp {
    pub train: bool,
}

impl Module for BnMlp {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
        let h = s.call(&nn::Dense::new(6), x)?;
        let bn = nn::BatchNorm::new().use_running_average(!self.train).momentum(0.9).epsilon(1e-5);
        let h = nn::relu(s.call(&bn, h)?);
        s.call(&nn::Dense::new(2), h)
    }
}
