//! Parameter initializers with the names and the float32 numerics of Flax's
//! `nn.initializers` (which re-exports `jax.nn.initializers`).
//!
//! An [`Initializer`] is a named function `(Key, shape) -> ArrayD<f32>`; the built-in ones
//! reproduce JAX bit for bit (e.g. [`lecun_normal`], the default kernel initializer of
//! `nn.Dense`), and [`Initializer::new`] wraps any closure.
//!
//! ```
//! use nnjit::init::{lecun_normal, zeros};
//! use nnjit::random::{static_suffix::{fold_in_static, SuffixPart::Index}, PRNGKey};
//! let kernel_key = fold_in_static(PRNGKey(0), &[Index(1)]);
//! let kernel = lecun_normal().init(kernel_key, &[3, 4]).unwrap();
//! assert_eq!(kernel[[0, 0]].to_bits(), 0x3D43_5FBA); // nn.Dense(4).init(PRNGKey(0), x)
//! assert!(zeros().init(kernel_key, &[4]).unwrap().iter().all(|&b| b == 0.0));
//! ```
//!
//! Every initializer also has its `jax.jit` numerics ([`Initializer::init_jitted`],
//! [`Initializer::init_with`] and [`Numerics`]): under `jax.jit` or Flax's `nn.jit`, XLA folds
//! constants and a few initializers come out differently in the last bit (e.g. `normal(σ)`
//! computes `erfinv(u)·RN(√2·σ)` instead of `(√2·erfinv(u))·σ`).
//!
//! ```
//! use nnjit::init::{normal, Numerics};
//! use nnjit::random::PRNGKey;
//! let eager = normal(0.02).init(PRNGKey(0), &[5, 24])?;
//! let jit = normal(0.02).init_with(PRNGKey(0), &[5, 24], Numerics::Jit)?;
//! assert_ne!(eager, jit); // some elements differ by one ulp
//! assert_eq!(jit, normal(0.02).init_jitted(PRNGKey(0), &[5, 24])?);
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::fallible::{checked_len, try_filled};
use crate::random::{self, Key};

pub use crate::random::Numerics;

/// The function type an [`Initializer`] wraps.
///
/// ```
/// use nnjit::init::InitFn;
/// let f: Box<InitFn> = Box::new(|_key, shape| Ok(ndarray::ArrayD::from_elem(shape, 0.5f32)));
/// assert_eq!(f(nnjit::random::PRNGKey(0), &[2])?.sum(), 1.0);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub type InitFn = dyn Fn(Key, &[usize]) -> Result<ArrayD<f32>> + Send + Sync;

/// The function type of an initializer that knows both its eager and its jitted numerics
/// ([`Initializer::with_numerics`]).
///
/// ```
/// use nnjit::init::{InitNumericsFn, Numerics};
/// let f: Box<InitNumericsFn> = Box::new(|_key, shape, numerics| {
///     Ok(ndarray::ArrayD::from_elem(shape, if numerics == Numerics::Jit { 1.0f32 } else { 0.0 }))
/// });
/// assert_eq!(f(nnjit::random::PRNGKey(0), &[2], Numerics::Jit)?.sum(), 2.0);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub type InitNumericsFn = dyn Fn(Key, &[usize], Numerics) -> Result<ArrayD<f32>> + Send + Sync;

/// A named parameter initializer: `init(key, shape)` returns a float32 array of `shape`.
///
/// Cheap to clone (the function is shared). Build custom ones with [`Initializer::new`]:
///
/// ```
/// use nnjit::init::Initializer;
/// use nnjit::random::{uniform, PRNGKey};
/// let small = Initializer::new("small_uniform", |key, shape| uniform(key, shape, -1e-3, 1e-3));
/// let w = small.init(PRNGKey(0), &[2, 2]).unwrap();
/// assert!(w.iter().all(|v| v.abs() < 1e-3));
/// assert_eq!(format!("{small:?}"), "Initializer(small_uniform)");
/// ```
#[derive(Clone)]
pub struct Initializer {
    name: Arc<str>,
    f: Arc<InitNumericsFn>,
}

impl Initializer {
    /// Wraps `f` under `name` (the name is only used in messages and `Debug`). `f` is used for
    /// both [`Numerics`]: a custom initializer is assumed to compute the same bits under
    /// `jax.jit` (use [`Initializer::with_numerics`] where it does not).
    ///
    /// ```
    /// use nnjit::init::Initializer;
    /// let init = Initializer::new("halves", |_key, shape| Ok(ndarray::ArrayD::from_elem(shape, 0.5f32)));
    /// assert_eq!(init.name(), "halves");
    /// assert_eq!(init.init(nnjit::random::PRNGKey(0), &[2, 2])?.sum(), 2.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn new<F>(name: impl Into<String>, f: F) -> Initializer
    where
        F: Fn(Key, &[usize]) -> Result<ArrayD<f32>> + Send + Sync + 'static,
    {
        Initializer { name: Arc::from(name.into()), f: Arc::new(move |key, shape, _numerics| f(key, shape)) }
    }

    /// Wraps `f`, which computes the initializer with either [`Numerics`]: eager JAX, or
    /// under `jax.jit` / `nn.jit`. The built-in initializers are made this way.
    ///
    /// ```
    /// use nnjit::init::{Initializer, Numerics};
    /// use nnjit::random::{normal_scaled, PRNGKey};
    /// // normal(0.02), written out.
    /// let init = Initializer::with_numerics("my_normal", |key, shape, numerics| {
    ///     normal_scaled(key, shape, 0.02, numerics)
    /// });
    /// let (key, shape) = (PRNGKey(0), [5, 24]);
    /// assert_eq!(init.init(key, &shape)?, nnjit::init::normal(0.02).init(key, &shape)?);
    /// assert_eq!(init.init_jitted(key, &shape)?, nnjit::init::normal(0.02).init_jitted(key, &shape)?);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn with_numerics<F>(name: impl Into<String>, f: F) -> Initializer
    where
        F: Fn(Key, &[usize], Numerics) -> Result<ArrayD<f32>> + Send + Sync + 'static,
    {
        Initializer { name: Arc::from(name.into()), f: Arc::new(f) }
    }

    /// Runs the initializer. An array whose shape is not `shape` is reported as an
    /// [`Error::InvalidArgument`] naming the initializer.
    ///
    /// ```
    /// use nnjit::init::{lecun_normal, Initializer};
    /// use nnjit::random::PRNGKey;
    /// assert_eq!(lecun_normal().init(PRNGKey(0), &[3, 4])?.shape(), &[3, 4]);
    /// // An initializer that ignores the requested shape is an error, not a silent mismatch.
    /// let bad = Initializer::new("bad", |_key, _shape| Ok(ndarray::ArrayD::zeros(vec![1])));
    /// assert!(bad.init(PRNGKey(0), &[3, 4]).is_err());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn init(&self, key: Key, shape: &[usize]) -> Result<ArrayD<f32>> {
        self.init_with(key, shape, Numerics::Eager)
    }

    /// Runs the initializer with the float arithmetic of JAX under `jax.jit`, as Flax's
    /// `nn.jit` (or a jitted `Module.init`) computes it: `jax.jit(lambda k: init(k, shape,
    /// jnp.float32))(key)`. Same as [`init_with`](Initializer::init_with)`(key, shape,
    /// Numerics::Jit)`.
    ///
    /// The built-ins that differ from [`init`](Initializer::init) are `normal(σ)` and
    /// `variance_scaling(…, "normal")` (one ulp in some elements: `erfinv(u)·RN(√2·σ)`
    /// instead of `(√2·erfinv(u))·σ`) and `truncated_normal` with bounds other than
    /// `(-2, 2)` (the folded `erf` of the bounds); the others give the same bits.
    ///
    /// ```
    /// use nnjit::init::{he_normal, variance_scaling, Distribution, FanMode};
    /// use nnjit::random::PRNGKey;
    /// let (key, shape) = (PRNGKey(1), [5, 24]);
    /// // Truncated-normal initializers (the defaults) are unchanged by jit...
    /// assert_eq!(he_normal().init_jitted(key, &shape)?, he_normal().init(key, &shape)?);
    /// // ...the normal ones are not.
    /// let vs = variance_scaling(2.0, FanMode::FanIn, Distribution::Normal);
    /// assert_ne!(vs.init_jitted(key, &shape)?, vs.init(key, &shape)?);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn init_jitted(&self, key: Key, shape: &[usize]) -> Result<ArrayD<f32>> {
        self.init_with(key, shape, Numerics::Jit)
    }

    /// Runs the initializer with the chosen [`Numerics`] ([`Numerics::Eager`] is
    /// [`init`](Initializer::init), [`Numerics::Jit`] is
    /// [`init_jitted`](Initializer::init_jitted)).
    ///
    /// ```
    /// use nnjit::init::{lecun_normal, Numerics};
    /// use nnjit::random::PRNGKey;
    /// for numerics in [Numerics::Eager, Numerics::Jit] {
    ///     let k = lecun_normal().init_with(PRNGKey(0), &[3, 4], numerics)?;
    ///     assert_eq!(k.shape(), &[3, 4]);
    /// }
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn init_with(&self, key: Key, shape: &[usize], numerics: Numerics) -> Result<ArrayD<f32>> {
        let out = (self.f)(key, shape, numerics)?;
        if out.shape() != shape {
            return Err(Error::invalid(
                "",
                format!(
                    "initializer {} returned an array of shape {:?} instead of the requested {:?}",
                    self.name,
                    out.shape(),
                    shape
                ),
            ));
        }
        Ok(out)
    }

    /// The name given at construction (e.g. `lecun_normal`).
    ///
    /// ```
    /// assert_eq!(nnjit::init::lecun_normal().name(), "lecun_normal"); // nn.Dense's default kernel_init
    /// assert_eq!(nnjit::init::zeros().name(), "zeros");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Initializers compare by name (which includes their parameters, `normal(0.02)`): a lifted
/// module's cache compares fields, and an initializer only runs at init, which is never cached.
///
/// ```
/// use nnjit::nn::initializers::{lecun_normal, normal};
/// assert_eq!(lecun_normal(), lecun_normal());
/// assert_ne!(normal(0.02), normal(0.01));
/// ```
impl PartialEq for Initializer {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for Initializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Initializer({})", self.name)
    }
}

/// Which fan [`variance_scaling`] divides the scale by (`mode` in JAX).
///
/// ```
/// use nnjit::init::{variance_scaling, Distribution, FanMode};
/// use nnjit::random::PRNGKey;
/// // fan_in of a (3, 4) kernel is 3, so uniform samples lie in [-1, 1).
/// let w = variance_scaling(1.0, FanMode::FanIn, Distribution::Uniform).init(PRNGKey(0), &[3, 4])?;
/// assert!(w.iter().all(|v| v.abs() <= 1.0));
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FanMode {
    /// `"fan_in"`: the number of inputs (times the receptive field).
    FanIn,
    /// `"fan_out"`: the number of outputs (times the receptive field).
    FanOut,
    /// `"fan_avg"`: the mean of fan-in and fan-out.
    FanAvg,
}

impl FanMode {
    /// The JAX spelling (`"fan_in"`, `"fan_out"`, `"fan_avg"`).
    ///
    /// ```
    /// use nnjit::init::FanMode;
    /// assert_eq!(FanMode::FanIn.as_str(), "fan_in");
    /// assert_eq!(FanMode::FanAvg.as_str(), "fan_avg");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
            FanMode::FanAvg => "fan_avg",
        }
    }
}

/// The distribution [`variance_scaling`] samples (`distribution` in JAX).
///
/// ```
/// use nnjit::init::{variance_scaling, Distribution, FanMode};
/// use nnjit::random::PRNGKey;
/// // lecun_normal is variance_scaling(1.0, "fan_in", "truncated_normal"), bit for bit.
/// let vs = variance_scaling(1.0, FanMode::FanIn, Distribution::TruncatedNormal);
/// assert_eq!(vs.init(PRNGKey(0), &[3, 4])?, nnjit::init::lecun_normal().init(PRNGKey(0), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `"truncated_normal"`: normal truncated to ±2 standard deviations, rescaled so the
    /// variance is the target one.
    TruncatedNormal,
    /// `"normal"`: untruncated normal.
    Normal,
    /// `"uniform"`: uniform on `[-√(3·variance), √(3·variance))`.
    Uniform,
}

impl Distribution {
    /// The JAX spelling (`"truncated_normal"`, `"normal"`, `"uniform"`).
    ///
    /// ```
    /// use nnjit::init::Distribution;
    /// assert_eq!(Distribution::TruncatedNormal.as_str(), "truncated_normal");
    /// assert_eq!(Distribution::Uniform.as_str(), "uniform");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::TruncatedNormal => "truncated_normal",
            Distribution::Normal => "normal",
            Distribution::Uniform => "uniform",
        }
    }
}

/// `f32(0.87962566103423978)`: the standard deviation of a standard normal truncated to
/// `(-2, 2)`.
const TRUNCATED_STDDEV: f32 = 0.879_625_661_034_239_8_f64 as f32;

fn axis_size(shape: &[usize], axis: isize, what: &str) -> Result<usize> {
    let rank = shape.len() as isize;
    let i = if axis < 0 { axis + rank } else { axis };
    if i < 0 || i >= rank {
        return Err(Error::invalid(
            "",
            format!("{what} {axis} is out of range for a weights shape {shape:?} of rank {rank}"),
        ));
    }
    Ok(shape[i as usize])
}

/// `jax.nn.initializers._compute_fans(shape, in_axis, out_axis)`: `(fan_in, fan_out)` in
/// float64, where the receptive field is `prod(shape) / in_size / out_size`. Axes may be
/// negative (Python indexing). A shape of rank < 2 is an error, as in JAX.
///
/// ```
/// use nnjit::init::compute_fans;
/// assert_eq!(compute_fans(&[3, 4], -2, -1).unwrap(), (3.0, 4.0));
/// // A 3x3 convolution from 16 to 32 channels (HWIO).
/// assert_eq!(compute_fans(&[3, 3, 16, 32], -2, -1).unwrap(), (144.0, 288.0));
/// assert!(compute_fans(&[5], -2, -1).is_err());
/// ```
pub fn compute_fans(shape: &[usize], in_axis: isize, out_axis: isize) -> Result<(f64, f64)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "",
            format!(
                "can't compute input and output sizes of a {}-dimensional weights tensor \
                 (shape {shape:?}); must be at least 2D",
                shape.len()
            ),
        ));
    }
    let in_size = axis_size(shape, in_axis, "in_axis")? as f64;
    let out_size = axis_size(shape, out_axis, "out_axis")? as f64;
    let total = shape.iter().map(|&d| d as f64).product::<f64>();
    let receptive = total / in_size / out_size;
    Ok((in_size * receptive, out_size * receptive))
}

fn array(what: &str, shape: &[usize], data: Vec<f32>) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| Error::invalid("", format!("{what}: {e}")))
}

fn filled(what: &str, shape: &[usize], value: f32) -> Result<ArrayD<f32>> {
    let n = checked_len(what, shape)?;
    array(what, shape, try_filled(what, n, value)?)
}

#[allow(clippy::too_many_arguments)] // the parameters of JAX's variance_scaling, plus the numerics
fn variance_scaling_init(
    key: Key,
    shape: &[usize],
    scale: f64,
    mode: FanMode,
    distribution: Distribution,
    in_axis: isize,
    out_axis: isize,
    numerics: Numerics,
) -> Result<ArrayD<f32>> {
    let (fan_in, fan_out) = compute_fans(shape, in_axis, out_axis)?;
    if checked_len("variance_scaling", shape)? == 0 {
        // JAX raises ZeroDivisionError here; an empty parameter has nothing to scale.
        return filled("variance_scaling", shape, 0.0);
    }
    let denominator = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
        FanMode::FanAvg => (fan_in + fan_out) / 2.0,
    };
    // Python float64 division, then `jnp.array(..., dtype=float32)`.
    let variance = (scale / denominator) as f32;
    match distribution {
        Distribution::TruncatedNormal => {
            let stddev = variance.sqrt() / TRUNCATED_STDDEV;
            let mut t = random::truncated_normal_with(key, -2.0, 2.0, shape, numerics)?;
            t.mapv_inplace(|v| v * stddev);
            Ok(t)
        }
        // Under jit: erfinv(u) · RN(√2·√variance) (XLA folds the two constants).
        Distribution::Normal => random::normal_scaled(key, shape, variance.sqrt(), numerics),
        Distribution::Uniform => {
            let s = (3.0 * variance).sqrt();
            let mut u = random::uniform_with(key, shape, -1.0, 1.0, numerics)?;
            u.mapv_inplace(|v| v * s);
            Ok(u)
        }
    }
}

/// `jax.nn.initializers.variance_scaling(scale, mode, distribution)` with the default axes
/// (`in_axis=-2`, `out_axis=-1`): samples with variance `scale / fan`, bit-exact with JAX.
///
/// * `variance = f32(scale / denominator)` (the division in float64);
/// * truncated normal: `truncated_normal(key, -2, 2) · (√variance / 0.87962566)`;
/// * normal: `normal(key) · √variance`;
/// * uniform: `uniform(key, -1, 1) · √(3·variance)`.
///
/// Under `jax.jit` ([`Initializer::init_jitted`]) the normal distribution is
/// `erfinv(u) · RN(√2 · √variance)` (XLA folds the constants); the other two are unchanged.
///
/// Shapes of rank < 2 are an error, as in JAX. A shape with no elements gives an empty
/// array (JAX raises `ZeroDivisionError` there).
///
/// ```
/// use nnjit::init::{variance_scaling, Distribution, FanMode};
/// use nnjit::random::PRNGKey;
/// let init = variance_scaling(2.0, FanMode::FanOut, Distribution::Uniform);
/// let w = init.init(PRNGKey(0), &[10, 6]).unwrap();
/// assert!(w.iter().all(|v| v.abs() < 1.0)); // limit √(3·2/6) = 1
/// ```
pub fn variance_scaling(scale: f64, mode: FanMode, distribution: Distribution) -> Initializer {
    variance_scaling_axes(scale, mode, distribution, -2, -1)
}

/// [`variance_scaling`] with explicit `in_axis` and `out_axis` (negative values count from
/// the end, like Python indices).
///
/// ```
/// use nnjit::init::{variance_scaling_axes, Distribution, FanMode};
/// use nnjit::random::PRNGKey;
/// // Fans taken from axes 0 (in) and 1 (out) of an (in, out, k) kernel.
/// let init = variance_scaling_axes(1.0, FanMode::FanIn, Distribution::Normal, 0, 1);
/// assert_eq!(init.init(PRNGKey(0), &[4, 5, 3]).unwrap().shape(), &[4, 5, 3]);
/// ```
pub fn variance_scaling_axes(
    scale: f64,
    mode: FanMode,
    distribution: Distribution,
    in_axis: isize,
    out_axis: isize,
) -> Initializer {
    let name = if (in_axis, out_axis) == (-2, -1) {
        format!("variance_scaling({scale}, {}, {})", mode.as_str(), distribution.as_str())
    } else {
        format!(
            "variance_scaling({scale}, {}, {}, in_axis={in_axis}, out_axis={out_axis})",
            mode.as_str(),
            distribution.as_str()
        )
    };
    named_variance_scaling(name, scale, mode, distribution, in_axis, out_axis)
}

fn named_variance_scaling(
    name: impl Into<String>,
    scale: f64,
    mode: FanMode,
    distribution: Distribution,
    in_axis: isize,
    out_axis: isize,
) -> Initializer {
    Initializer::with_numerics(name, move |key, shape, numerics| {
        variance_scaling_init(key, shape, scale, mode, distribution, in_axis, out_axis, numerics)
    })
}

/// `lecun_normal()`: `variance_scaling(1.0, "fan_in", "truncated_normal")`, the default
/// kernel initializer of Flax's `nn.Dense`.
///
/// ```
/// use nnjit::init::lecun_normal;
/// use nnjit::random::Key;
/// // SPEC §10: the kernel of `nn.jit(nn.Dense)(4).init(PRNGKey(0), x)` for D = 3.
/// let key = Key::from_words([0xCB91_EA54, 0x9BCC_492D]);
/// let k = lecun_normal().init(key, &[3, 4]).unwrap();
/// assert_eq!(k[[0, 0]].to_bits(), 0x3F81_19F6);
/// assert_eq!(k[[2, 3]].to_bits(), 0xBEA4_E8CD);
/// ```
pub fn lecun_normal() -> Initializer {
    // Dense's default: built once, then shared (modules are rebuilt on every compact call).
    static CACHED: OnceLock<Initializer> = OnceLock::new();
    CACHED
        .get_or_init(|| {
            named_variance_scaling("lecun_normal", 1.0, FanMode::FanIn, Distribution::TruncatedNormal, -2, -1)
        })
        .clone()
}

/// `lecun_uniform()`: `variance_scaling(1.0, "fan_in", "uniform")`.
///
/// ```
/// use nnjit::random::PRNGKey;
/// // fan_in = 3, variance 1/3: uniform on [-1, 1).
/// let w = nnjit::init::lecun_uniform().init(PRNGKey(0), &[3, 4])?;
/// assert!(w.iter().all(|v| v.abs() <= 1.0));
/// assert_eq!(nnjit::init::lecun_uniform().name(), "lecun_uniform");
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn lecun_uniform() -> Initializer {
    named_variance_scaling("lecun_uniform", 1.0, FanMode::FanIn, Distribution::Uniform, -2, -1)
}

/// `glorot_normal()`: `variance_scaling(1.0, "fan_avg", "truncated_normal")`.
///
/// ```
/// use nnjit::init::{glorot_normal, variance_scaling, Distribution::TruncatedNormal, FanMode::FanAvg};
/// use nnjit::random::PRNGKey;
/// let w = glorot_normal().init(PRNGKey(0), &[3, 4])?;
/// assert_eq!(w, variance_scaling(1.0, FanAvg, TruncatedNormal).init(PRNGKey(0), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn glorot_normal() -> Initializer {
    named_variance_scaling("glorot_normal", 1.0, FanMode::FanAvg, Distribution::TruncatedNormal, -2, -1)
}

/// `glorot_uniform()`: `variance_scaling(1.0, "fan_avg", "uniform")`.
///
/// ```
/// use nnjit::random::PRNGKey;
/// // fan_avg = 3.5, variance 1/3.5: uniform on [-√(3/3.5), √(3/3.5)) ≈ [-0.926, 0.926).
/// let w = nnjit::init::glorot_uniform().init(PRNGKey(0), &[3, 4])?;
/// assert!(w.iter().all(|v| v.abs() < 0.926));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn glorot_uniform() -> Initializer {
    named_variance_scaling("glorot_uniform", 1.0, FanMode::FanAvg, Distribution::Uniform, -2, -1)
}

/// `xavier_normal()`: alias of [`glorot_normal`].
///
/// ```
/// use nnjit::init::{glorot_normal, xavier_normal};
/// use nnjit::random::PRNGKey;
/// assert_eq!(xavier_normal().init(PRNGKey(1), &[3, 4])?, glorot_normal().init(PRNGKey(1), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn xavier_normal() -> Initializer {
    glorot_normal()
}

/// `xavier_uniform()`: alias of [`glorot_uniform`].
///
/// ```
/// use nnjit::init::{glorot_uniform, xavier_uniform};
/// use nnjit::random::PRNGKey;
/// assert_eq!(xavier_uniform().init(PRNGKey(1), &[3, 4])?, glorot_uniform().init(PRNGKey(1), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn xavier_uniform() -> Initializer {
    glorot_uniform()
}

/// `he_normal()`: `variance_scaling(2.0, "fan_in", "truncated_normal")`.
///
/// ```
/// use nnjit::init::{he_normal, lecun_normal};
/// use nnjit::random::PRNGKey;
/// // Twice lecun_normal's variance: every sample is √2 times lecun_normal's.
/// let (he, lecun) = (he_normal().init(PRNGKey(0), &[3, 4])?, lecun_normal().init(PRNGKey(0), &[3, 4])?);
/// assert!(he.iter().zip(&lecun).all(|(h, l)| (h - l * 2f32.sqrt()).abs() < 1e-5));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn he_normal() -> Initializer {
    named_variance_scaling("he_normal", 2.0, FanMode::FanIn, Distribution::TruncatedNormal, -2, -1)
}

/// `he_uniform()`: `variance_scaling(2.0, "fan_in", "uniform")`.
///
/// ```
/// use nnjit::random::PRNGKey;
/// // fan_in = 3, variance 2/3: uniform on [-√2, √2).
/// let w = nnjit::init::he_uniform().init(PRNGKey(0), &[3, 4])?;
/// assert!(w.iter().all(|v| v.abs() < 2f32.sqrt()));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn he_uniform() -> Initializer {
    named_variance_scaling("he_uniform", 2.0, FanMode::FanIn, Distribution::Uniform, -2, -1)
}

/// `kaiming_normal()`: alias of [`he_normal`].
///
/// ```
/// use nnjit::init::{he_normal, kaiming_normal};
/// use nnjit::random::PRNGKey;
/// assert_eq!(kaiming_normal().init(PRNGKey(2), &[3, 4])?, he_normal().init(PRNGKey(2), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn kaiming_normal() -> Initializer {
    he_normal()
}

/// `kaiming_uniform()`: alias of [`he_uniform`].
///
/// ```
/// use nnjit::init::{he_uniform, kaiming_uniform};
/// use nnjit::random::PRNGKey;
/// assert_eq!(kaiming_uniform().init(PRNGKey(2), &[3, 4])?, he_uniform().init(PRNGKey(2), &[3, 4])?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn kaiming_uniform() -> Initializer {
    he_uniform()
}

/// `normal(stddev)`: `jax.random.normal(key, shape) · stddev` (JAX's default stddev is
/// `1e-2`). Under `jax.jit` ([`Initializer::init_jitted`]) XLA folds `√2 · stddev` into one
/// float32 constant: `erfinv(u) · RN(√2 · stddev)`, one ulp off in some elements.
///
/// ```
/// use nnjit::init::normal;
/// use nnjit::random::PRNGKey;
/// let w = normal(0.02).init(PRNGKey(0), &[64, 64]).unwrap();
/// assert!(w.iter().all(|v| v.abs() < 0.2));
/// ```
pub fn normal(stddev: f32) -> Initializer {
    Initializer::with_numerics(format!("normal({stddev})"), move |key, shape, numerics| {
        random::normal_scaled(key, shape, stddev, numerics)
    })
}

/// `uniform(scale)`: `jax.random.uniform(key, shape)` on `[0, 1)` times `scale` (JAX's
/// default scale is `1e-2`).
///
/// ```
/// use nnjit::init::uniform;
/// use nnjit::random::PRNGKey;
/// let w = uniform(0.5).init(PRNGKey(0), &[8]).unwrap();
/// assert!(w.iter().all(|&v| (0.0..0.5).contains(&v)));
/// ```
pub fn uniform(scale: f32) -> Initializer {
    Initializer::with_numerics(format!("uniform({scale})"), move |key, shape, numerics| {
        let mut u = random::uniform_with(key, shape, 0.0, 1.0, numerics)?;
        u.mapv_inplace(|v| v * scale);
        Ok(u)
    })
}

/// `truncated_normal(stddev)`: `jax.random.truncated_normal(key, -2, 2, shape) · stddev`
/// (JAX's default stddev is `1e-2`). Note that, as in JAX, the result's standard deviation
/// is about `0.88 · stddev` (the truncation is not compensated).
///
/// ```
/// use nnjit::init::truncated_normal;
/// use nnjit::random::PRNGKey;
/// let w = truncated_normal(0.1).init(PRNGKey(0), &[100]).unwrap();
/// assert!(w.iter().all(|v| v.abs() < 0.2));
/// ```
pub fn truncated_normal(stddev: f32) -> Initializer {
    truncated_normal_bounds(stddev, -2.0, 2.0)
}

/// `truncated_normal(stddev, lower=lower, upper=upper)`: the standard normal truncated to
/// `(lower, upper)`, times `stddev`. Under `jax.jit` ([`Initializer::init_jitted`]) the
/// uniform range `erf(bound/√2)` is folded with the C library's `erff`
/// ([`truncated_normal_erf_bounds_jit`](crate::random::sample::truncated_normal_erf_bounds_jit)),
/// which changes the samples for some bounds other than `(-2, 2)`.
///
/// ```
/// use nnjit::init::truncated_normal_bounds;
/// use nnjit::random::PRNGKey;
/// let w = truncated_normal_bounds(1.0, 0.0, 1.0).init(PRNGKey(0), &[100]).unwrap();
/// assert!(w.iter().all(|&v| v > 0.0 && v < 1.0));
/// ```
pub fn truncated_normal_bounds(stddev: f32, lower: f32, upper: f32) -> Initializer {
    let name = if (lower, upper) == (-2.0, 2.0) {
        format!("truncated_normal({stddev})")
    } else {
        format!("truncated_normal({stddev}, lower={lower}, upper={upper})")
    };
    Initializer::with_numerics(name, move |key, shape, numerics| {
        let mut t = random::truncated_normal_with(key, lower, upper, shape, numerics)?;
        t.mapv_inplace(|v| v * stddev);
        Ok(t)
    })
}

/// `zeros`: an array of `+0.0` (the default bias initializer of `nn.Dense`). The key is
/// not used.
///
/// ```
/// use nnjit::init::zeros;
/// use nnjit::random::PRNGKey;
/// assert_eq!(zeros().init(PRNGKey(0), &[2, 3]).unwrap().sum(), 0.0);
/// ```
pub fn zeros() -> Initializer {
    static CACHED: OnceLock<Initializer> = OnceLock::new();
    CACHED.get_or_init(|| Initializer::new("zeros", |_key, shape| filled("zeros", shape, 0.0))).clone()
}

/// Flax's `zeros_init()`: same as [`zeros`].
///
/// ```
/// use nnjit::random::PRNGKey;
/// let b = nnjit::init::zeros_init().init(PRNGKey(0), &[4])?;
/// assert!(b.iter().all(|v| v.to_bits() == 0)); // +0.0, like nn.Dense's bias
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn zeros_init() -> Initializer {
    zeros()
}

/// `ones`: an array of `1.0` (the default scale initializer of normalisation layers).
///
/// ```
/// use nnjit::init::ones;
/// use nnjit::random::PRNGKey;
/// assert_eq!(ones().init(PRNGKey(0), &[4]).unwrap().sum(), 4.0);
/// ```
pub fn ones() -> Initializer {
    static CACHED: OnceLock<Initializer> = OnceLock::new();
    CACHED.get_or_init(|| Initializer::new("ones", |_key, shape| filled("ones", shape, 1.0))).clone()
}

/// Flax's `ones_init()`: same as [`ones`].
///
/// ```
/// use nnjit::random::PRNGKey;
/// assert_eq!(nnjit::init::ones_init().init(PRNGKey(0), &[2, 2])?.sum(), 4.0);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn ones_init() -> Initializer {
    ones()
}

/// `constant(value)`: an array filled with `value`.
///
/// ```
/// use nnjit::init::constant;
/// use nnjit::random::PRNGKey;
/// assert!(constant(0.5).init(PRNGKey(0), &[3]).unwrap().iter().all(|&v| v == 0.5));
/// ```
pub fn constant(value: f32) -> Initializer {
    Initializer::new(format!("constant({value})"), move |_key, shape| filled("constant", shape, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{static_suffix::fold_in_static, static_suffix::SuffixPart::Index, PRNGKey};

    fn bits(a: &ArrayD<f32>) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    const KERNEL_JIT: [u32; 12] = [
        0x3F81_19F6,
        0x3EFE_C15A,
        0xBEE1_B1D7,
        0x3E39_3C2B,
        0x3EB5_7B06,
        0xBE06_0209,
        0xBD57_64B6,
        0xBF4F_B587,
        0xBF79_3182,
        0x3F3C_D726,
        0x3F0C_53FF,
        0xBEA4_E8CD,
    ];
    const KERNEL_DENSE: [u32; 12] = [
        0x3D43_5FBA,
        0xBF73_C8D5,
        0xBF7C_5617,
        0x3EE2_BAFA,
        0x3F33_C4E1,
        0x3F07_BA4E,
        0x3DD7_E916,
        0x3F08_C5F6,
        0x3F07_DC85,
        0xBE13_D9FC,
        0x3F35_6259,
        0x3ECC_C751,
    ];

    #[test]
    fn spec_worked_kernels() {
        let root = PRNGKey(0);
        let k_dense = fold_in_static(root, &[Index(1)]);
        let k_jit = fold_in_static(k_dense, &[Index(2)]);
        let dense = lecun_normal().init(k_dense, &[3, 4]).unwrap();
        let jit = lecun_normal().init(k_jit, &[3, 4]).unwrap();
        assert_eq!(dense.shape(), &[3, 4]);
        assert_eq!(bits(&dense), KERNEL_DENSE);
        assert_eq!(bits(&jit), KERNEL_JIT);
        // Element 0 and 3 of the jit kernel, and the constants.
        assert_eq!(TRUNCATED_STDDEV.to_bits(), 0x3F61_2F26);
        let variance = (1.0f64 / 3.0) as f32;
        assert_eq!(variance.to_bits(), 0x3EAA_AAAB);
        assert_eq!((variance.sqrt() / TRUNCATED_STDDEV).to_bits(), 0x3F28_0725);
    }

    #[test]
    fn fans() {
        assert_eq!(compute_fans(&[3, 4], -2, -1).unwrap(), (3.0, 4.0));
        assert_eq!(compute_fans(&[3, 4], 1, 0).unwrap(), (4.0, 3.0));
        assert_eq!(compute_fans(&[2, 3, 5, 7], -2, -1).unwrap(), (30.0, 42.0));
        assert_eq!(compute_fans(&[2, 3, 5, 7], 0, 1).unwrap(), (70.0, 105.0));
        assert!(compute_fans(&[], -2, -1).is_err());
        assert!(compute_fans(&[4], -2, -1).is_err());
        assert!(compute_fans(&[4, 5], 2, -1).is_err());
        assert!(compute_fans(&[4, 5], -3, -1).is_err());
        assert!(compute_fans(&[4, 5], 0, -3).is_err());
    }

    #[test]
    fn variance_scaling_matches_formulas() {
        let key = PRNGKey(3);
        let shape = [7usize, 5];
        // fan_avg = 6 → variance f32(1/6).
        let v = (1.0f64 / 6.0) as f32;
        let t = glorot_normal().init(key, &shape).unwrap();
        let want =
            random::truncated_normal(key, -2.0, 2.0, &shape).unwrap().mapv(|x| x * (v.sqrt() / TRUNCATED_STDDEV));
        assert_eq!(bits(&t), bits(&want));
        let u = glorot_uniform().init(key, &shape).unwrap();
        let want = random::uniform(key, &shape, -1.0, 1.0).unwrap().mapv(|x| x * (3.0 * v).sqrt());
        assert_eq!(bits(&u), bits(&want));
        // he: 2 / fan_in.
        let v = (2.0f64 / 7.0) as f32;
        let n = variance_scaling(2.0, FanMode::FanIn, Distribution::Normal).init(key, &shape).unwrap();
        let want = random::normal(key, &shape).unwrap().mapv(|x| x * v.sqrt());
        assert_eq!(bits(&n), bits(&want));
        let h = he_uniform().init(key, &shape).unwrap();
        let want = random::uniform(key, &shape, -1.0, 1.0).unwrap().mapv(|x| x * (3.0 * v).sqrt());
        assert_eq!(bits(&h), bits(&want));
        // fan_out = 5.
        let v = (1.0f64 / 5.0) as f32;
        let o = variance_scaling(1.0, FanMode::FanOut, Distribution::Uniform).init(key, &shape).unwrap();
        let want = random::uniform(key, &shape, -1.0, 1.0).unwrap().mapv(|x| x * (3.0 * v).sqrt());
        assert_eq!(bits(&o), bits(&want));
    }

    #[test]
    fn aliases_and_names() {
        let key = PRNGKey(11);
        let s = [9usize, 4];
        assert_eq!(xavier_normal().init(key, &s).unwrap(), glorot_normal().init(key, &s).unwrap());
        assert_eq!(xavier_uniform().init(key, &s).unwrap(), glorot_uniform().init(key, &s).unwrap());
        assert_eq!(kaiming_normal().init(key, &s).unwrap(), he_normal().init(key, &s).unwrap());
        assert_eq!(kaiming_uniform().init(key, &s).unwrap(), he_uniform().init(key, &s).unwrap());
        assert_eq!(
            lecun_normal().init(key, &s).unwrap(),
            variance_scaling(1.0, FanMode::FanIn, Distribution::TruncatedNormal).init(key, &s).unwrap()
        );
        assert_eq!(
            lecun_uniform().init(key, &s).unwrap(),
            variance_scaling(1.0, FanMode::FanIn, Distribution::Uniform).init(key, &s).unwrap()
        );
        assert_eq!(lecun_normal().name(), "lecun_normal");
        assert_eq!(format!("{:?}", he_uniform()), "Initializer(he_uniform)");
        assert_eq!(
            variance_scaling(2.0, FanMode::FanAvg, Distribution::Normal).name(),
            "variance_scaling(2, fan_avg, normal)"
        );
        assert_eq!(normal(0.01).name(), "normal(0.01)");
        assert_eq!(zeros_init().name(), "zeros");
        assert_eq!(ones_init().name(), "ones");
    }

    #[test]
    fn simple_initializers() {
        let key = PRNGKey(4);
        let s = [6usize, 7];
        let n = normal(0.5).init(key, &s).unwrap();
        assert_eq!(bits(&n), bits(&random::normal(key, &s).unwrap().mapv(|x| x * 0.5)));
        let u = uniform(2.0).init(key, &s).unwrap();
        assert!(u.iter().all(|&v| (0.0..2.0).contains(&v)));
        let t = truncated_normal(0.1).init(key, &[10_000]).unwrap();
        assert!(t.iter().all(|&v| v > -0.2 && v < 0.2));
        let t = truncated_normal_bounds(1.0, -0.5, 0.25).init(key, &[10_000]).unwrap();
        assert!(t.iter().all(|&v| v > -0.5 && v < 0.25));
        assert!(zeros().init(key, &s).unwrap().iter().all(|v| v.to_bits() == 0));
        assert!(ones().init(key, &s).unwrap().iter().all(|&v| v == 1.0));
        assert!(constant(-3.5).init(key, &s).unwrap().iter().all(|&v| v == -3.5));
        // Scalars work for the shape-agnostic initializers.
        assert_eq!(zeros().init(key, &[]).unwrap().ndim(), 0);
        assert_eq!(normal(1.0).init(key, &[]).unwrap().len(), 1);
    }

    #[test]
    fn zero_sized_and_errors() {
        let key = PRNGKey(0);
        for init in [
            lecun_normal(),
            glorot_uniform(),
            he_normal(),
            normal(1.0),
            uniform(1.0),
            truncated_normal(1.0),
            zeros(),
            ones(),
            constant(2.0),
        ] {
            for shape in [[0usize, 4], [3, 0], [0, 0]] {
                let a = init.init(key, &shape).unwrap();
                assert_eq!(a.shape(), &shape, "{init:?}");
                assert_eq!(a.len(), 0);
            }
            assert!(init.init(key, &[100_000, 1_000_000]).is_err(), "{init:?}");
            assert!(init.init(key, &[usize::MAX, 3]).is_err(), "{init:?}");
        }
        assert!(lecun_normal().init(key, &[5]).is_err());
        assert!(variance_scaling_axes(1.0, FanMode::FanIn, Distribution::Normal, 3, 0).init(key, &[2, 2]).is_err());
        let bad = Initializer::new("bad", |_k, _s| Ok(ArrayD::zeros(IxDyn(&[1]))));
        let err = bad.init(key, &[2, 2]).unwrap_err().to_string();
        assert!(err.contains("bad"), "{err}");
    }

    #[test]
    fn truncated_normal_kernels_within_two_stddev() {
        // Many draws: every lecun_normal value lies strictly within ±2·stddev.
        for d in [1usize, 2, 3, 10, 100] {
            let stddev = ((1.0f64 / d as f64) as f32).sqrt() / TRUNCATED_STDDEV;
            let k = lecun_normal().init(PRNGKey(d as i64), &[d, 500]).unwrap();
            assert!(k.iter().all(|v| v.abs() < 2.0 * stddev), "d = {d}");
        }
    }

    #[test]
    fn initializer_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Initializer>();
        let a = lecun_normal();
        let b = a.clone();
        assert_eq!(a.init(PRNGKey(1), &[2, 2]).unwrap(), b.init(PRNGKey(1), &[2, 2]).unwrap());
    }
}
