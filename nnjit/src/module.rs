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
}

impl<S: ndarray::Data<Elem = f32>, D: ndarray::Dimension> AsInput for ndarray::ArrayBase<S, D> {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        Ok(self.view().into_dyn())
    }
}

impl AsInput for [f32] {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        Ok(ndarray::ArrayView1::from(self).into_dyn())
    }
}

impl AsInput for Vec<f32> {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        self.as_slice().as_input()
    }
}

impl<const N: usize> AsInput for [f32; N] {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        self.as_slice().as_input()
    }
}

impl<T: AsInput + ?Sized> AsInput for &T {
    fn as_input(&self) -> Result<ArrayViewD<'_, f32>> {
        (**self).as_input()
    }
}

/// A module: Flax linen's `nn.Module` with an `@nn.compact` `__call__`.
///
/// Implement [`call`](Module::call); [`init`](Module::init) and [`apply`](Module::apply) (and
/// their full forms) come for free with Flax's semantics.
///
/// ```
/// use nnjit::nn::{self, Module, Scope};
/// use ndarray::{ArrayD, ArrayViewD};
///
/// #[derive(Debug, Clone)]
/// struct Mlp { hidden: usize, out: usize }
///
/// impl Module for Mlp {
///     fn call(&self, s: &mut Scope, x: ArrayViewD<f32>) -> nnjit::Result<ArrayD<f32>> {
///         let h = s.call(&nn::Dense::new(self.hidden), x)?;   // Dense_0
///         let h = nn::relu(h); // owned: updated in place
///         s.call(&nn::Dense::new(self.out), &h)               // Dense_1
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
    /// The forward pass, run in `scope` (the body of Flax's `@nn.compact __call__`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope};
    /// use ndarray::{ArrayD, ArrayViewD};
    ///
    /// struct Residual;
    /// impl Module for Residual {
    ///     fn call(&self, s: &mut Scope, x: ArrayViewD<f32>) -> nnjit::Result<ArrayD<f32>> {
    ///         let d = x.shape()[x.ndim() - 1];
    ///         Ok(&s.call(&nn::Dense::new(d), &x)? + &x) // x + Dense(d)(x)
    ///     }
    /// }
    /// let vars = Residual.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// let mut zeroed = vars.clone();
    /// zeroed.get_mut("params/Dense_0/kernel").unwrap().fill(0.0);
    /// assert_eq!(Residual.apply(&zeroed, &[1.0f32, 2.0])?, ndarray::arr1(&[1.0f32, 2.0]).into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    fn call(&self, scope: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;

    /// The class name Flax uses for automatic child names (`Dense` → `Dense_0`). Defaults to
    /// the Rust type's name without path and generics.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope};
    /// use ndarray::{ArrayD, ArrayViewD};
    ///
    /// struct Block;
    /// impl Module for Block {
    ///     fn call(&self, s: &mut Scope, x: ArrayViewD<f32>) -> nnjit::Result<ArrayD<f32>> {
    ///         s.call(&nn::Dense::new(2), x)
    ///     }
    /// }
    /// struct Named;
    /// impl Module for Named {
    ///     fn call(&self, s: &mut Scope, x: ArrayViewD<f32>) -> nnjit::Result<ArrayD<f32>> {
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
    fn init(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<Variables>
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
    fn init_with_output(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<(ArrayD<f32>, Variables)>
    where
        Self: Sized,
    {
        let x = x.as_input()?;
        let mut frame = Frame::new(Mode::Init, None, rngs.into(), Mutable::All);
        let y = run(self, &mut frame, x)?;
        Ok((y, frame.out))
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
    fn check_variables(&self, variables: &Variables, x: impl AsInput) -> Result<()>
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
    fn tabulate(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<crate::summary::Summary>
    where
        Self: Sized,
    {
        crate::summary::tabulate(self, rngs.into(), x)
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
    fn apply(&self, variables: &Variables, x: impl AsInput) -> Result<ArrayD<f32>>
    where
        Self: Sized,
    {
        let x = x.as_input()?;
        let mut frame = Frame::new(Mode::Apply, Some(variables), Rngs::none(), Mutable::Nothing);
        run(self, &mut frame, x)
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
        x: impl AsInput,
        rngs: impl Into<Rngs>,
        mutable: Mutable,
    ) -> Result<(ArrayD<f32>, Variables)>
    where
        Self: Sized,
    {
        let x = x.as_input()?;
        let mut frame = Frame::new(Mode::Apply, Some(variables), rngs.into(), mutable);
        let y = run(self, &mut frame, x)?;
        Ok((y, frame.out))
    }
}

pub(crate) fn run<M: Module + ?Sized>(m: &M, frame: &mut Frame<'_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
    let mut scope = Scope::root(frame);
    if scope.frame().trace.is_some() {
        return scope.traced_call(m, x);
    }
    m.call(&mut scope, x)
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

impl<M: Module + ?Sized> Module for Box<M> {
    fn call(&self, scope: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        (**self).call(scope, x)
    }
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
}

impl<M: Module + ?Sized> Module for &M {
    fn call(&self, scope: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        (**self).call(scope, x)
    }
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
}

/// Checks the input has rank ≥ 1 and a non-empty feature axis; returns the feature count.
pub(crate) fn feature_dim(path: impl FnOnce() -> String, x: &ArrayViewD<'_, f32>) -> Result<usize> {
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
