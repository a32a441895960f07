//! What module bodies call: methods, operators and the `nn::` functions on [`Tensor`]. Each
//! builds one primitive [`Op`] and hands it to [`apply`], which computes it (eager) or records
//! it (traced).

use std::fmt;
use std::sync::Arc;

use ndarray::ArrayD;

use super::op::{Binary, Compare, Data, DataMut, Op, Reduce, Sampler, Unary};
use super::trace::Source;
use super::{DType, Meta, MetaRef, Repr, Shared, Tensor, Value};
use crate::error::{Error, Result};
use crate::kernel::Activation;

/// Runs `op` on `ins`: computed at once when every input is eager, recorded in the graph when
/// any is traced (eager inputs then become constants of the program), failed when any input
/// failed or the shapes do not fit.
pub(crate) fn apply(op: Op, ins: &[&Tensor]) -> Tensor {
    if let Some(t) = eager_fast(&op, ins) {
        return t;
    }
    let mut graph = None;
    for t in ins {
        match &t.repr {
            Repr::Failed(e) => return Tensor { repr: Repr::Failed(Arc::clone(e)) },
            Repr::Traced(tr) => match &graph {
                None => graph = Some(Arc::clone(&tr.graph)),
                Some(g) if Arc::ptr_eq(g, &tr.graph) => {}
                Some(_) => {
                    return Tensor::failed(Error::invalid(
                        "",
                        format!(
                            "{}: tensors of two different traces were mixed (a traced tensor escaped its module)",
                            op.name()
                        ),
                    ))
                }
            },
            Repr::Eager(_) => {}
        }
    }
    // Shapes on the stack for the usual ≤ 4 inputs (eager ops run on every call).
    let empty = MetaRef { dtype: DType::F32, shape: &[] };
    let mut small = [empty; 4];
    let big: Vec<MetaRef<'_>>;
    let metas: &[MetaRef<'_>] = if ins.len() <= 4 {
        for (m, t) in small.iter_mut().zip(ins) {
            *m = t.meta_ref().unwrap_or(empty);
        }
        &small[..ins.len()]
    } else {
        big = ins.iter().map(|t| t.meta_ref().unwrap_or(empty)).collect();
        &big
    };
    let meta = match op.infer(metas) {
        Ok(m) => m,
        Err(e) => return Tensor::failed(e),
    };
    match graph {
        Some(g) => {
            let mut ids = Vec::with_capacity(ins.len());
            for t in ins {
                let id = match &t.repr {
                    Repr::Traced(tr) => tr.node,
                    Repr::Eager(v) => match g.push(Source::Const(v.clone()), Vec::new(), v.meta()).repr {
                        Repr::Traced(tr) => tr.node,
                        _ => unreachable!("push returns a traced tensor"),
                    },
                    Repr::Failed(_) => unreachable!("failed inputs returned above"),
                };
                ids.push(id);
            }
            g.push(Source::Op(op), ids, meta)
        }
        None => match eval_eager(&op, ins, &meta) {
            Ok(v) => Tensor::eager(v),
            Err(e) => Tensor::failed(e),
        },
    }
}

/// An eager f32 input's array, or `None`.
fn eager_f32(t: &Tensor) -> Option<&Shared<f32>> {
    match &t.repr {
        Repr::Eager(Value::F32(a)) => Some(a),
        _ => None,
    }
}

/// The ops of every layer call (Dense's `linear`, activations, same-shape or scalar
/// arithmetic) on eager f32 inputs of rank ≤ 4, computed without the general path's shape
/// inference (whose output shape is a `Vec`: one more allocation per op). `None` sends
/// everything else (traced or failed inputs, other ops, broadcasting, shapes that do not fit)
/// to [`apply`]'s general path, which computes the same value with the same [`Op::eval`], or
/// reports the error.
fn eager_fast(op: &Op, ins: &[&Tensor]) -> Option<Tensor> {
    Some(match eager_fast_eval(op, ins)? {
        Ok(FastOut { y, dims, rank }) => match Shared::from_vec(&dims[..rank], y) {
            Ok(a) => Tensor::eager(Value::F32(a)),
            Err(e) => Tensor::failed(e),
        },
        Err(e) => Tensor::failed(e),
    })
}

/// What [`eager_fast_eval`] computed: the elements and the shape.
pub(crate) struct FastOut {
    y: Vec<f32>,
    dims: [usize; 4],
    rank: usize,
}

impl FastOut {
    /// The values as an array of their shape.
    pub(crate) fn into_array(self) -> Result<ArrayD<f32>> {
        super::array_from_vec(&self.dims[..self.rank], self.y)
    }
}

/// Dense's arithmetic ([`Tensor::linear`]) on row-major elements and shapes read in place:
/// `None` where they do not fit one fast evaluation (the caller's general path computes the
/// same values, or reports the error).
pub(crate) fn linear_data(
    x: (&[f32], &[usize]),
    kernel: (&[f32], &[usize]),
    bias: Option<(&[f32], &[usize])>,
) -> Option<Result<FastOut>> {
    let op = Op::Linear { bias: bias.is_some(), act: Activation::Identity };
    let (xd, kd) = ((Data::F32(x.0), x.1), (Data::F32(kernel.0), kernel.1));
    match bias {
        Some((b, bs)) => fast_eval_data(&op, &[xd, kd, (Data::F32(b), bs)]),
        None => fast_eval_data(&op, &[xd, kd]),
    }
}

/// [`eager_fast`]'s computation, before the result is wrapped as a tensor.
fn eager_fast_eval(op: &Op, ins: &[&Tensor]) -> Option<Result<FastOut>> {
    let empty: (Data<'_>, &[usize]) = (Data::F32(&[]), &[]);
    let mut data = [empty; 3];
    if ins.len() > data.len() {
        return None;
    }
    for (d, t) in data.iter_mut().zip(ins) {
        let a = eager_f32(t)?;
        *d = (Data::F32(a.slice()), a.shape());
    }
    fast_eval_data(op, &data[..ins.len()])
}

/// [`eager_fast_eval`] on the inputs' elements and shapes (f32, row-major).
fn fast_eval_data(op: &Op, data: &[(Data<'_>, &[usize])]) -> Option<Result<FastOut>> {
    let mut dims = [0usize; 4];
    let rank = match (op, data) {
        (Op::Linear { bias, .. }, [(_, x), (_, k), rest @ ..]) => {
            let (&[d, f], Some(&last)) = (*k, x.last()) else { return None };
            let bias_fits = match (bias, rest) {
                (true, [(_, b)]) => matches!(b, [bf] if *bf == f),
                (false, []) => true,
                _ => false,
            };
            if !bias_fits || last != d || x.len() > dims.len() {
                return None;
            }
            dims[..x.len()].copy_from_slice(x);
            dims[x.len() - 1] = f;
            x.len()
        }
        (Op::Unary(_), [(_, x)]) => {
            dims.get_mut(..x.len())?.copy_from_slice(x);
            x.len()
        }
        (Op::Binary(_), [(_, a), (_, b)]) => {
            let s = if b.is_empty() || crate::variables::eq_short(a, b) {
                a
            } else if a.is_empty() {
                b
            } else {
                return None;
            };
            dims.get_mut(..s.len())?.copy_from_slice(s);
            s.len()
        }
        _ => return None,
    };
    let shape = &dims[..rank];
    let n = crate::fallible::checked_len("tensor", shape).ok()?;
    let mut y = crate::fallible::try_zeroed("tensor", n).ok()?;
    Some(op.eval(data, DataMut::F32(&mut y), shape).map(|()| FastOut { y, dims, rank }))
}

/// Allocates the output of `meta` and computes `op` into it.
pub(crate) fn eval_eager(op: &Op, ins: &[&Tensor], meta: &Meta) -> Result<Value> {
    fn value<'t>(t: &'t Tensor) -> Result<(Data<'t>, &'t [usize])> {
        match &t.repr {
            Repr::Eager(v) => Ok((v.data(), v.shape())),
            _ => Err(Error::invalid("", "internal: eager op on a non-eager tensor")),
        }
    }
    let empty: (Data<'_>, &[usize]) = (Data::F32(&[]), &[]);
    let mut small = [empty; 4];
    let big: Vec<(Data<'_>, &[usize])>;
    let data: &[(Data<'_>, &[usize])] = if ins.len() <= 4 {
        for (d, t) in small.iter_mut().zip(ins) {
            *d = value(t)?;
        }
        &small[..ins.len()]
    } else {
        big = ins.iter().map(|t| value(t)).collect::<Result<_>>()?;
        &big
    };
    let n = crate::fallible::checked_len("tensor", &meta.shape)?;
    Ok(match meta.dtype {
        DType::F32 => {
            let mut y = crate::fallible::try_zeroed("tensor", n)?;
            op.eval(data, DataMut::F32(&mut y), &meta.shape)?;
            Value::F32(Shared::from_vec(&meta.shape, y)?)
        }
        DType::I32 => {
            let mut y = try_vec("tensor", n, 0i32)?;
            op.eval(data, DataMut::I32(&mut y), &meta.shape)?;
            Value::I32(Shared::from_vec(&meta.shape, y)?)
        }
        DType::U32 => {
            let mut y = try_vec("tensor", n, 0u32)?;
            op.eval(data, DataMut::U32(&mut y), &meta.shape)?;
            Value::U32(Shared::from_vec(&meta.shape, y)?)
        }
        DType::Bool => {
            let mut y = try_vec("tensor", n, false)?;
            op.eval(data, DataMut::Bool(&mut y), &meta.shape)?;
            Value::Bool(Shared::from_vec(&meta.shape, y)?)
        }
    })
}

pub(crate) fn try_vec<T: Clone>(what: &str, n: usize, v: T) -> Result<Vec<T>> {
    let mut out = crate::fallible::try_with_capacity(what, n)?;
    out.resize(n, v);
    Ok(out)
}

/// A host function for [`Tensor::host_callback`]: runs on the current values on every call
/// of a compiled program (JAX's `jax.pure_callback`).
///
/// ```
/// use nnjit::nn::HostFn;
/// let double = HostFn::new("double", &[2], |xs| Ok(&xs[0] * 2.0));
/// assert_eq!(double.name(), "double");
/// assert_eq!(double.out_shape(), &[2]);
/// ```
#[derive(Clone)]
pub struct HostFn {
    name: Arc<str>,
    out_shape: Vec<usize>,
    #[allow(clippy::type_complexity)]
    f: Arc<dyn Fn(&[ArrayD<f32>]) -> Result<ArrayD<f32>> + Send + Sync>,
}

impl HostFn {
    /// Wraps `f`, which must return an array of `out_shape`.
    ///
    /// ```
    /// use nnjit::nn::{HostFn, Tensor};
    /// let sort = HostFn::new("sort", &[3], |xs| {
    ///     let mut v = xs[0].iter().copied().collect::<Vec<f32>>();
    ///     v.sort_by(f32::total_cmp);
    ///     Ok(ndarray::ArrayD::from_shape_vec(vec![3], v).unwrap())
    /// });
    /// let y = Tensor::host_callback(&[&Tensor::from(ndarray::array![3.0f32, 1.0, 2.0])], sort);
    /// assert_eq!(y.to_array()?, ndarray::array![1.0f32, 2.0, 3.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn new(
        name: &str,
        out_shape: &[usize],
        f: impl Fn(&[ArrayD<f32>]) -> Result<ArrayD<f32>> + Send + Sync + 'static,
    ) -> Self {
        HostFn { name: Arc::from(name), out_shape: out_shape.to_vec(), f: Arc::new(f) }
    }

    /// The name `lower()` prints.
    ///
    /// ```
    /// assert_eq!(nnjit::nn::HostFn::new("f", &[], |x| Ok(x[0].clone())).name(), "f");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared output shape.
    ///
    /// ```
    /// assert_eq!(nnjit::nn::HostFn::new("f", &[4], |x| Ok(x[0].clone())).out_shape(), &[4]);
    /// ```
    #[must_use]
    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }

    pub(crate) fn call(&self, xs: &[ArrayD<f32>]) -> Result<ArrayD<f32>> {
        (self.f)(xs)
    }
}

impl fmt::Debug for HostFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostFn({}, {:?})", self.name, self.out_shape)
    }
}

/// Resolves a possibly negative axis (`-1` is the last) against `rank`.
fn axis(a: isize, rank: usize) -> std::result::Result<usize, Error> {
    let r = rank as isize;
    let i = if a < 0 { a + r } else { a };
    if (0..r).contains(&i) {
        Ok(i as usize)
    } else {
        Err(Error::invalid("", format!("axis {a} out of range for rank {rank}")))
    }
}

fn axes(list: &[isize], rank: usize) -> std::result::Result<Vec<usize>, Error> {
    list.iter().map(|&a| axis(a, rank)).collect()
}

macro_rules! or_fail {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Tensor::failed(e),
        }
    };
}

impl Tensor {
    fn unary(&self, u: Unary) -> Tensor {
        apply(Op::Unary(u), &[self])
    }

    fn reduce(&self, kind: Reduce, over: &[isize], keepdims: bool) -> Tensor {
        let axes = or_fail!(axes(over, self.ndim()));
        apply(Op::Reduce { kind, axes, keepdims }, &[self])
    }

    /// `exp(x)`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[1]).exp().item()?, 1.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn exp(&self) -> Tensor {
        self.unary(Unary::Exp)
    }

    /// Natural logarithm.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).log().item()?, 0.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn log(&self) -> Tensor {
        self.unary(Unary::Log)
    }

    /// Square root.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::full(&[1], 9.0).sqrt().item()?, 3.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn sqrt(&self) -> Tensor {
        self.unary(Unary::Sqrt)
    }

    /// `1 / sqrt(x)` (a true division, as `jax.lax.rsqrt` computes on CPU).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::full(&[1], 4.0).rsqrt().item()?, 0.5);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn rsqrt(&self) -> Tensor {
        self.unary(Unary::Rsqrt)
    }

    /// The error function (XLA's float32 rational approximation).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[1]).erf().item()?, 0.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn erf(&self) -> Tensor {
        self.unary(Unary::Erf)
    }

    /// `|x|`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::full(&[1], -2.0).abs().item()?, 2.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn abs(&self) -> Tensor {
        self.unary(Unary::Abs)
    }

    /// Elementwise maximum, NaN-propagating (`jnp.maximum`), broadcasting.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![-1.0f32, 2.0]);
    /// assert_eq!(x.maximum(0.0).to_array()?, ndarray::array![0.0f32, 2.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn maximum(&self, other: impl Into<Tensor>) -> Tensor {
        apply(Op::Binary(Binary::Max), &[self, &other.into()])
    }

    /// Elementwise minimum, NaN-propagating (`jnp.minimum`), broadcasting.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![-1.0f32, 2.0]);
    /// assert_eq!(x.minimum(0.0).to_array()?, ndarray::array![-1.0f32, 0.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn minimum(&self, other: impl Into<Tensor>) -> Tensor {
        apply(Op::Binary(Binary::Min), &[self, &other.into()])
    }

    /// `x ** p`, broadcasting.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::full(&[1], 3.0).pow(2.0).item()?, 9.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn pow(&self, p: impl Into<Tensor>) -> Tensor {
        apply(Op::Binary(Binary::Pow), &[self, &p.into()])
    }

    fn compare(&self, c: Compare, other: impl Into<Tensor>) -> Tensor {
        let other = other.into();
        // An f32 scalar compared with an i32 tensor is meant as that integer.
        let other =
            if self.dtype() == DType::I32 && other.dtype() == DType::F32 { other.cast(DType::I32) } else { other };
        apply(Op::Compare(c), &[self, &other])
    }

    /// `x < y` as a `Bool` mask (broadcasting).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let m = Tensor::from(ndarray::array![1.0f32, 3.0]).lt(2.0);
    /// assert_eq!(m.to_bool_array()?, ndarray::array![true, false].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn lt(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Lt, other)
    }

    /// `x <= y` as a `Bool` mask.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).le(1.0).to_bool_array()?[[0]], true);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn le(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Le, other)
    }

    /// `x > y` as a `Bool` mask.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).gt(1.0).to_bool_array()?[[0]], false);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn gt(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Gt, other)
    }

    /// `x >= y` as a `Bool` mask.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).ge(1.0).to_bool_array()?[[0]], true);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn ge(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Ge, other)
    }

    /// `x == y` as a `Bool` mask (elementwise; not Rust's `PartialEq`, which a traced tensor
    /// could not answer).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).equal(1.0).to_bool_array()?[[0]], true);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn equal(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Eq, other)
    }

    /// `x != y` as a `Bool` mask.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).not_equal(1.0).to_bool_array()?[[0]], false);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn not_equal(&self, other: impl Into<Tensor>) -> Tensor {
        self.compare(Compare::Ne, other)
    }

    /// Logical not of a `Bool` mask.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).gt(0.0).logical_not().to_bool_array()?[[0]], false);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn logical_not(&self) -> Tensor {
        apply(Op::Not, &[self])
    }

    /// `cond ? a : b` elementwise (`jnp.where`), broadcasting all three.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![-1.0f32, 2.0]);
    /// let y = Tensor::select(&x.gt(0.0), &x, 0.0);
    /// assert_eq!(y.to_array()?, ndarray::array![0.0f32, 2.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn select(cond: &Tensor, a: impl Into<Tensor>, b: impl Into<Tensor>) -> Tensor {
        apply(Op::Where, &[cond, &a.into(), &b.into()])
    }

    /// Converts the elements to `dtype` (floats to integers truncate toward zero).
    ///
    /// ```
    /// use nnjit::nn::{DType, Tensor};
    /// let ids = Tensor::from(ndarray::array![1.9f32, -2.5]).cast(DType::I32);
    /// assert_eq!(ids.to_i32_array()?, ndarray::array![1i32, -2].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn cast(&self, dtype: DType) -> Tensor {
        apply(Op::Cast(dtype), &[self])
    }

    /// Sum over `axes` (negative axes count from the end), sequential in row-major order.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 2.0], [3.0, 4.0]]);
    /// assert_eq!(x.sum(&[0], false).to_array()?, ndarray::array![4.0f32, 6.0].into_dyn());
    /// assert_eq!(x.sum(&[-1], true).shape(), &[2, 1]);
    /// assert_eq!(x.sum(&[0, 1], false).item()?, 10.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn sum(&self, axes: &[isize], keepdims: bool) -> Tensor {
        self.reduce(Reduce::Sum, axes, keepdims)
    }

    /// Mean over `axes`: the sequential sum, then one division (`jnp.mean`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 2.0], [3.0, 4.0]]);
    /// assert_eq!(x.mean(&[0], false).to_array()?, ndarray::array![2.0f32, 3.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn mean(&self, axes: &[isize], keepdims: bool) -> Tensor {
        self.reduce(Reduce::Mean, axes, keepdims)
    }

    /// Variance over `axes` (`jnp.var`: the mean of squared deviations from the mean).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 3.0]);
    /// assert_eq!(x.var(&[0], false).item()?, 1.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn var(&self, axes: &[isize], keepdims: bool) -> Tensor {
        self.reduce(Reduce::Var, axes, keepdims)
    }

    /// Maximum over `axes` (NaN-propagating).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 5.0], [3.0, 4.0]]);
    /// assert_eq!(x.max(&[1], false).to_array()?, ndarray::array![5.0f32, 4.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn max(&self, axes: &[isize], keepdims: bool) -> Tensor {
        self.reduce(Reduce::Max, axes, keepdims)
    }

    /// Minimum over `axes` (NaN-propagating).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 5.0], [3.0, 4.0]]);
    /// assert_eq!(x.min(&[0], false).to_array()?, ndarray::array![1.0f32, 4.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn min(&self, axes: &[isize], keepdims: bool) -> Tensor {
        self.reduce(Reduce::Min, axes, keepdims)
    }

    /// The same elements in another shape (one entry may be `-1`: inferred).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).reshape(&[3, -1]).shape(), &[3, 2]);
    /// assert!(Tensor::zeros(&[2, 3]).reshape(&[4]).check().is_err());
    /// ```
    #[must_use]
    pub fn reshape(&self, shape: &[isize]) -> Tensor {
        let total = self.len();
        let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        let inferred = shape.iter().filter(|&&d| d < 0).count();
        if inferred > 1 || shape.iter().any(|&d| d < -1) {
            return Tensor::failed(Error::invalid("", format!("reshape: invalid shape {shape:?}")));
        }
        let fill = total.checked_div(known).unwrap_or(0);
        let s: Vec<usize> = shape.iter().map(|&d| if d < 0 { fill } else { d as usize }).collect();
        apply(Op::Reshape(s), &[self])
    }

    /// Permutes the axes (`perm[i]` is the input axis that becomes axis `i`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 2.0, 3.0]]);
    /// assert_eq!(x.transpose(&[1, 0]).to_array()?, ndarray::array![[1.0f32], [2.0], [3.0]].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn transpose(&self, perm: &[usize]) -> Tensor {
        apply(Op::Transpose(perm.to_vec()), &[self])
    }

    /// Inserts an axis of length 1 at `axis` (`jnp.expand_dims`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[3]).expand_dims(0).shape(), &[1, 3]);
    /// assert_eq!(Tensor::zeros(&[3]).expand_dims(-1).shape(), &[3, 1]);
    /// ```
    #[must_use]
    pub fn expand_dims(&self, at: isize) -> Tensor {
        let a = or_fail!(axis(at, self.ndim() + 1));
        let mut s: Vec<isize> = self.shape().iter().map(|&d| d as isize).collect();
        s.insert(a, 1);
        self.reshape(&s)
    }

    /// Removes the axis `at`, which must have length 1 (`jnp.squeeze`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[1, 3]).squeeze(0).shape(), &[3]);
    /// assert!(Tensor::zeros(&[2, 3]).squeeze(0).check().is_err());
    /// ```
    #[must_use]
    pub fn squeeze(&self, at: isize) -> Tensor {
        let a = or_fail!(axis(at, self.ndim()));
        if self.shape()[a] != 1 {
            return Tensor::failed(Error::invalid("", format!("squeeze: axis {at} of {:?} is not 1", self.shape())));
        }
        let mut s: Vec<isize> = self.shape().iter().map(|&d| d as isize).collect();
        s.remove(a);
        self.reshape(&s)
    }

    /// `x[start..end]` along `axis`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.slice(0, 1, 3).to_array()?, ndarray::array![2.0f32, 3.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn slice(&self, axis: isize, start: usize, end: usize) -> Tensor {
        self.slice_step(axis, start, end, 1)
    }

    /// `x[start..end:step]` along `axis`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.slice_step(0, 0, 4, 2).to_array()?, ndarray::array![1.0f32, 3.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn slice_step(&self, at: isize, start: usize, end: usize, step: usize) -> Tensor {
        let a = or_fail!(axis(at, self.ndim()));
        apply(Op::Slice { axis: a, start, end, step }, &[self])
    }

    /// Splits into `sections` equal parts along `axis` (`jnp.split`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let parts = Tensor::zeros(&[2, 6]).split(3, -1);
    /// assert_eq!(parts.len(), 3);
    /// assert_eq!(parts[2].shape(), &[2, 2]);
    /// ```
    #[must_use]
    pub fn split(&self, sections: usize, at: isize) -> Vec<Tensor> {
        let a = match axis(at, self.ndim()) {
            Ok(a) => a,
            Err(e) => return vec![Tensor::failed(e)],
        };
        let n = self.shape()[a];
        if sections == 0 || !n.is_multiple_of(sections) {
            return vec![Tensor::failed(Error::invalid(
                "",
                format!("split: axis of length {n} does not split into {sections} equal parts"),
            ))];
        }
        let w = n / sections;
        (0..sections).map(|i| self.slice(a as isize, i * w, (i + 1) * w)).collect()
    }

    /// Joins tensors along `axis` (`jnp.concatenate`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let (a, b) = (Tensor::zeros(&[2, 1]), Tensor::ones(&[2, 3]));
    /// assert_eq!(Tensor::concatenate(&[&a, &b], -1).shape(), &[2, 4]);
    /// ```
    #[must_use]
    pub fn concatenate(parts: &[&Tensor], at: isize) -> Tensor {
        let rank = parts.first().map_or(0, |t| t.ndim());
        let a = or_fail!(axis(at, rank));
        apply(Op::Concat(a), parts)
    }

    /// `x · w` contracting the last axis of `x` with the first of a 2-D `w`, in the reference
    /// order (per output an FMA chain from 0.0), like `x @ w`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![[1.0f32, 2.0]]);
    /// let w = Tensor::from(ndarray::array![[1.0f32, 0.0], [0.0, 1.0]]);
    /// assert_eq!(x.matmul(&w).to_array()?, ndarray::array![[1.0f32, 2.0]].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn matmul(&self, w: &Tensor) -> Tensor {
        apply(Op::Linear { bias: false, act: Activation::Identity }, &[self, w])
    }

    /// [`into_linear`](Tensor::into_linear) with the kernel and bias given as row-major
    /// elements and shapes (parameters read in place, no tensor made of them): `Err(self)` when
    /// this is not an eager f32 tensor they fit, for the caller's tensor path (which computes
    /// the same values, or reports the error).
    pub(crate) fn into_linear_slices(
        mut self,
        kernel: (&[f32], &[usize]),
        bias: Option<(&[f32], &[usize])>,
    ) -> std::result::Result<Tensor, Tensor> {
        let Repr::Eager(Value::F32(x)) = &mut self.repr else { return Err(self) };
        match linear_data((x.slice(), x.shape()), kernel, bias) {
            Some(Ok(FastOut { y, dims, rank })) => Ok(match x.set_vec(&dims[..rank], y) {
                Ok(()) => self,
                Err(e) => Tensor::failed(e),
            }),
            Some(Err(e)) => Ok(Tensor::failed(e)),
            None => Err(self),
        }
    }

    /// [`linear`](Tensor::linear) of an owned `self`: an eager one nobody else holds keeps its
    /// allocation for the result (the values are those of `linear`).
    pub(crate) fn into_linear(mut self, kernel: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let op = Op::Linear { bias: bias.is_some(), act: Activation::Identity };
        let out = match bias {
            Some(b) => eager_fast_eval(&op, &[&self, kernel, b]),
            None => eager_fast_eval(&op, &[&self, kernel]),
        };
        match (out, &mut self.repr) {
            (Some(Ok(FastOut { y, dims, rank })), Repr::Eager(Value::F32(a))) => match a.set_vec(&dims[..rank], y) {
                Ok(()) => self,
                Err(e) => Tensor::failed(e),
            },
            (Some(Err(e)), _) => Tensor::failed(e),
            _ => self.linear(kernel, bias),
        }
    }

    /// Dense's arithmetic: `x · kernel + bias` over the last axis, in the reference order (an
    /// FMA chain from 0.0 per output, then + bias). Equal to `x.matmul(k) + b` bit for bit, in
    /// one pass; compiled programs fuse a following `relu` into it.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 2.0]);
    /// let k = Tensor::from(ndarray::array![[0.5f32], [0.25]]);
    /// let b = Tensor::from(ndarray::array![1.0f32]);
    /// let y = x.linear(&k, Some(&b));
    /// assert_eq!(y.to_array()?, ndarray::array![2.0f32].into_dyn());
    /// assert_eq!(y.to_array()?, (x.matmul(&k) + &b).to_array()?);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn linear(&self, kernel: &Tensor, bias: Option<&Tensor>) -> Tensor {
        match bias {
            Some(b) => apply(Op::Linear { bias: true, act: Activation::Identity }, &[self, kernel, b]),
            None => self.matmul(kernel),
        }
    }

    /// Softmax along `axis` (`jax.nn.softmax(x, axis)`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let p = Tensor::from(ndarray::array![[1.0f32, 1.0]]).softmax(-1);
    /// assert_eq!(p.to_array()?, ndarray::array![[0.5f32, 0.5]].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn softmax(&self, at: isize) -> Tensor {
        let a = or_fail!(axis(at, self.ndim()));
        apply(Op::Softmax { axis: a, log: false }, &[self])
    }

    /// Log-softmax along `axis` (`jax.nn.log_softmax(x, axis)`).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let l = Tensor::from(ndarray::array![0.0f32, 0.0]).log_softmax(0);
    /// assert!((l.to_array()?[[0]] - (0.5f32).ln()).abs() < 1e-7);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn log_softmax(&self, at: isize) -> Tensor {
        let a = or_fail!(axis(at, self.ndim()));
        apply(Op::Softmax { axis: a, log: true }, &[self])
    }

    /// A `Bool` mask of `shape`, true with probability `p`, from a `u32[2]` key
    /// (`jax.random.bernoulli`).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// let m = Tensor::bernoulli(&Tensor::from_key(nn::PRNGKey(0)), 1.0, &[4]);
    /// assert!(m.to_bool_array()?.iter().all(|&b| b));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn bernoulli(key: &Tensor, p: f32, shape: &[usize]) -> Tensor {
        apply(Op::Random { sampler: Sampler::Bernoulli(p), shape: shape.to_vec() }, &[key])
    }

    /// Uniform samples in `[minval, maxval)` (`jax.random.uniform`).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// let u = Tensor::uniform(&Tensor::from_key(nn::PRNGKey(0)), &[8], 0.0, 1.0).to_array()?;
    /// assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn uniform(key: &Tensor, shape: &[usize], minval: f32, maxval: f32) -> Tensor {
        apply(Op::Random { sampler: Sampler::Uniform(minval, maxval), shape: shape.to_vec() }, &[key])
    }

    /// Standard normal samples (`jax.random.normal`).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// let z = Tensor::normal(&Tensor::from_key(nn::PRNGKey(0)), &[3]);
    /// assert_eq!(z.to_array()?, nnjit::random::normal(nn::PRNGKey(0), &[3])?);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn normal(key: &Tensor, shape: &[usize]) -> Tensor {
        apply(Op::Random { sampler: Sampler::Normal, shape: shape.to_vec() }, &[key])
    }

    /// Runs arbitrary host code on the current values (the escape hatch, like
    /// `jax.pure_callback`): eager, at once; in a compiled program, on every call with that
    /// call's values. Nothing is baked in.
    ///
    /// ```
    /// use nnjit::nn::{HostFn, Tensor};
    /// let x = Tensor::from(ndarray::array![1.0f32, -2.0]);
    /// let clip = HostFn::new("clip", &[2], |xs| Ok(xs[0].mapv(|v| v.clamp(-1.0, 1.0))));
    /// assert_eq!(Tensor::host_callback(&[&x], clip).to_array()?, ndarray::array![1.0f32, -1.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn host_callback(inputs: &[&Tensor], f: HostFn) -> Tensor {
        apply(Op::Callback(f), inputs)
    }
}

impl Tensor {
    /// `u(self)`, in place when `self` is an eager f32 tensor nobody else holds.
    fn unary_owned(mut self, u: Unary) -> Tensor {
        if let Repr::Eager(Value::F32(a)) = &mut self.repr {
            if let Some(y) = a.unique_slice_mut() {
                crate::tensor::op::unary_in_place(u, y);
                return self;
            }
        }
        self.unary(u)
    }

    /// `self ∘ rhs` (or `rhs ∘ self`), in place when `self` is an eager f32 tensor nobody else
    /// holds and the result has its shape; per element the same operation either way.
    fn binary_owned(mut self, op: Binary, rhs: &Tensor, self_left: bool) -> Tensor {
        if let (Repr::Eager(Value::F32(a)), Repr::Eager(Value::F32(b))) = (&mut self.repr, &rhs.repr) {
            let fits = crate::tensor::broadcast::shapes(a.shape(), b.shape()).is_some_and(|s| s == a.shape());
            if fits {
                let shape = a.shape().to_vec();
                if let Some(y) = a.unique_slice_mut() {
                    crate::tensor::op::binary_in_place(op, y, &shape, b.slice(), b.shape(), self_left);
                    return self;
                }
            }
        }
        if self_left {
            apply(Op::Binary(op), &[&self, rhs])
        } else {
            apply(Op::Binary(op), &[rhs, &self])
        }
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $op:ident;)*) => {$(
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                apply(Op::Binary(Binary::$op), &[self, rhs])
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                self.binary_owned(Binary::$op, &rhs, true)
            }
        }
        impl std::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.binary_owned(Binary::$op, rhs, true)
            }
        }
        impl std::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                rhs.binary_owned(Binary::$op, self, false)
            }
        }
        impl std::ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f32) -> Tensor {
                apply(Op::Binary(Binary::$op), &[self, &Tensor::scalar(rhs)])
            }
        }
        impl std::ops::$trait<f32> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f32) -> Tensor {
                self.binary_owned(Binary::$op, &Tensor::scalar(rhs), true)
            }
        }
        impl std::ops::$trait<&Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                apply(Op::Binary(Binary::$op), &[&Tensor::scalar(self), rhs])
            }
        }
        impl std::ops::$trait<Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                rhs.binary_owned(Binary::$op, &Tensor::scalar(self), false)
            }
        }
    )*};
}

binary_ops! {
    Add add Add;
    Sub sub Sub;
    Mul mul Mul;
    Div div Div;
}

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.unary(Unary::Neg)
    }
}

impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.unary_owned(Unary::Neg)
    }
}

/// The `nn::` activation functions (Flax's `nn.relu`, ...), on owned or borrowed tensors: an
/// owned eager tensor that nothing else holds is updated in place.
pub mod activation {
    use super::*;

    macro_rules! activations {
        ($($(#[$doc:meta])* $name:ident => $u:expr;)*) => {$(
            $(#[$doc])*
            #[must_use]
            pub fn $name(x: impl Into<Tensor>) -> Tensor {
                x.into().unary_owned($u)
            }
        )*};
    }

    activations! {
        /// `max(x, 0)` (NaN and `-0.0` kept).
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// let y = nn::relu(Tensor::from(ndarray::array![-1.0f32, 2.0]));
        /// assert_eq!(y.to_array()?, ndarray::array![0.0f32, 2.0].into_dyn());
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        relu => Unary::Relu;
        /// `min(relu(x), 6)`.
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert_eq!(nn::relu6(Tensor::full(&[1], 9.0)).item()?, 6.0);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        relu6 => Unary::Relu6;
        /// `1 / (1 + exp(-x))`.
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert_eq!(nn::sigmoid(Tensor::zeros(&[1])).item()?, 0.5);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        sigmoid => Unary::Sigmoid;
        /// Hyperbolic tangent.
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert_eq!(nn::tanh(Tensor::zeros(&[1])).item()?, 0.0);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        tanh => Unary::Tanh;
        /// `x · sigmoid(x)` (swish).
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert_eq!(nn::silu(Tensor::zeros(&[1])).item()?, 0.0);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        silu => Unary::Silu;
        /// `log(1 + exp(x))`, computed stably.
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert!((nn::softplus(Tensor::zeros(&[1])).item()? - 2f32.ln()).abs() < 1e-7);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        softplus => Unary::Softplus;
        /// GELU, tanh approximation (Flax's default `approximate=True`).
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// assert_eq!(nn::gelu(Tensor::zeros(&[1])).item()?, 0.0);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        gelu => Unary::Gelu;
        /// GELU with the exact erf (`approximate=False`).
        ///
        /// ```
        /// use nnjit::nn::{self, Tensor};
        /// let (a, e) = (nn::gelu(Tensor::ones(&[1])).item()?, nn::gelu_exact(Tensor::ones(&[1])).item()?);
        /// assert!((a - e).abs() < 1e-3);
        /// # Ok::<(), nnjit::Error>(())
        /// ```
        gelu_exact => Unary::GeluExact;
    }

    /// `x` if `x > 0`, else `alpha · (exp(x) − 1)` (`nn.elu(x, alpha)`).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// assert_eq!(nn::elu(Tensor::full(&[1], 2.0), 1.0).item()?, 2.0);
    /// assert!(nn::elu(Tensor::full(&[1], -30.0), 0.5).item()? + 0.5 < 1e-6);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn elu(x: impl Into<Tensor>, alpha: f32) -> Tensor {
        x.into().unary_owned(Unary::Elu(alpha))
    }

    /// `x` if `x ≥ 0`, else `negative_slope · x` (`nn.leaky_relu(x, negative_slope)`; Flax's
    /// default slope is 0.01).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// assert_eq!(nn::leaky_relu(Tensor::full(&[1], -2.0), 0.01).item()?, -0.02);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn leaky_relu(x: impl Into<Tensor>, negative_slope: f32) -> Tensor {
        x.into().unary_owned(Unary::LeakyRelu(negative_slope))
    }

    /// Softmax over the last axis (`nn.softmax(x)`; [`Tensor::softmax`] takes an axis).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// assert_eq!(nn::softmax(Tensor::zeros(&[2])).to_array()?, ndarray::array![0.5f32, 0.5].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn softmax(x: impl Into<Tensor>) -> Tensor {
        x.into().softmax(-1)
    }

    /// Log-softmax over the last axis (`nn.log_softmax(x)`).
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// assert!(nn::log_softmax(Tensor::zeros(&[2])).to_array()?.iter().all(|&v| v < 0.0));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn log_softmax(x: impl Into<Tensor>) -> Tensor {
        x.into().log_softmax(-1)
    }

    /// `jnp.where(cond, a, b)`.
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// let x = Tensor::from(ndarray::array![-1.0f32, 1.0]);
    /// assert_eq!(nn::where_(&x.gt(0.0), &x, 0.0).to_array()?, ndarray::array![0.0f32, 1.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn where_(cond: &Tensor, a: impl Into<Tensor>, b: impl Into<Tensor>) -> Tensor {
        Tensor::select(cond, a, b)
    }
}
