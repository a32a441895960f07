//! Activation functions with `jax.nn`'s definitions (elementwise unless noted).
//!
//! ```
//! use nnjit::nn;
//! let x = ndarray::array![[-1.0f32, 0.0, 1.0]];
//! assert_eq!(nn::relu(&x), ndarray::array![[0.0, 0.0, 1.0]]); // elementwise, shape kept
//! let p = nn::softmax(&x); // over the last axis
//! assert!((p.sum() - 1.0).abs() < 1e-6);
//! ```

use ndarray::{Array, ArrayBase, Axis, Data, Dimension};

/// The scalar rule of [`relu`]: negative values become `+0.0`; NaN and `-0.0` pass through
/// (the same rule the fused kernels use, so fused and unfused results agree bit for bit).
///
/// ```
/// use nnjit::layers::activation::relu_scalar;
/// assert_eq!(relu_scalar(-2.0), 0.0);
/// assert_eq!(relu_scalar(3.0), 3.0);
/// assert!(relu_scalar(-0.0).is_sign_negative()); // -0.0 passes through (not max(x, 0))
/// assert!(relu_scalar(f32::NAN).is_nan());
/// ```
#[inline]
#[must_use]
pub fn relu_scalar(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

macro_rules! elementwise {
    ($($(#[$doc:meta])* $name:ident = |$v:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name<D: Dimension>(x: impl Elementwise<D>) -> Array<f32, D> {
            x.map_f32(|$v: f32| $body)
        }
    )*};
}

/// What the elementwise activations accept: a reference to any `f32` array or view (a new
/// array is made), or an owned array, which is updated in place (no allocation).
///
/// ```
/// use nnjit::nn;
/// let h = ndarray::array![[-1.0f32, 2.0]];
/// let a = nn::relu(&h); // borrows `h`, allocates the result
/// let b = nn::relu(h); // takes `h` and reuses its buffer
/// assert_eq!(a, b);
/// ```
pub trait Elementwise<D: Dimension> {
    /// `f` applied to every element, in the array's shape.
    ///
    /// ```
    /// use nnjit::layers::activation::Elementwise;
    /// let x = ndarray::array![1.0f32, -2.0];
    /// assert_eq!((&x).map_f32(|v| v * 2.0), ndarray::array![2.0, -4.0]);
    /// assert_eq!(x.map_f32(f32::abs), ndarray::array![1.0, 2.0]);
    /// ```
    fn map_f32(self, f: impl Fn(f32) -> f32) -> Array<f32, D>;
}

impl<S: Data<Elem = f32>, D: Dimension> Elementwise<D> for &ArrayBase<S, D> {
    fn map_f32(self, f: impl Fn(f32) -> f32) -> Array<f32, D> {
        map_elementwise(self, f)
    }
}

/// `x.mapv(f)`, with a plain slice loop (which the compiler vectorizes) for arrays in standard
/// layout, the common case after a Dense.
fn map_elementwise<S: Data<Elem = f32>, D: Dimension>(x: &ArrayBase<S, D>, f: impl Fn(f32) -> f32) -> Array<f32, D> {
    match x.as_slice() {
        Some(s) => {
            let v: Vec<f32> = s.iter().map(|&v| f(v)).collect();
            // SAFETY: `v` has exactly `x.len()` elements, laid out in standard (C) order like
            // `x`, which is what the default strides of `x.raw_dim()` address.
            unsafe { Array::from_shape_vec_unchecked(x.raw_dim(), v) }
        }
        None => x.mapv(f),
    }
}

impl<D: Dimension> Elementwise<D> for Array<f32, D> {
    fn map_f32(mut self, f: impl Fn(f32) -> f32) -> Array<f32, D> {
        match self.as_slice_mut() {
            Some(s) => s.iter_mut().for_each(|v| *v = f(*v)),
            None => self.mapv_inplace(f),
        }
        self
    }
}

elementwise! {
    /// `max(x, 0)` (`nn.relu`).
    ///
    /// ```
    /// assert_eq!(nnjit::nn::relu(&ndarray::array![-1.0f32, 2.0]), ndarray::array![0.0, 2.0]);
    /// ```
    relu = |v| relu_scalar(v);
    /// `1 / (1 + exp(-x))` (`nn.sigmoid`).
    ///
    /// ```
    /// let y = nnjit::nn::sigmoid(&ndarray::array![0.0f32, 2.0, -2.0]);
    /// assert_eq!(y[0], 0.5);
    /// assert!((y[1] + y[2] - 1.0).abs() < 1e-6); // sigmoid(x) + sigmoid(-x) = 1
    /// ```
    sigmoid = |v| 1.0 / (1.0 + (-v).exp());
    /// `tanh(x)` (`nn.tanh`).
    ///
    /// ```
    /// let y = nnjit::nn::tanh(&ndarray::array![0.0f32, 1.0, -1.0]);
    /// assert_eq!(y[0], 0.0);
    /// assert_eq!(y[1], -y[2]); // odd
    /// assert!((y[1] - 0.7615942).abs() < 1e-6);
    /// ```
    tanh = |v| v.tanh();
    /// `x · sigmoid(x)` (`nn.silu` / `nn.swish`).
    ///
    /// ```
    /// use nnjit::nn;
    /// let x = ndarray::array![-1.0f32, 0.0, 1.0];
    /// assert_eq!(nn::silu(&x)[1], 0.0);
    /// assert!((nn::silu(&x)[2] - nn::sigmoid(&x)[2]).abs() < 1e-6); // 1 · sigmoid(1)
    /// ```
    silu = |v| v * (1.0 / (1.0 + (-v).exp()));
    /// Gaussian error linear unit, tanh approximation (`nn.gelu`, `approximate=True`, Flax's default).
    ///
    /// ```
    /// let y = nnjit::nn::gelu(&ndarray::array![0.0f32, 1.0, -10.0]);
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 0.841192).abs() < 1e-5); // jax.nn.gelu(1.0) (tanh approximation)
    /// assert!(y[2].abs() < 1e-6);
    /// ```
    gelu = |v| {
        let c = (2.0f64 / std::f64::consts::PI).sqrt() as f32;
        v * (0.5 * (1.0 + (c * (v + 0.044715 * (v * v * v))).tanh()))
    };
    /// `log(1 + exp(x))`, computed stably (`nn.softplus`).
    ///
    /// ```
    /// let y = nnjit::nn::softplus(&ndarray::array![0.0f32, 100.0, -100.0]);
    /// assert!((y[0] - std::f32::consts::LN_2).abs() < 1e-7); // log(2)
    /// assert_eq!(y[1], 100.0); // no overflow of exp(100)
    /// assert!(y[2] >= 0.0 && y[2] < 1e-30);
    /// ```
    softplus = |v| v.max(0.0) + (-v.abs()).exp().ln_1p();
    /// `x` if `x > 0` else `exp(x) - 1` (`nn.elu`, alpha 1).
    ///
    /// ```
    /// let y = nnjit::nn::elu(&ndarray::array![2.0f32, -1.0]);
    /// assert_eq!(y[0], 2.0);
    /// assert!((y[1] - (-1.0f32).exp_m1()).abs() < 1e-7); // e^-1 - 1 ≈ -0.632
    /// ```
    elu = |v| if v > 0.0 { v } else { v.exp_m1() };
    /// `x` if `x >= 0` else `0.01 · x` (`nn.leaky_relu`).
    ///
    /// ```
    /// let y = nnjit::nn::leaky_relu(&ndarray::array![2.0f32, -1.0]);
    /// assert_eq!(y, ndarray::array![2.0, -0.01]); // negative_slope = 0.01, Flax's default
    /// ```
    leaky_relu = |v| if v >= 0.0 { v } else { 0.01 * v };
    /// `min(max(x, 0), 6)` (`nn.relu6`).
    ///
    /// ```
    /// let y = nnjit::nn::relu6(&ndarray::array![-1.0f32, 3.0, 7.0]);
    /// assert_eq!(y, ndarray::array![0.0, 3.0, 6.0]);
    /// ```
    relu6 = |v| relu_scalar(v).min(6.0);
    /// Identity.
    ///
    /// ```
    /// let x = ndarray::array![[-1.5f32, 0.0], [2.0, f32::INFINITY]];
    /// assert_eq!(nnjit::nn::identity(&x), x);
    /// ```
    identity = |v| v;
}

/// Exact GELU, `x · (1 + erf(x/√2)) / 2` (`nn.gelu(approximate=False)`).
///
/// ```
/// use nnjit::nn;
/// let x = ndarray::array![1.0f32, -3.0];
/// let exact = nn::gelu_exact(&x);
/// assert!((exact[0] - 0.8413447).abs() < 1e-6); // jax.nn.gelu(1.0, approximate=False)
/// assert!((exact[0] - nn::gelu(&x)[0]).abs() < 1e-3); // close to the tanh approximation
/// ```
#[must_use]
pub fn gelu_exact<S: Data<Elem = f32>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<f32, D> {
    x.mapv(|v| {
        let e = libm_erf(f64::from(v) / std::f64::consts::SQRT_2);
        (f64::from(v) * (e + 1.0) / 2.0) as f32
    })
}

// erf via the complementary series (Abramowitz–Stegun 7.1.26 is too coarse; use a
// high-precision rational approximation in f64, then round once).
fn libm_erf(x: f64) -> f64 {
    // W. J. Cody's rational approximations are overkill here; erf in f64 via its Taylor series
    // near 0 and the continued fraction of erfc further out gives < 1e-15 relative error.
    let ax = x.abs();
    let r = if ax < 2.5 {
        let mut sum = ax;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        1.0 - (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f)
    };
    r.copysign(x)
}

fn along_last<S: Data<Elem = f32>, D: Dimension>(
    x: &ArrayBase<S, D>,
    f: impl Fn(ndarray::ArrayViewMut1<f32>),
) -> Array<f32, D> {
    let mut y = x.to_owned();
    if y.ndim() == 0 {
        return y;
    }
    let axis = Axis(y.ndim() - 1);
    for lane in y.lanes_mut(axis) {
        f(lane);
    }
    y
}

/// Softmax over the last axis, `exp(x - max) / sum(exp(x - max))` (`nn.softmax`).
///
/// ```
/// let p = nnjit::nn::softmax(&ndarray::array![1.0f32, 1.0]);
/// assert_eq!(p, ndarray::array![0.5, 0.5]);
/// ```
#[must_use]
pub fn softmax<S: Data<Elem = f32>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<f32, D> {
    along_last(x, |mut l| {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        l.mapv_inplace(|v| (v - m).exp());
        let s: f32 = l.iter().sum();
        l.mapv_inplace(|v| v / s);
    })
}

/// Log-softmax over the last axis, `x - max - log(sum(exp(x - max)))` (`nn.log_softmax`).
///
/// ```
/// use nnjit::nn;
/// let x = ndarray::array![[0.0f32, 0.0], [1.0, 3.0]];
/// let ls = nn::log_softmax(&x);
/// assert!((ls[[0, 0]] + std::f32::consts::LN_2).abs() < 1e-6); // log(1/2)
/// assert!(ls.mapv(f32::exp).iter().zip(&nn::softmax(&x)).all(|(a, b)| (a - b).abs() < 1e-6));
/// let big = nn::log_softmax(&ndarray::array![1000.0f32, 1000.0]); // stable: no inf - inf
/// assert!(big.iter().all(|v| v.is_finite()));
/// ```
#[must_use]
pub fn log_softmax<S: Data<Elem = f32>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<f32, D> {
    along_last(x, |mut l| {
        let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        l.mapv_inplace(|v| v - m);
        let s: f32 = l.iter().map(|v| v.exp()).sum();
        let ls = s.ln();
        l.mapv_inplace(|v| v - ls);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn relu_keeps_nan_and_negative_zero() {
        let y = relu(&array![f32::NAN, -0.0, -1.0, 1.5, f32::NEG_INFINITY]);
        assert!(y[0].is_nan());
        assert_eq!(y[1].to_bits(), (-0.0f32).to_bits());
        assert_eq!(y[2], 0.0);
        assert_eq!(y[3], 1.5);
        assert_eq!(y[4], 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = softmax(&array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]]);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
        }
        let l = log_softmax(&array![1.0f32, 2.0, 3.0]);
        assert!((l.mapv(f32::exp).sum() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn gelu_variants_close() {
        let x = array![-3.0f32, -1.0, 0.0, 0.5, 2.0];
        let a = gelu(&x);
        let e = gelu_exact(&x);
        for (a, e) in a.iter().zip(e.iter()) {
            assert!((a - e).abs() < 1e-3, "{a} {e}");
        }
        assert!((libm_erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-15);
        assert!((libm_erf(3.0) - 0.999_977_909_503_001_4).abs() < 1e-15);
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    /// The slice fast path and the strided fallback of `map_elementwise` agree with `mapv`.
    #[test]
    fn contiguous_and_strided_inputs() {
        let x = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| i as f32 - j as f32 * 0.75);
        let t = x.t(); // not standard layout
        assert!(t.as_slice().is_none());
        assert_eq!(relu(&x), x.mapv(relu_scalar));
        assert_eq!(relu(&t), t.mapv(relu_scalar));
        assert_eq!(relu(&t).shape(), &[4, 3]);
        assert_eq!(tanh(&t), t.mapv(f32::tanh));
        // Owned arrays are updated in place, in standard layout or not.
        let owned_t = x.clone().reversed_axes();
        assert!(owned_t.as_slice().is_none());
        assert_eq!(relu(owned_t.clone()), owned_t.mapv(relu_scalar));
        let ptr = x.as_ptr();
        let y = relu(x.clone().into_dyn());
        assert_eq!(y, x.mapv(relu_scalar).into_dyn());
        let z = relu(x);
        assert_eq!(z.as_ptr(), ptr, "the owned input's buffer is reused");
    }
}
