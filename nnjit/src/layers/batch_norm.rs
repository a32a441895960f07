//! `BatchNorm` (Flax's `nn.BatchNorm`): normalizes over all axes but the last, keeps running
//! statistics in the `batch_stats` collection.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let x = ndarray::array![[1.0f32, 2.0], [3.0, 6.0]];
//! let vars = nn::BatchNorm::new().init(nn::PRNGKey(0), &x)?;
//! assert_eq!(vars.get("batch_stats/mean").unwrap().shape(), &[2]);
//! assert_eq!(vars.get("params/scale").unwrap().shape(), &[2]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::init::{self, Initializer};
use crate::module::{feature_dim, Module};
use crate::scope::Scope;
use crate::tensor::Tensor;

/// Batch normalization over the last (feature) axis.
///
/// Variables: `batch_stats/{mean,var}` (zeros, ones) and `params/{scale,bias}` (ones, zeros).
/// With `use_running_average = false` the batch statistics are used (Flax's fast variance,
/// `var = max(0, E[x²] − E[x]²)`) and, when `batch_stats` is mutable and not initializing,
/// the running statistics become `momentum·old + (1 − momentum)·batch`.
///
/// ```
/// use nnjit::nn::{self, Module, Mutable, Rngs};
///
/// let x = ndarray::array![[1.0f32, 2.0], [3.0, 6.0]];
/// let bn = nn::BatchNorm::new().use_running_average(false).momentum(0.9);
/// let vars = bn.init(nn::PRNGKey(0), &x)?;
/// let (y, updates) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
/// assert_eq!(y.shape(), &[2, 2]);
/// let mean = updates.get("batch_stats/mean").unwrap();
/// assert!((mean[0] - 0.2).abs() < 1e-6); // 0.9·0 + 0.1·2
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct BatchNorm {
    /// Use the running statistics instead of the batch's (evaluation mode).
    pub use_running_average: bool,
    /// Decay of the running statistics (Flax default 0.99).
    pub momentum: f64,
    /// Added to the variance (Flax default 1e-5).
    pub epsilon: f64,
    /// Learn a bias (default `true`).
    pub use_bias: bool,
    /// Learn a scale (default `true`).
    pub use_scale: bool,
    /// Initializer of `bias` (default zeros).
    pub bias_init: Initializer,
    /// Initializer of `scale` (default ones).
    pub scale_init: Initializer,
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm::new()
    }
}

impl BatchNorm {
    /// Flax's defaults (momentum 0.99, epsilon 1e-5, bias and scale), with
    /// `use_running_average = false` (Flax has no default for it: it must be given).
    ///
    /// ```
    /// let bn = nnjit::nn::BatchNorm::new();
    /// assert!(!bn.use_running_average);
    /// assert_eq!((bn.momentum, bn.epsilon), (0.99, 1e-5));
    /// assert!(bn.use_bias && bn.use_scale);
    /// ```
    pub fn new() -> Self {
        BatchNorm {
            use_running_average: false,
            momentum: 0.99,
            epsilon: 1e-5,
            use_bias: true,
            use_scale: true,
            bias_init: init::zeros(),
            scale_init: init::ones(),
        }
    }

    /// Sets `use_running_average`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let x = ndarray::array![[1.0f32, 2.0], [3.0, 6.0]];
    /// let bn = nn::BatchNorm::new().use_running_average(true); // evaluation mode
    /// let vars = bn.init(nn::PRNGKey(0), &x)?;
    /// // Fresh running stats: mean 0, var 1, so y = x / sqrt(1 + epsilon).
    /// let y = bn.apply(&vars, &x)?;
    /// assert!((y[[1, 1]] - 6.0 / (1.0f32 + 1e-5).sqrt()).abs() < 1e-5);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn use_running_average(mut self, v: bool) -> Self {
        self.use_running_average = v;
        self
    }

    /// Sets `momentum`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let x = ndarray::array![[0.0f32], [2.0]]; // batch mean 1
    /// let bn = nn::BatchNorm::new().momentum(0.5);
    /// let vars = bn.init(nn::PRNGKey(0), &x)?;
    /// let (_, upd) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
    /// assert_eq!(upd.get("batch_stats/mean").unwrap()[0], 0.5); // 0.5·0 + 0.5·1
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn momentum(mut self, v: f64) -> Self {
        self.momentum = v;
        self
    }

    /// Sets `epsilon`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let x = ndarray::array![[1.0f32], [3.0]]; // batch mean 2, variance 1
    /// let bn = nn::BatchNorm::new().epsilon(3.0);
    /// let vars = bn.init(nn::PRNGKey(0), &x)?;
    /// let (y, _) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
    /// assert_eq!(y[[1, 0]], 0.5); // (3 - 2) / sqrt(1 + 3)
    /// assert!(nn::BatchNorm::new().epsilon(-1.0).init(nn::PRNGKey(0), &x).is_err());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn epsilon(mut self, v: f64) -> Self {
        self.epsilon = v;
        self
    }
}

impl Module for BatchNorm {
    type Input = Tensor;
    type Output = Tensor;

    // Flax's class name, without scanning `type_name::<Self>()` on every call.
    fn type_name(&self) -> &'static str {
        "BatchNorm"
    }

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> Result<Tensor> {
        let c = feature_dim(|| s.path(), &x)?;
        if !(self.epsilon >= 0.0 && self.momentum.is_finite()) {
            return Err(Error::invalid(s.path(), "BatchNorm needs epsilon >= 0 and a finite momentum"));
        }
        let filled = |v: f32| {
            move || {
                crate::fallible::try_filled("batch_stats", c, v)
                    .and_then(|v| ArrayD::from_shape_vec(IxDyn(&[c]), v).map_err(|e| Error::invalid("", e.to_string())))
            }
        };
        let ra_mean = s.variable("batch_stats", "mean", &[c], filled(0.0))?;
        let ra_var = s.variable("batch_stats", "var", &[c], filled(1.0))?;
        let (mean, var) = if self.use_running_average {
            (ra_mean, ra_var)
        } else {
            if x.is_empty() {
                return Err(Error::InputShape {
                    path: s.path(),
                    expected: "at least one row to compute batch statistics".into(),
                    found: x.shape().to_vec(),
                });
            }
            // Flax's fast variance: E[x²] − E[x]², each a sequential f32 sum over the batch
            // axes, then a true division (jnp.mean).
            let batch_axes: Vec<isize> = (0..x.ndim() as isize - 1).collect();
            let mean = x.mean(&batch_axes, false);
            let mean2 = (&x * &x).mean(&batch_axes, false);
            let var = (&mean2 - &(&mean * &mean)).maximum(0.0);
            if !s.is_initializing() {
                // As in Flax, training with an immutable `batch_stats` is an error.
                let m = self.momentum as f32;
                let one_minus = (1.0 - self.momentum) as f32;
                s.put_variable("batch_stats", "mean", &ra_mean * m + &mean * one_minus)?;
                s.put_variable("batch_stats", "var", &ra_var * m + &var * one_minus)?;
            }
            (mean, var)
        };
        let mut mul = (var + self.epsilon as f32).rsqrt();
        if self.use_scale {
            mul = mul * s.param("scale", &self.scale_init, &[c])?;
        }
        let y = (&x - &mean) * &mul;
        Ok(if self.use_bias { y + s.param("bias", &self.bias_init, &[c])? } else { y })
    }
}
