//! Layers with Flax linen's defaults.
//!
//! ```
//! use nnjit::layers::{relu, BatchNorm, Dense, Dropout}; // also reachable as nnjit::nn::*
//! use nnjit::nn::{Module, Tensor};
//! let x = ndarray::array![[1.0f32, -2.0]];
//! let vars = Dense::new(3).init(nnjit::nn::PRNGKey(0), &x)?;
//! let y = relu(Tensor::from(Dense::new(3).apply(&vars, &x)?)).to_array()?;
//! assert!(y.iter().all(|&v| v >= 0.0));
//! assert_eq!(BatchNorm::new().momentum, 0.99);
//! assert!(!Dropout::new(0.1).deterministic);
//! # Ok::<(), nnjit::Error>(())
//! ```

pub mod activation;
pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod sequential;

pub use activation::*;
pub use batch_norm::BatchNorm;
pub use dense::Dense;
pub use dropout::Dropout;
pub use sequential::Sequential;
