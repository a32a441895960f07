//! nnjit: Flax linen's module system and its `nn.jit` lift, in Rust.
#![warn(missing_docs)]

extern crate self as nnjit;

pub mod alloc;
pub mod error;
pub mod init;
pub mod kernel;
pub mod random;

pub use error::{Error, Result};
