//! `Dense`: `y = x · kernel + bias` over the last axis, in the reference arithmetic order.

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::alloc::{checked_len, try_filled};
use crate::error::{Error, Result};
use crate::init::{self, Initializer};
use crate::kernel::{self, Activation};
use crate::module::{feature_dim, Module};
use crate::scope::Scope;
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
#[derive(Clone, Debug)]
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
    pub fn new(features: usize) -> Self {
        Dense { features, use_bias: true, kernel_init: init::lecun_normal(), bias_init: init::zeros() }
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Sets `kernel_init`.
    pub fn kernel_init(mut self, init: Initializer) -> Self {
        self.kernel_init = init;
        self
    }

    /// Sets `bias_init`.
    pub fn bias_init(mut self, init: Initializer) -> Self {
        self.bias_init = init;
        self
    }

    /// Reads (or, while initializing, creates) the parameters for input width `d`.
    pub(crate) fn params<'v>(
        &self,
        s: &mut Scope<'_, 'v>,
        d: usize,
    ) -> Result<(Cow<'v, Leaf>, Option<Cow<'v, Leaf>>)> {
        if self.features == 0 {
            return Err(Error::invalid(s.path(), "Dense features must be at least 1, got 0"));
        }
        let kernel = s.param("kernel", &self.kernel_init, &[d, self.features])?;
        let bias = if self.use_bias { Some(s.param("bias", &self.bias_init, &[self.features])?) } else { None };
        Ok((kernel, bias))
    }
}

impl Module for Dense {
    fn call(&self, s: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        let d = feature_dim(|| s.path(), &x)?;
        let (kernel, bias) = self.params(s, d)?;
        let bias = bias.as_deref();
        if let Some(lift) = s.lift_ctx() {
            return lift.dense(&x, &kernel, bias, Activation::Identity);
        }
        dense_forward(&x, kernel.array(), bias.map(Leaf::array), Activation::Identity)
    }
}

/// The output shape of a Dense: `x.shape[:-1] + (f,)`, with its element count checked.
pub(crate) fn output_shape(x: &ArrayViewD<'_, f32>, f: usize) -> Result<(Vec<usize>, usize)> {
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = f;
    }
    let len = checked_len("Dense output", &shape)?;
    Ok((shape, len))
}

/// `act(x · kernel + bias)` for `x` of any rank ≥ 1, with the unpacked kernel of the best ISA.
pub(crate) fn dense_forward(
    x: &ArrayViewD<'_, f32>,
    kernel: &ArrayD<f32>,
    bias: Option<&ArrayD<f32>>,
    act: Activation,
) -> Result<ArrayD<f32>> {
    let d = kernel.shape()[0];
    let f = kernel.shape()[1];
    let (shape, len) = output_shape(x, f)?;
    let n = if d == 0 { 0 } else { x.len() / d };
    let x = x.as_standard_layout();
    let w = kernel.as_standard_layout();
    let b = bias.map(|b| b.as_standard_layout());
    let mut y = try_filled("Dense output", len, 0.0)?;
    kernel::dense(
        kernel::best_isa(),
        x.as_slice().expect("standard layout is contiguous"),
        w.as_slice().expect("standard layout is contiguous"),
        b.as_ref().map(|b| b.as_slice().expect("standard layout is contiguous")),
        &mut y,
        n,
        d,
        f,
        act,
    )?;
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), y).expect("length computed from this shape"))
}
