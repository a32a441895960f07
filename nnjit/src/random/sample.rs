//! Sampling functions of `jax.random` (float32, `jax_threefry_partitionable=True`),
//! bit-exact with XLA:CPU.
//!
//! Every function draws element `j` (row-major) from the 32 bits [`bits_at`]`(key, j)`, so
//! the value of an element does not depend on the shape's other dimensions beyond its flat
//! index. Arrays are allocated fallibly: an impossible size is an [`Error`], never an abort.
//!
//! ```
//! use nnjit::random::{uniform, PRNGKey};
//! let key = PRNGKey(0);
//! // Element j depends only on (key, j): a (4,) and a (2, 2) array share their values.
//! let flat = uniform(key, &[4], 0.0, 1.0)?;
//! let square = uniform(key, &[2, 2], 0.0, 1.0)?;
//! assert_eq!(flat.iter().collect::<Vec<_>>(), square.iter().collect::<Vec<_>>());
//! assert!(uniform(key, &[usize::MAX, 2], 0.0, 1.0).is_err()); // an error, not an abort
//! # Ok::<(), nnjit::Error>(())
//! ```

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::fallible::{checked_len, try_with_capacity};

use super::key::Key;
use super::threefry::bits_at;
use super::xla_math::{erf, erf_inv, host_erf, FRAC_1_SQRT_2, SQRT_2};

/// How one element is computed from its 32 random bits. A trait with an always-inlined
/// method (rather than a closure) so that the whole element computation is inlined into
/// the FMA-enabled loop of [`fill_fma`].
trait ElementFn {
    type Out;
    fn eval(&self, bits: u32) -> Self::Out;
}

/// Builds an array of `shape` whose element `j` is `f.eval(bits_at(key, j))`.
fn generate<F: ElementFn>(what: &str, key: Key, shape: &[usize], f: F) -> Result<ArrayD<F::Out>> {
    let n = checked_len(what, shape)?;
    let mut data = try_with_capacity::<F::Out>(what, n)?;
    let k = key.words();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports FMA, checked just above.
        unsafe { fill_fma(&mut data, k, n, &f) };
        return shaped(what, shape, data);
    }
    fill(&mut data, k, n, &f);
    shaped(what, shape, data)
}

fn shaped<T>(what: &str, shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| Error::invalid("", format!("{what}: {e}")))
}

/// The hot loop: sets `data` to `f.eval(bits_at(k, j))` for `j in 0..n`. `data` must be
/// empty with room for `n` elements, so nothing is allocated here.
#[inline(always)]
fn fill<F: ElementFn>(data: &mut Vec<F::Out>, k: [u32; 2], n: usize, f: &F) {
    assert!(data.is_empty() && data.capacity() >= n);
    let spare = &mut data.spare_capacity_mut()[..n];
    for (j, slot) in spare.iter_mut().enumerate() {
        slot.write(f.eval(bits_at(k, j as u64)));
    }
    // SAFETY: the loop initialised the first `n` elements.
    unsafe { data.set_len(n) };
}

/// [`fill`] compiled with the FMA instruction set, so that `f32::mul_add` becomes one
/// `vfmadd` instruction instead of a call to the C library's `fmaf` (several times faster).
/// The results are identical: both are the correctly rounded fused multiply-add.
///
/// # Safety
/// The CPU must support FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn fill_fma<F: ElementFn>(data: &mut Vec<F::Out>, k: [u32; 2], n: usize, f: &F) {
    fill(data, k, n, f)
}

struct Bits;

impl ElementFn for Bits {
    type Out = u32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> u32 {
        bits
    }
}

impl ElementFn for UniformMap {
    type Out = f32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> f32 {
        self.apply(bits)
    }
}

/// `√2 · erf_inv(u)`, the normal sample.
struct NormalFn(UniformMap);

impl ElementFn for NormalFn {
    type Out = f32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> f32 {
        SQRT_2 * erf_inv(self.0.apply(bits))
    }
}

/// `clip(erf_inv(u) · √2, lo, hi)`, the truncated normal sample, over the uniform map `U`
/// (eager, or jitted with a unit width).
struct TruncatedNormalFn<U = UniformMap> {
    uniform: U,
    lo: f32,
    hi: f32,
}

impl<U: ElementFn<Out = f32>> ElementFn for TruncatedNormalFn<U> {
    type Out = f32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> f32 {
        let out = erf_inv(self.uniform.eval(bits)) * SQRT_2;
        xla_min(self.hi, xla_max(self.lo, out))
    }
}

/// `uniform[0, 1) < p`, the Bernoulli sample.
struct BernoulliFn {
    uniform: UniformMap,
    p: f32,
}

impl ElementFn for BernoulliFn {
    type Out = bool;
    #[inline(always)]
    fn eval(&self, bits: u32) -> bool {
        self.uniform.apply(bits) < self.p
    }
}

/// Which float arithmetic a sampler or an initializer reproduces: JAX's eager
/// (op-by-op) evaluation, or the same call traced under `jax.jit` (as Flax's `nn.jit` and a
/// jitted `init` trace it), where XLA folds the constants of the whole computation before it
/// compiles it.
///
/// The two differ only where XLA's algebraic simplifier or its constant folder changes the
/// float arithmetic (see `tests/data/flax_lift/JIT_NUMERICS.md`):
///
/// * `normal(key, shape) * scale` ([`normal_scaled`]): eager `(√2·erfinv(u))·scale`,
///   jitted `erfinv(u)·RN(√2·scale)` (the two constant factors are folded into one);
/// * [`truncated_normal_with`] with bounds other than the default: the uniform range
///   `erf(bound/√2)` is folded by XLA's constant evaluator with the C library's `erff`
///   instead of XLA's compiled float32 `erf`;
/// * [`uniform_with`] with `maxval − minval = 1` and `minval ≠ 0`: `(f − 1)·1 + minval`
///   becomes `(f + RN(minval − 1))`.
///
/// Everything else ([`random_bits`], [`normal`], [`bernoulli`], uniform with other widths) is
/// the same under both.
///
/// ```
/// use nnjit::random::{normal_scaled, Numerics, PRNGKey};
/// let eager = normal_scaled(PRNGKey(0), &[5, 24], 0.02, Numerics::Eager)?;
/// let jit = normal_scaled(PRNGKey(0), &[5, 24], 0.02, Numerics::Jit)?;
/// // Each element differs by at most one ulp, and some do.
/// assert!(eager.iter().zip(&jit).all(|(a, b)| (a.to_bits() as i64 - b.to_bits() as i64).abs() <= 1));
/// assert!(eager.iter().zip(&jit).any(|(a, b)| a != b));
/// assert_eq!(Numerics::default(), Numerics::Eager);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Numerics {
    /// JAX evaluating op by op (`init(key, shape)`, `Module.init` without `nn.jit`): each
    /// `jax.random` sampler is its own compiled computation and the scaling is a separate op.
    #[default]
    Eager,
    /// The same call under `jax.jit` / Flax's `nn.jit`: one computation, constants folded.
    Jit,
}

/// `jax.random.uniform` when `maxval − minval` rounds to exactly 1 under `jax.jit`: XLA drops
/// the multiplication by 1 and reassociates `(f − 1) + minval` into `f' + RN(minval − 1)`,
/// where `f' = bitcast((bits >> 9) | 0x3F800000)` is in `[1, 2)`.
#[derive(Clone, Copy)]
struct UnitWidthJitMap {
    min: f32,
    offset: f32,
}

impl UnitWidthJitMap {
    #[inline(always)]
    fn apply(self, bits: u32) -> f32 {
        xla_max(self.min, f32::from_bits((bits >> 9) | 0x3F80_0000) + self.offset)
    }
}

impl ElementFn for UnitWidthJitMap {
    type Out = f32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> f32 {
        self.apply(bits)
    }
}

/// The uniform map of one sampler: eager (or jitted with a width other than 1), or jitted
/// with a unit width.
#[derive(Clone, Copy)]
enum AnyUniform {
    Fma(UniformMap),
    UnitWidthJit(UnitWidthJitMap),
}

impl AnyUniform {
    fn new(minval: f32, maxval: f32, numerics: Numerics) -> AnyUniform {
        let map = UniformMap::new(minval, maxval);
        if numerics == Numerics::Jit && map.width == 1.0 {
            AnyUniform::UnitWidthJit(UnitWidthJitMap { min: minval, offset: minval - 1.0 })
        } else {
            AnyUniform::Fma(map)
        }
    }
}

/// `(pre · erf_inv(u)) · post`: the scaled normal, eager (`pre = √2`, `post = scale`) or
/// jitted (`pre = 1`, `post = RN(√2·scale)`; `1 · x` is exact).
struct NormalScaledFn {
    uniform: UniformMap,
    pre: f32,
    post: f32,
}

impl ElementFn for NormalScaledFn {
    type Out = f32;
    #[inline(always)]
    fn eval(&self, bits: u32) -> f32 {
        (self.pre * erf_inv(self.uniform.apply(bits))) * self.post
    }
}

/// XLA's float `max`: NaN if either operand is NaN.
#[inline(always)]
fn xla_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// XLA's float `min`: NaN if either operand is NaN.
#[inline(always)]
fn xla_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// `numpy.nextafter` / `lax.nextafter` for float32: the next representable value after `x`
/// in the direction of `toward`.
///
/// ```
/// use nnjit::random::sample::next_after;
/// assert_eq!(next_after(-2.0, f32::INFINITY).to_bits(), 0xBFFF_FFFF);
/// assert_eq!(next_after(-1.0, 0.0).to_bits(), 0xBF7F_FFFF);
/// ```
pub fn next_after(x: f32, toward: f32) -> f32 {
    if x.is_nan() || toward.is_nan() {
        return f32::NAN;
    }
    if x == toward {
        return toward;
    }
    if x == 0.0 {
        return f32::from_bits(1).copysign(toward);
    }
    let b = x.to_bits();
    // Moving away from zero increments the magnitude bits, towards zero decrements them.
    if (toward > x) == (x > 0.0) {
        f32::from_bits(b + 1)
    } else {
        f32::from_bits(b - 1)
    }
}

/// The float in `[0, 1)` that `jax.random.uniform` builds from 32 random bits:
/// `bitcast((bits >> 9) | 0x3F800000) - 1`, exact.
///
/// ```
/// use nnjit::random::sample::unit_float_from_bits;
/// assert_eq!(unit_float_from_bits(0xF56C_3B28).to_bits(), 0x3F75_6C3A);
/// assert_eq!(unit_float_from_bits(0), 0.0);
/// ```
#[inline(always)]
pub fn unit_float_from_bits(bits: u32) -> f32 {
    f32::from_bits((bits >> 9) | 0x3F80_0000) - 1.0
}

/// The affine map of `jax.random.uniform` with its XLA FMA contraction.
#[derive(Clone, Copy)]
struct UniformMap {
    min: f32,
    width: f32,
}

impl UniformMap {
    fn new(minval: f32, maxval: f32) -> Self {
        UniformMap { min: minval, width: maxval - minval }
    }

    #[inline(always)]
    fn apply(self, bits: u32) -> f32 {
        xla_max(self.min, unit_float_from_bits(bits).mul_add(self.width, self.min))
    }
}

/// One element of `jax.random.uniform(key, shape, float32, minval, maxval)` from its 32
/// random bits: `u = max(minval, fma(f, RN(maxval - minval), minval))` with
/// `f = `[`unit_float_from_bits`]`(bits)`.
///
/// ```
/// use nnjit::random::sample::uniform_from_bits;
/// let (a, b) = (f32::from_bits(0xBF74_5A18), f32::from_bits(0x3F74_5A18));
/// assert_eq!(uniform_from_bits(0xF56C_3B28, a, b).to_bits(), 0x3F60_28F5);
/// ```
pub fn uniform_from_bits(bits: u32, minval: f32, maxval: f32) -> f32 {
    UniformMap::new(minval, maxval).apply(bits)
}

/// `jax.random.bits(key, shape, uint32)` (`_random_bits` with the partitionable threefry):
/// element `j` (row-major) is `y0 ^ y1` with `(y0, y1) = threefry2x32(key, (j >> 32, j mod 2³²))`.
///
/// ```
/// use nnjit::random::{random_bits, Key};
/// let bits = random_bits(Key::from_words([0xCB91_EA54, 0x9BCC_492D]), &[3, 4]).unwrap();
/// assert_eq!(bits.shape(), &[3, 4]);
/// assert_eq!(bits[[0, 0]], 0xF56C_3B28);
/// assert_eq!(bits[[2, 3]], 0x4D87_0436);
/// ```
pub fn random_bits(key: Key, shape: &[usize]) -> Result<ArrayD<u32>> {
    generate("random bits", key, shape, Bits)
}

/// `jax.random.uniform(key, shape, float32, minval, maxval)`: floats in `[minval, maxval)`.
///
/// ```
/// use nnjit::random::{uniform, PRNGKey};
/// let u = uniform(PRNGKey(0), &[2, 3], -1.0, 1.0).unwrap();
/// assert_eq!(u.shape(), &[2, 3]);
/// assert!(u.iter().all(|&v| (-1.0..1.0).contains(&v)));
/// ```
pub fn uniform(key: Key, shape: &[usize], minval: f32, maxval: f32) -> Result<ArrayD<f32>> {
    generate("uniform sample", key, shape, UniformMap::new(minval, maxval))
}

/// `jax.random.normal(key, shape, float32)` (`_normal_real`): `√2 · erf_inv(u)` with `u`
/// uniform on `[nextafter(-1, 0), 1)`.
///
/// ```
/// use nnjit::random::{normal, PRNGKey};
/// let n = normal(PRNGKey(0), &[1000]).unwrap();
/// let mean = n.sum() / 1000.0;
/// assert!(mean.abs() < 0.15);
/// ```
pub fn normal(key: Key, shape: &[usize]) -> Result<ArrayD<f32>> {
    generate("normal sample", key, shape, NormalFn(UniformMap::new(next_after(-1.0, 0.0), 1.0)))
}

/// The uniform range `[a, b) = [erf(lower/√2), erf(upper/√2))` of
/// `jax.random.truncated_normal`, with XLA's `x / f32(√2) → x · f32(1/√2)` rewrite and its
/// float32 [`erf`].
///
/// ```
/// use nnjit::random::sample::truncated_normal_erf_bounds;
/// let (a, b) = truncated_normal_erf_bounds(-2.0, 2.0);
/// assert_eq!((a.to_bits(), b.to_bits()), (0xBF74_5A18, 0x3F74_5A18));
/// ```
pub fn truncated_normal_erf_bounds(lower: f32, upper: f32) -> (f32, f32) {
    (erf(lower * FRAC_1_SQRT_2), erf(upper * FRAC_1_SQRT_2))
}

/// `jax.random.truncated_normal(key, lower, upper, shape, float32)`: `√2 · erf_inv(u)` with
/// `u` uniform on `[erf(lower/√2), erf(upper/√2))`, clipped to
/// `[nextafter(lower, +inf), nextafter(upper, -inf)]` (the open interval).
///
/// ```
/// use nnjit::random::{truncated_normal, Key};
/// let t = truncated_normal(Key::from_words([0xCB91_EA54, 0x9BCC_492D]), -2.0, 2.0, &[3, 4]).unwrap();
/// assert_eq!(t[[0, 0]].to_bits(), 0x3FC4_B17B);
/// assert!(t.iter().all(|&v| v > -2.0 && v < 2.0));
/// ```
pub fn truncated_normal(key: Key, lower: f32, upper: f32, shape: &[usize]) -> Result<ArrayD<f32>> {
    let (a, b) = truncated_normal_erf_bounds(lower, upper);
    let f = TruncatedNormalFn {
        uniform: UniformMap::new(a, b),
        lo: next_after(lower, f32::INFINITY),
        hi: next_after(upper, f32::NEG_INFINITY),
    };
    generate("truncated normal sample", key, shape, f)
}

/// `jax.random.bernoulli(key, p, shape)`: `uniform(key, shape, 0, 1) < p` element-wise.
///
/// ```
/// use nnjit::random::{bernoulli, PRNGKey};
/// let m = bernoulli(PRNGKey(0), 0.5, &[4, 4]).unwrap();
/// assert_eq!(m.shape(), &[4, 4]);
/// assert!(bernoulli(PRNGKey(0), 1.0, &[8]).unwrap().iter().all(|&b| b));
/// assert!(bernoulli(PRNGKey(0), 0.0, &[8]).unwrap().iter().all(|&b| !b));
/// ```
pub fn bernoulli(key: Key, p: f32, shape: &[usize]) -> Result<ArrayD<bool>> {
    generate("bernoulli mask", key, shape, BernoulliFn { uniform: UniformMap::new(0.0, 1.0), p })
}

/// [`uniform`] with the chosen [`Numerics`]. Under [`Numerics::Jit`] a range of width exactly
/// 1 with `minval ≠ 0` is computed as `max(minval, f' + RN(minval − 1))` with
/// `f' = bitcast((bits >> 9) | 0x3F800000)` (XLA drops `· 1` and reassociates the two
/// additions); every other range is the same as eager.
///
/// ```
/// use nnjit::random::{uniform, uniform_with, Numerics, PRNGKey};
/// let key = PRNGKey(3);
/// // jax.random.uniform(key, (200,), minval=-0.3, maxval=0.7) eager vs under jax.jit.
/// let eager = uniform_with(key, &[200], -0.3, 0.7, Numerics::Eager)?;
/// assert_eq!(eager, uniform(key, &[200], -0.3, 0.7)?);
/// let jit = uniform_with(key, &[200], -0.3, 0.7, Numerics::Jit)?;
/// assert!(eager.iter().zip(&jit).any(|(a, b)| a != b));
/// // Other widths are unchanged by jit.
/// assert_eq!(uniform_with(key, &[200], 2.0, 5.0, Numerics::Jit)?, uniform(key, &[200], 2.0, 5.0)?);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn uniform_with(key: Key, shape: &[usize], minval: f32, maxval: f32, numerics: Numerics) -> Result<ArrayD<f32>> {
    match AnyUniform::new(minval, maxval, numerics) {
        AnyUniform::Fma(map) => generate("uniform sample", key, shape, map),
        AnyUniform::UnitWidthJit(map) => generate("uniform sample", key, shape, map),
    }
}

/// `jax.random.normal(key, shape) * scale` with the chosen [`Numerics`] (the `normal(stddev)`
/// and `variance_scaling(..., "normal")` initializers):
///
/// * [`Numerics::Eager`]: `RN(RN(√2 · erf_inv(u)) · scale)`, the same bits as
///   [`normal`]`(key, shape)` times `scale`;
/// * [`Numerics::Jit`]: `RN(erf_inv(u) · RN(√2 · scale))`: XLA folds the constants `√2` and
///   `scale` into one float32 constant.
///
/// The two agree when `√2 · scale` needs no rounding beyond `√2`'s own (e.g. a power-of-two
/// `scale`) and differ by one ulp in some elements otherwise.
///
/// ```
/// use nnjit::random::{normal, normal_scaled, Numerics, PRNGKey};
/// let key = PRNGKey(0);
/// let eager = normal_scaled(key, &[120], 0.02, Numerics::Eager)?;
/// assert_eq!(eager, normal(key, &[120])?.mapv(|v| v * 0.02));
/// let jit = normal_scaled(key, &[120], 0.02, Numerics::Jit)?;
/// let differing = eager.iter().zip(&jit).filter(|(a, b)| a != b).count();
/// assert!(differing > 0 && differing < 60, "{differing}");
/// // Scaling by a power of two is exact: no difference.
/// assert_eq!(normal_scaled(key, &[120], 0.5, Numerics::Jit)?, normal(key, &[120])?.mapv(|v| v * 0.5));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn normal_scaled(key: Key, shape: &[usize], scale: f32, numerics: Numerics) -> Result<ArrayD<f32>> {
    let uniform = UniformMap::new(next_after(-1.0, 0.0), 1.0);
    let (pre, post) = match numerics {
        Numerics::Eager => (SQRT_2, scale),
        Numerics::Jit => (1.0, SQRT_2 * scale),
    };
    generate("normal sample", key, shape, NormalScaledFn { uniform, pre, post })
}

/// The uniform range of `jax.random.truncated_normal` under `jax.jit`: XLA's constant folder
/// evaluates `erf(bound / √2)` (a true float32 division) with the host C library's `erff`
/// ([`host_erf`]), not with the compiled float32 polynomial of
/// [`truncated_normal_erf_bounds`].
///
/// ```
/// use nnjit::random::sample::{truncated_normal_erf_bounds, truncated_normal_erf_bounds_jit};
/// // The default bounds agree...
/// assert_eq!(truncated_normal_erf_bounds_jit(-2.0, 2.0), truncated_normal_erf_bounds(-2.0, 2.0));
/// // ...others need not.
/// let (a, _) = truncated_normal_erf_bounds_jit(-0.25, 0.75);
/// assert_eq!(a.to_bits(), 0xBE4A_268A);
/// ```
pub fn truncated_normal_erf_bounds_jit(lower: f32, upper: f32) -> (f32, f32) {
    (host_erf(lower / SQRT_2), host_erf(upper / SQRT_2))
}

/// [`truncated_normal`] with the chosen [`Numerics`]. Under [`Numerics::Jit`] the uniform
/// range comes from [`truncated_normal_erf_bounds_jit`] (and a range of width exactly 1 is
/// drawn as in [`uniform_with`]); the rest is the same as eager. With the default bounds
/// `(-2, 2)` the two agree.
///
/// ```
/// use nnjit::random::{truncated_normal, truncated_normal_with, Numerics, PRNGKey};
/// let key = PRNGKey(5);
/// let jit = truncated_normal_with(key, -2.0, 2.0, &[100], Numerics::Jit)?;
/// assert_eq!(jit, truncated_normal(key, -2.0, 2.0, &[100])?);
/// let jit = truncated_normal_with(key, -0.1, 0.1, &[100], Numerics::Jit)?;
/// assert!(jit.iter().all(|&v| v > -0.1 && v < 0.1));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn truncated_normal_with(
    key: Key,
    lower: f32,
    upper: f32,
    shape: &[usize],
    numerics: Numerics,
) -> Result<ArrayD<f32>> {
    let (a, b) = match numerics {
        Numerics::Eager => truncated_normal_erf_bounds(lower, upper),
        Numerics::Jit => truncated_normal_erf_bounds_jit(lower, upper),
    };
    let (lo, hi) = (next_after(lower, f32::INFINITY), next_after(upper, f32::NEG_INFINITY));
    let what = "truncated normal sample";
    match AnyUniform::new(a, b, numerics) {
        AnyUniform::Fma(uniform) => generate(what, key, shape, TruncatedNormalFn { uniform, lo, hi }),
        AnyUniform::UnitWidthJit(uniform) => generate(what, key, shape, TruncatedNormalFn { uniform, lo, hi }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{fold_in, PRNGKey};

    const K_JIT: [u32; 2] = [0xCB91_EA54, 0x9BCC_492D];
    const BITS_JIT: [u32; 12] = [
        0xF56C_3B28,
        0xC9F8_39DC,
        0x3D32_2043,
        0x9D1E_A096,
        0xB717_9DF9,
        0x6ACE_95DB,
        0x776F_CC71,
        0x16EA_FC14,
        0x0C69_A541,
        0xE317_747D,
        0xCFF9_3E69,
        0x4D87_0436,
    ];

    #[test]
    fn worked_example_bits() {
        let bits = random_bits(Key::from_words(K_JIT), &[3, 4]).unwrap();
        assert_eq!(bits.iter().copied().collect::<Vec<_>>(), BITS_JIT);
        // The layout is the flat row-major index: other shapes with 12 elements agree.
        let flat = random_bits(Key::from_words(K_JIT), &[12]).unwrap();
        assert_eq!(flat.iter().copied().collect::<Vec<_>>(), BITS_JIT);
        let k1 = fold_in(PRNGKey(0), 0xBF8B_4530);
        assert_eq!(fold_in(k1, 0xC4EA_21BB), Key::from_words(K_JIT));
    }

    #[test]
    fn worked_example_elements() {
        let (a, b) = truncated_normal_erf_bounds(-2.0, 2.0);
        assert_eq!(a.to_bits(), 0xBF74_5A18);
        assert_eq!(b.to_bits(), 0x3F74_5A18);
        assert_eq!((b - a).to_bits(), 0x3FF4_5A18);
        assert_eq!(unit_float_from_bits(BITS_JIT[0]).to_bits(), 0x3F75_6C3A);
        assert_eq!(uniform_from_bits(BITS_JIT[0], a, b).to_bits(), 0x3F60_28F5);
        assert_eq!(uniform_from_bits(BITS_JIT[3], a, b).to_bits(), 0x3E5E_5B80);
        // Largest reachable u.
        assert_eq!(uniform_from_bits(u32::MAX, a, b).to_bits(), 0x3F74_5A14);
        let t = truncated_normal(Key::from_words(K_JIT), -2.0, 2.0, &[3, 4]).unwrap();
        assert_eq!(t[[0, 0]].to_bits(), 0x3FC4_B17B);
        assert_eq!(t[[0, 3]].to_bits(), 0x3E8D_1BA7);
    }

    #[test]
    fn portable_loop_matches_dispatched_loop() {
        // `generate` uses the FMA-compiled loop where the CPU has FMA; the portable loop
        // (libm `fmaf`) must give the same bits.
        let key = PRNGKey(31);
        let n = 5000;
        let mut data = Vec::with_capacity(n);
        let f = TruncatedNormalFn {
            uniform: UniformMap::new(f32::from_bits(0xBF74_5A18), f32::from_bits(0x3F74_5A18)),
            lo: next_after(-2.0, f32::INFINITY),
            hi: next_after(2.0, f32::NEG_INFINITY),
        };
        fill(&mut data, key.words(), n, &f);
        let t = truncated_normal(key, -2.0, 2.0, &[n]).unwrap();
        assert!(t.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()));
        let mut data = Vec::with_capacity(n);
        fill(&mut data, key.words(), n, &NormalFn(UniformMap::new(next_after(-1.0, 0.0), 1.0)));
        let z = normal(key, &[n]).unwrap();
        assert!(z.iter().zip(&data).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn next_after_cases() {
        assert_eq!(next_after(2.0, f32::NEG_INFINITY).to_bits(), 0x3FFF_FFFF);
        assert_eq!(next_after(-2.0, f32::INFINITY).to_bits(), 0xBFFF_FFFF);
        assert_eq!(next_after(1.0, 2.0).to_bits(), 0x3F80_0001);
        assert_eq!(next_after(0.0, 1.0).to_bits(), 1);
        assert_eq!(next_after(0.0, -1.0).to_bits(), 0x8000_0001);
        assert_eq!(next_after(f32::from_bits(1), 0.0), 0.0);
        assert_eq!(next_after(3.0, 3.0), 3.0);
        assert_eq!(next_after(f32::NEG_INFINITY, 0.0), f32::MIN);
        assert!(next_after(f32::NAN, 0.0).is_nan());
    }

    #[test]
    fn uniform_range_and_determinism() {
        let k = PRNGKey(123);
        let u = uniform(k, &[50, 40], 2.0, 5.0).unwrap();
        assert!(u.iter().all(|&v| (2.0..5.0).contains(&v)));
        assert_eq!(u, uniform(k, &[50, 40], 2.0, 5.0).unwrap());
        let u01 = uniform(k, &[2000], 0.0, 1.0).unwrap();
        let bits = random_bits(k, &[2000]).unwrap();
        for (u, b) in u01.iter().zip(bits.iter()) {
            assert_eq!(*u, unit_float_from_bits(*b));
        }
        let mean = u01.sum() / 2000.0;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
    }

    #[test]
    fn normal_moments_and_extremes() {
        let n = normal(PRNGKey(1), &[20_000]).unwrap();
        let mean = n.iter().map(|&v| v as f64).sum::<f64>() / 20_000.0;
        let var = n.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 20_000.0;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert!(n.iter().all(|v| v.is_finite()));
        // Extreme uniform draws: bits = 0 gives u = nextafter(-1, 0) (w >= 5 branch).
        let map = UniformMap::new(next_after(-1.0, 0.0), 1.0);
        assert_eq!(map.apply(0).to_bits(), 0xBF7F_FFFF);
        let lo = SQRT_2 * erf_inv(map.apply(0));
        assert!(lo < -5.0 && lo.is_finite(), "{lo}");
        let hi = SQRT_2 * erf_inv(map.apply(u32::MAX));
        assert!(hi > 5.0 && hi.is_finite(), "{hi}");
    }

    #[test]
    fn truncated_normal_bounds_hold() {
        for (lo, hi) in [(-2.0f32, 2.0f32), (-1.0, 0.5), (0.0, 3.0), (-0.1, 0.1)] {
            let t = truncated_normal(PRNGKey(5), lo, hi, &[10_000]).unwrap();
            assert!(t.iter().all(|&v| v > lo && v < hi), "bounds ({lo}, {hi})");
        }
        // Infinite bounds give an (unclipped) normal-like sample.
        let t = truncated_normal(PRNGKey(5), f32::NEG_INFINITY, f32::INFINITY, &[1000]).unwrap();
        assert!(t.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bernoulli_rate() {
        let m = bernoulli(PRNGKey(9), 0.3, &[10_000]).unwrap();
        let rate = m.iter().filter(|&&b| b).count() as f64 / 10_000.0;
        assert!((rate - 0.3).abs() < 0.02, "{rate}");
        let u = uniform(PRNGKey(9), &[10_000], 0.0, 1.0).unwrap();
        assert!(m.iter().zip(u.iter()).all(|(&b, &u)| b == (u < 0.3)));
    }

    #[test]
    fn empty_and_scalar_shapes() {
        let k = PRNGKey(0);
        assert_eq!(random_bits(k, &[0, 5]).unwrap().len(), 0);
        assert_eq!(uniform(k, &[3, 0], 0.0, 1.0).unwrap().shape(), &[3, 0]);
        assert_eq!(normal(k, &[0]).unwrap().len(), 0);
        assert_eq!(truncated_normal(k, -2.0, 2.0, &[0, 0]).unwrap().len(), 0);
        assert_eq!(bernoulli(k, 0.5, &[0]).unwrap().len(), 0);
        let s = random_bits(k, &[]).unwrap();
        assert_eq!(s.ndim(), 0);
        assert_eq!(s[IxDyn(&[])], random_bits(k, &[1]).unwrap()[[0]]);
    }

    #[test]
    fn huge_shapes_are_errors() {
        let k = PRNGKey(0);
        assert!(matches!(random_bits(k, &[100_000, 1_000_000]), Err(Error::Allocation { .. })));
        assert!(matches!(uniform(k, &[usize::MAX, 2], 0.0, 1.0), Err(Error::SizeOverflow { .. })));
        assert!(normal(k, &[100_000_000_000]).is_err());
        assert!(truncated_normal(k, -2.0, 2.0, &[1 << 20, 1 << 20]).is_err());
        assert!(bernoulli(k, 0.5, &[1 << 40]).is_err());
    }
}
