//! The `Module` trait: Flax linen's `init`/`apply` over a compact-style `call`.

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};
use crate::scope::{Frame, Mode, Mutable, Rngs, Scope};
use crate::variables::Variables;

/// Anything `init`/`apply` accept as input: ndarray arrays and views of any rank (the last axis
/// is the feature axis), and `f32` slices/vectors (1-D).
pub trait AsInput {
    /// A view of the input as an n-dimensional array.
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
///         let h = nn::relu(&h);
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
    fn call(&self, scope: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>>;

    /// The class name Flax uses for automatic child names (`Dense` → `Dense_0`). Defaults to
    /// the Rust type's name without path and generics.
    fn type_name(&self) -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// Creates the module's variables (Flax's `init`): every collection the module makes.
    ///
    /// `rngs` is a [`Key`](crate::random::Key) (the `params` stream) or [`Rngs`].
    fn init(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<Variables>
    where
        Self: Sized,
    {
        self.init_with_output(rngs, x).map(|(_, v)| v)
    }

    /// Flax's `init_with_output`: the output of the initializing call and the variables.
    fn init_with_output(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<(ArrayD<f32>, Variables)>
    where
        Self: Sized,
    {
        let x = x.as_input()?;
        let mut frame = Frame::new(Mode::Init, None, rngs.into(), Mutable::All);
        let y = run(self, &mut frame, x)?;
        Ok((y, frame.out))
    }

    /// A Flax-style summary (`Module.tabulate`): the initializing call with one row per module
    /// path (input/output shapes, the variables each module owns) and totals per collection.
    fn tabulate(&self, rngs: impl Into<Rngs>, x: impl AsInput) -> Result<crate::summary::Summary>
    where
        Self: Sized,
    {
        crate::summary::tabulate(self, rngs.into(), x)
    }

    /// The forward pass with `variables` (Flax's `apply(variables, x)`): no RNG streams, no
    /// mutable collections.
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
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let no_generics = full.split('<').next().unwrap_or(full);
    no_generics.rsplit("::").next().unwrap_or(no_generics)
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
