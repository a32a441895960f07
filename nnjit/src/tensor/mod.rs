//! [`Tensor`]: the value type of module bodies.
//!
//! A tensor is either *eager* (it holds an array and every op computes at once) or *traced* (a
//! node of the program a lifted module is compiling: shape and dtype known, no values). Module
//! bodies are written once against tensors and run both ways, like a JAX function under
//! `jax.jit` or not. Ndarray stays the way in and out: `Tensor::from(array)` and
//! [`Tensor::to_array`].
//!
//! Ops never return `Result`: an op that fails (mismatched shapes, a value read while traced)
//! returns a *failed* tensor that carries the error, and every op on it carries it on, so that
//! `(&a + &b).relu()` reads like the math; the error surfaces at the next fallible step (the
//! end of `Module::call`, `Scope::call`, `to_array`, `put_variable`).
//!
//! ```
//! use nnjit::nn::{self, Tensor};
//! let x = Tensor::from(ndarray::array![[1.0f32, -2.0], [3.0, -4.0]]);
//! let y = nn::relu(&(&x * 2.0)) + 1.0;                   // broadcasting with scalars
//! assert_eq!(y.to_array()?, ndarray::array![[3.0f32, 1.0], [7.0, 1.0]].into_dyn());
//! assert_eq!(y.sum(&[0], false).to_array()?, ndarray::array![10.0f32, 2.0].into_dyn());
//! let bad = &x + &Tensor::from(ndarray::array![1.0f32, 2.0, 3.0]); // (2, 2) + (3,)
//! assert!(bad.to_array().is_err());                      // the error surfaces here
//! # Ok::<(), nnjit::Error>(())
//! ```

pub(crate) mod api;
pub(crate) mod broadcast;
pub(crate) mod op;
pub(crate) mod trace;

use std::fmt;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{Error, Result};
use crate::module::SmallShape;
use crate::random::Key;

pub use api::{activation, HostFn};
pub(crate) use trace::Graph;

/// The element type of a tensor.
///
/// ```
/// use nnjit::nn::{DType, Tensor};
/// let x = Tensor::from(ndarray::array![1.0f32, 2.0]);
/// assert_eq!(x.dtype(), DType::F32);
/// assert_eq!(x.gt(1.5).dtype(), DType::Bool); // comparisons give masks
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: what every layer computes in.
    F32,
    /// 32-bit signed integer (token ids).
    I32,
    /// 32-bit unsigned integer (RNG keys: JAX's raw `uint32[2]` keys).
    U32,
    /// Booleans (masks, comparison results).
    Bool,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::Bool => "bool",
        })
    }
}

/// Shape and dtype: what a traced tensor knows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Meta {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
}

impl Meta {
    pub(crate) fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        Meta { dtype, shape: shape.into() }
    }

    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The elements of an eager tensor in standard (row-major, contiguous) layout, shared: the
/// layout is checked once when it is made, so reading its elements as a slice costs nothing
/// afterwards. A variable's array is shared as it is (no copy); what an op computes is held
/// as its elements and its shape, without an ndarray array (building one costs ~190
/// instructions, more than a small op), which is built only when the values leave as one.
#[derive(Debug)]
pub(crate) enum Shared<T> {
    /// An array shared with its owner (a variable's leaf, an array given to `Tensor::from`).
    Array(Arc<ArrayD<T>>),
    /// Elements computed here, row-major, and their shape.
    Owned(Arc<Owned<T>>),
}

/// Elements and their shape: what [`Shared::Owned`] holds.
#[derive(Debug, Clone)]
pub(crate) struct Owned<T> {
    data: Vec<T>,
    dims: Dims,
}

/// A shape, inline up to rank 4 (almost every tensor's), else on the heap.
#[derive(Debug, Clone)]
enum Dims {
    Inline(SmallShape),
    Heap(Box<[usize]>),
}

impl Dims {
    #[inline]
    fn new(shape: &[usize]) -> Dims {
        match SmallShape::new(shape) {
            Some(s) => Dims::Inline(s),
            None => Dims::Heap(shape.into()),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[usize] {
        match self {
            Dims::Inline(s) => s.dims(),
            Dims::Heap(d) => d,
        }
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        match self {
            Shared::Array(a) => Shared::Array(Arc::clone(a)),
            Shared::Owned(o) => Shared::Owned(Arc::clone(o)),
        }
    }
}

impl<T: Clone> Shared<T> {
    /// Shares `a`, copying it only if it is not in standard layout.
    pub(crate) fn new(a: Arc<ArrayD<T>>) -> Self {
        if a.is_standard_layout() {
            Shared::Array(a)
        } else {
            Shared::Array(Arc::new(a.as_standard_layout().into_owned()))
        }
    }

    /// Shares `a`, known to be in standard layout (a [`Leaf`](crate::variables::Leaf) that
    /// checked it when made): the layout is not checked again.
    pub(crate) fn standard(a: Arc<ArrayD<T>>) -> Self {
        debug_assert!(a.is_standard_layout());
        Shared::Array(a)
    }

    /// Wraps an owned array (copied only if not in standard layout).
    pub(crate) fn from_array(a: ArrayD<T>) -> Self {
        Shared::Array(Arc::new(standard(a)))
    }

    /// `v` as the row-major elements of `shape` ([`Error::SizeOverflow`] for a shape ndarray
    /// cannot represent, as [`array_from_vec`] reports it).
    pub(crate) fn from_vec(shape: &[usize], v: Vec<T>) -> Result<Self> {
        check_shape(shape, v.len())?;
        Ok(Shared::Owned(Arc::new(Owned { data: v, dims: Dims::new(shape) })))
    }

    /// Replaces the elements by `v`, of `shape`: in this allocation when this is their only
    /// owner.
    pub(crate) fn set_vec(&mut self, shape: &[usize], v: Vec<T>) -> Result<()> {
        check_shape(shape, v.len())?;
        if let Shared::Owned(o) = self {
            if let Some(slot) = Arc::get_mut(o) {
                slot.data = v;
                slot.dims = Dims::new(shape);
                return Ok(());
            }
        }
        *self = Shared::Owned(Arc::new(Owned { data: v, dims: Dims::new(shape) }));
        Ok(())
    }

    /// The values as an array, without copying the elements when this is their only owner.
    pub(crate) fn into_array(self) -> Result<ArrayD<T>> {
        match self {
            Shared::Array(a) => Ok(Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone())),
            Shared::Owned(o) => {
                let Owned { data, dims } = Arc::try_unwrap(o).unwrap_or_else(|o| (*o).clone());
                array_from_vec(dims.as_slice(), data)
            }
        }
    }

    /// The values as a new array.
    pub(crate) fn to_array(&self) -> Result<ArrayD<T>> {
        self.clone().into_array()
    }
}

impl<T> Shared<T> {
    /// The elements, mutably, when this is their only owner (no copy-on-write needed).
    pub(crate) fn unique_slice_mut(&mut self) -> Option<&mut [T]> {
        match self {
            Shared::Array(a) => {
                let a = Arc::get_mut(a)?;
                let len = a.len();
                // SAFETY: as in `slice`, standard layout (the invariant of `Shared`) puts the
                // `len` elements contiguously from `as_mut_ptr()`, in row-major order (ndarray's
                // own check, `as_slice_memory_order_mut`, walks the shape and strides on every
                // call); `Arc::get_mut` proved this the array's only owner, and the slice
                // borrows `self` mutably.
                Some(unsafe { std::slice::from_raw_parts_mut(a.as_mut_ptr(), len) })
            }
            Shared::Owned(o) => Some(&mut Arc::get_mut(o)?.data),
        }
    }

    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Shared::Array(a) => a.shape(),
            Shared::Owned(o) => o.dims.as_slice(),
        }
    }

    /// The elements in row-major order.
    pub(crate) fn slice(&self) -> &[T] {
        match self {
            // SAFETY: every `Shared::Array` is in standard layout (checked by `new`/`from_array`,
            // known so by `standard`'s callers; mutated since only through `unique_slice_mut`,
            // which keeps the layout), so its `len()` elements are contiguous from `as_ptr()`;
            // the slice borrows `self`, which keeps the array alive.
            Shared::Array(a) => unsafe { std::slice::from_raw_parts(a.as_ptr(), a.len()) },
            Shared::Owned(o) => &o.data,
        }
    }
}

impl<T: fmt::Debug> Shared<T> {
    /// `Tensor(<the array>)`, as ndarray prints it.
    fn fmt_values(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shared::Array(a) => write!(f, "Tensor({a:?})"),
            Shared::Owned(o) => match ndarray::ArrayViewD::from_shape(IxDyn(o.dims.as_slice()), &o.data) {
                Ok(v) => write!(f, "Tensor({v:?})"),
                Err(_) => write!(f, "Tensor({:?} of shape {:?})", o.data, o.dims.as_slice()),
            },
        }
    }
}

/// Whether `len` elements can be an ndarray array of `shape` (what `from_shape_vec` checks, so
/// that [`Shared::into_array`] cannot fail on what [`Shared::from_vec`] accepted): the product
/// of the axes is `len`, and that of the non-zero ones fits in `isize`.
#[inline]
fn check_shape(shape: &[usize], len: usize) -> Result<()> {
    let mut all = 1usize;
    let mut nonzero = 1usize;
    for &d in shape {
        all = all.saturating_mul(d);
        if d != 0 {
            nonzero = match nonzero.checked_mul(d) {
                Some(p) if p <= isize::MAX as usize => p,
                _ => return Err(Error::SizeOverflow { what: "tensor".into(), shape: shape.to_vec() }),
            };
        }
    }
    if all != len {
        return Err(Error::invalid("", format!("internal: {len} elements for a tensor of shape {shape:?}")));
    }
    Ok(())
}

/// Shape and dtype, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MetaRef<'a> {
    pub(crate) dtype: DType,
    pub(crate) shape: &'a [usize],
}

impl MetaRef<'_> {
    pub(crate) fn to_meta(self) -> Meta {
        Meta::new(self.dtype, self.shape)
    }

    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

impl fmt::Display for MetaRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_meta().fmt(f)
    }
}

/// The data of an eager tensor, shared (cloning a tensor copies no data).
#[derive(Clone, Debug)]
pub(crate) enum Value {
    F32(Shared<f32>),
    I32(Shared<i32>),
    U32(Shared<u32>),
    Bool(Shared<bool>),
}

impl Value {
    pub(crate) fn meta(&self) -> Meta {
        match self {
            Value::F32(a) => Meta::new(DType::F32, a.shape()),
            Value::I32(a) => Meta::new(DType::I32, a.shape()),
            Value::U32(a) => Meta::new(DType::U32, a.shape()),
            Value::Bool(a) => Meta::new(DType::Bool, a.shape()),
        }
    }

    pub(crate) fn dtype(&self) -> DType {
        match self {
            Value::F32(_) => DType::F32,
            Value::I32(_) => DType::I32,
            Value::U32(_) => DType::U32,
            Value::Bool(_) => DType::Bool,
        }
    }

    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Value::F32(a) => a.shape(),
            Value::I32(a) => a.shape(),
            Value::U32(a) => a.shape(),
            Value::Bool(a) => a.shape(),
        }
    }

    /// The elements as a slice.
    pub(crate) fn data(&self) -> op::Data<'_> {
        match self {
            Value::F32(a) => op::Data::F32(a.slice()),
            Value::I32(a) => op::Data::I32(a.slice()),
            Value::U32(a) => op::Data::U32(a.slice()),
            Value::Bool(a) => op::Data::Bool(a.slice()),
        }
    }

    /// Wraps an array, copying it only if it is not in standard layout.
    pub(crate) fn f32(a: ArrayD<f32>) -> Value {
        Value::F32(Shared::from_array(a))
    }

    /// A shared f32 array (a variable's leaf), copied only if not in standard layout.
    pub(crate) fn f32_shared(a: &Arc<ArrayD<f32>>) -> Value {
        Value::F32(Shared::new(Arc::clone(a)))
    }
}

/// `v` as a row-major array of `shape`; a shape ndarray cannot represent (the product of its
/// non-zero axes overflows, e.g. `(0, 2^62, 4)`) is [`Error::SizeOverflow`].
pub(crate) fn array_from_vec<T>(shape: &[usize], v: Vec<T>) -> Result<ArrayD<T>> {
    // Static ranks 1 and 2 (most tensors) cost less shape arithmetic than IxDyn.
    let built = match *shape {
        [n] if v.len() == n => Ok(ndarray::Array1::from_vec(v).into_dyn()),
        // SAFETY: `v` holds exactly `r * c` elements, so the default row-major strides of
        // `(r, c)` address exactly those, and no axis exceeds `isize::MAX` (so neither does the
        // product of the non-zero ones, a `Vec`'s length or one of them): what
        // `from_shape_vec` checks. Other shapes take the checked path below (and its error).
        [r, c] if r.checked_mul(c) == Some(v.len()) && r.max(c) <= isize::MAX as usize => {
            Ok(unsafe { ndarray::Array2::from_shape_vec_unchecked((r, c), v) }.into_dyn())
        }
        _ => ArrayD::from_shape_vec(IxDyn(shape), v),
    };
    built.map_err(|e| match e.kind() {
        ndarray::ErrorKind::Overflow => Error::SizeOverflow { what: "tensor".into(), shape: shape.to_vec() },
        _ => Error::invalid("", e.to_string()),
    })
}

fn standard<T: Clone>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

#[derive(Clone)]
pub(crate) enum Repr {
    Eager(Value),
    /// Boxed: a tensor is moved on every op and call, and an eager one (two words) should
    /// not pay for the size of a traced one.
    Traced(Box<trace::Traced>),
    Failed(Arc<Error>),
}

/// The value type of module bodies: an n-dimensional array of a [`DType`], eager or traced.
///
/// Create one from an ndarray (`Tensor::from(array)`), read it back with
/// [`to_array`](Tensor::to_array) (eager only: while a lifted module is traced this is an error
/// that names the module and says what to do instead). Arithmetic operators broadcast like
/// NumPy, and take scalars; see the methods for the rest (reductions, reshapes, matmul, ...).
///
/// ```
/// use nnjit::nn::Tensor;
/// let a = Tensor::from(ndarray::array![[1.0f32, 2.0, 3.0]]);
/// assert_eq!(a.shape(), &[1, 3]);
/// let b = a.reshape(&[3, 1]);
/// let outer = &b * &a; // (3, 1) * (1, 3) broadcasts to (3, 3)
/// assert_eq!(outer.shape(), &[3, 3]);
/// assert_eq!(outer.to_array()?[[2, 1]], 6.0);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor {
    pub(crate) repr: Repr,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Eager(v) => match v {
                Value::F32(a) => a.fmt_values(f),
                Value::I32(a) => a.fmt_values(f),
                Value::U32(a) => a.fmt_values(f),
                Value::Bool(a) => a.fmt_values(f),
            },
            Repr::Traced(t) => write!(f, "Traced<{}>(%{})", t.meta, t.node),
            Repr::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

impl Tensor {
    pub(crate) fn eager(v: Value) -> Tensor {
        Tensor { repr: Repr::Eager(v) }
    }

    pub(crate) fn failed(e: Error) -> Tensor {
        Tensor { repr: Repr::Failed(Arc::new(e)) }
    }

    /// The tensor's shape. A failed tensor has shape `[]`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).shape(), &[2, 3]);
    /// ```
    #[must_use]
    pub fn shape(&self) -> &[usize] {
        match &self.repr {
            Repr::Eager(v) => v.shape(),
            Repr::Traced(t) => &t.meta.shape,
            Repr::Failed(_) => &[],
        }
    }

    /// The number of axes.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).ndim(), 2);
    /// ```
    #[must_use]
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).len(), 6);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the tensor has no elements.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert!(Tensor::zeros(&[0, 3]).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type (`F32` for a failed tensor).
    ///
    /// ```
    /// use nnjit::nn::{DType, Tensor};
    /// assert_eq!(Tensor::zeros(&[1]).dtype(), DType::F32);
    /// ```
    #[must_use]
    pub fn dtype(&self) -> DType {
        match &self.repr {
            Repr::Eager(v) => v.dtype(),
            Repr::Traced(t) => t.meta.dtype,
            Repr::Failed(_) => DType::F32,
        }
    }

    /// Whether this tensor is a node of a program being traced (it has no values).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert!(!Tensor::zeros(&[1]).is_traced());
    /// ```
    #[must_use]
    pub fn is_traced(&self) -> bool {
        matches!(self.repr, Repr::Traced(_))
    }

    /// The error this tensor carries, if an op that made it failed.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let bad = Tensor::zeros(&[2]).reshape(&[3]);
    /// assert!(bad.check().is_err());
    /// assert!(Tensor::zeros(&[2]).check().is_ok());
    /// ```
    pub fn check(&self) -> Result<()> {
        match &self.repr {
            Repr::Failed(e) => Err((**e).clone()),
            _ => Ok(()),
        }
    }

    pub(crate) fn meta_ref(&self) -> Option<MetaRef<'_>> {
        match &self.repr {
            Repr::Eager(v) => Some(MetaRef { dtype: v.dtype(), shape: v.shape() }),
            Repr::Traced(t) => Some(MetaRef { dtype: t.meta.dtype, shape: &t.meta.shape }),
            Repr::Failed(_) => None,
        }
    }

    pub(crate) fn meta(&self) -> Result<Meta> {
        match &self.repr {
            Repr::Eager(v) => Ok(v.meta()),
            Repr::Traced(t) => Ok(t.meta.clone()),
            Repr::Failed(e) => Err((**e).clone()),
        }
    }

    /// The values as an f32 array (JAX: `np.asarray(x)`). An error while traced: a compiled
    /// module cannot read the values of what it computes; branch on shapes or fields instead,
    /// or run the host code inside the program with [`Tensor::host_callback`].
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 2.0]);
    /// assert_eq!(x.to_array()?, ndarray::array![1.0f32, 2.0].into_dyn());
    /// assert!(x.gt(1.0).to_array().is_err()); // a bool mask is not f32: use to_bool_array
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn to_array(&self) -> Result<ArrayD<f32>> {
        match self.value("to_array")? {
            Value::F32(a) => a.to_array(),
            v => Err(dtype_error("to_array", DType::F32, v.meta().dtype)),
        }
    }

    /// Consumes the tensor into its f32 array, without a copy when this is the only reference.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let x = Tensor::from(ndarray::array![1.0f32, 2.0]);
    /// assert_eq!(x.into_array()?.len(), 2);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn into_array(self) -> Result<ArrayD<f32>> {
        match self.into_value("into_array")? {
            Value::F32(a) => a.into_array(),
            v => Err(dtype_error("into_array", DType::F32, v.meta().dtype)),
        }
    }

    /// The values of a `Bool` tensor (eager only, like [`to_array`](Tensor::to_array)).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// let m = Tensor::from(ndarray::array![1.0f32, 2.0]).gt(1.5);
    /// assert_eq!(m.to_bool_array()?, ndarray::array![false, true].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn to_bool_array(&self) -> Result<ArrayD<bool>> {
        match self.value("to_bool_array")? {
            Value::Bool(a) => a.to_array(),
            v => Err(dtype_error("to_bool_array", DType::Bool, v.meta().dtype)),
        }
    }

    /// The values of an `I32` tensor (eager only).
    ///
    /// ```
    /// use nnjit::nn::{DType, Tensor};
    /// let ids = Tensor::from(ndarray::array![1i32, 7]);
    /// assert_eq!(ids.dtype(), DType::I32);
    /// assert_eq!(ids.to_i32_array()?, ndarray::array![1i32, 7].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn to_i32_array(&self) -> Result<ArrayD<i32>> {
        match self.value("to_i32_array")? {
            Value::I32(a) => a.to_array(),
            v => Err(dtype_error("to_i32_array", DType::I32, v.meta().dtype)),
        }
    }

    /// The key held by a `U32[2]` tensor (what [`Scope::make_rng`](crate::scope::Scope::make_rng)
    /// returns), eager only.
    ///
    /// ```
    /// use nnjit::nn::{self, Tensor};
    /// let k = Tensor::from_key(nn::PRNGKey(3));
    /// assert_eq!(k.to_key()?, nn::PRNGKey(3));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn to_key(&self) -> Result<Key> {
        match self.value("to_key")? {
            Value::U32(a) if a.shape() == [2] => match a.slice() {
                [a, b] => Ok(Key::from([*a, *b])),
                _ => Err(dtype_error("to_key", DType::U32, DType::U32)),
            },
            v => Err(Error::invalid("", format!("to_key: expected a u32[2] key, got {}", v.meta()))),
        }
    }

    /// A `U32[2]` tensor holding `key` (JAX's raw key array).
    ///
    /// ```
    /// use nnjit::nn::{self, DType, Tensor};
    /// let k = Tensor::from_key(nn::PRNGKey(0));
    /// assert_eq!((k.dtype(), k.shape()), (DType::U32, &[2usize][..]));
    /// ```
    #[must_use]
    pub fn from_key(key: Key) -> Tensor {
        let w: [u32; 2] = key.into();
        Tensor::eager(Value::U32(Shared::from_array(
            ArrayD::from_shape_vec(IxDyn(&[2]), w.to_vec()).unwrap_or_default(),
        )))
    }

    /// The single element of a one-element f32 tensor (eager only: a Rust value read from a
    /// traced tensor would bake one call's data into the program).
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::from(ndarray::array![[2.5f32]]).item()?, 2.5);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn item(&self) -> Result<f32> {
        let a = self.to_array_op("item")?;
        match a.slice() {
            [v] => Ok(*v),
            _ => Err(Error::invalid("", format!("item: the tensor has shape {:?}, not one element", a.shape()))),
        }
    }

    fn to_array_op(&self, op: &'static str) -> Result<Shared<f32>> {
        match self.value(op)? {
            Value::F32(a) => Ok(a),
            v => Err(dtype_error(op, DType::F32, v.meta().dtype)),
        }
    }

    /// The eager value, or the tracer's error naming `op`.
    pub(crate) fn value(&self, op: &'static str) -> Result<Value> {
        match &self.repr {
            Repr::Eager(v) => Ok(v.clone()),
            Repr::Traced(t) => Err(t.read_error(op)),
            Repr::Failed(e) => Err((**e).clone()),
        }
    }

    fn into_value(self, op: &'static str) -> Result<Value> {
        match self.repr {
            Repr::Eager(v) => Ok(v),
            Repr::Traced(t) => Err(t.read_error(op)),
            Repr::Failed(e) => Err((*e).clone()),
        }
    }

    /// A tensor of zeros.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::zeros(&[2]).to_array()?, ndarray::array![0.0f32, 0.0].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::ones(&[1]).to_array()?, ndarray::array![1.0f32].into_dyn());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// A tensor filled with `value`.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::full(&[2], 3.0).sum(&[0], false).item()?, 6.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        match crate::fallible::checked_len("tensor", shape)
            .and_then(|n| crate::fallible::try_filled("tensor", n, value))
        {
            Ok(v) => match ArrayD::from_shape_vec(IxDyn(shape), v) {
                Ok(a) => Tensor::eager(Value::F32(Shared::from_array(a))),
                Err(e) => Tensor::failed(Error::invalid("", e.to_string())),
            },
            Err(e) => Tensor::failed(e),
        }
    }

    /// A scalar (rank-0) f32 tensor.
    ///
    /// ```
    /// use nnjit::nn::Tensor;
    /// assert_eq!(Tensor::scalar(2.0).shape(), &[] as &[usize]);
    /// ```
    #[must_use]
    pub fn scalar(value: f32) -> Tensor {
        Tensor::full(&[], value)
    }
}

pub(crate) fn dtype_error(op: &str, want: DType, got: DType) -> Error {
    Error::invalid("", format!("{op}: expected a {want} tensor, got {got}"))
}

impl<D: ndarray::Dimension> From<ndarray::Array<f32, D>> for Tensor {
    fn from(a: ndarray::Array<f32, D>) -> Tensor {
        Tensor::eager(Value::f32(a.into_dyn()))
    }
}

impl<D: ndarray::Dimension> From<ndarray::Array<i32, D>> for Tensor {
    fn from(a: ndarray::Array<i32, D>) -> Tensor {
        Tensor::eager(Value::I32(Shared::from_array(a.into_dyn())))
    }
}

impl<D: ndarray::Dimension> From<ndarray::Array<bool, D>> for Tensor {
    fn from(a: ndarray::Array<bool, D>) -> Tensor {
        Tensor::eager(Value::Bool(Shared::from_array(a.into_dyn())))
    }
}

impl Tensor {
    /// A copy of `data` as a tensor of `shape` (row-major).
    pub(crate) fn from_slice(shape: &[usize], data: &[f32]) -> Tensor {
        match Shared::from_vec(shape, data.to_vec()) {
            Ok(s) => Tensor::eager(Value::F32(s)),
            Err(e) => Tensor::failed(e),
        }
    }
}

impl From<ArrayViewD<'_, f32>> for Tensor {
    fn from(a: ArrayViewD<'_, f32>) -> Tensor {
        let v: Vec<f32> = match a.as_slice() {
            Some(s) => s.to_vec(),
            None => a.iter().copied().collect(),
        };
        match Shared::from_vec(a.shape(), v) {
            Ok(s) => Tensor::eager(Value::F32(s)),
            Err(e) => Tensor::failed(e),
        }
    }
}

impl From<&Tensor> for Tensor {
    fn from(t: &Tensor) -> Tensor {
        t.clone()
    }
}

impl From<f32> for Tensor {
    fn from(v: f32) -> Tensor {
        Tensor::scalar(v)
    }
}
