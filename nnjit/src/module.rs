//! The `Module` trait: Flax linen's `init`/`apply` over a compact-style `call`.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let model = nn::Dense::new(2);
//! let x = [1.0f32, 2.0, 3.0];
//! let variables = model.init(nn::PRNGKey(0), &x)?; // variables = model.init(key, x)
//! let y = model.apply(&variables, &x)?; // y = model.apply(variables, x)
//! assert_eq!(y.shape(), &[2]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::scope::{Frame, Mode, Mutable, Rngs, Scope};
use crate::tensor::Tensor;
use crate::variables::Variables;

/// Anything `init`/`apply` accept as input: ndarray arrays and views of any rank (the last axis
/// is the feature axis), and `f32` slices/vectors (1-D).
///
/// ```
/// use nnjit::nn::{self, AsInput, Module};
/// let m = nn::Dense::new(2);
/// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
/// // Arrays, views, slices, vectors and fixed-size arrays all work as inputs.
/// let a = m.apply(&vars, &ndarray::array![1.0f32, 2.0])?;
/// assert_eq!(a, m.apply(&vars, &[1.0f32, 2.0])?);
/// assert_eq!(a, m.apply(&vars, vec![1.0f32, 2.0])?);
/// assert_eq!(a, m.apply(&vars, &[1.0f32, 2.0][..])?);
/// assert_eq!(vec![1.0f32, 2.0].as_input()?.shape(), &[2]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub trait AsInput {
    /// A view of the input as an n-dimensional array.
    ///
    /// ```
    /// use nnjit::nn::AsInput;
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
    /// assert_eq!(x.as_input()?.shape(), &[1, 3]); // rank kept
    /// assert_eq!([1.0f32, 2.0].as_input()?.shape(), &[2]); // slices are 1-D
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>>;

    /// The input's elements, if contiguous in row-major order, and its shape (rank ≤ 4), with
    /// no n-dimensional view built (a lifted apply's fast path).
    #[doc(hidden)]
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        None
    }
}

/// A shape of rank ≤ 4 held inline.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmallShape {
    dims: [usize; 4],
    rank: usize,
}

impl SmallShape {
    /// `shape`, if its rank is at most 4.
    #[inline]
    pub(crate) fn new(shape: &[usize]) -> Option<SmallShape> {
        // Rank by rank: a `copy_from_slice` of a run-time length is a `memcpy` call, which
        // costs a lifted apply at batch 1 more than the copy.
        let dims = match *shape {
            [] => [0; 4],
            [a] => [a, 0, 0, 0],
            [a, b] => [a, b, 0, 0],
            [a, b, c] => [a, b, c, 0],
            [a, b, c, d] => [a, b, c, d],
            _ => return None,
        };
        Some(SmallShape { dims, rank: shape.len() })
    }

    /// The dims.
    #[inline]
    pub(crate) fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }
}

impl<S: ndarray::Data<Elem = f32>, D: ndarray::Dimension> AsInput for ndarray::ArrayBase<S, D> {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        Ok(self.view().into_dyn())
    }
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        Some((self.as_slice()?, SmallShape::new(self.shape())?))
    }
}

impl AsInput for [f32] {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        Ok(ndarray::ArrayView1::from(self).into_dyn())
    }
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        Some((self, SmallShape::new(&[self.len()])?))
    }
}

impl AsInput for Vec<f32> {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        self.as_slice().as_input()
    }
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        self.as_slice().contiguous()
    }
}

impl<const N: usize> AsInput for [f32; N] {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        self.as_slice().as_input()
    }
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        self.as_slice().contiguous()
    }
}

impl<T: AsInput + ?Sized> AsInput for &T {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        (**self).as_input()
    }
    fn contiguous(&self) -> Option<(&[f32], SmallShape)> {
        (**self).contiguous()
    }
}

/// What flows into and out of [`Module::call`]: a [`Tensor`], static arguments (`bool`,
/// integers, strings: Flax's `static_argnums`, part of a lifted module's cache key), and
/// tuples and vectors of these.
///
/// Flax's `def __call__(self, x, train: bool)` is `type Input = (Tensor, bool);` in Rust, and a
/// module returning two arrays has `type Output = (Tensor, Tensor);`.
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
///
/// struct Head;
/// impl Module for Head {
///     type Input = (Tensor, bool); // __call__(self, x, train)
///     type Output = (Tensor, Tensor); // (logits, probabilities)
///     fn call(&self, s: &mut Scope, (x, train): (Tensor, bool)) -> nnjit::Result<(Tensor, Tensor)> {
///         let logits = s.call(&nn::Dense::new(3), x)?;
///         let logits = if train { logits * 0.5 } else { logits };
///         let p = nn::softmax(&logits);
///         Ok((logits, p))
///     }
/// }
/// let x = ndarray::array![[1.0f32, 2.0]];
/// let vars = Head.init(nn::PRNGKey(0), (&x, false))?;
/// let (logits, p) = Head.apply(&vars, (&x, false))?;
/// assert_eq!((logits.shape(), p.shape()), (&[1, 3][..], &[1, 3][..]));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub trait Args: Sized + Clone + Send + Sync + 'static {
    /// What `apply` returns for this type: arrays for tensors.
    type Host;

    /// Converts to the host form (an error for a traced or failed tensor).
    ///
    /// ```
    /// use nnjit::nn::{Args, Tensor};
    /// let (a, flag) = (Tensor::ones(&[2]), true).into_host()?;
    /// assert_eq!((a.len(), flag), (2, true));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn into_host(self) -> Result<Self::Host>;

    /// Calls `f` on each tensor, in order.
    #[doc(hidden)]
    fn for_each_tensor<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor));

    /// Replaces each tensor, in order.
    #[doc(hidden)]
    fn map_tensors(self, f: &mut dyn FnMut(Tensor) -> Tensor) -> Self;

    /// Whether the static (non-tensor) parts are equal.
    #[doc(hidden)]
    fn statics_eq(&self, _other: &Self) -> bool {
        true
    }

    /// The first error a tensor of these carries ([`Tensor::check`] on each).
    #[doc(hidden)]
    fn check_tensors(&self) -> Result<()> {
        let mut failed = Ok(());
        self.for_each_tensor(&mut |t| {
            if failed.is_ok() {
                failed = t.check();
            }
        });
        failed
    }

    /// Hashes the static parts.
    #[doc(hidden)]
    fn hash_statics(&self, _h: &mut dyn std::hash::Hasher) {}

    /// Whether this type is exactly one tensor (lifted applies then read an array in place).
    #[doc(hidden)]
    fn is_single_tensor() -> bool {
        false
    }

    /// `Self` from its one tensor (only when [`Args::is_single_tensor`]).
    #[doc(hidden)]
    fn single_from(_t: Tensor) -> Result<Self> {
        Err(Error::invalid("", "internal: not a single tensor"))
    }

    /// Builds the host form from arrays, in tensor order, with `self` as the template for the
    /// static parts (what a compiled program returns, without wrapping arrays in tensors).
    #[doc(hidden)]
    fn host_from_arrays(&self, arrays: &mut dyn Iterator<Item = ArrayD<f32>>) -> Result<Self::Host>;

    /// The host form of a program's only output when `Self` is one tensor, with no template
    /// needed; `Err` gives the array back otherwise (for [`host_from_arrays`](Args::host_from_arrays)).
    #[doc(hidden)]
    fn single_host(array: ArrayD<f32>) -> std::result::Result<Self::Host, ArrayD<f32>> {
        Err(array)
    }
}

impl Args for Tensor {
    type Host = ArrayD<f32>;
    fn into_host(self) -> Result<ArrayD<f32>> {
        self.into_array()
    }
    fn for_each_tensor<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor)) {
        f(self);
    }
    fn check_tensors(&self) -> Result<()> {
        self.check()
    }
    fn map_tensors(self, f: &mut dyn FnMut(Tensor) -> Tensor) -> Self {
        f(self)
    }
    fn host_from_arrays(&self, arrays: &mut dyn Iterator<Item = ArrayD<f32>>) -> Result<ArrayD<f32>> {
        arrays.next().ok_or_else(|| Error::invalid("", "internal: too few program outputs"))
    }
    fn single_host(array: ArrayD<f32>) -> std::result::Result<ArrayD<f32>, ArrayD<f32>> {
        Ok(array)
    }
    fn is_single_tensor() -> bool {
        true
    }
    fn single_from(t: Tensor) -> Result<Self> {
        Ok(t)
    }
}

impl Args for Vec<Tensor> {
    type Host = Vec<ArrayD<f32>>;
    fn into_host(self) -> Result<Self::Host> {
        self.into_iter().map(Tensor::into_array).collect()
    }
    fn for_each_tensor<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor)) {
        self.iter().for_each(f);
    }
    fn map_tensors(self, f: &mut dyn FnMut(Tensor) -> Tensor) -> Self {
        self.into_iter().map(f).collect()
    }
    fn statics_eq(&self, other: &Self) -> bool {
        self.len() == other.len()
    }
    fn hash_statics(&self, h: &mut dyn std::hash::Hasher) {
        h.write_usize(self.len());
    }
    fn host_from_arrays(&self, arrays: &mut dyn Iterator<Item = ArrayD<f32>>) -> Result<Self::Host> {
        self.iter().map(|t| t.host_from_arrays(arrays)).collect()
    }
}

macro_rules! static_args {
    ($($t:ty),*) => {$(
        impl Args for $t {
            type Host = $t;
            fn into_host(self) -> Result<$t> {
                Ok(self)
            }
            fn for_each_tensor<'a>(&'a self, _f: &mut dyn FnMut(&'a Tensor)) {}
            fn map_tensors(self, _f: &mut dyn FnMut(Tensor) -> Tensor) -> Self {
                self
            }
            fn statics_eq(&self, other: &Self) -> bool {
                self == other
            }
            fn hash_statics(&self, mut h: &mut dyn std::hash::Hasher) {
                std::hash::Hash::hash(self, &mut h);
            }
            fn host_from_arrays(&self, _arrays: &mut dyn Iterator<Item = ArrayD<f32>>) -> Result<$t> {
                Ok(self.clone())
            }
        }
        impl Feed<$t> for $t {
            fn feed(self) -> Result<$t> {
                Ok(self)
            }
        }
    )*};
}

static_args!(bool, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, String, &'static str, ());

macro_rules! tuple_args {
    ($(($($n:ident $i:tt),*))*) => {$(
        impl<$($n: Args),*> Args for ($($n,)*) {
            type Host = ($($n::Host,)*);
            fn into_host(self) -> Result<Self::Host> {
                Ok(($(self.$i.into_host()?,)*))
            }
            fn for_each_tensor<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor)) {
                $(self.$i.for_each_tensor(f);)*
            }
            fn map_tensors(self, f: &mut dyn FnMut(Tensor) -> Tensor) -> Self {
                ($(self.$i.map_tensors(f),)*)
            }
            fn statics_eq(&self, other: &Self) -> bool {
                $(self.$i.statics_eq(&other.$i))&&*
            }
            fn hash_statics(&self, h: &mut dyn std::hash::Hasher) {
                $(self.$i.hash_statics(h);)*
            }
            fn host_from_arrays(&self, arrays: &mut dyn Iterator<Item = ArrayD<f32>>) -> Result<Self::Host> {
                Ok(($(self.$i.host_from_arrays(arrays)?,)*))
            }
        }
    )*};
}

tuple_args! {
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
}

/// What `init`/`apply` accept for a module's [`Module::Input`]: arrays, views, slices and
/// vectors for a [`Tensor`] (see [`AsInput`]), the value itself for a static argument, and
/// tuples of these (`(&x, true)` for `(Tensor, bool)`).
///
/// ```
/// use nnjit::nn::{Feed, Tensor};
/// let t: Tensor = (&[1.0f32, 2.0]).feed()?;
/// assert_eq!(t.shape(), &[2]);
/// let (t, train): (Tensor, bool) = (&ndarray::array![[1.0f32]], true).feed()?;
/// assert_eq!((t.shape(), train), (&[1, 1][..], true));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub trait Feed<A: Args> {
    /// Converts to the module's input (arrays are copied into tensors).
    fn feed(self) -> Result<A>;

    /// The input as one f32 view, if it is a single array (lifted applies read it in place).
    #[doc(hidden)]
    fn single_view(&self) -> Option<ArrayViewD<'_, f32>> {
        None
    }

    /// The input as one contiguous f32 slice and its shape, if it is a single such array.
    #[doc(hidden)]
    fn single_contiguous(&self) -> Option<(&[f32], SmallShape)> {
        None
    }
}

impl<T: AsInput> Feed<Tensor> for T {
    fn feed(self) -> Result<Tensor> {
        // A contiguous array of rank ≤ 4 (the usual input) is copied without an n-dimensional view.
        if let Some((data, shape)) = self.contiguous() {
            return Ok(Tensor::from_slice(shape.dims(), data));
        }
        Ok(Tensor::from(self.as_input()?))
    }
    fn single_view(&self) -> Option<ArrayViewD<'_, f32>> {
        self.as_input().ok()
    }
    fn single_contiguous(&self) -> Option<(&[f32], SmallShape)> {
        self.contiguous()
    }
}

impl Feed<Tensor> for Tensor {
    fn feed(self) -> Result<Tensor> {
        self.check()?;
        Ok(self)
    }
}

impl Feed<Tensor> for &Tensor {
    fn feed(self) -> Result<Tensor> {
        self.check()?;
        Ok(self.clone())
    }
}

impl<T: AsInput> Feed<Vec<Tensor>> for Vec<T> {
    fn feed(self) -> Result<Vec<Tensor>> {
        self.iter().map(|x| Ok(Tensor::from(x.as_input()?))).collect()
    }
}

macro_rules! tuple_feed {
    ($(($($f:ident $a:ident $i:tt),*))*) => {$(
        impl<$($a: Args, $f: Feed<$a>),*> Feed<($($a,)*)> for ($($f,)*) {
            fn feed(self) -> Result<($($a,)*)> {
                Ok(($(self.$i.feed()?,)*))
            }
        }
    )*};
}

tuple_feed! {
    (FA A 0, FB B 1)
    (FA A 0, FB B 1, FC C 2)
    (FA A 0, FB B 1, FC C 2, FD D 3)
}

/// A module: Flax linen's `nn.Module` with an `@nn.compact` `__call__`.
///
/// Implement [`call`](Module::call) on [`Tensor`]s; [`init`](Module::init) and
/// [`apply`](Module::apply) (and their full forms) come for free with Flax's semantics.
/// `Input` and `Output` say what `call` takes and returns (see [`Args`]): usually `Tensor`.
///
/// Bodies must be pure functions of their inputs, fields, variables and RNG keys (JAX's
/// contract for traced functions): no globals, no interior mutability, no I/O. A lifted
/// module (`#[nn::jit]`) runs its body once per input shape to compile it.
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
///
/// #[derive(Debug, Clone)]
/// struct Mlp { hidden: usize, out: usize }
///
/// impl Module for Mlp {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let h = s.call(&nn::Dense::new(self.hidden), x)?;   // Dense_0
///         let h = nn::relu(h);
///         s.call(&nn::Dense::new(self.out), h)                // Dense_1
///     }
/// }
///
/// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
/// let model = Mlp { hidden: 8, out: 2 };
/// let vars = model.init(nn::PRNGKey(0), &x)?;
/// assert_eq!(vars.get("params/Dense_1/kernel").unwrap().shape(), &[8, 2]);
/// let y = model.apply(&vars, &x)?;
/// assert_eq!(y.shape(), &[1, 2]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub trait Module {
    /// What `call` takes: [`Tensor`], or tuples with static arguments (see [`Args`]).
    type Input: Args;
    /// What `call` returns: [`Tensor`] or tuples of tensors.
    type Output: Args;

    /// The forward pass, run in `scope` (the body of Flax's `@nn.compact __call__`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Residual;
    /// impl Module for Residual {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let d = x.shape()[x.ndim() - 1]; // shapes may steer code; values may not
    ///         Ok(s.call(&nn::Dense::new(d), &x)? + &x) // x + Dense(d)(x)
    ///     }
    /// }
    /// let vars = Residual.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// let mut zeroed = vars.clone();
    /// zeroed.get_mut("params/Dense_0/kernel").unwrap().fill(0.0);
    /// assert_eq!(Residual.apply(&zeroed, &[1.0f32, 2.0])?, ndarray::arr1(&[1.0f32, 2.0]).into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn call(&self, scope: &mut Scope<'_, '_>, x: Self::Input) -> Result<Self::Output>;

    /// The class name Flax uses for automatic child names (`Dense` → `Dense_0`). Defaults to
    /// the Rust type's name without path and generics.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Block;
    /// impl Module for Block {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.call(&nn::Dense::new(2), x)
    ///     }
    /// }
    /// struct Named;
    /// impl Module for Named {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.call(&Block, x)
    ///     }
    /// }
    /// assert_eq!(nn::Dense::new(2).type_name(), "Dense");
    /// assert_eq!(Block.type_name(), "Block");
    /// let vars = Named.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert!(vars.get("params/Block_0/Dense_0/kernel").is_some()); // automatic names use it
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn type_name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// How [`Scope::call`] names this module as a child: automatically (the default), by its
    /// own name ([`Named`]), or not at all: the module runs in its caller's scope
    /// ([`nn::Sequential`](crate::nn::Sequential) built in `@nn.compact`).
    #[doc(hidden)]
    fn child_name(&self) -> ChildName<'_> {
        ChildName::Auto
    }

    /// The body run in the caller's scope when [`Module::child_name`] is
    /// [`ChildName::Inline`].
    #[doc(hidden)]
    fn call_inline(&self, scope: &mut Scope<'_, '_>, x: Self::Input) -> Result<Self::Output> {
        self.call(scope, x)
    }

    /// This module with its own name as a child (Flax's `nn.Dense(4, name="head")`): a
    /// [`Scope::call`] of the result creates the child `name` instead of `Dense_0`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// /// `Dense(3) -> relu -> Dense(4, name="head")`.
    /// struct Named;
    /// impl Module for Named {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = nn::relu(s.call(&nn::Dense::new(3), x)?);
    ///         s.call(&nn::Dense::new(4).named("head"), h)
    ///     }
    /// }
    /// let vars = Named.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert_eq!(vars.get("params/head/kernel").unwrap().shape(), &[3, 4]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn named(self, name: impl Into<String>) -> crate::module::Named<Self>
    where
        Self: Sized,
    {
        Named { name: name.into(), module: self }
    }

    /// Creates the module's variables (Flax's `init`): every collection the module makes.
    ///
    /// `rngs` is a [`Key`](crate::random::Key) (the `params` stream) or [`Rngs`].
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Rngs};
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &x)?;
    /// let kernel = vars.get("params/kernel").unwrap();
    /// assert_eq!(kernel[[0, 0]].to_bits(), 0x3D43_5FBA); // Flax's nn.Dense(4).init(PRNGKey(0), x)
    /// // A key is shorthand for Rngs::new(key), i.e. rngs={'params': key}:
    /// assert!(vars.bits_eq(&nn::Dense::new(4).init(Rngs::new(nn::PRNGKey(0)), &x)?));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn init(&self, rngs: impl Into<Rngs>, x: impl Feed<Self::Input>) -> Result<Variables>
    where
        Self: Sized,
    {
        self.init_with_output(rngs, x).map(|(_, v)| v)
    }

    /// Flax's `init_with_output`: the output of the initializing call and the variables.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let x = [1.0f32, 2.0, 3.0];
    /// let model = nn::Dense::new(4);
    /// let (y, vars) = model.init_with_output(nn::PRNGKey(0), &x)?;
    /// assert_eq!(y, model.apply(&vars, &x)?);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn init_with_output(
        &self,
        rngs: impl Into<Rngs>,
        x: impl Feed<Self::Input>,
    ) -> Result<(<Self::Output as Args>::Host, Variables)>
    where
        Self: Sized,
    {
        let mut frame = Frame::new(Mode::Init, None, rngs.into(), Mutable::All);
        let y = run(self, &mut frame, x.feed()?)?;
        Ok((y.into_host()?, frame.out))
    }

    /// Checks `variables` against what this module creates for input `x` (Flax's
    /// `jax.eval_shape(model.init, ...)` compared with a checkpoint): the first missing
    /// ([`Error::MissingVariable`]), mis-shaped ([`Error::VariableShape`]) or extra
    /// ([`Error::UnusedVariable`]) variable is an error. This runs an init, with a `params`
    /// stream only.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let x = [1.0f32, 2.0, 3.0];
    /// let mut vars = nn::Dense::new(4).init(nn::PRNGKey(0), &x)?;
    /// assert!(nn::Dense::new(4).check_variables(&vars, &x).is_ok());
    /// vars.insert("params/extra", nnjit::ndarray::ArrayD::zeros(nnjit::ndarray::IxDyn(&[1])))?;
    /// assert!(matches!(nn::Dense::new(4).check_variables(&vars, &x), Err(nnjit::Error::UnusedVariable { .. })));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn check_variables(&self, variables: &Variables, x: impl Feed<Self::Input>) -> Result<()>
    where
        Self: Sized,
    {
        let expected = self.init(crate::random::PRNGKey(0), x)?;
        let split = |path: &str| {
            let (c, rest) = path.split_once('/').unwrap_or((path, ""));
            (c.to_string(), format!("/{rest}"))
        };
        for (path, leaf) in expected.leaves() {
            let (collection, var) = split(&path);
            match variables.get(&path) {
                None => return Err(Error::MissingVariable { collection, path: var }),
                Some(a) if a.shape() != leaf.array().shape() => {
                    return Err(Error::VariableShape {
                        collection,
                        path: var,
                        expected: leaf.array().shape().to_vec(),
                        found: a.shape().to_vec(),
                    })
                }
                Some(_) => {}
            }
        }
        for (path, _) in variables.leaves() {
            if expected.get(&path).is_none() {
                let (collection, var) = split(&path);
                return Err(Error::UnusedVariable { collection, path: var });
            }
        }
        Ok(())
    }

    /// A Flax-style summary (`Module.tabulate`): the initializing call with one row per module
    /// path (input/output shapes, the variables each module owns) and totals per collection.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let table = nn::Dense::new(4).tabulate(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// assert_eq!(table.rows().len(), 1);
    /// assert_eq!(table.total("params"), 16); // kernel 3·4 + bias 4
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn tabulate(&self, rngs: impl Into<Rngs>, x: impl Feed<Self::Input>) -> Result<crate::summary::Summary>
    where
        Self: Sized,
    {
        crate::summary::tabulate(self, rngs.into(), x.feed()?)
    }

    /// The forward pass with `variables` (Flax's `apply(variables, x)`): no RNG streams, no
    /// mutable collections.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let model = nn::Dense::new(4);
    /// let vars = model.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let y = model.apply(&vars, &ndarray::array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]])?;
    /// assert_eq!(y.shape(), &[2, 4]); // batch axes are kept
    /// assert!(y.index_axis(ndarray::Axis(0), 1).iter().all(|&v| v == 0.0)); // zero input, zero bias
    /// assert!(model.apply(&vars, &[1.0f32, 2.0]).is_err()); // kernel is (3, 4)
    /// assert!(model.apply(&nnjit::Variables::new(), &[1.0f32, 2.0, 3.0]).is_err()); // missing params
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn apply(&self, variables: &Variables, x: impl Feed<Self::Input>) -> Result<<Self::Output as Args>::Host>
    where
        Self: Sized,
    {
        apply_plain(self, variables, x)
    }

    /// The full `apply`: named RNG streams (`rngs={'dropout': key}`) and mutable collections
    /// (`mutable=['batch_stats']`). Returns the output and the updated mutable collections.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let x = ndarray::Array1::<f32>::ones(16);
    /// let drop = nn::Dropout::new(0.5);
    /// let vars = nnjit::Variables::new();
    /// let (a, updates) = drop.apply_with(&vars, &x, Rngs::none().with("dropout", nn::PRNGKey(1)), Mutable::Nothing)?;
    /// let (b, _) = drop.apply_with(&vars, &x, Rngs::none().with("dropout", nn::PRNGKey(1)), Mutable::Nothing)?;
    /// assert_eq!(a, b); // same key, same mask
    /// assert!(updates.is_empty()); // nothing was mutable
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn apply_with(
        &self,
        variables: &Variables,
        x: impl Feed<Self::Input>,
        rngs: impl Into<Rngs>,
        mutable: Mutable,
    ) -> Result<(<Self::Output as Args>::Host, Variables)>
    where
        Self: Sized,
    {
        let mut frame = Frame::new(Mode::Apply, Some(variables), rngs.into(), mutable);
        let y = run(self, &mut frame, x.feed()?)?;
        Ok((y.into_host()?, frame.out))
    }
}

/// [`Module::apply`]'s body, for a module that overrides `apply` with a faster path for some
/// inputs and falls back to it for the others.
pub(crate) fn apply_plain<M: Module>(
    m: &M,
    variables: &Variables,
    x: impl Feed<M::Input>,
) -> Result<<M::Output as Args>::Host> {
    let mut frame = Frame::new(Mode::Apply, Some(variables), Rngs::none(), Mutable::Nothing);
    run(m, &mut frame, x.feed()?)?.into_host()
}

/// Runs `m` at the root of `frame`, checking the output for failed tensors.
pub(crate) fn run<M: Module + ?Sized>(m: &M, frame: &mut Frame<'_>, x: M::Input) -> Result<M::Output> {
    let mut scope = Scope::root(frame);
    scope.set_module(m.type_name());
    scope.run_module(m, x)
}

/// `a::b::Name<T>` → `Name`.
///
/// Runs on every child call, so it scans back over the last segment only (the `str` pattern
/// machinery cost ~1,200 instructions per call).
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    // Only generic names end with '>'; otherwise the name is the bytes after the last ':',
    // found by scanning back over the name itself (a few bytes), not the whole path.
    let no_generics = if full.ends_with('>') { full.find('<').map_or(full, |end| &full[..end]) } else { full };
    let start = no_generics.bytes().rposition(|b| b == b':').map_or(0, |i| i + 1);
    &no_generics[start..]
}

/// `Module` for pointers to a module (`Box<M>`, `&M`): every method forwards to the pointee,
/// so a boxed or borrowed module is named, called and inlined as the module itself.
macro_rules! forward_module {
    ($($ptr:ty),*) => {$(
        impl<M: Module + ?Sized> Module for $ptr {
            type Input = M::Input;
            type Output = M::Output;
            fn call(&self, scope: &mut Scope<'_, '_>, x: M::Input) -> Result<M::Output> {
                (**self).call(scope, x)
            }
            fn type_name(&self) -> &'static str {
                (**self).type_name()
            }
            fn child_name(&self) -> ChildName<'_> {
                (**self).child_name()
            }
            fn call_inline(&self, scope: &mut Scope<'_, '_>, x: M::Input) -> Result<M::Output> {
                (**self).call_inline(scope, x)
            }
        }
    )*};
}
forward_module!(Box<M>, &M);

/// How a module is named as a child (see [`Module::child_name`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildName<'a> {
    /// Flax's automatic name, `{TypeName}_{index}`.
    Auto,
    /// An explicit name (`name="head"`).
    Given(&'a str),
    /// No scope of its own: the module's children belong to the caller.
    Inline,
}

/// A module with its own name as a child, made by [`Module::named`] (Flax's `name=`).
///
/// ```
/// use nnjit::nn::{self, Module};
/// let head = nn::Dense::new(4).named("head");
/// assert_eq!(head.name(), "head");
/// assert_eq!(head.module().features, 4);
/// let x = [1.0f32, 2.0];
/// // At the top a name changes nothing (Flax ignores a top-level module's name too).
/// assert!(head.init(nn::PRNGKey(0), &x)?.bits_eq(&nn::Dense::new(4).init(nn::PRNGKey(0), &x)?));
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Named<M> {
    name: String,
    module: M,
}

impl<M> Named<M> {
    /// The child name.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// assert_eq!(nn::Dropout::new(0.1).named("drop").name(), "drop");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The named module.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// assert_eq!(nn::Dense::new(3).named("enc").module().features, 3);
    /// ```
    #[must_use]
    pub fn module(&self) -> &M {
        &self.module
    }
}

impl<M: Module> Module for Named<M> {
    type Input = M::Input;
    type Output = M::Output;
    fn call(&self, scope: &mut Scope<'_, '_>, x: M::Input) -> Result<M::Output> {
        self.module.call(scope, x)
    }
    fn type_name(&self) -> &'static str {
        self.module.type_name()
    }
    fn child_name(&self) -> ChildName<'_> {
        ChildName::Given(&self.name)
    }
}

/// Checks the input has rank ≥ 1 and a non-empty feature axis; returns the feature count.
pub(crate) fn feature_dim(path: impl FnOnce() -> String, x: &Tensor) -> Result<usize> {
    x.check()?;
    match x.shape().last() {
        Some(&d) if d > 0 => Ok(d),
        _ => Err(Error::InputShape {
            path: path(),
            expected: "rank >= 1 and a non-empty last (feature) axis".into(),
            found: x.shape().to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("a::b::Dense"), "Dense");
        assert_eq!(short_type_name("a::Mlp<f32, b::C>"), "Mlp");
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}
