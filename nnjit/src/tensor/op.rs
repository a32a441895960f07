//! The primitive ops: what each computes (one implementation, used by eager tensors and by
//! compiled programs alike, so the two agree bit for bit) and the shape/dtype it produces.

use std::fmt;

use ndarray::{ArrayD, IxDyn};

use super::broadcast::{self, Reader};
use super::{DType, Meta, MetaRef};
use crate::error::{Error, Result};
use crate::kernel::{self, Activation};
use crate::random::{self, Key};

/// Elements of one buffer, read-only.
#[derive(Clone, Copy)]
pub(crate) enum Data<'a> {
    F32(&'a [f32]),
    I32(&'a [i32]),
    U32(&'a [u32]),
    Bool(&'a [bool]),
}

impl Data<'_> {
    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::I32(_) => DType::I32,
            Data::U32(_) => DType::U32,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }
}

/// Elements of one buffer, written by an op.
pub(crate) enum DataMut<'a> {
    F32(&'a mut [f32]),
    I32(&'a mut [i32]),
    U32(&'a mut [u32]),
    Bool(&'a mut [bool]),
}

/// Elementwise f32 → f32 functions (activations and math).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Unary {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Erf,
    Relu,
    Relu6,
    Sigmoid,
    Tanh,
    Silu,
    Softplus,
    Gelu,
    GeluExact,
    Elu(f32),
    LeakyRelu(f32),
}

impl Unary {
    /// The function, element by element (these are the definitions every path uses).
    #[inline]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Unary::Neg => -v,
            Unary::Abs => v.abs(),
            Unary::Exp => v.exp(),
            Unary::Log => v.ln(),
            Unary::Sqrt => v.sqrt(),
            Unary::Rsqrt => 1.0 / v.sqrt(),
            Unary::Erf => crate::random::xla_math::erf(v),
            Unary::Relu => relu(v),
            Unary::Relu6 => relu(v).min(6.0),
            Unary::Sigmoid => 1.0 / (1.0 + (-v).exp()),
            Unary::Tanh => v.tanh(),
            Unary::Silu => v * (1.0 / (1.0 + (-v).exp())),
            Unary::Softplus => v.max(0.0) + (-v.abs()).exp().ln_1p(),
            Unary::Gelu => {
                let c = (2.0f64 / std::f64::consts::PI).sqrt() as f32;
                v * (0.5 * (1.0 + (c * (v + 0.044715 * (v * v * v))).tanh()))
            }
            // jax.nn.gelu(x, approximate=False) as `x * (erf(x / √2) + 1) / 2`, every step in
            // float32 with XLA's erf.
            Unary::GeluExact => v * (crate::random::xla_math::erf(v / crate::random::xla_math::SQRT_2) + 1.0) / 2.0,
            Unary::Elu(alpha) => {
                if v > 0.0 {
                    v
                } else {
                    alpha * v.exp_m1()
                }
            }
            Unary::LeakyRelu(slope) => {
                if v >= 0.0 {
                    v
                } else {
                    slope * v
                }
            }
        }
    }

    fn name(self) -> String {
        match self {
            Unary::Elu(a) => format!("elu[alpha={a}]"),
            Unary::LeakyRelu(s) => format!("leaky_relu[negative_slope={s}]"),
            u => format!("{u:?}").to_lowercase().replace("geluexact", "gelu_exact"),
        }
    }
}

/// Runs `$body` with `$f` bound to `u`'s function in a branch of its own per variant, so each
/// loop over elements is monomorphic (the match stays outside the loop, and the loop vectorizes).
macro_rules! per_unary {
    ($u:expr, $f:ident => $body:expr) => {
        per_unary!(@arms $u, $f, $body; Neg, Abs, Exp, Log, Sqrt, Rsqrt, Erf, Relu, Relu6, Sigmoid, Tanh, Silu,
            Softplus, Gelu, GeluExact; Elu, LeakyRelu)
    };
    (@arms $u:expr, $f:ident, $body:expr; $($unit:ident),*; $($param:ident),*) => {{
        let u = $u;
        match u {
            $(Unary::$unit => {
                let $f = |v: f32| Unary::$unit.apply(v);
                $body
            })*
            $(Unary::$param(p) => {
                let $f = |v: f32| Unary::$param(p).apply(v);
                $body
            })*
        }
    }};
}

/// `y = u(x)` elementwise.
pub(crate) fn unary_into(u: Unary, x: &[f32], y: &mut [f32]) {
    per_unary!(u, f => y.iter_mut().zip(x).for_each(|(y, &v)| *y = f(v)))
}

/// `y = u(y)` in place.
pub(crate) fn unary_in_place(u: Unary, y: &mut [f32]) {
    per_unary!(u, f => y.iter_mut().for_each(|v| *v = f(*v)))
}

/// `max(v, 0)` keeping NaN and `-0.0` (Flax's `jax.nn.relu` on these inputs).
#[inline]
pub(crate) fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// Elementwise binary f32 arithmetic (broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    /// NaN-propagating maximum (`jnp.maximum`).
    Max,
    /// NaN-propagating minimum (`jnp.minimum`).
    Min,
    Pow,
}

impl Binary {
    #[inline]
    pub(crate) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            Binary::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            Binary::Pow => a.powf(b),
        }
    }
}

/// Comparisons (f32 or i32 operands, broadcasting), giving `Bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compare {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Compare {
    #[inline]
    fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Compare::Lt => a < b,
            Compare::Le => a <= b,
            Compare::Gt => a > b,
            Compare::Ge => a >= b,
            Compare::Eq => a == b,
            Compare::Ne => a != b,
        }
    }
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    /// Sequential f32 sum in row-major order of the reduced elements.
    Sum,
    /// The sum, then one true division by the count (`jnp.mean`).
    Mean,
    /// `mean((x - mean(x))²)` (`jnp.var`, two passes).
    Var,
    Max,
    Min,
}

/// Samplers on a `u32[2]` key, JAX's exactly (see [`crate::random`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Sampler {
    Bernoulli(f32),
    Uniform(f32, f32),
    Normal,
}

/// A host function run by a program on every call ([`super::Tensor::host_callback`]).
pub(crate) type HostFnBox = super::api::HostFn;

/// One primitive op. Inputs are tensors in a fixed order (documented per variant).
#[derive(Clone)]
pub(crate) enum Op {
    /// `(x) -> f(x)`, f32.
    Unary(Unary),
    /// `(a, b) -> a ∘ b`, f32, broadcasting.
    Binary(Binary),
    /// `(a, b) -> a ⋚ b`, bool.
    Compare(Compare),
    /// `(mask) -> !mask`.
    Not,
    /// `(cond, a, b) -> cond ? a : b`, broadcasting.
    Where,
    /// `(x) -> x as dtype`.
    Cast(DType),
    /// `(x) -> reduce(x, axes)`.
    Reduce { kind: Reduce, axes: Vec<usize>, keepdims: bool },
    /// `(x) -> x.reshape(shape)`.
    Reshape(Vec<usize>),
    /// `(x) -> x.transpose(perm)`.
    Transpose(Vec<usize>),
    /// `(x0, x1, ...) -> concatenate(axis)`.
    Concat(usize),
    /// `(x) -> x[start:end:step]` along `axis`.
    Slice { axis: usize, start: usize, end: usize, step: usize },
    /// `(x, kernel[, bias]) -> act(x · kernel + bias)`: Dense in the reference order (an FMA
    /// chain over the contracted axis from 0.0, then + bias, then the activation).
    Linear { bias: bool, act: Activation },
    /// `(x) -> softmax(x, axis)` (or log_softmax).
    Softmax { axis: usize, log: bool },
    /// `(key) -> sample(key, shape)`.
    Random { sampler: Sampler, shape: Vec<usize> },
    /// `(x0, ...) -> f(x0, ...)` run on the host with the current values.
    Callback(HostFnBox),
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Op {
    /// The op as `lower()` prints it.
    pub(crate) fn name(&self) -> String {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => format!("{b:?}").to_lowercase(),
            Op::Compare(c) => format!("{c:?}").to_lowercase(),
            Op::Not => "not".into(),
            Op::Where => "where".into(),
            Op::Cast(d) => format!("convert[{d}]"),
            Op::Reduce { kind, axes, keepdims } => {
                format!(
                    "reduce_{}[axes={axes:?}{}]",
                    format!("{kind:?}").to_lowercase(),
                    if *keepdims { ", keepdims" } else { "" }
                )
            }
            Op::Reshape(s) => format!("reshape[{s:?}]"),
            Op::Transpose(p) => format!("transpose[{p:?}]"),
            Op::Concat(a) => format!("concatenate[axis={a}]"),
            Op::Slice { axis, start, end, step } => format!("slice[axis={axis}, {start}:{end}:{step}]"),
            Op::Linear { bias, act } => {
                let mut s = String::from("dense");
                if *bias {
                    s.push_str("+bias");
                }
                if *act == Activation::Relu {
                    s.push_str("+relu");
                }
                s
            }
            Op::Softmax { axis, log } => format!("{}[axis={axis}]", if *log { "log_softmax" } else { "softmax" }),
            Op::Random { sampler, .. } => match sampler {
                Sampler::Bernoulli(p) => format!("random_bernoulli[p={p}]"),
                Sampler::Uniform(a, b) => format!("random_uniform[{a}, {b}]"),
                Sampler::Normal => "random_normal".into(),
            },
            Op::Callback(h) => format!("host_callback[{}]", h.name()),
        }
    }

    /// The output's shape and dtype for inputs `ins`, or an error naming the op and shapes.
    pub(crate) fn infer(&self, ins: &[MetaRef<'_>]) -> Result<Meta> {
        let bad = |msg: String| Error::invalid("", format!("{}: {msg}", self.name()));
        let shapes = || ins.iter().map(|m| format!("{m}")).collect::<Vec<_>>().join(", ");
        let arity = |n: usize| -> Result<()> {
            if ins.len() == n {
                Ok(())
            } else {
                Err(bad(format!("expected {n} inputs, got {}", ins.len())))
            }
        };
        let want = |m: &MetaRef<'_>, d: DType| -> Result<()> {
            if m.dtype == d {
                Ok(())
            } else {
                Err(bad(format!("expected {d} input, got {m}")))
            }
        };
        let bshape = |a: &[usize], b: &[usize]| {
            broadcast::shapes(a, b).ok_or_else(|| bad(format!("shapes {} do not broadcast", shapes())))
        };
        match self {
            Op::Unary(_) => {
                arity(1)?;
                want(&ins[0], DType::F32)?;
                Ok(ins[0].to_meta())
            }
            Op::Binary(_) => {
                arity(2)?;
                want(&ins[0], DType::F32)?;
                want(&ins[1], DType::F32)?;
                Ok(Meta::new(DType::F32, bshape(ins[0].shape, ins[1].shape)?))
            }
            Op::Compare(_) => {
                arity(2)?;
                if ins[0].dtype != ins[1].dtype || !matches!(ins[0].dtype, DType::F32 | DType::I32) {
                    return Err(bad(format!("operands must both be f32 or both i32, got {}", shapes())));
                }
                Ok(Meta::new(DType::Bool, bshape(ins[0].shape, ins[1].shape)?))
            }
            Op::Not => {
                arity(1)?;
                want(&ins[0], DType::Bool)?;
                Ok(ins[0].to_meta())
            }
            Op::Where => {
                arity(3)?;
                want(&ins[0], DType::Bool)?;
                if ins[1].dtype != ins[2].dtype {
                    return Err(bad(format!("branches have different dtypes: {}", shapes())));
                }
                let s = bshape(&bshape(ins[0].shape, ins[1].shape)?, ins[2].shape)?;
                Ok(Meta::new(ins[1].dtype, s))
            }
            Op::Cast(d) => {
                arity(1)?;
                Ok(Meta::new(*d, ins[0].shape.to_vec()))
            }
            Op::Reduce { axes, keepdims, .. } => {
                arity(1)?;
                want(&ins[0], DType::F32)?;
                let rank = ins[0].shape.len();
                let mut seen = vec![false; rank];
                for &a in axes {
                    if a >= rank || std::mem::replace(&mut seen[a], true) {
                        return Err(bad(format!("axes {axes:?} invalid for shape {}", shapes())));
                    }
                }
                let shape: Vec<usize> = (0..rank)
                    .filter_map(|i| match (seen[i], keepdims) {
                        (false, _) => Some(ins[0].shape[i]),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                Ok(Meta::new(DType::F32, shape))
            }
            Op::Reshape(s) => {
                arity(1)?;
                if s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(ins[0].len()) {
                    return Err(bad(format!("cannot reshape {} to {s:?}", shapes())));
                }
                Ok(Meta::new(ins[0].dtype, s.clone()))
            }
            Op::Transpose(p) => {
                arity(1)?;
                let rank = ins[0].shape.len();
                let mut seen = vec![false; rank];
                if p.len() != rank || p.iter().any(|&a| a >= rank || std::mem::replace(&mut seen[a], true)) {
                    return Err(bad(format!("{p:?} is not a permutation of the axes of {}", shapes())));
                }
                Ok(Meta::new(ins[0].dtype, p.iter().map(|&a| ins[0].shape[a]).collect::<Vec<_>>()))
            }
            Op::Concat(axis) => {
                let first = ins.first().ok_or_else(|| bad("nothing to concatenate".into()))?;
                if *axis >= first.shape.len() {
                    return Err(bad(format!("axis {axis} out of range for {}", shapes())));
                }
                let mut shape = first.shape.to_vec();
                shape[*axis] = 0;
                for m in ins {
                    let same = m.dtype == first.dtype
                        && m.shape.len() == first.shape.len()
                        && m.shape.iter().zip(first.shape.iter()).enumerate().all(|(i, (a, b))| i == *axis || a == b);
                    if !same {
                        return Err(bad(format!("inputs {} differ off axis {axis}", shapes())));
                    }
                    shape[*axis] += m.shape[*axis];
                }
                Ok(Meta::new(first.dtype, shape))
            }
            Op::Slice { axis, start, end, step } => {
                arity(1)?;
                let s = ins[0].shape;
                if *axis >= s.len() || *step == 0 || start > end || *end > s[*axis] {
                    return Err(bad(format!("[{start}:{end}:{step}] on axis {axis} out of range for {}", shapes())));
                }
                let mut shape = s.to_vec();
                shape[*axis] = (end - start).div_ceil(*step);
                Ok(Meta::new(ins[0].dtype, shape))
            }
            Op::Linear { bias, .. } => {
                arity(2 + usize::from(*bias))?;
                for m in ins {
                    want(m, DType::F32)?;
                }
                let (x, k) = (ins[0].shape, ins[1].shape);
                let ok = k.len() == 2 && x.last() == Some(&k[0]) && (!bias || ins[2].shape == [k[1]]);
                if !ok {
                    return Err(bad(format!(
                        "x (..., D), kernel (D, F){} expected, got {}",
                        if *bias { " and bias (F,)" } else { "" },
                        shapes()
                    )));
                }
                let mut shape = x.to_vec();
                *shape.last_mut().unwrap_or(&mut 0) = k[1];
                Ok(Meta::new(DType::F32, shape))
            }
            Op::Softmax { axis, .. } => {
                arity(1)?;
                want(&ins[0], DType::F32)?;
                if *axis >= ins[0].shape.len() {
                    return Err(bad(format!("axis {axis} out of range for {}", shapes())));
                }
                Ok(ins[0].to_meta())
            }
            Op::Random { sampler, shape } => {
                arity(1)?;
                if !(ins[0].dtype == DType::U32 && ins[0].shape == [2]) {
                    return Err(bad(format!("expected a u32[2] key, got {}", shapes())));
                }
                let dtype = if matches!(sampler, Sampler::Bernoulli(_)) { DType::Bool } else { DType::F32 };
                Ok(Meta::new(dtype, shape.clone()))
            }
            Op::Callback(h) => {
                for m in ins {
                    want(m, DType::F32)?;
                }
                Ok(Meta::new(DType::F32, h.out_shape().to_vec()))
            }
        }
    }

    /// Computes the op: `ins` are the inputs' data and shapes, `out` the output buffer of
    /// `out_shape` (already sized). Shapes were checked by [`Op::infer`].
    pub(crate) fn eval(&self, ins: &[(Data<'_>, &[usize])], out: DataMut<'_>, out_shape: &[usize]) -> Result<()> {
        let mismatch = || Error::invalid("", format!("internal: {} got unexpected dtypes", self.name()));
        match (self, out) {
            (Op::Unary(u), DataMut::F32(y)) => {
                let Data::F32(x) = ins[0].0 else { return Err(mismatch()) };
                unary_into(*u, x, y);
            }
            (Op::Binary(b), DataMut::F32(y)) => {
                let (Data::F32(a), Data::F32(c)) = (ins[0].0, ins[1].0) else { return Err(mismatch()) };
                binary(*b, a, ins[0].1, c, ins[1].1, y, out_shape);
            }
            (Op::Compare(c), DataMut::Bool(y)) => {
                let rs = [Reader::new(ins[0].1, out_shape), Reader::new(ins[1].1, out_shape)];
                match (ins[0].0, ins[1].0) {
                    (Data::F32(a), Data::F32(b)) => {
                        broadcast::for_each(out_shape, &rs, |i, [ia, ib]| y[i] = c.apply(a[ia], b[ib]))
                    }
                    (Data::I32(a), Data::I32(b)) => {
                        broadcast::for_each(out_shape, &rs, |i, [ia, ib]| y[i] = c.apply(a[ia], b[ib]))
                    }
                    _ => return Err(mismatch()),
                }
            }
            (Op::Not, DataMut::Bool(y)) => {
                let Data::Bool(x) = ins[0].0 else { return Err(mismatch()) };
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = !x);
            }
            (Op::Where, out) => {
                let Data::Bool(c) = ins[0].0 else { return Err(mismatch()) };
                let rs = [
                    Reader::new(ins[0].1, out_shape),
                    Reader::new(ins[1].1, out_shape),
                    Reader::new(ins[2].1, out_shape),
                ];
                macro_rules! pick {
                    ($y:ident, $v:ident) => {{
                        let (Data::$v(a), Data::$v(b)) = (ins[1].0, ins[2].0) else { return Err(mismatch()) };
                        broadcast::for_each(out_shape, &rs, |i, [ic, ia, ib]| {
                            $y[i] = if c[ic] { a[ia] } else { b[ib] }
                        });
                    }};
                }
                match out {
                    DataMut::F32(y) => pick!(y, F32),
                    DataMut::I32(y) => pick!(y, I32),
                    DataMut::U32(y) => pick!(y, U32),
                    DataMut::Bool(y) => pick!(y, Bool),
                }
            }
            (Op::Cast(_), out) => cast(ins[0].0, out),
            (Op::Reduce { kind, axes, .. }, DataMut::F32(y)) => {
                let Data::F32(x) = ins[0].0 else { return Err(mismatch()) };
                reduce(*kind, x, ins[0].1, axes, y);
            }
            (Op::Reshape(_), out) => copy(ins[0].0, out)?,
            (Op::Transpose(perm), out) => {
                let s = ins[0].1;
                let mut strides = vec![0; s.len()];
                let mut st = 1;
                for i in (0..s.len()).rev() {
                    strides[i] = st;
                    st *= s[i];
                }
                let rs = [Reader::Strided(perm.iter().map(|&a| strides[a]).collect())];
                gather(ins[0].0, out, out_shape, &rs)?;
            }
            (Op::Concat(axis), mut out) => {
                let outer: usize = out_shape[..*axis].iter().product();
                let inner: usize = out_shape[axis + 1..].iter().product();
                let mut at = 0;
                for o in 0..outer {
                    for (data, shape) in ins {
                        let chunk = shape[*axis] * inner;
                        copy_range(*data, o * chunk, &mut out, at, chunk)?;
                        at += chunk;
                    }
                }
            }
            (Op::Slice { axis, start, step, .. }, mut out) => {
                let s = ins[0].1;
                let outer: usize = s[..*axis].iter().product();
                let inner: usize = s[axis + 1..].iter().product();
                let (n_in, n_out) = (s[*axis], out_shape[*axis]);
                let mut at = 0;
                for o in 0..outer {
                    for j in 0..n_out {
                        let from = (o * n_in + start + j * step) * inner;
                        copy_range(ins[0].0, from, &mut out, at, inner)?;
                        at += inner;
                    }
                }
            }
            (Op::Linear { bias, act }, DataMut::F32(y)) => {
                let (Data::F32(x), Data::F32(w)) = (ins[0].0, ins[1].0) else { return Err(mismatch()) };
                let b = match (bias, ins.get(2)) {
                    (true, Some((Data::F32(b), _))) => Some(*b),
                    _ => None,
                };
                let (d, f) = (ins[1].1[0], ins[1].1[1]);
                let n = x.len().checked_div(d).unwrap_or_else(|| out_shape[..out_shape.len() - 1].iter().product());
                let threads = kernel::parallel::num_threads();
                kernel::parallel::dense_threads(
                    kernel::best_isa(),
                    &kernel::DenseProblem { x, w, bias: b, n, d, f, act: *act },
                    y,
                    threads,
                )?;
            }
            (Op::Softmax { axis, log }, DataMut::F32(y)) => {
                let Data::F32(x) = ins[0].0 else { return Err(mismatch()) };
                softmax(x, ins[0].1, *axis, *log, y);
            }
            (Op::Random { sampler, shape }, out) => {
                let Data::U32(&[k0, k1]) = ins[0].0 else { return Err(mismatch()) };
                let key = Key::from([k0, k1]);
                match (sampler, out) {
                    (Sampler::Bernoulli(p), DataMut::Bool(y)) => fill(y, random::bernoulli(key, *p, shape)?),
                    (Sampler::Uniform(a, b), DataMut::F32(y)) => fill(y, random::uniform(key, shape, *a, *b)?),
                    (Sampler::Normal, DataMut::F32(y)) => fill(y, random::normal(key, shape)?),
                    _ => return Err(mismatch()),
                }
            }
            (Op::Callback(h), DataMut::F32(y)) => {
                let mut arrays = Vec::with_capacity(ins.len());
                for (d, s) in ins {
                    let Data::F32(x) = d else { return Err(mismatch()) };
                    arrays.push(
                        ArrayD::from_shape_vec(IxDyn(s), x.to_vec()).map_err(|e| Error::invalid("", e.to_string()))?,
                    );
                }
                let r = h.call(&arrays)?;
                if r.shape() != out_shape {
                    return Err(Error::invalid(
                        "",
                        format!("host_callback[{}] returned shape {:?}, declared {:?}", h.name(), r.shape(), out_shape),
                    ));
                }
                y.iter_mut().zip(r.iter()).for_each(|(y, &v)| *y = v);
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }
}

fn fill<T: Copy>(y: &mut [T], a: ArrayD<T>) {
    y.iter_mut().zip(a.iter()).for_each(|(y, &v)| *y = v);
}

/// `y = a ∘ b` with broadcasting; the common shapes (equal, scalar, a row vector over rows)
/// run as plain slice loops.
pub(crate) fn binary(op: Binary, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], y: &mut [f32], out: &[usize]) {
    if sa == out && sb == out {
        y.iter_mut().zip(a.iter().zip(b)).for_each(|(y, (&a, &b))| *y = op.apply(a, b));
    } else if sa == out && b.len() == 1 {
        y.iter_mut().zip(a).for_each(|(y, &a)| *y = op.apply(a, b[0]));
    } else if sb == out && a.len() == 1 {
        y.iter_mut().zip(b).for_each(|(y, &b)| *y = op.apply(a[0], b));
    } else if sa == out && sb.len() == 1 && out.last() == sb.last() && !b.is_empty() {
        // (..., F) ∘ (F,): bias-like rows.
        for (yr, ar) in y.chunks_exact_mut(b.len()).zip(a.chunks_exact(b.len())) {
            yr.iter_mut().zip(ar.iter().zip(b)).for_each(|(y, (&a, &b))| *y = op.apply(a, b));
        }
    } else {
        let rs = [Reader::new(sa, out), Reader::new(sb, out)];
        broadcast::for_each(out, &rs, |i, [ia, ib]| y[i] = op.apply(a[ia], b[ib]));
    }
}

/// `y = y ∘ o` (or `o ∘ y` when `acc_left` is false) with `o` broadcast into `y`'s shape: the
/// in-place form of [`binary`], per element the same operation.
pub(crate) fn binary_in_place(
    op: Binary,
    y: &mut [f32],
    shape: &[usize],
    o: &[f32],
    o_shape: &[usize],
    acc_left: bool,
) {
    let f = |a: f32, b: f32| if acc_left { op.apply(a, b) } else { op.apply(b, a) };
    if o_shape == shape {
        y.iter_mut().zip(o).for_each(|(y, &o)| *y = f(*y, o));
    } else if o.len() == 1 {
        y.iter_mut().for_each(|y| *y = f(*y, o[0]));
    } else if o_shape.len() == 1 && shape.last() == o_shape.last() {
        for row in y.chunks_exact_mut(o.len()) {
            row.iter_mut().zip(o).for_each(|(y, &o)| *y = f(*y, o));
        }
    } else {
        let rs = [Reader::new(o_shape, shape)];
        broadcast::for_each(shape, &rs, |i, [j]| y[i] = f(y[i], o[j]));
    }
}

fn cast(x: Data<'_>, out: DataMut<'_>) {
    macro_rules! conv {
        ($y:ident, $f:expr) => {
            match x {
                Data::F32(x) => $y.iter_mut().zip(x).for_each(|(y, &v)| *y = $f(v as f64)),
                Data::I32(x) => $y.iter_mut().zip(x).for_each(|(y, &v)| *y = $f(f64::from(v))),
                Data::U32(x) => $y.iter_mut().zip(x).for_each(|(y, &v)| *y = $f(f64::from(v))),
                Data::Bool(x) => $y.iter_mut().zip(x).for_each(|(y, &v)| *y = $f(if v { 1.0 } else { 0.0 })),
            }
        };
    }
    match out {
        DataMut::F32(y) => match x {
            Data::F32(x) => y.copy_from_slice(x),
            Data::I32(x) => y.iter_mut().zip(x).for_each(|(y, &v)| *y = v as f32),
            Data::U32(x) => y.iter_mut().zip(x).for_each(|(y, &v)| *y = v as f32),
            Data::Bool(x) => y.iter_mut().zip(x).for_each(|(y, &v)| *y = if v { 1.0 } else { 0.0 }),
        },
        DataMut::I32(y) => conv!(y, |v: f64| v as i32),
        DataMut::U32(y) => conv!(y, |v: f64| v as u32),
        DataMut::Bool(y) => conv!(y, |v: f64| v != 0.0),
    }
}

fn copy(x: Data<'_>, out: DataMut<'_>) -> Result<()> {
    let n = match &out {
        DataMut::F32(y) => y.len(),
        DataMut::I32(y) => y.len(),
        DataMut::U32(y) => y.len(),
        DataMut::Bool(y) => y.len(),
    };
    let mut out = out;
    copy_range(x, 0, &mut out, 0, n)
}

fn copy_range(x: Data<'_>, from: usize, out: &mut DataMut<'_>, at: usize, n: usize) -> Result<()> {
    match (x, out) {
        (Data::F32(x), DataMut::F32(y)) => y[at..at + n].copy_from_slice(&x[from..from + n]),
        (Data::I32(x), DataMut::I32(y)) => y[at..at + n].copy_from_slice(&x[from..from + n]),
        (Data::U32(x), DataMut::U32(y)) => y[at..at + n].copy_from_slice(&x[from..from + n]),
        (Data::Bool(x), DataMut::Bool(y)) => y[at..at + n].copy_from_slice(&x[from..from + n]),
        _ => return Err(Error::invalid("", "internal: copy between different dtypes")),
    }
    Ok(())
}

fn gather(x: Data<'_>, out: DataMut<'_>, out_shape: &[usize], rs: &[Reader; 1]) -> Result<()> {
    match (x, out) {
        (Data::F32(x), DataMut::F32(y)) => broadcast::for_each(out_shape, rs, |i, [j]| y[i] = x[j]),
        (Data::I32(x), DataMut::I32(y)) => broadcast::for_each(out_shape, rs, |i, [j]| y[i] = x[j]),
        (Data::U32(x), DataMut::U32(y)) => broadcast::for_each(out_shape, rs, |i, [j]| y[i] = x[j]),
        (Data::Bool(x), DataMut::Bool(y)) => broadcast::for_each(out_shape, rs, |i, [j]| y[i] = x[j]),
        _ => return Err(Error::invalid("", "internal: gather between different dtypes")),
    }
    Ok(())
}

/// Reduction over `axes` of `x` (shape `s`): every output accumulates its inputs sequentially,
/// in row-major order.
fn reduce(kind: Reduce, x: &[f32], s: &[usize], axes: &[usize], y: &mut [f32]) {
    // Output strides in the input's index space (0 on reduced axes).
    let rank = s.len();
    let reduced = |a: usize| axes.contains(&a);
    let mut ostrides = vec![0; rank];
    let mut st = 1;
    for a in (0..rank).rev() {
        if !reduced(a) {
            ostrides[a] = st;
            st *= s[a];
        }
    }
    let count: usize = axes.iter().map(|&a| s[a]).product();
    let visit = |f: &mut dyn FnMut(usize, f32)| {
        let rs = [Reader::Strided(ostrides.clone())];
        broadcast::for_each(s, &rs, |i, [o]| f(o, x[i]));
    };
    match kind {
        Reduce::Sum | Reduce::Mean => {
            y.iter_mut().for_each(|v| *v = 0.0);
            visit(&mut |o, v| y[o] += v);
            if kind == Reduce::Mean {
                let n = count as f32;
                y.iter_mut().for_each(|v| *v /= n);
            }
        }
        Reduce::Max => {
            y.iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
            visit(&mut |o, v| y[o] = Binary::Max.apply(y[o], v));
        }
        Reduce::Min => {
            y.iter_mut().for_each(|v| *v = f32::INFINITY);
            visit(&mut |o, v| y[o] = Binary::Min.apply(y[o], v));
        }
        Reduce::Var => {
            let mut mean = vec![0.0f32; y.len()];
            visit(&mut |o, v| mean[o] += v);
            let n = count as f32;
            mean.iter_mut().for_each(|v| *v /= n);
            y.iter_mut().for_each(|v| *v = 0.0);
            visit(&mut |o, v| {
                let d = v - mean[o];
                y[o] += d * d;
            });
            y.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// Softmax along `axis`: `exp(x - max) / sum`, the sum sequential (log: `x - max - ln(sum)`).
fn softmax(x: &[f32], s: &[usize], axis: usize, log: bool, y: &mut [f32]) {
    let inner: usize = s[axis + 1..].iter().product();
    let n = s[axis];
    let outer: usize = s[..axis].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * n * inner + j * inner + i;
            let m = (0..n).map(|j| x[at(j)]).fold(f32::NEG_INFINITY, f32::max);
            if log {
                let mut sum = 0.0f32;
                for j in 0..n {
                    sum += (x[at(j)] - m).exp();
                }
                let ls = sum.ln();
                for j in 0..n {
                    y[at(j)] = (x[at(j)] - m) - ls;
                }
            } else {
                let mut sum = 0.0f32;
                for j in 0..n {
                    let e = (x[at(j)] - m).exp();
                    y[at(j)] = e;
                    sum += e;
                }
                for j in 0..n {
                    y[at(j)] /= sum;
                }
            }
        }
    }
}
