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

use std::borrow::Cow;
use std::sync::Arc;

use std::borrow::Borrow;

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::module::{Args, Feed, Module};
use crate::random::static_suffix::{fold_in_static, SuffixPart};
use crate::random::Key;
use crate::tensor::trace::{RngRead, Source, VarRead, VarWrite};
use crate::tensor::{DType, Graph, Meta, Repr, Tensor, Value};
use crate::variables::{Dict, Leaf, Node, Variables};

/// Named RNG streams for `init`/`apply` (Flax's `rngs={'params': key, 'dropout': key}`).
///
/// ```
/// use nnjit::nn;
/// let rngs = nn::Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1));
/// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(1)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rngs {
    streams: Vec<(String, Key)>,
}

impl Rngs {
    /// Only a `params` stream (what Flax makes of `init(key, x)`).
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::new(nn::PRNGKey(0)); // init(PRNGKey(0), x) means rngs={'params': PRNGKey(0)}
    /// assert_eq!(rngs.get("params"), Some(nn::PRNGKey(0)));
    /// assert_eq!(rngs, nn::PRNGKey(0).into());
    /// ```
    #[must_use]
    pub fn new(params: Key) -> Self {
        Rngs::none().with("params", params)
    }

    /// No streams at all (what `apply` uses by default).
    ///
    /// ```
    /// use nnjit::nn::Rngs;
    /// assert_eq!(Rngs::none().names().count(), 0);
    /// assert_eq!(Rngs::none().get("params"), None);
    /// ```
    #[must_use]
    pub fn none() -> Self {
        Rngs::default()
    }

    /// Adds (or replaces) the stream `name`.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1)).with("dropout", nn::PRNGKey(2));
    /// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(2))); // replaced, not duplicated
    /// assert_eq!(rngs.names().collect::<Vec<_>>(), ["params", "dropout"]);
    /// ```
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, key: Key) -> Self {
        let name = name.into();
        match self.streams.iter_mut().find(|(n, _)| *n == name) {
            Some(s) => s.1 = key,
            None => self.streams.push((name, key)),
        }
        self
    }

    /// The root key of stream `name`.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(1)));
    /// assert_eq!(rngs.get("noise"), None);
    /// ```
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Key> {
        self.streams.iter().find(|(n, _)| n == name).map(|(_, k)| *k)
    }

    /// Stream names, in order.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// assert_eq!(rngs.names().collect::<Vec<_>>(), ["params", "dropout"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(|(n, _)| n.as_str())
    }

    /// Keeps only the streams `keep` says yes to (used by lifts that filter RNG streams).
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// let only_dropout = rngs.filtered(|name| name == "dropout"); // like nn.jit(rngs=['dropout'])
    /// assert_eq!(only_dropout.names().collect::<Vec<_>>(), ["dropout"]);
    /// ```
    #[must_use]
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Self {
        Rngs { streams: self.streams.iter().filter(|(n, _)| keep(n)).cloned().collect() }
    }
}

impl From<Key> for Rngs {
    fn from(key: Key) -> Self {
        Rngs::new(key)
    }
}

impl<S: Into<String>, const N: usize> From<[(S, Key); N]> for Rngs {
    fn from(streams: [(S, Key); N]) -> Self {
        streams.into_iter().fold(Rngs::none(), |r, (n, k)| r.with(n, k))
    }
}

/// Which collections a call may write (Flax's `mutable=`).
///
/// ```
/// use nnjit::nn::{self, Module, Mutable, Rngs};
/// let x = ndarray::array![[1.0f32], [3.0]];
/// let bn = nn::BatchNorm::new();
/// let vars = bn.init(nn::PRNGKey(0), &x)?;
/// // Training-mode BatchNorm must write batch_stats: mutable=['batch_stats'].
/// let (_, updates) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
/// assert_eq!(updates.collection_names().collect::<Vec<_>>(), ["batch_stats"]);
/// assert!(bn.apply_with(&vars, &x, Rngs::none(), Mutable::Nothing).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mutable {
    /// None (`mutable=False`, the default of `apply`).
    #[default]
    Nothing,
    /// All collections (`mutable=True`, what `init` uses).
    All,
    /// These collections (`mutable=['batch_stats']`).
    Only(Vec<String>),
}

impl Mutable {
    /// Whether `collection` may be written.
    ///
    /// ```
    /// use nnjit::nn::Mutable;
    /// assert!(Mutable::All.allows("params"));
    /// assert!(!Mutable::Nothing.allows("batch_stats"));
    /// assert!(Mutable::only(["batch_stats"]).allows("batch_stats"));
    /// assert!(!Mutable::only(["batch_stats"]).allows("params"));
    /// ```
    #[must_use]
    pub fn allows(&self, collection: &str) -> bool {
        match self {
            Mutable::Nothing => false,
            Mutable::All => true,
            Mutable::Only(c) => c.iter().any(|c| c == collection),
        }
    }

    /// `Mutable::Only` of the given names.
    ///
    /// ```
    /// use nnjit::nn::Mutable;
    /// assert_eq!(Mutable::only(["batch_stats", "cache"]), Mutable::Only(vec!["batch_stats".into(), "cache".into()]));
    /// ```
    #[must_use]
    pub fn only<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Mutable::Only(names.into_iter().map(Into::into).collect())
    }
}

/// Whether a call creates variables (`init`) or reads them (`apply`).
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
/// use nnjit::scope::Mode;
///
/// struct Probe;
/// impl Module for Probe {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let mode = if s.is_initializing() { Mode::Init } else { Mode::Apply };
///         Ok(x.sum(&[], false) + if mode == Mode::Init { 1.0 } else { 0.0 })
///     }
/// }
/// let (y, vars) = Probe.init_with_output(nn::PRNGKey(0), &[0.0f32])?;
/// assert_eq!(y[0], 1.0); // init runs in Mode::Init
/// assert_eq!(Probe.apply(&vars, &[0.0f32])?[0], 0.0); // apply in Mode::Apply
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Variables are created by their initializers.
    Init,
    /// Variables are read from the given tree.
    Apply,
}

/// Observes module calls (`tabulate` records its rows through it): the one hook of the scope.
pub(crate) trait CallHook {
    /// A module starts at `path`; returns a token for [`CallHook::exit`].
    fn enter(&mut self, path: &str, module: &'static str, input: &[usize]) -> usize;
    /// The module of `token` returned an output of shape `output`.
    fn exit(&mut self, token: usize, output: &[usize]);
}

/// The trace of a lifted module's body: its tensors are nodes of `graph`.
pub(crate) struct Tracer {
    pub(crate) graph: Arc<Graph>,
    /// Depth of the lifted module's scope: variable and RNG paths are kept relative to it.
    pub(crate) base_depth: usize,
    /// Variables written while tracing, read back by later reads of the same call.
    written: Vec<(String, Vec<String>, String, Tensor)>,
}

impl Tracer {
    pub(crate) fn new(graph: Arc<Graph>, base_depth: usize) -> Self {
        Tracer { graph, base_depth, written: Vec::new() }
    }
}

/// The state one `init`/`apply` call shares between all its scopes.
pub(crate) struct Frame<'v> {
    pub(crate) mode: Mode,
    pub(crate) input: Option<&'v Variables>,
    pub(crate) out: Variables,
    pub(crate) mutable: Mutable,
    pub(crate) rngs: Rngs,
    counters: Vec<(String, String, u32)>,
    /// Flax's `nn.jit` RNG derivation requested (lifted types fork the RNGs).
    pub(crate) flax_jit_rngs: bool,
    /// Collections visible inside a lift that filters them.
    pub(crate) visible: Option<&'static [&'static str]>,
    /// Set while a lifted module's body is traced.
    pub(crate) tracer: Option<Tracer>,
    /// Observer of module calls.
    pub(crate) hook: Option<&'v mut dyn CallHook>,
}

impl<'v> Frame<'v> {
    pub(crate) fn new(mode: Mode, input: Option<&'v Variables>, rngs: Rngs, mutable: Mutable) -> Self {
        Frame {
            mode,
            input,
            out: Variables::untracked(),
            mutable,
            rngs,
            counters: Vec::new(),
            flax_jit_rngs: false,
            visible: None,
            tracer: None,
            hook: None,
        }
    }

    /// The RNG counters (saved and restored around a trace, which must not advance them).
    pub(crate) fn take_counters(&mut self) -> Vec<(String, String, u32)> {
        self.counters.clone()
    }

    pub(crate) fn restore_counters(&mut self, c: Vec<(String, String, u32)>) {
        self.counters = c;
    }
}

/// A segment name: automatic (`Dense_0`, built without allocating) or explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Auto(&'static str, u32),
    Given(Arc<str>),
}

impl Name {
    fn matches(&self, key: &str) -> bool {
        match self {
            Name::Given(n) => **n == *key,
            Name::Auto(base, i) => key
                .strip_prefix(base)
                .and_then(|r| r.strip_prefix('_'))
                .is_some_and(|r| r.parse::<u32>().ok() == Some(*i) && !r.starts_with('+')),
        }
    }

    fn to_string_owned(&self) -> String {
        match self {
            Name::Given(n) => n.to_string(),
            Name::Auto(b, i) => format!("{b}_{i}"),
        }
    }
}

/// A node of the scope path, linked to its parent (no allocation per child).
#[derive(Clone, Copy)]
pub(crate) struct PathNode<'a> {
    parent: Option<&'a PathNode<'a>>,
    name: Option<&'a Name>,
}

impl PathNode<'_> {
    pub(crate) fn segments(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut node = Some(self);
        while let Some(n) = node {
            if let Some(name) = n.name {
                out.push(name.to_string_owned());
            }
            node = n.parent;
        }
        out.reverse();
        out
    }

    /// The names from the root down to this node.
    pub(crate) fn names(&self) -> Vec<Name> {
        let mut out = Vec::new();
        let mut node = Some(self);
        while let Some(n) = node {
            if let Some(name) = n.name {
                out.push(name.clone());
            }
            node = n.parent;
        }
        out.reverse();
        out
    }

    /// Whether this path is exactly `names` (root first), without allocating.
    pub(crate) fn is(&self, names: &[Name]) -> bool {
        let mut node = Some(self);
        let mut rest = names;
        while let Some(n) = node {
            if let Some(name) = n.name {
                match rest.split_last() {
                    Some((last, init)) if last == name => rest = init,
                    _ => return false,
                }
            }
            node = n.parent;
        }
        rest.is_empty()
    }

    pub(crate) fn depth(&self) -> usize {
        self.parent.map_or(0, |p| p.depth() + 1)
    }

    /// The dict at this path inside `root` (a collection), if present.
    fn resolve<'d>(&self, root: &'d Dict) -> Option<&'d Dict> {
        match (self.parent, self.name) {
            (Some(p), Some(name)) => {
                let parent = p.resolve(root)?;
                parent.iter().find(|(k, _)| name.matches(k)).and_then(|(_, n)| match n {
                    Node::Dict(d) => Some(d),
                    Node::Leaf(_) => None,
                })
            }
            _ => Some(root),
        }
    }
}

/// RNG bases replaced by a fork (Flax's `fork_rngs`, used by `nn.jit`'s derivation).
#[derive(Clone, Debug)]
struct RngFork {
    keys: Vec<(String, Key)>,
    depth: usize,
}

/// Counters of a scope's automatic child names (`Dense_0`, `Dense_1`, ...), one per type name.
/// A scope rarely has children of more than a few types, so the counters live inline: a `Vec`
/// here cost an allocation on every module call.
#[derive(Default)]
struct AutoNames {
    inline: [(&'static str, u32); 4],
    len: usize,
    spill: Vec<(&'static str, u32)>,
}

impl AutoNames {
    /// The next index for `base`: 0 for its first child, then 1, 2, ...
    fn next(&mut self, base: &'static str) -> u32 {
        // Type names are usually the same `&'static str`, so compare addresses first.
        let same = |b: &&'static str| std::ptr::eq(*b, base) || *b == base;
        let (inline, spill) = (&mut self.inline[..self.len], &mut self.spill);
        if let Some((_, i)) = inline.iter_mut().chain(spill.iter_mut()).find(|(b, _)| same(b)) {
            *i += 1;
            return *i;
        }
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = (base, 0);
                self.len += 1;
            }
            None => self.spill.push((base, 0)),
        }
        0
    }
}

/// Where a module runs: its path, variables, RNG streams and children.
///
/// Modules receive a `&mut Scope` in [`Module::call`] and use
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
    /// This scope's dict in the given `params`, resolved on first use (layers read several
    /// parameters at one path).
    params_here: std::cell::Cell<Option<Option<&'v Dict>>>,
}

impl<'c, 'v> Scope<'c, 'v> {
    pub(crate) fn root(frame: &'c mut Frame<'v>) -> Self {
        Scope {
            frame,
            node: PathNode { parent: None, name: None },
            fork: None,
            auto_names: AutoNames::default(),
            params_here: std::cell::Cell::new(None),
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
            let here = match self.params_here.get() {
                Some(d) => d,
                None => {
                    let d = input.collection("params").and_then(|c| self.node.resolve(c));
                    self.params_here.set(Some(d));
                    d
                }
            };
            here?
        } else {
            self.node.resolve(input.collection(collection)?)?
        };
        for seg in rel {
            d = d.dict(seg)?;
        }
        d.leaf(name).map(Cow::Borrowed)
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
        let key = self.next_key("params")?;
        let array = init.init(key, shape)?;
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
        self.traced_written(collection, name).is_some() || self.read_leaf(collection, name).is_some()
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

    /// A fresh key from stream `stream` (Flax's `make_rng`): the scope's counter for the stream
    /// goes up by one and the key is `fold_in_static(root, path ++ [counter])`. A missing stream
    /// falls back to `params` as in Flax; if that is missing too, [`Error::MissingRng`].
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    /// use nnjit::random::static_suffix::{fold_in_static, SuffixPart::Index};
    ///
    /// struct Keys;
    /// impl Module for Keys {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let root = nn::PRNGKey(0);
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(root, &[Index(1)])); // Dense's kernel key
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(root, &[Index(2)])); // the counter went up
    ///         assert!(s.make_rng("params")?.to_key()?.words() != [0, 0]);
    ///         Ok(x)
    ///     }
    /// }
    /// Keys.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert!(Keys.apply(&nnjit::Variables::new(), &[1.0f32]).is_err()); // no stream at all: MissingRng
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn make_rng(&mut self, stream: &str) -> Result<Tensor> {
        if self.frame.tracer.is_some() {
            let stream = self.resolve_stream(stream)?;
            let rel = self.rel_segments();
            let graph = self
                .frame
                .tracer
                .as_ref()
                .map(|t| Arc::clone(&t.graph))
                .ok_or_else(|| Error::invalid("", "internal"))?;
            let index = {
                let mut b = graph.lock();
                b.rngs.push(RngRead { stream: stream.to_string(), rel });
                b.rngs.len() - 1
            };
            return Ok(graph.push(Source::Rng(index), Vec::new(), Meta::new(DType::U32, vec![2])));
        }
        Ok(Tensor::from_key(self.next_key(stream)?))
    }

    /// The stream `make_rng(stream)` draws from: itself, else `params` (Flax's fallback).
    fn resolve_stream<'s>(&self, stream: &'s str) -> Result<&'s str> {
        if self.has_rng(stream) {
            Ok(stream)
        } else if self.has_rng("params") {
            Ok("params")
        } else {
            Err(Error::MissingRng { stream: stream.into(), path: self.path() })
        }
    }

    /// `make_rng` as a key, in the scope `rel` below this one (what a compiled program does for
    /// each RNG request, so counters advance exactly as in an eager call).
    pub(crate) fn next_key_below(&mut self, rel: &[String], stream: &str) -> Result<Key> {
        let stream = self.resolve_stream(stream)?;
        let (base, from) = match self
            .fork
            .as_deref()
            .and_then(|f| f.keys.iter().find(|(n, _)| n == stream).map(|(_, k)| (*k, f.depth)))
        {
            Some(b) => b,
            None => (
                self.frame
                    .rngs
                    .get(stream)
                    .ok_or_else(|| Error::MissingRng { stream: stream.into(), path: self.path() })?,
                0,
            ),
        };
        let mut segs = self.node.segments();
        segs.extend(rel.iter().cloned());
        let path = if segs.is_empty() { String::new() } else { format!("/{}", segs.join("/")) };
        let counters = &mut self.frame.counters;
        let pos = match counters.iter().position(|(p, s, _)| *p == path && s == stream) {
            Some(i) => i,
            None => {
                counters.push((path, stream.to_string(), 0));
                counters.len() - 1
            }
        };
        counters[pos].2 += 1;
        let count = counters[pos].2;
        let mut parts: Vec<SuffixPart> = segs[from.min(segs.len())..].iter().map(|s| SuffixPart::Name(s)).collect();
        parts.push(SuffixPart::Index(u64::from(count)));
        Ok(fold_in_static(base, &parts))
    }

    /// `make_rng` as a key (eager only).
    fn next_key(&mut self, stream: &str) -> Result<Key> {
        self.next_key_below(&[], stream)
    }

    /// Flax's `fork_rngs` as `nn.jit` does it: every stream draws one key here, which becomes the
    /// stream's new base for this scope and its children (counters keep running).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    /// use nnjit::random::static_suffix::{fold_in_static, SuffixPart::Index};
    ///
    /// struct Forked;
    /// impl Module for Forked {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.fork_rngs()?; // draws key #1 of every stream as the new base
    ///         let base = fold_in_static(nn::PRNGKey(0), &[Index(1)]);
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(base, &[Index(2)])); // nn.jit's kernel key
    ///         Ok(x)
    ///     }
    /// }
    /// Forked.init(nn::PRNGKey(0), &[1.0f32])?;
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn fork_rngs(&mut self) -> Result<()> {
        let names: Vec<String> = self.frame.rngs.names().map(str::to_string).collect();
        let mut keys = Vec::with_capacity(names.len());
        for n in names {
            let k = self.next_key(&n)?;
            keys.push((n, k));
        }
        self.fork = Some(Arc::new(RngFork { keys, depth: self.node.depth() }));
        Ok(())
    }

    fn auto_index(&mut self, base: &'static str) -> u32 {
        self.auto_names.next(base)
    }

    /// Runs `module` as a child with Flax's automatic name (`{TypeName}_{index}`, counted per
    /// type name in this scope), like instantiating and calling a submodule in `@nn.compact`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct TwoLayers;
    /// impl Module for TwoLayers {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = s.call(&nn::Dense::new(3), x)?; // Dense_0
    ///         s.call(&nn::Dense::new(1), h) // Dense_1
    ///     }
    /// }
    /// let vars = TwoLayers.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert_eq!(vars.get("params/Dense_0/kernel").unwrap().shape(), &[2, 3]);
    /// assert_eq!(vars.get("params/Dense_1/kernel").unwrap().shape(), &[3, 1]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn call<M: Module + ?Sized>(&mut self, module: &M, x: impl Feed<M::Input>) -> Result<M::Output> {
        let base = module.type_name();
        let index = self.auto_index(base);
        let name = Name::Auto(base, index);
        self.run_child(&name, module, x)
    }

    /// Runs `module` as a child named `name` (Flax's `name=` argument); calling twice with the
    /// same name shares the child's variables, as reusing a submodule does in Flax.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// /// One Dense applied twice (a shared submodule).
    /// struct Tied;
    /// impl Module for Tied {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = s.call_named("shared", &nn::Dense::new(2), x)?;
    ///         s.call_named("shared", &nn::Dense::new(2), h)
    ///     }
    /// }
    /// let vars = Tied.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert_eq!(vars.shapes().len(), 2); // only params/shared/{kernel,bias}
    /// assert!(vars.get("params/shared/kernel").is_some());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn call_named<M: Module + ?Sized>(
        &mut self,
        name: &str,
        module: &M,
        x: impl Feed<M::Input>,
    ) -> Result<M::Output> {
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid(self.path(), format!("invalid submodule name \"{name}\"")));
        }
        let name = Name::Given(Arc::from(name));
        self.run_child(&name, module, x)
    }

    fn run_child<M: Module + ?Sized>(&mut self, name: &Name, module: &M, x: impl Feed<M::Input>) -> Result<M::Output> {
        let x = x.feed()?;
        let mut child = Scope {
            frame: &mut *self.frame,
            node: PathNode { parent: Some(&self.node), name: Some(name) },
            fork: self.fork.clone(),
            auto_names: AutoNames::default(),
            params_here: std::cell::Cell::new(None),
        };
        child.run_module(module, x)
    }

    /// Runs `module` in this scope: the hook sees the call, a trace attributes its ops to this
    /// path, and a failed output tensor becomes the error.
    pub(crate) fn run_module<M: Module + ?Sized>(&mut self, module: &M, x: M::Input) -> Result<M::Output> {
        if self.frame.hook.is_none() && self.frame.tracer.is_none() {
            // The common case: no observer, no trace (inputs were checked when fed).
            let y = module.call(self, x)?;
            let mut failed = Ok(());
            y.for_each_tensor(&mut |t| {
                if failed.is_ok() {
                    failed = t.check();
                }
            });
            return failed.map(|()| y);
        }
        let mut failed = Ok(());
        x.for_each_tensor(&mut |t| {
            if failed.is_ok() {
                failed = t.check();
            }
        });
        failed?;
        let saved_path = self.frame.tracer.as_ref().map(|t| {
            let path: Arc<str> = Arc::from(self.path());
            std::mem::replace(&mut t.graph.lock().path, path)
        });
        let hook_path = if self.frame.hook.is_some() { self.path() } else { String::new() };
        let token = match self.frame.hook.as_deref_mut() {
            Some(h) => {
                let mut first: &[usize] = &[];
                let mut found = false;
                x.for_each_tensor(&mut |t| {
                    if !found {
                        first = t.shape();
                        found = true;
                    }
                });
                Some(h.enter(hook_path.trim_start_matches('/'), module.type_name(), first))
            }
            None => None,
        };
        let y = module.call(self, x);
        if let (Some(p), Some(t)) = (saved_path, self.frame.tracer.as_ref()) {
            t.graph.lock().path = p;
        }
        let y = y?;
        let mut failed = Ok(());
        let mut first: Option<Vec<usize>> = None;
        y.for_each_tensor(&mut |t| {
            if failed.is_ok() {
                failed = t.check();
            }
            if first.is_none() {
                first = Some(t.shape().to_vec());
            }
        });
        failed?;
        if let (Some(token), Some(h)) = (token, self.frame.hook.as_deref_mut()) {
            h.exit(token, first.as_deref().unwrap_or(&[]));
        }
        Ok(y)
    }
}

/// A variable's leaf as a tensor (shared, no copy when in standard layout).
fn leaf_tensor(leaf: &Leaf) -> Tensor {
    Tensor::eager(Value::f32_shared(leaf.shared()))
}
