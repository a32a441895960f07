//! The scope a module runs in: Flax's `param`, `variable`, `make_rng` and child scopes.
//!
//! A scope is a position in the module tree (`/Dense_0`) plus the call's shared state (the
//! variables read or created, the mutable collections, the RNG streams and their counters).
//! RNG derivation reproduces Flax exactly: a stream key seen from scope `/a/b` is
//! `fold_in_static(root, ["a", "b", counter])`, one SHA-1 over the suffix (`flax/core/scope.py`).
//!
//! ```
//! use nnjit::nn::{self, Module, Scope, Tensor};
//! use nnjit::random::static_suffix::{fold_in_static, SuffixPart::{Index, Name}};
//!
//! struct Probe;
//! impl Module for Probe {
//!     type Input = Tensor;
//!     type Output = Tensor;
//!     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
//!         assert_eq!(s.path(), "/Probe_0");
//!         let k = s.make_rng("params")?;
//!         assert_eq!(k.to_key()?, fold_in_static(nn::PRNGKey(0), &[Name("Probe_0"), Index(1)]));
//!         Ok(x)
//!     }
//! }
//! struct Outer;
//! impl Module for Outer {
//!     type Input = Tensor;
//!     type Output = Tensor;
//!     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
//!         s.call(&Probe, x)
//!     }
//! }
//! Outer.init(nn::PRNGKey(0), &[1.0f32])?;
//! # Ok::<(), nnjit::Error>(())
//! ```

mod frame;
mod hook;
mod mutable;
mod names;
mod rngs;

pub use frame::Mode;
pub(crate) use frame::{Frame, Tracer};
pub(crate) use hook::CallHook;
pub use mutable::Mutable;
use names::AutoNames;
pub use names::Child;
pub(crate) use names::{Name, PathNode};
use rngs::RngFork;
pub use rngs::Rngs;

use std::borrow::Cow;
use std::sync::Arc;

use std::borrow::Borrow;

use ndarray::ArrayD;

use crate::error::{Error, NameKind, Result};
use crate::init::Initializer;
use crate::tensor::trace::{Source, VarGuard, VarRead, VarWrite};
use crate::tensor::{DType, Meta, Repr, Shared, Tensor, Value};
use crate::variables::{Dict, Leaf, Node, Variables};

/// Where a module runs: its path, variables, RNG streams and children.
///
/// Modules receive a `&mut Scope` in [`Module::call`](crate::module::Module::call) and use
/// [`param`](Scope::param), [`variable`](Scope::variable), [`make_rng`](Scope::make_rng) and
/// [`call`](Scope::call) (a child module with Flax's automatic name, `Dense_0`, `Dense_1`, ...).
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
///
/// /// `y = x · w + b` with one scalar weight and bias, written against the scope directly.
/// struct Affine;
/// impl Module for Affine {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let w = s.param("w", &nn::initializers::ones(), &[])?;
///         let b = s.param("b", &nn::initializers::zeros(), &[])?;
///         Ok(x * w + b)
///     }
/// }
/// let vars = Affine.init(nn::PRNGKey(0), &[2.0f32])?;
/// assert_eq!(vars.shapes(), [("params/w".to_string(), vec![]), ("params/b".to_string(), vec![])]);
/// assert_eq!(Affine.apply(&vars, &[2.0f32])?[0], 2.0);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct Scope<'c, 'v> {
    frame: &'c mut Frame<'v>,
    pub(crate) node: PathNode<'c>,
    fork: Option<Arc<RngFork>>,
    auto_names: AutoNames,
    /// Explicit child names taken in this scope, with the type name of their module.
    given: Vec<(Arc<str>, &'static str)>,
    /// Type name of the module running in this scope (for [`Error::NameInUse`]).
    module: &'static str,
    /// This scope's id within the call.
    id: u64,
    /// This scope's dict in the given `params`, resolved on first use (layers read several
    /// parameters at one path).
    params_here: std::cell::Cell<Option<Option<&'v Dict>>>,
    /// The parent's dict in the input `params` collection, when the parent resolved it
    /// before this scope was made: this scope's is then one lookup in it.
    params_parent: Option<Option<&'v Dict>>,
}

impl<'c, 'v> Scope<'c, 'v> {
    pub(crate) fn root(frame: &'c mut Frame<'v>) -> Self {
        frame.scopes += 1;
        let id = frame.scopes;
        Scope {
            frame,
            node: PathNode { parent: None, name: None },
            fork: None,
            auto_names: AutoNames::default(),
            given: Vec::new(),
            module: "",
            id,
            params_here: std::cell::Cell::new(None),
            params_parent: None,
        }
    }

    /// The `/`-joined path of this scope (`/Dense_0`; the empty string at the top).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Path;
    /// impl Module for Path {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         assert_eq!(s.path(), ""); // the top module
    ///         s.call_named("block", &nn::Dense::new(2), x) // runs at /block
    ///     }
    /// }
    /// let vars = Path.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert!(vars.get("params/block/kernel").is_some());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> String {
        let segs = self.node.segments();
        if segs.is_empty() {
            String::new()
        } else {
            format!("/{}", segs.join("/"))
        }
    }

    fn var_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path())
    }

    /// Whether this call creates variables (Flax's `is_initializing()`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Check;
    /// impl Module for Check {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         // e.g. skip an expensive statistic while initializing, as Flax code does
    ///         Ok(if s.is_initializing() { Tensor::zeros(x.shape()) } else { x })
    ///     }
    /// }
    /// let (y, vars) = Check.init_with_output(nn::PRNGKey(0), &[5.0f32])?;
    /// assert_eq!(y[0], 0.0);
    /// assert_eq!(Check.apply(&vars, &[5.0f32])?[0], 5.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn is_initializing(&self) -> bool {
        self.frame.mode == Mode::Init
    }

    /// Whether `collection` may be written in this call.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs, Scope, Tensor};
    ///
    /// struct Check;
    /// impl Module for Check {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let m = s.is_mutable_collection("batch_stats");
    ///         Ok(Tensor::full(x.shape(), if m { 1.0 } else { 0.0 }))
    ///     }
    /// }
    /// let vars = Check.init(nn::PRNGKey(0), &[0.0f32])?; // init: everything is mutable
    /// assert_eq!(Check.apply(&vars, &[0.0f32])?[0], 0.0);
    /// let (y, _) = Check.apply_with(&vars, &[0.0f32], Rngs::none(), Mutable::only(["batch_stats"]))?;
    /// assert_eq!(y[0], 1.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn is_mutable_collection(&self, collection: &str) -> bool {
        self.visible(collection) && self.frame.mutable.allows(collection)
    }

    /// Whether stream `name` was given to this call (Flax's `has_rng`). The `params` fallback of
    /// [`make_rng`](Scope::make_rng) is not considered: with only `params`, `has_rng("dropout")`
    /// is `false` although `make_rng("dropout")` succeeds.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs, Scope, Tensor};
    ///
    /// struct Check;
    /// impl Module for Check {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = s.has_rng("dropout");
    ///         Ok(Tensor::full(x.shape(), if h { 1.0 } else { 0.0 }))
    ///     }
    /// }
    /// let vars = nnjit::Variables::new();
    /// assert_eq!(Check.apply(&vars, &[0.0f32])?[0], 0.0); // apply has no streams
    /// let rngs = Rngs::none().with("dropout", nn::PRNGKey(1));
    /// assert_eq!(Check.apply_with(&vars, &[0.0f32], rngs, Mutable::Nothing)?.0[0], 1.0);
    /// // Only `params` (make_rng("dropout") would fall back to it, has_rng does not):
    /// let (y, _) = Check.init_with_output(nn::PRNGKey(0), &[0.0f32])?;
    /// assert_eq!(y[0], 0.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn has_rng(&self, name: &str) -> bool {
        self.frame.rngs.get(name).is_some()
    }

    /// Sets the type name of the module running in this scope (named in [`Error::NameInUse`]).
    pub(crate) fn set_module(&mut self, type_name: &'static str) {
        self.module = type_name;
    }

    pub(crate) fn frame(&self) -> &Frame<'v> {
        self.frame
    }

    pub(crate) fn frame_mut(&mut self) -> &mut Frame<'v> {
        self.frame
    }

    fn visible(&self, collection: &str) -> bool {
        self.frame.visible.is_none_or(|v| v.contains(&collection))
    }

    fn read_leaf(&self, collection: &str, name: &str) -> Option<Cow<'v, Leaf>> {
        self.read_leaf_below(collection, &[], name)
    }

    /// The leaf `collection`/`rel`/`name` below this scope: written in this call, else given.
    pub(crate) fn read_leaf_below(&self, collection: &str, rel: &[String], name: &str) -> Option<Cow<'v, Leaf>> {
        if !self.visible(collection) {
            return None;
        }
        let walk = |root: &Dict| -> Option<Leaf> {
            let mut d = self.node.resolve(root)?;
            for seg in rel {
                d = d.dict(seg)?;
            }
            d.leaf(name).cloned()
        };
        // Values written in this call win (a mutable collection read after an update).
        if !self.frame.out.is_empty() {
            if let Some(l) = self.frame.out.collection(collection).and_then(walk) {
                return Some(Cow::Owned(l));
            }
        }
        let input: &'v Variables = self.frame.input?;
        let mut d = if collection == "params" {
            self.input_params()?
        } else {
            self.node.resolve(input.collection(collection)?)?
        };
        for seg in rel {
            d = d.dict(seg)?;
        }
        d.leaf(name).map(Cow::Borrowed)
    }

    /// The parameter `name` of `shape` given to this eager apply at this scope's path, when
    /// nothing was written in this call: what [`param`](Self::param) reads first (and makes a
    /// tensor of); `None` for every other case (traced, initializing, written, missing, another
    /// shape), which `param` handles. A layer may compute from it in place.
    pub(crate) fn given_param(&self, name: &str, shape: &[usize]) -> Option<&'v Leaf> {
        if self.frame.tracer.is_some() || !self.frame.out.is_empty() || !self.visible("params") {
            return None;
        }
        let leaf = self.input_params()?.leaf(name)?;
        crate::variables::eq_short(leaf.array().shape(), shape).then_some(leaf)
    }

    /// This scope's dict in the `params` collection of the variables given to `apply`
    /// (ignoring what this call wrote), resolved once per scope.
    pub(super) fn input_params(&self) -> Option<&'v Dict> {
        if let Some(d) = self.params_here.get() {
            return d;
        }
        let input: &'v Variables = self.frame.input?;
        let d = match (self.params_parent, self.node.name) {
            (Some(parent), Some(name)) => parent.and_then(|p| name.find_dict(p)),
            _ => input.collection("params").and_then(|c| self.node.resolve(c)),
        };
        self.params_here.set(Some(d));
        d
    }

    fn write_leaf(&mut self, collection: &str, name: &str, leaf: Leaf) {
        self.write_leaf_below(collection, &[], name, leaf);
    }

    pub(crate) fn write_leaf_below(&mut self, collection: &str, rel: &[String], name: &str, leaf: Leaf) {
        let segs = self.node.segments();
        let mut dict = self.frame.out.collection_mut_or_insert(collection);
        for s in segs.iter().chain(rel) {
            dict = dict.dict_mut_or_insert(s);
        }
        dict.insert(name, Node::Leaf(leaf));
    }

    /// Path segments of this scope below the traced module's scope.
    fn rel_segments(&self) -> Vec<String> {
        let depth = self.frame.tracer.as_ref().map_or(0, |t| t.base_depth);
        let segs = self.node.segments();
        segs[depth.min(segs.len())..].to_vec()
    }

    /// While traced: the tensor written earlier in this trace at `collection`/`name`, if any.
    fn traced_written(&self, collection: &str, name: &str) -> Option<Tensor> {
        let t = self.frame.tracer.as_ref()?;
        let rel = self.rel_segments();
        t.written.iter().rev().find(|(c, r, n, _)| c == collection && *r == rel && n == name).map(|w| w.3.clone())
    }

    /// While traced: a node reading the variable at run time (its shape is checked now against
    /// the variables given, and again by the program on every call).
    fn traced_read(&mut self, collection: &str, name: &str, leaf: &Leaf, shape: &[usize]) -> Result<Tensor> {
        self.check_shape(collection, name, leaf, shape)?;
        let rel = self.rel_segments();
        let t = self.frame.tracer.as_ref().ok_or_else(|| Error::invalid(self.path(), "internal: not tracing"))?;
        let graph = Arc::clone(&t.graph);
        let index = {
            let mut b = graph.lock();
            let read = VarRead { collection: collection.into(), rel, name: name.into(), shape: shape.to_vec() };
            match b.vars.iter().position(|v| *v == read) {
                Some(i) => i,
                None => {
                    b.vars.push(read);
                    b.vars.len() - 1
                }
            }
        };
        Ok(graph.push(Source::Var(index), Vec::new(), Meta::new(DType::F32, shape)))
    }

    /// While traced: records that the program writes `value` to `collection`/`name`.
    fn traced_write(&mut self, collection: &str, name: &str, value: Tensor) -> Result<()> {
        let rel = self.rel_segments();
        let t = self.frame.tracer.as_mut().ok_or_else(|| Error::invalid("", "internal: not tracing"))?;
        let graph = Arc::clone(&t.graph);
        let value = match &value.repr {
            Repr::Traced(tr) if Arc::ptr_eq(&tr.graph, &graph) => value,
            Repr::Eager(v) => graph.push(Source::Const(v.clone()), Vec::new(), v.meta()),
            _ => return Err(Error::invalid("", "a tensor of another trace was written to a variable")),
        };
        let Repr::Traced(tr) = &value.repr else {
            return Err(Error::invalid("", "internal: write of an untraced tensor"));
        };
        graph.lock().writes.push(VarWrite {
            collection: collection.into(),
            rel: rel.clone(),
            name: name.into(),
            node: tr.node,
        });
        t.written.push((collection.into(), rel, name.into(), value));
        Ok(())
    }

    fn check_shape(&self, collection: &str, name: &str, leaf: &Leaf, shape: &[usize]) -> Result<()> {
        if leaf.array().shape() == shape {
            Ok(())
        } else {
            Err(Error::VariableShape {
                collection: collection.to_string(),
                path: self.var_path(name),
                expected: shape.to_vec(),
                found: leaf.array().shape().to_vec(),
            })
        }
    }

    /// A parameter (collection `params`): created by `init(make_rng("params"), shape)` while
    /// initializing, otherwise read and checked against `shape` (Flax's `self.param`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Scale;
    /// impl Module for Scale {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let w = s.param("w", &nn::initializers::ones(), &[])?;
    ///         Ok(x * w)
    ///     }
    /// }
    /// let vars = Scale.init(nn::PRNGKey(0), &ndarray::array![2.0f32])?;
    /// assert_eq!(vars.get("params/w").unwrap().shape(), &[] as &[usize]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn param(&mut self, name: &str, init: &Initializer, shape: &[usize]) -> Result<Tensor> {
        // Every eager apply's case, first: nothing written in this call, the leaf given at
        // this scope's path with the expected shape (what `read_leaf` and `check_shape` below
        // find and accept; anything else takes the general path, its errors included).
        if let Some(leaf) = self.given_param(name, shape) {
            return Ok(leaf_tensor(leaf));
        }
        if self.frame.tracer.is_some() {
            if let Some(t) = self.traced_written("params", name) {
                return Ok(t);
            }
            return match self.read_leaf("params", name) {
                Some(leaf) => self.traced_read("params", name, &leaf, shape),
                None if self.is_mutable_collection("params") => Err(Error::invalid(
                    self.path(),
                    format!(
                        "parameter \"{name}\" does not exist: a lifted apply cannot create parameters; call init first"
                    ),
                )),
                None => Err(Error::MissingVariable { collection: "params".into(), path: self.var_path(name) }),
            };
        }
        if let Some(leaf) = self.read_leaf("params", name) {
            self.check_shape("params", name, &leaf, shape)?;
            return Ok(leaf_tensor(&leaf));
        }
        if !self.is_mutable_collection("params") {
            return Err(Error::MissingVariable { collection: "params".into(), path: self.var_path(name) });
        }
        if !self.given.is_empty() {
            self.check_variable_name(NameKind::Param, name)?;
        }
        let key = self.next_key("params")?;
        let array = init.init_with(key, shape, self.frame.numerics)?;
        let leaf = Leaf::new(array);
        self.check_shape("params", name, &leaf, shape)?;
        let t = leaf_tensor(&leaf);
        self.write_leaf("params", name, leaf);
        Ok(t)
    }

    /// A variable of any collection (Flax's `self.variable(col, name, init_fn)`): read if it
    /// exists, otherwise created with `init` when the collection is mutable.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs, Scope, Tensor};
    ///
    /// /// Counts its calls in the `counter` collection.
    /// struct Counter;
    /// impl Module for Counter {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let n = s.variable("counter", "n", &[], || Ok(ndarray::ArrayD::zeros(vec![])))?;
    ///         if !s.is_initializing() && s.is_mutable_collection("counter") {
    ///             s.put_variable("counter", "n", n + 1.0)?;
    ///         }
    ///         Ok(x)
    ///     }
    /// }
    /// let vars = Counter.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(vars.get("counter/n").unwrap().sum(), 0.0);
    /// let (_, upd) = Counter.apply_with(&vars, &[1.0f32], Rngs::none(), Mutable::only(["counter"]))?;
    /// assert_eq!(upd.get("counter/n").unwrap().sum(), 1.0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn variable(
        &mut self,
        collection: &str,
        name: &str,
        shape: &[usize],
        init: impl FnOnce() -> Result<ArrayD<f32>>,
    ) -> Result<Tensor> {
        if self.frame.tracer.is_some() {
            if let Some(t) = self.traced_written(collection, name) {
                return Ok(t);
            }
            if let Some(leaf) = self.read_leaf(collection, name) {
                return self.traced_read(collection, name, &leaf, shape);
            }
        } else if let Some(leaf) = self.read_leaf(collection, name) {
            self.check_shape(collection, name, &leaf, shape)?;
            return Ok(leaf_tensor(&leaf));
        }
        if !self.is_mutable_collection(collection) {
            return Err(Error::MissingVariable { collection: collection.into(), path: self.var_path(name) });
        }
        if !self.given.is_empty() {
            self.check_variable_name(NameKind::Variable, name)?;
        }
        // The initial value depends on fields and shapes only (the closure sees no tensors), so
        // a trace may keep it as a constant.
        let leaf = Leaf::new(init()?);
        self.check_shape(collection, name, &leaf, shape)?;
        let t = leaf_tensor(&leaf);
        if self.frame.tracer.is_some() {
            self.traced_write(collection, name, t.clone())?;
            return self.traced_written(collection, name).ok_or_else(|| Error::invalid("", "internal: lost write"));
        }
        self.write_leaf(collection, name, leaf);
        Ok(t)
    }

    /// Whether the variable exists (written in this call or given to `apply`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Check;
    /// impl Module for Check {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let before = s.has_variable("params", "w");
    ///         s.param("w", &nn::initializers::ones(), &[1])?;
    ///         assert!(s.has_variable("params", "w"));
    ///         Ok(Tensor::full(x.shape(), if before { 1.0 } else { 0.0 }))
    ///     }
    /// }
    /// let (y, vars) = Check.init_with_output(nn::PRNGKey(0), &[0.0f32])?;
    /// assert_eq!(y[0], 0.0); // created by this init
    /// assert_eq!(Check.apply(&vars, &[0.0f32])?[0], 1.0); // given to apply
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn has_variable(&self, collection: &str, name: &str) -> bool {
        if self.traced_written(collection, name).is_some() {
            return true;
        }
        let present = self.read_leaf(collection, name).is_some();
        if let Some(t) = self.frame.tracer.as_ref() {
            // The body may branch on the answer: the program holds only where it holds again.
            let guard =
                VarGuard { collection: collection.into(), rel: self.rel_segments(), name: name.into(), present };
            let mut b = t.graph.lock();
            if !b.guards.contains(&guard) {
                b.guards.push(guard);
            }
        }
        present
    }

    /// Writes a variable (Flax's `variable.value = ...`); an error if the collection is not
    /// mutable in this call.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs, Scope, Tensor};
    ///
    /// /// Stores the last input it saw (`self.variable('cache', 'x').value = x`).
    /// struct Remember;
    /// impl Module for Remember {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.put_variable("cache", "x", &x)?;
    ///         Ok(x)
    ///     }
    /// }
    /// let vars = Remember.init(nn::PRNGKey(0), &[1.0f32])?;
    /// let (_, upd) = Remember.apply_with(&vars, &[7.0f32], Rngs::none(), Mutable::only(["cache"]))?;
    /// assert_eq!(upd.get("cache/x").unwrap()[0], 7.0);
    /// assert!(Remember.apply(&vars, &[7.0f32]).is_err()); // `cache` is not mutable
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn put_variable(&mut self, collection: &str, name: &str, value: impl Borrow<Tensor>) -> Result<()> {
        if !self.is_mutable_collection(collection) {
            return Err(Error::ImmutableCollection { collection: collection.into(), path: self.var_path(name) });
        }
        let value = value.borrow();
        value.check()?;
        if self.frame.tracer.is_some() {
            return self.traced_write(collection, name, value.clone());
        }
        self.write_leaf(collection, name, Leaf::new(value.to_array()?));
        Ok(())
    }
}

/// A variable's leaf as a tensor (shared, no copy when in standard layout).
fn leaf_tensor(leaf: &Leaf) -> Tensor {
    match leaf.shared_standard() {
        Some(a) => Tensor::eager(Value::F32(Shared::standard(Arc::clone(a)))),
        None => Tensor::eager(Value::f32_shared(leaf.shared())),
    }
}
