//! JAX-compatible random numbers: `threefry2x32` keys and the float32 samplers of
//! `jax.random`, bit for bit as JAX computes them on XLA:CPU with its default configuration
//! (`jax_enable_x64=False`, `jax_threefry_partitionable=True`).
//!
//! * [`Key`], [`PRNGKey`], [`fold_in`], [`split`]: keys and their derivation.
//! * [`random_bits`], [`uniform`], [`normal`], [`truncated_normal`], [`bernoulli`]: samples.
//! * [`Numerics`], [`uniform_with`], [`normal_scaled`], [`truncated_normal_with`]: the same
//!   samples as JAX computes them under `jax.jit` / `nn.jit` (XLA folds some constants).
//! * [`static_suffix`]: Flax's SHA-1 based rng derivation from a scope's static suffix
//!   (`_fold_in_static`).
//! * [`xla_math`]: the float32 `log`, `log1p`, `erf`, `erf_inv` of XLA:CPU.
//!
//! ```
//! use nnjit::random::{truncated_normal, static_suffix::{fold_in_static, SuffixPart::Index}, PRNGKey};
//! // The kernel key of `nn.Dense(4).init(jax.random.PRNGKey(0), x)` in Flax...
//! let key = fold_in_static(PRNGKey(0), &[Index(1)]);
//! // ...and the truncated normal that lecun_normal scales.
//! let t = truncated_normal(key, -2.0, 2.0, &[3, 4]).unwrap();
//! assert_eq!(t.shape(), &[3, 4]);
//! ```

pub mod key;
pub mod sample;
pub mod static_suffix;
pub mod threefry;
pub mod xla_math;

pub use key::{fold_in, split, Key, PRNGKey};
pub use sample::{
    bernoulli, normal, normal_scaled, random_bits, truncated_normal, truncated_normal_with, uniform, uniform_with,
    Numerics,
};
pub use threefry::threefry2x32;
