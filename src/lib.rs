//! Support code of the nnjit workspace's examples and integration tests: the example CLIs'
//! logic (so it can be tested and fuzzed in-process), a small JSON reader/writer for arrays,
//! and the composite models of the Flax golden data (`Mlp`, `MlpBnDrop`), lifted with
//! `#[nn::jit]` like any user crate would.

pub mod cli;
pub mod json;
pub mod models;
pub mod parity;
