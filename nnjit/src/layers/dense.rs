//! `Dense`: `y = x · kernel + bias` over the last axis, in the reference arithmetic order.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
//! assert_eq!(vars.get("params/kernel").unwrap().shape(), &[3, 4]); // (D, features)
//! assert_eq!(vars.get("params/bias").unwrap().shape(), &[4]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::init::{self, Initializer};
use crate::module::{feature_dim, Feed, Module};
use crate::scope::Scope;
use crate::tensor::Tensor;
use crate::variables::{Leaf, Variables};

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

    /// [`Module::apply`], with a Dense's own fast path: one contiguous input and its parameters
    /// are read in place and the kernel writes the returned array (no tensor, scope or copy of
    /// the input; a lone 3 → 4 Dense costs what it did before tensors). Every other case, and
    /// every error, is `Module::apply`'s own.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Dense::new(2);
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let y = m.apply(&vars, &x)?;
    /// assert_eq!(y.shape(), &[2, 2]);
    /// assert_eq!(y.index_axis(ndarray::Axis(0), 1), m.apply(&vars, &[4.0f32, 5.0, 6.0])?); // row by row alike
    /// assert!(m.apply(&vars, &[1.0f32, 2.0]).is_err()); // a kernel of (3, 2) does not take 2 features
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn apply(&self, variables: &Variables, x: impl Feed<Tensor>) -> Result<ArrayD<f32>> {
        match self.apply_in_place(variables, &x) {
            Some(y) => y,
            None => crate::module::apply_plain(self, variables, x),
        }
    }
}

impl Dense {
    /// [`apply`](Module::apply)'s values when `x` is one contiguous array and the top-level
    /// parameters fit it in standard layout (what [`call`](Module::call) reads in place);
    /// `None` otherwise, for the general path.
    fn apply_in_place(&self, variables: &Variables, x: &impl Feed<Tensor>) -> Option<Result<ArrayD<f32>>> {
        let (xs, shape) = x.single_contiguous()?;
        let d = *shape.dims().last()?;
        let params = variables.collection("params")?;
        let leaf = |name: &str, want: &[usize]| {
            let (data, have) = in_place(params.leaf(name)?)?;
            crate::variables::eq_short(have, want).then_some((data, have))
        };
        let kernel = leaf("kernel", &[d, self.features])?;
        let bias = if self.use_bias { Some(leaf("bias", &[self.features])?) } else { None };
        Some(crate::tensor::api::linear_data((xs, shape.dims()), kernel, bias)?.and_then(|y| y.into_array()))
    }
}

/// A parameter's elements and shape, when it can be read in place.
fn in_place(leaf: &Leaf) -> Option<(&[f32], &[usize])> {
    Some((leaf.standard_slice()?, leaf.array().shape()))
}

#[cfg(test)]
mod tests {
    use ndarray::{Array, Axis, Dimension, IxDyn};

    use crate::module::Module;
    use crate::random::PRNGKey;

    use super::Dense;

    fn bits(a: &ndarray::ArrayD<f32>) -> (Vec<usize>, Vec<u32>) {
        (a.shape().to_vec(), a.iter().map(|v| v.to_bits()).collect())
    }

    /// `Dense::apply`'s in-place path gives the general `Module::apply`'s bits, and leaves to
    /// it every case it does not take (so errors are the general path's own).
    #[test]
    fn in_place_apply_is_the_general_apply() {
        for (shape, use_bias) in [(vec![3], true), (vec![2, 3], false), (vec![2, 2, 3], true), (vec![0, 3], true)] {
            let m = Dense::new(4).use_bias(use_bias);
            let x = Array::from_shape_fn(IxDyn(&shape), |ix| ix.slice().iter().sum::<usize>() as f32 * 0.37 - 0.5);
            let vars = m.init(PRNGKey(3), Array::from_elem(IxDyn(&[3]), 1.0f32)).unwrap();
            assert!(m.apply_in_place(&vars, &&x).is_some(), "{shape:?}: the fast path did not run");
            let general = crate::module::apply_plain(&m, &vars, &x).unwrap();
            assert_eq!(bits(&m.apply(&vars, &x).unwrap()), bits(&general), "{shape:?}, bias {use_bias}");
        }
        let m = Dense::new(4);
        let x = ndarray::array![1.0f32, -2.0, 0.5].into_dyn();
        let vars = m.init(PRNGKey(3), &x).unwrap();
        // A parameter in another layout (a transposed copy) is left to the general path, which
        // gives the same values.
        let mut transposed = vars.clone();
        let k = vars.get("params/kernel").unwrap().clone();
        let mut kt = ndarray::Array2::<f32>::zeros((4, 3)).reversed_axes();
        kt.assign(&k.view().into_dimensionality::<ndarray::Ix2>().unwrap());
        transposed.insert("params/kernel", kt.into_dyn()).unwrap();
        assert!(m.apply_in_place(&transposed, &&x).is_none());
        assert_eq!(bits(&m.apply(&transposed, &x).unwrap()), bits(&m.apply(&vars, &x).unwrap()));
        // Inputs or parameters that do not fit: the general path's errors.
        let general_err = |m: &Dense, vars: &crate::variables::Variables, x: &ndarray::ArrayD<f32>| {
            assert!(m.apply_in_place(vars, &x).is_none());
            let e = m.apply(vars, x).unwrap_err().to_string();
            assert_eq!(e, crate::module::apply_plain(m, vars, x).unwrap_err().to_string());
            e
        };
        general_err(&m, &vars, &ndarray::array![1.0f32, 2.0].into_dyn()); // 2 features, not 3
        general_err(&m, &vars, &ndarray::arr0(1.0f32).into_dyn()); // a scalar
        general_err(&Dense::new(5), &vars, &x); // a kernel of 4 features, not 5
        let mut no_bias = vars.clone();
        no_bias.collection_mut_or_insert("params").remove("bias");
        assert!(general_err(&m, &no_bias, &x).contains("bias"));
        assert!(general_err(&m, &crate::variables::Variables::new(), &x).contains("kernel"));
    }

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
