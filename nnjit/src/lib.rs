//! # nnjit
//!
//! Flax linen's module system and its `nn.jit` lifted transform, in Rust, with Flax's numbers:
//! the same parameters bit for bit from the same seed, and one reference arithmetic order for
//! `Dense` on every CPU. The "compilation" is done by rustc: `#[nn::jit]` turns a module struct
//! into a lifted twin whose forward pass runs through shape-specialized kernels.
//!
//! ```
//! use nnjit::nn::{self, Module};
//!
//! // Flax: JitDense = nn.jit(nn.Dense); model = JitDense(features=4)
//! let model = nn::JitDense::new(4);
//! let x = ndarray::array![1.0f32, 2.0, 3.0];
//! let params = model.init(nn::PRNGKey(0), &x)?;          // == nn::Dense::new(4).init(...)
//! let y = model.apply(&params, &x)?;
//! assert_eq!(y.shape(), &[4]);
//! assert_eq!(y, nn::Dense::new(4).apply(&params, &x)?); // lifted == plain, bit for bit
//! # Ok::<(), nnjit::Error>(())
//! ```
//!
//! `use nnjit::nn;` is the Rust twin of `import flax.linen as nn`.
#![warn(missing_docs)]

extern crate self as nnjit;

pub mod error;
pub mod fallible;
pub mod forward;
pub mod init;
pub mod io;
pub mod jit;
pub mod kernel;
pub mod layers;
pub mod module;
pub mod random;
pub mod scope;
pub mod summary;
pub mod tensor;
pub mod variables;

pub use error::{Error, Result};
pub use forward::{nn_jit_forward, nn_jit_forward_with, ForwardOptions, ForwardResult};
pub use variables::Variables;

/// Re-export of the ndarray version nnjit uses (inputs, outputs and variables are ndarrays).
pub use ndarray;

/// The `nn` namespace: `use nnjit::nn;` then `nn::Dense`, `nn::Module`, `nn::PRNGKey(0)`,
/// `#[nn::jit]`, like `import flax.linen as nn`.
///
/// ```
/// use nnjit::nn::{self, Module};
///
/// // model = nn.Dense(4); variables = model.init(jax.random.PRNGKey(0), x)
/// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
/// let model = nn::Dense::new(4).kernel_init(nn::initializers::lecun_normal());
/// let variables = model.init(nn::PRNGKey(0), &x)?;
/// let y = model.apply(&variables, &x)?;
/// assert_eq!(y.shape(), &[1, 4]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub mod nn {
    pub use crate::init as initializers;
    pub use crate::jit::Lifted;
    pub use crate::layers::activation::{
        elu, gelu, gelu_exact, leaky_relu, log_softmax, relu, relu6, sigmoid, silu, softmax, softplus, tanh, where_,
    };
    pub use crate::layers::batch_norm::BatchNorm;
    pub use crate::layers::dense::{Dense, JitDense};
    pub use crate::layers::dropout::Dropout;
    pub use crate::layers::sequential::Sequential;
    pub use crate::module::{Args, AsInput, Feed, Module, Named};
    pub use crate::random::{Key, PRNGKey};
    pub use crate::scope::{Child, Mutable, Rngs, Scope};
    pub use crate::tensor::{DType, HostFn, Tensor};
    pub use crate::variables::Variables;

    /// Lifts a module struct (Flax's `nn.jit`): keeps the struct and generates `Jit{Name}`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// #[nn::jit]
    /// #[derive(Debug, Clone, PartialEq)]
    /// pub struct Mlp { pub hidden: usize, pub out: usize }
    ///
    /// impl Module for Mlp {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = nn::relu(s.call(&nn::Dense::new(self.hidden), x)?);
    ///         s.call(&nn::Dense::new(self.out), h)
    ///     }
    /// }
    ///
    /// let x = ndarray::array![[0.5f32, -1.0, 2.0]];
    /// let model = JitMlp { hidden: 16, out: 2 };                 // same fields as Mlp
    /// let vars = model.init(nn::PRNGKey(0), &x)?;
    /// assert!(vars.bits_eq(&Mlp { hidden: 16, out: 2 }.init(nn::PRNGKey(0), &x)?));
    /// let y = model.apply(&vars, &x)?;                            // traced and compiled once
    /// assert_eq!(y, Mlp { hidden: 16, out: 2 }.apply(&vars, &x)?);
    /// assert_eq!(nn::Lifted::cache_size(&model), 1);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    ///
    /// Arguments (all optional): `name = FastMlp` (the generated type's name, default
    /// `Jit{Name}`), `variables = ["params", ...]` and `rngs = ["dropout", ...]` (Flax's filters
    /// of what crosses the boundary), and `flax_jit` (reproduce Flax's `nn.jit` numbers: the
    /// RNG fork at every call and jitted init numerics, see
    /// [`LiftOptions::flax_jit`](crate::jit::LiftOptions::flax_jit)). Whatever the Rust name,
    /// an unnamed lifted child is named as in Flax: `JitMlp_0`. See [`crate::jit`] for how
    /// Flax's options map.
    ///
    /// # What it does to the struct: `#[repr(C)]`
    ///
    /// The attribute adds `#[repr(C)]` to the struct, unless it already has `#[repr(C)]` or
    /// `#[repr(transparent)]` (and it rejects `#[repr(packed)]`). The twin has the same fields
    /// with the same `#[repr(C)]` layout, so that [`Lifted::original`] can view a twin as the
    /// original in place, without a copy, and the twin keeps the struct's construction
    /// (`JitMlp { hidden: 16, out: 2 }`). What that changes for you: the fields are laid out in
    /// declaration order (rustc does not reorder them to save padding; put the most-aligned
    /// first if the size matters), and the struct's layout is the C one for FFI purposes too.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// #[nn::jit]
    /// #[derive(Debug, Clone, PartialEq)]
    /// pub struct Padded { pub flag: u8, pub width: u64, pub on: bool }
    /// # impl Module for Padded {
    /// #     type Input = Tensor;
    /// #     type Output = Tensor;
    /// #     fn call(&self, _: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> { Ok(x) }
    /// # }
    ///
    /// // Declaration order with C padding: 1 + 7 (pad) + 8 + 1 + 7 (pad).
    /// assert_eq!(std::mem::size_of::<Padded>(), 24);
    /// assert_eq!(std::mem::size_of::<JitPadded>(), 24);
    /// ```
    ///
    /// # `#[cfg]` on fields, and mistakes
    ///
    /// Fields of a struct with named fields may be `#[cfg]`-gated; the twin and its conversions
    /// carry the same `#[cfg]`. On a mistake (an unknown argument, an item that is not a
    /// struct, a lifetime parameter, `#[cfg]` on a tuple struct's field) the attribute reports
    /// it once and still defines `Jit{Name}`, as an alias of the item, so that code using the
    /// twin is not reported a second time.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// #[nn::jit]
    /// #[derive(Debug, Clone, PartialEq)]
    /// pub struct Gated {
    ///     pub features: usize,
    ///     #[cfg(any())] // configured away: absent from Gated, JitGated and their conversions
    ///     pub debug_name: String,
    /// }
    /// # impl Module for Gated {
    /// #     type Input = Tensor;
    /// #     type Output = Tensor;
    /// #     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    /// #         s.call(&nn::Dense::new(self.features), x)
    /// #     }
    /// # }
    ///
    /// let m = JitGated { features: 2 };
    /// assert_eq!(Gated::from(m.clone()), Gated { features: 2 });
    /// # let _ = m;
    /// ```
    pub use nnjit_macros::jit;
}

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
