//! Layers with Flax linen's defaults.

pub mod activation;
pub mod batch_norm;
pub mod dense;
pub mod dropout;

pub use activation::*;
pub use batch_norm::BatchNorm;
pub use dense::Dense;
pub use dropout::Dropout;
