//! `Dense`: `y = x · kernel + bias` over the last axis, in the reference arithmetic order.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
//! assert_eq!(vars.get("params/kernel").unwrap().shape(), &[3, 4]); // (D, features)
//! assert_eq!(vars.get("params/bias").unwrap().shape(), &[4]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::init::{self, Initializer};
use crate::module::{feature_dim, Module};
use crate::scope::Scope;
use crate::tensor::Tensor;
use crate::variables::Leaf;

/// A linear transformation applied over the last axis (Flax's `nn.Dense`).
///
/// Parameters: `kernel` of shape `(D, features)` (default init `lecun_normal`) and, with
/// `use_bias`, `bias` of shape `(features,)` (default init `zeros`). Each output is computed in
/// the reference order: `acc = fma(x[d], kernel[d, f], acc)` for `d = 0..D` from `0.0`, then
/// `acc + bias[f]`, on every CPU path, so results are bit-identical everywhere.
///
/// ```
/// use nnjit::nn::{self, Module};
///
/// let model = nn::Dense::new(4);
/// let x = ndarray::array![1.0f32, 2.0, 3.0];
/// let vars = model.init(nn::PRNGKey(0), &x)?;
/// let y = model.apply(&vars, &x)?;
/// // Flax's plain nn.Dense(4) with PRNGKey(0) gives exactly these bits:
/// let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
/// assert_eq!(bits, [0x4042D553, 0xBEA66F6C, 0x3FACE59C, 0x402D8518]);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[crate::nn::jit]
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Dense {
    /// Number of output features (`F`).
    pub features: usize,
    /// Whether to add a bias (default `true`).
    pub use_bias: bool,
    /// Initializer of the kernel (default [`init::lecun_normal`]).
    pub kernel_init: Initializer,
    /// Initializer of the bias (default [`init::zeros`]).
    pub bias_init: Initializer,
}

impl Dense {
    /// `Dense(features)` with Flax's defaults.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let d = nn::Dense::new(4); // nn.Dense(features=4)
    /// assert!(d.use_bias);
    /// assert_eq!(d.kernel_init.name(), "lecun_normal");
    /// assert_eq!(d.bias_init.name(), "zeros");
    /// assert!(nn::Dense::new(0).init(nn::PRNGKey(0), &[1.0f32]).is_err()); // features must be >= 1
    /// ```
    pub fn new(features: usize) -> Self {
        Dense { features, use_bias: true, kernel_init: init::lecun_normal(), bias_init: init::zeros() }
    }

    /// Sets `use_bias`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Dense::new(2).use_bias(false); // nn.Dense(2, use_bias=False)
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// assert!(vars.get("params/bias").is_none());
    /// assert_eq!(m.apply(&vars, &[0.0f32; 3])?, ndarray::arr1(&[0.0f32; 2]).into_dyn()); // no bias added
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets `kernel_init`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Dense::new(2).kernel_init(nn::initializers::zeros());
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// assert!(vars.get("params/kernel").unwrap().iter().all(|&w| w == 0.0));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn kernel_init(mut self, init: Initializer) -> Self {
        self.kernel_init = init;
        self
    }

    /// Sets `bias_init`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Dense::new(2).bias_init(nn::initializers::ones());
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(vars.get("params/bias").unwrap(), &ndarray::arr1(&[1.0f32, 1.0]).into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn bias_init(mut self, init: Initializer) -> Self {
        self.bias_init = init;
        self
    }
}

impl Module for Dense {
    type Input = Tensor;
    type Output = Tensor;

    // Flax's class name, without scanning `type_name::<Self>()` on every call.
    fn type_name(&self) -> &'static str {
        "Dense"
    }

    fn call(&self, s: &mut Scope<'_, '_>, mut x: Tensor) -> Result<Tensor> {
        let d = feature_dim(|| s.path(), &x)?;
        if self.features == 0 {
            return Err(Error::invalid(s.path(), "Dense features must be at least 1, got 0"));
        }
        // An eager apply reads the given parameters in place (no tensor made of each: a shared
        // count taken and dropped per parameter); the values are the tensor path's below.
        if let Some(kd) = s.given_param("kernel", &[d, self.features]).and_then(in_place) {
            let bd = if self.use_bias {
                s.given_param("bias", &[self.features]).and_then(in_place).map(Some)
            } else {
                Some(None)
            };
            if let Some(bd) = bd {
                match x.into_linear_slices(kd, bd) {
                    Ok(y) => return Ok(y),
                    Err(back) => x = back,
                }
            }
        }
        let kernel = s.param("kernel", &self.kernel_init, &[d, self.features])?;
        let bias = if self.use_bias { Some(s.param("bias", &self.bias_init, &[self.features])?) } else { None };
        Ok(x.into_linear(&kernel, bias.as_ref()))
    }
}

/// A parameter's elements and shape, when it can be read in place.
fn in_place(leaf: &Leaf) -> Option<(&[f32], &[usize])> {
    Some((leaf.standard_slice()?, leaf.array().shape()))
}

#[cfg(test)]
mod tests {
    use ndarray::{Array, Axis, IxDyn};

    use crate::module::Module;
    use crate::random::PRNGKey;

    use super::Dense;

    /// Every output builder (ranks 1, 2, 3 and strided views) gives the row-by-row results.
    #[test]
    fn output_shapes_and_strided_inputs() {
        let m = Dense::new(5);
        let x = Array::from_shape_fn(IxDyn(&[2, 3, 4]), |ix| (ix[0] * 12 + ix[1] * 4 + ix[2]) as f32 * 0.25 - 2.0);
        let vars = m.init(PRNGKey(1), &x).unwrap();
        let row = |r: ndarray::ArrayView1<f32>| m.apply(&vars, r.to_owned()).unwrap();
        let y3 = m.apply(&vars, &x).unwrap();
        assert_eq!(y3.shape(), &[2, 3, 5]);
        let x2 = x.index_axis(Axis(0), 1).to_owned();
        let y2 = m.apply(&vars, &x2).unwrap();
        assert_eq!(y2.shape(), &[3, 5]);
        for i in 0..3 {
            let x1 = x2.index_axis(Axis(0), i);
            let want = row(x1.into_dimensionality().unwrap());
            assert_eq!(y2.index_axis(Axis(0), i).to_owned(), want);
            assert_eq!(y3.index_axis(Axis(0), 1).index_axis(Axis(0), i).to_owned(), want);
        }
        // A strided view (every other row of a (6, 4) array) is copied, then computed alike.
        let tall = ndarray::concatenate(Axis(0), &[x2.view(), x2.view()]).unwrap();
        let strided = tall.slice_axis(Axis(0), ndarray::Slice::new(0, None, 2));
        assert!(strided.as_slice().is_none());
        assert_eq!(m.apply(&vars, &strided).unwrap(), m.apply(&vars, strided.to_owned()).unwrap());
    }
}
