//! Activation functions with Flax's names and parameters (`nn.relu`, `nn.elu(x, alpha)`,
//! `nn.leaky_relu(x, negative_slope)`, ...), on owned or borrowed [`Tensor`](crate::nn::Tensor)s,
//! eager and traced alike.
//!
//! ```
//! use nnjit::nn::{self, Tensor};
//! let x = Tensor::from(ndarray::array![-1.0f32, 0.5]);
//! assert_eq!(nn::relu(&x).to_array()?, ndarray::array![0.0f32, 0.5].into_dyn());
//! assert_eq!(nn::leaky_relu(&x, 0.1).to_array()?, ndarray::array![-0.1f32, 0.5].into_dyn());
//! # Ok::<(), nnjit::Error>(())
//! ```

pub use crate::tensor::activation::{
    elu, gelu, gelu_exact, leaky_relu, log_softmax, relu, relu6, sigmoid, silu, softmax, softplus, tanh, where_,
};

/// `max(v, 0)` on one float, keeping NaN and `-0.0` (what [`relu`] computes per element).
///
/// ```
/// assert_eq!(nnjit::layers::activation::relu_scalar(-2.0), 0.0);
/// assert!(nnjit::layers::activation::relu_scalar(f32::NAN).is_nan());
/// ```
#[inline]
#[must_use]
pub fn relu_scalar(v: f32) -> f32 {
    crate::tensor::op::relu(v)
}
