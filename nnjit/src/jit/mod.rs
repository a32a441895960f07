//! Runtime support for lifted modules (`#[nn::jit]`): the per-shape cache, parameters bound and
//! packed once, and the options of the lift.
//!
//! # How Flax's `nn.jit` maps to nnjit
//! | Flax `nn.jit(...)` | nnjit |
//! |---|---|
//! | `JitM = nn.jit(M)` (a new class) | `#[nn::jit] struct M {..}` generates `JitM` with the same fields |
//! | compile once per input shape, then reuse | [`JitCache`]: a plan per input shape, prepared on first call ([`Lifted::cache_size`]) |
//! | traced params become XLA buffers | parameters packed once per version into kernel layout ([`crate::kernel::PackedDense`]) |
//! | `variables=` / `rngs=` filters | `#[nn::jit(variables = ["params"], rngs = ["dropout"])]` |
//! | `static_argnums` | module fields are static; `JitDense::bind_fixed::<D, F>` makes shapes const generics |
//! | `donate_argnums` | [`Lifted::apply_into`] writes into the caller's buffer |
//! | `methods=` | the lifted method is `Module::call` (nnjit modules have one forward) |
//! | fork of the RNGs before the call | off by default (init equals the plain module); opt in with [`Lifted::init_flax_jit`] |
//! | XLA:CPU's intra-op threads (all cores) | one thread unless `NNJIT_NUM_THREADS` / [`set_num_threads`](crate::kernel::parallel::set_num_threads) allows more; same bits for any count |
//!
//! ```
//! use nnjit::nn::{self, Lifted, Module};
//!
//! let m = nn::JitDense::new(4); // nn.jit(nn.Dense)(4)
//! let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
//! m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
//! m.apply(&vars, &[3.0f32, 2.0, 1.0])?; // same shape: the prepared plan is reused
//! m.apply(&vars, &ndarray::array![[1.0f32, 2.0, 3.0]])?; // new shape: a new plan
//! assert_eq!(m.cache_size(), 2);
//! # Ok::<(), nnjit::Error>(())
//! ```

mod cache;
mod dense;
pub use dense::BoundDense;
mod lift;

pub use cache::{JitCache, ShapePlan};
pub use lift::{lifted_call, LiftOptions, Lifted};

pub(crate) use lift::LiftCtx;
