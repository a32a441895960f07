//! `Dropout` (Flax's `nn.Dropout`): zeroes a random fraction of the input while training.
//!
//! ```
//! use nnjit::nn::{self, Module, Mutable, Rngs};
//! let x = ndarray::Array1::<f32>::ones(8);
//! let rngs = Rngs::none().with("dropout", nn::PRNGKey(0)); // rngs={'dropout': key}
//! let (y, _) = nn::Dropout::new(0.5).apply_with(&nnjit::Variables::new(), &x, rngs, Mutable::Nothing)?;
//! assert!(y.iter().all(|&v| v == 0.0 || v == 2.0)); // dropped, or scaled by 1 / (1 - 0.5)
//! # Ok::<(), nnjit::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::module::Module;
use crate::scope::Scope;
use crate::tensor::Tensor;

/// Randomly zeroes inputs with probability `rate` and scales the rest by `1 / (1 − rate)`.
///
/// The mask is `bernoulli(make_rng("dropout"), 1 − rate, x.shape)`, exactly as Flax draws it,
/// so the same keys give the same mask. `deterministic` (or `rate == 0`) returns the input;
/// `rate == 1` returns zeros.
///
/// ```
/// use nnjit::nn::{self, Module, Mutable, Rngs};
///
/// let x = ndarray::Array1::<f32>::ones(1000);
/// let drop = nn::Dropout::new(0.5);
/// let vars = nnjit::Variables::new();
/// let rngs = Rngs::none().with("dropout", nn::PRNGKey(7));
/// let (y, _) = drop.apply_with(&vars, &x, rngs, Mutable::Nothing)?;
/// let kept = y.iter().filter(|v| **v == 2.0).count();
/// assert!(kept > 400 && kept < 600);
/// // Without a `dropout` stream (and no `params` to fall back to) it is an error:
/// assert!(drop.apply(&vars, &x).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1]`.
    pub rate: f64,
    /// Return the input unchanged (evaluation mode).
    pub deterministic: bool,
    /// The RNG stream the mask is drawn from (default `dropout`).
    pub rng_collection: String,
}

impl Dropout {
    /// `Dropout(rate)`, not deterministic, drawing from the `dropout` stream.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let drop = nn::Dropout::new(1.0);
    /// assert_eq!(drop.rng_collection, "dropout");
    /// let rngs = Rngs::none().with("dropout", nn::PRNGKey(0));
    /// let (y, _) = drop.apply_with(&nnjit::Variables::new(), &[1.0f32, 2.0], rngs, Mutable::Nothing)?;
    /// assert_eq!(y, ndarray::arr1(&[0.0f32, 0.0]).into_dyn()); // rate 1: zeros
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn new(rate: f64) -> Self {
        Dropout { rate, deterministic: false, rng_collection: "dropout".into() }
    }

    /// Sets `deterministic`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let x = ndarray::array![1.0f32, 2.0, 3.0];
    /// let eval = nn::Dropout::new(0.5).deterministic(true); // nn.Dropout(0.5, deterministic=True)
    /// assert_eq!(eval.apply(&nnjit::Variables::new(), &x)?, x.into_dyn()); // no rng needed
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn deterministic(mut self, v: bool) -> Self {
        self.deterministic = v;
        self
    }
}

impl Module for Dropout {
    type Input = Tensor;
    type Output = Tensor;

    // Flax's class name, without scanning `type_name::<Self>()` on every call.
    fn type_name(&self) -> &'static str {
        "Dropout"
    }

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(Error::invalid(s.path(), format!("Dropout rate must be in [0, 1], got {}", self.rate)));
        }
        if self.rate == 0.0 || self.deterministic {
            return Ok(x);
        }
        if self.rate == 1.0 {
            return Ok(Tensor::zeros(x.shape())); // jnp.zeros_like
        }
        // Flax: mask = bernoulli(make_rng('dropout'), keep); where(mask, x / keep, 0).
        let keep = (1.0 - self.rate) as f32;
        let key = s.make_rng(&self.rng_collection)?;
        let mask = Tensor::bernoulli(&key, keep, x.shape());
        Ok(Tensor::select(&mask, &x / keep, 0.0))
    }
}
