//! `Sequential`: Flax's `nn.Sequential`, a list of modules and functions applied in order.
//!
//! Flax names the layers after their position in the list, counting the functions too:
//! `nn.Sequential([nn.Dense(3), nn.relu, nn.Dense(2)])` has `layers_0` and `layers_2`. Built
//! inside another module's `@nn.compact` body (here: called with [`Scope::call`]) its layers
//! belong to that module and take automatic names there (`Dense_0`, `Dense_1`).
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let model = nn::Sequential::new().layer(nn::Dense::new(3)).func(nn::relu).layer(nn::Dense::new(2));
//! let vars = model.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
//! assert_eq!(vars.get("params/layers_2/kernel").unwrap().shape(), &[3, 2]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::module::{ChildName, Module};
use crate::scope::Scope;
use crate::tensor::Tensor;

/// A module of a [`Sequential`]: tensor in, tensor out.
type Layer = dyn Module<Input = Tensor, Output = Tensor> + Send + Sync;

/// One entry of a [`Sequential`].
#[derive(Clone)]
enum Entry {
    Module(Arc<Layer>),
    Func(Arc<dyn Fn(Tensor) -> Tensor + Send + Sync>),
}

/// Flax's `nn.Sequential([...])`: modules and functions applied in order.
///
/// At the top, or as a named child, the layers are `layers_{i}` with `i` the position in the
/// list (functions count); called with [`Scope::call`] inside a parent, the layers are the
/// parent's children with automatic names, as when Flax builds a `Sequential` in
/// `@nn.compact`.
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
///
/// let seq = || nn::Sequential::new().layer(nn::Dense::new(3)).func(nn::relu).layer(nn::Dense::new(2));
/// // Top level: params/layers_0, params/layers_2.
/// let vars = seq().init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
/// let paths: Vec<String> = vars.shapes().into_iter().map(|(p, _)| p).collect();
/// assert_eq!(paths, ["params/layers_0/kernel", "params/layers_0/bias", "params/layers_2/kernel", "params/layers_2/bias"]);
///
/// // Inside a compact parent: the parent's Dense_0 and Dense_1.
/// struct Wrap;
/// impl Module for Wrap {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         s.call(&nn::Sequential::new().layer(nn::Dense::new(3)).func(nn::relu).layer(nn::Dense::new(2)), x)
///     }
/// }
/// let vars = Wrap.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
/// assert!(vars.get("params/Dense_0/kernel").is_some() && vars.get("params/Dense_1/kernel").is_some());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Sequential {
    layers: Vec<Entry>,
}

impl Sequential {
    /// An empty sequence (the identity).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let id = nn::Sequential::new();
    /// assert_eq!(id.len(), 0);
    /// assert_eq!(id.apply(&nnjit::Variables::new(), &[1.0f32, 2.0])?.as_slice(), Some(&[1.0f32, 2.0][..]));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a module.
    ///
    /// ```
    /// use nnjit::nn;
    /// assert_eq!(nn::Sequential::new().layer(nn::Dense::new(2)).len(), 1);
    /// ```
    #[must_use]
    pub fn layer(mut self, module: impl Module<Input = Tensor, Output = Tensor> + Send + Sync + 'static) -> Self {
        self.layers.push(Entry::Module(Arc::new(module)));
        self
    }

    /// Appends a function (`nn.relu`); it takes a position in the list, as in Flax.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Sequential::new().func(nn::relu).func(|x| x * 2.0);
    /// assert_eq!(m.len(), 2);
    /// assert_eq!(m.apply(&nnjit::Variables::new(), &[-1.0f32, 3.0])?.as_slice(), Some(&[0.0f32, 6.0][..]));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn func(mut self, f: impl Fn(Tensor) -> Tensor + Send + Sync + 'static) -> Self {
        self.layers.push(Entry::Func(Arc::new(f)));
        self
    }

    /// Number of entries (modules and functions).
    ///
    /// ```
    /// use nnjit::nn;
    /// assert_eq!(nn::Sequential::new().layer(nn::Dense::new(2)).func(nn::relu).len(), 2);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!(nnjit::nn::Sequential::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl fmt::Debug for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for e in &self.layers {
            match e {
                Entry::Module(m) => list.entry(&m.type_name()),
                Entry::Func(_) => list.entry(&"<function>"),
            };
        }
        list.finish()
    }
}

impl Module for Sequential {
    type Input = Tensor;
    type Output = Tensor;

    /// The layers as this module's children `layers_{i}`.
    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> Result<Tensor> {
        let mut h = x;
        for (i, e) in self.layers.iter().enumerate() {
            h = match e {
                Entry::Module(m) => s.call_named(&format!("layers_{i}"), &**m, h)?,
                Entry::Func(f) => f(h),
            };
        }
        Ok(h)
    }

    fn child_name(&self) -> ChildName<'_> {
        ChildName::Inline
    }

    /// The layers as children of the caller, with automatic names.
    fn call_inline(&self, s: &mut Scope<'_, '_>, x: Tensor) -> Result<Tensor> {
        let mut h = x;
        for e in &self.layers {
            h = match e {
                Entry::Module(m) => s.call(&**m, h)?,
                Entry::Func(f) => f(h),
            };
        }
        Ok(h)
    }
}
