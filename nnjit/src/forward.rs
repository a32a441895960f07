//! The canonical exercise, `nn_jit_forward(seed, x, features)`: build the jitted Dense, init
//! with `PRNGKey(seed)` and `x`, apply, return the flattened output.
//!
//! ```
//! let y = nnjit::nn_jit_forward(0, &[1.0, 2.0, 3.0], 4)?; // JitDense(4), PRNGKey(0)
//! assert_eq!(y.len(), 4);
//! # Ok::<(), nnjit::Error>(())
//! ```

use ndarray::ArrayD;

use crate::error::Result;
use crate::layers::dense::{Dense, JitDense};
use crate::module::{AsInput, Module};
use crate::random::PRNGKey;
use crate::scope::Scope;
use crate::tensor::Tensor;

/// `nn.Dense` under Flax's `nn.jit`, numbers included: its lift [`FlaxJitDense`] has
/// [`flax_jit`](crate::jit::LiftOptions::flax_jit).
#[crate::nn::jit(flax_jit, name = FlaxJitDense)]
#[derive(Debug, Clone, PartialEq)]
struct FlaxDense(Dense);

impl Module for FlaxDense {
    type Input = Tensor;
    type Output = Tensor;
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> Result<Tensor> {
        self.0.call(s, x)
    }
    fn type_name(&self) -> &'static str {
        "Dense"
    }
}

/// How [`nn_jit_forward_with`] builds and initializes the Dense.
///
/// ```
/// use nnjit::{nn_jit_forward_with, ForwardOptions};
/// let x = [1.0f32, 2.0, 3.0];
/// let jitted = nn_jit_forward_with(0, &x[..], 4, ForwardOptions::default())?;
/// let plain = nn_jit_forward_with(0, &x[..], 4, ForwardOptions { unjitted: true, ..Default::default() })?;
/// assert_eq!(jitted, plain); // the lift changes speed, not numbers
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Use the plain `Dense` instead of the lifted `JitDense` (same numbers, slower).
    pub unjitted: bool,
    /// Init as Flax's `nn.jit(nn.Dense)` does (a lift with
    /// [`flax_jit`](crate::jit::LiftOptions::flax_jit): forked RNGs, jitted numerics), instead
    /// of as the plain module does.
    pub flax_jit_rngs: bool,
}

/// What [`nn_jit_forward_with`] computed.
///
/// ```
/// let r = nnjit::nn_jit_forward_with(0, &[1.0f32, 2.0, 3.0][..], 4, Default::default())?;
/// assert_eq!(r.kernel.shape(), &[3, 4]);
/// assert_eq!(r.bias.shape(), &[4]);
/// assert_eq!(r.output.shape(), &[4]);
/// assert!(r.bias.iter().all(|&b| b == 0.0)); // nn.Dense's bias_init is zeros
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardResult {
    /// The output, shape `x.shape[:-1] + (features,)`.
    pub output: ArrayD<f32>,
    /// The kernel, shape `(D, features)`.
    pub kernel: ArrayD<f32>,
    /// The bias, shape `(features,)`.
    pub bias: ArrayD<f32>,
}

/// Flax's `nn.jit(nn.Dense)(features).init(PRNGKey(seed), x)` then `apply`, flattened.
///
/// Parameters equal the plain `nn.Dense`'s (see [`ForwardOptions::flax_jit_rngs`] for Flax's
/// jitted derivation); the output is in the reference arithmetic order on every CPU.
///
/// ```
/// let y = nnjit::nn_jit_forward(0, &[1.0, 2.0, 3.0], 4)?;
/// assert_eq!(y.len(), 4);
/// assert!(nnjit::nn_jit_forward(0, &[1.0, 2.0, 3.0], 0).is_err()); // features = 0
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn nn_jit_forward(seed: i64, x: &[f32], features: usize) -> Result<Vec<f32>> {
    let r = nn_jit_forward_with(seed, x, features, ForwardOptions::default())?;
    Ok(r.output.iter().copied().collect())
}

/// [`nn_jit_forward`] for inputs of any rank, with options, returning the parameters too.
///
/// ```
/// use nnjit::{nn_jit_forward_with, ForwardOptions};
/// let x = ndarray::array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// let r = nn_jit_forward_with(0, &x, 4, ForwardOptions::default())?;
/// assert_eq!(r.output.shape(), &[2, 4]); // x.shape[:-1] + (features,)
/// assert_eq!(r.output.iter().copied().collect::<Vec<_>>()[..4], nnjit::nn_jit_forward(0, &[1.0, 2.0, 3.0], 4)?[..]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn nn_jit_forward_with(seed: i64, x: impl AsInput, features: usize, opts: ForwardOptions) -> Result<ForwardResult> {
    let x = x.as_input()?;
    let lifted = JitDense::new(features);
    let vars = if opts.flax_jit_rngs {
        FlaxJitDense(Dense::new(features)).init(PRNGKey(seed), &x)?
    } else if opts.unjitted {
        Dense::new(features).init(PRNGKey(seed), &x)?
    } else {
        lifted.init(PRNGKey(seed), &x)?
    };
    let output = if opts.unjitted { Dense::new(features).apply(&vars, &x)? } else { lifted.apply(&vars, &x)? };
    let get = |p: &str| vars.get(p).cloned().expect("Dense init creates params/kernel and params/bias");
    Ok(ForwardResult { output, kernel: get("params/kernel"), bias: get("params/bias") })
}
