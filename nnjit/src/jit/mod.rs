//! The lift (`#[nn::jit]`): trace once per cache key, compile, then run the program.
//!
//! The first apply of a lifted module for a key traces the original body with
//! [`Tensor`](crate::tensor::Tensor)s that have shapes but no values, records every op into a
//! graph, and compiles it into a [`Program`]: straight-line steps over planned buffers, Dense
//! kernels on weights packed once per parameter version, Dense + bias + relu and elementwise
//! chains fused. Every later apply with that key runs the program with the variables, RNG
//! streams and inputs it is given, and never calls the body.
//!
//! # How Flax's `nn.jit` maps to nnjit
//! | Flax `nn.jit(...)` | nnjit |
//! |---|---|
//! | `JitM = nn.jit(M)` (a new class) | `#[nn::jit] struct M {..}` generates `JitM` with the same fields |
//! | trace once per (module, input shapes), then reuse | [`JitCache`]: one [`Program`] per key ([`Lifted::cache_size`], [`JitCache::stats`]) |
//! | cache key: hash of the module's fields | `Original: PartialEq` (compared, never hashed into a collision) |
//! | `jax.jit(f).lower(x).as_text()` | [`Lifted::lower`] and `Display` of [`Program`] |
//! | traced params become XLA buffers | variables are program inputs; Dense kernels packed once per version |
//! | `variables=` / `rngs=` filters | `#[nn::jit(variables = ["params"], rngs = ["dropout"])]` |
//! | `static_argnums` | static arguments in `Module::Input` (`(Tensor, bool)`), and the module's fields |
//! | `donate_argnums` | [`Lifted::apply_into`] writes into the caller's buffer |
//! | `module.bind(variables)` | [`Lifted::bind`] → [`Bound`] (caller buffers, no allocation), [`Lifted::bind_fixed`] → [`Fixed`] (const-generic widths, arrays in and out) |
//! | `jax.pure_callback` | [`Tensor::host_callback`](crate::tensor::Tensor::host_callback) |
//! | `ConcretizationTypeError` | [`Error::TracedValue`](crate::Error::TracedValue) |
//! | `nn.jit(Block)` is the class `JitBlock`: an unnamed child is `JitBlock_0` | the same: a lifted type's `type_name` is `Jit` + the original's ([`lifted_type_name`]) |
//! | fork of the RNGs before every call, jitted init numerics | off by default (a lift inits and draws like the original); `#[nn::jit(flax_jit)]` ([`LiftOptions::flax_jit`]) reproduces both; inside another lift's program the fork is a step of that program (`fork_rngs` in its listing), drawn from each call's streams |
//! | XLA:CPU's intra-op threads (all cores) | one thread unless `NNJIT_NUM_THREADS` / [`set_num_threads`](crate::kernel::parallel::set_num_threads) allows more; same bits for any count |
//!
//! ```
//! use nnjit::nn::{self, Lifted, Module};
//!
//! let m = nn::JitDense::new(4); // nn.jit(nn.Dense)(4)
//! nn::JitDense::jit_cache().clear();
//! let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
//! m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
//! m.apply(&vars, &[3.0f32, 2.0, 1.0])?; // same shape: the program is reused
//! m.apply(&vars, &ndarray::array![[1.0f32, 2.0, 3.0]])?; // new shape: a new program
//! assert_eq!(m.cache_size(), 2);
//! # Ok::<(), nnjit::Error>(())
//! ```

mod bound;
mod cache;
mod dense;
mod lift;
mod names;
mod program;

pub use bound::{Bound, Fixed, Workspace};
pub use cache::{CacheStats, JitCache, DEFAULT_CAPACITY};
#[doc(hidden)]
pub use lift::{lifted_apply, lifted_apply_plain};
pub use lift::{lifted_call, LiftOptions, Lifted};
pub use names::lifted_type_name;
pub(crate) use names::original_type_name;
pub use program::Program;
#[cfg(test)]
pub(crate) use program::Traced;
