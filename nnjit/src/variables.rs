//! `Variables`: Flax's nested collections tree (`{"params": {"Dense_0": {"kernel": ...}}}`).
//!
//! Keys keep insertion order, as Flax's dicts do (it matters for checkpoint bytes), and every
//! leaf carries a version id that changes whenever the leaf is replaced or borrowed mutably, so
//! lifted modules can cache packed parameters and know when they are stale.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
//! // {"params": {"kernel": (3, 4), "bias": (4,)}}, in Flax's creation order
//! assert_eq!(vars.shapes(), [("params/kernel".to_string(), vec![3, 4]), ("params/bias".to_string(), vec![4])]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};

static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// One array of a [`Variables`] tree, with a version id that identifies its contents.
///
/// The array is shared (`Arc`) and copied on write, like JAX's immutable arrays: cloning a
/// leaf or a whole [`Variables`] tree copies no array data.
///
/// ```
/// use nnjit::nn::{self, Module};
/// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
/// let kernel = vars.leaf("params/kernel").unwrap();
/// assert_eq!(kernel.array().shape(), &[3, 4]);
/// let copy = vars.clone(); // no array data copied
/// assert_eq!(copy.leaf("params/kernel").unwrap().version(), kernel.version());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone)]
pub struct Leaf {
    array: Arc<ArrayD<f32>>,
    version: u64,
    /// The array is in standard (row-major, contiguous) layout, known since it was wrapped
    /// (`false` also after [`array_mut`](Leaf::array_mut), which may change the layout).
    standard: bool,
}

impl Leaf {
    /// Wraps an array as a new leaf (a fresh version id).
    ///
    /// ```
    /// use nnjit::variables::Leaf;
    /// let a = Leaf::new(ndarray::ArrayD::zeros(vec![4]));
    /// let b = Leaf::new(ndarray::ArrayD::zeros(vec![4]));
    /// assert_eq!(a, b); // equal contents...
    /// assert_ne!(a.version(), b.version()); // ...but each new leaf has its own version
    /// ```
    #[must_use]
    pub fn new(array: ArrayD<f32>) -> Self {
        let standard = array.is_standard_layout();
        Leaf { array: Arc::new(array), version: next_version(), standard }
    }

    /// The array.
    ///
    /// ```
    /// use nnjit::variables::Leaf;
    /// let leaf = Leaf::new(ndarray::ArrayD::ones(vec![2, 2]));
    /// assert_eq!(leaf.array().sum(), 4.0);
    /// ```
    #[must_use]
    pub fn array(&self) -> &ArrayD<f32> {
        &self.array
    }

    /// The array, mutably; the leaf gets a new version id.
    ///
    /// ```
    /// use nnjit::variables::Leaf;
    /// let mut leaf = Leaf::new(ndarray::ArrayD::zeros(vec![3]));
    /// let shared = leaf.clone();
    /// let v0 = leaf.version();
    /// leaf.array_mut()[0] = 1.0; // copy on write: `shared` is untouched
    /// assert_ne!(leaf.version(), v0); // packed copies of the old array are now stale
    /// assert_eq!(shared.array()[0], 0.0);
    /// ```
    pub fn array_mut(&mut self) -> &mut ArrayD<f32> {
        self.version = next_version();
        self.standard = false;
        Arc::make_mut(&mut self.array)
    }

    /// The array, taken out of the leaf (copied only if it is shared).
    ///
    /// ```
    /// use nnjit::variables::Leaf;
    /// let leaf = Leaf::new(ndarray::ArrayD::from_elem(vec![2], 0.5f32));
    /// let array = leaf.into_array();
    /// assert_eq!(array, ndarray::ArrayD::from_elem(vec![2], 0.5f32));
    /// ```
    #[must_use]
    pub fn into_array(self) -> ArrayD<f32> {
        Arc::try_unwrap(self.array).unwrap_or_else(|a| (*a).clone())
    }

    /// The version id: equal ids imply equal contents (clones share the id).
    ///
    /// ```
    /// use nnjit::variables::Leaf;
    /// let leaf = Leaf::new(ndarray::ArrayD::zeros(vec![1]));
    /// assert_eq!(leaf.clone().version(), leaf.version()); // clones share the id
    /// ```
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The shared array (what tensors read without copying).
    pub(crate) fn shared(&self) -> &Arc<ArrayD<f32>> {
        &self.array
    }

    /// The elements in row-major order, when the array is known to be in standard layout
    /// (checked once, when the leaf was made): layers read parameters in place through it.
    pub(crate) fn standard_slice(&self) -> Option<&[f32]> {
        if !self.standard {
            return None;
        }
        // SAFETY: `standard` is set only by `new`, after checking the array's layout, and
        // cleared by `array_mut`, the only mutable access to it; a standard-layout array's
        // `len()` elements are contiguous from `as_ptr()`, and the slice borrows `self`, whose
        // `Arc` keeps the array alive.
        Some(unsafe { std::slice::from_raw_parts(self.array.as_ptr(), self.array.len()) })
    }

    /// The shared array when it is known to be in standard layout (checked once, when the
    /// leaf was made): every parameter read of an eager apply skips ndarray's layout check.
    pub(crate) fn shared_standard(&self) -> Option<&Arc<ArrayD<f32>>> {
        self.standard.then_some(&self.array)
    }
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.array)
    }
}

impl PartialEq for Leaf {
    fn eq(&self, other: &Self) -> bool {
        self.array == other.array
    }
}

/// A node of the tree: an array or a nested dict.
///
/// ```
/// use nnjit::nn::{self, Module};
/// use nnjit::variables::Node;
/// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &[1.0f32])?;
/// assert!(matches!(vars.as_dict().get("params"), Some(Node::Dict(_)))); // a collection
/// assert!(matches!(vars.collection("params").unwrap().get("bias"), Some(Node::Leaf(_)))); // an array
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An array.
    Leaf(Leaf),
    /// A nested dict.
    Dict(Dict),
}

/// An insertion-ordered dict of [`Node`]s (Flax's dict of a scope).
///
/// ```
/// use nnjit::variables::{Dict, Leaf, Node};
/// let mut dense = Dict::new();
/// dense.insert("kernel", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![3, 4]))));
/// dense.insert("bias", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![4]))));
/// let mut params = Dict::new();
/// params.insert("Dense_0", Node::Dict(dense));
/// let keys: Vec<String> = params.leaves().into_iter().map(|(p, _)| p).collect();
/// assert_eq!(keys, ["Dense_0/kernel", "Dense_0/bias"]); // insertion order, like Python dicts
/// ```
#[derive(Clone, Debug, Default)]
pub struct Dict {
    entries: Vec<(String, Node)>,
    /// Key → position, built once a level is large (checkpoint files may hold wide levels;
    /// small levels, the common case, stay a plain scan).
    index: Option<HashMap<String, usize>>,
}

/// Levels with more entries than this get a hash index.
const INDEX_ABOVE: usize = 32;

/// `a == b`, compared in a plain loop (equal slices of a few elements: no `memcmp` call).
#[inline]
pub(crate) fn eq_short<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

impl PartialEq for Dict {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Dict {
    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).copied(),
            // Byte by byte: keys are short, a `memcmp` call per key costs more.
            None => self.entries.iter().position(|(k, _)| eq_short(k.as_bytes(), key.as_bytes())),
        }
    }

    fn push_entry(&mut self, key: String, node: Node) -> usize {
        let pos = self.entries.len();
        if let Some(ix) = &mut self.index {
            ix.insert(key.clone(), pos);
        }
        self.entries.push((key, node));
        if self.index.is_none() && self.entries.len() > INDEX_ABOVE {
            self.index = Some(self.entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
        }
        pos
    }

    /// An empty dict.
    ///
    /// ```
    /// let d = nnjit::variables::Dict::new();
    /// assert!(d.is_empty() && d.leaves().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Dict::default()
    }

    /// The node under `key`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &[1.0f32])?;
    /// let params = vars.collection("params").unwrap();
    /// assert!(params.get("kernel").is_some());
    /// assert!(params.get("Dense_0").is_none()); // the top module's params are not nested
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.position(key).map(|p| &self.entries[p].1)
    }

    /// The node under `key`, mutably.
    ///
    /// ```
    /// use nnjit::variables::{Dict, Leaf, Node};
    /// let mut d = Dict::new();
    /// d.insert("bias", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![2]))));
    /// if let Some(Node::Leaf(l)) = d.get_mut("bias") {
    ///     l.array_mut().fill(0.5);
    /// }
    /// assert_eq!(d.leaf("bias").unwrap().array().sum(), 1.0);
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.position(key).map(|p| &mut self.entries[p].1)
    }

    /// The nested dict under `key`, if that key holds a dict.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    /// struct Mlp;
    /// impl Module for Mlp {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.call(&nn::Dense::new(2), x)
    ///     }
    /// }
    /// let vars = Mlp.init(nn::PRNGKey(0), &[1.0f32])?;
    /// let params = vars.collection("params").unwrap();
    /// assert_eq!(params.dict("Dense_0").unwrap().len(), 2); // kernel, bias
    /// assert!(params.dict("Dense_0").unwrap().dict("kernel").is_none()); // a leaf, not a dict
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn dict(&self, key: &str) -> Option<&Dict> {
        match self.get(key) {
            Some(Node::Dict(d)) => Some(d),
            _ => None,
        }
    }

    /// The leaf under `key`, if that key holds an array.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let params = vars.collection("params").unwrap();
    /// assert_eq!(params.leaf("kernel").unwrap().array().shape(), &[3, 4]);
    /// assert!(vars.as_dict().leaf("params").is_none()); // a dict, not a leaf
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn leaf(&self, key: &str) -> Option<&Leaf> {
        match self.get(key) {
            Some(Node::Leaf(l)) => Some(l),
            _ => None,
        }
    }

    /// Inserts (or replaces, keeping its position) `key`.
    ///
    /// ```
    /// use nnjit::variables::{Dict, Leaf, Node};
    /// let leaf = |v: f32| Node::Leaf(Leaf::new(ndarray::ArrayD::from_elem(vec![1], v)));
    /// let mut d = Dict::new();
    /// d.insert("kernel", leaf(1.0));
    /// d.insert("bias", leaf(2.0));
    /// d.insert("kernel", leaf(3.0)); // replaced in place
    /// let order: Vec<&str> = d.iter().map(|(k, _)| k).collect();
    /// assert_eq!(order, ["kernel", "bias"]);
    /// assert_eq!(d.leaf("kernel").unwrap().array()[0], 3.0);
    /// ```
    pub fn insert(&mut self, key: impl Into<String>, node: Node) {
        let key = key.into();
        match self.position(&key) {
            Some(p) => self.entries[p].1 = node,
            None => {
                self.push_entry(key, node);
            }
        }
    }

    /// The nested dict under `key`, created empty if missing (replacing a leaf there).
    ///
    /// ```
    /// use nnjit::variables::{Dict, Leaf, Node};
    /// let mut params = Dict::new();
    /// params.dict_mut_or_insert("Dense_0").insert("bias", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![2]))));
    /// params.dict_mut_or_insert("Dense_0"); // exists: returned as is
    /// assert_eq!(params.dict("Dense_0").unwrap().len(), 1);
    /// ```
    pub fn dict_mut_or_insert(&mut self, key: &str) -> &mut Dict {
        let pos = match self.position(key) {
            Some(p) => {
                if !matches!(self.entries[p].1, Node::Dict(_)) {
                    self.entries[p].1 = Node::Dict(Dict::new());
                }
                p
            }
            None => self.push_entry(key.to_string(), Node::Dict(Dict::new())),
        };
        match &mut self.entries[pos].1 {
            Node::Dict(d) => d,
            Node::Leaf(_) => unreachable!("replaced by a dict just above"),
        }
    }

    /// Removes `key`, returning its node.
    ///
    /// ```
    /// use nnjit::variables::{Dict, Leaf, Node};
    /// let mut d = Dict::new();
    /// d.insert("bias", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![2]))));
    /// assert!(matches!(d.remove("bias"), Some(Node::Leaf(_))));
    /// assert!(d.remove("bias").is_none());
    /// assert!(d.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let pos = self.position(key)?;
        let node = self.entries.remove(pos).1;
        if self.index.is_some() {
            // Positions after `pos` moved down by one.
            self.index = Some(self.entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect());
        }
        Some(node)
    }

    /// Keys and nodes in insertion order.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let keys: Vec<&str> = vars.collection("params").unwrap().iter().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["kernel", "bias"]); // Flax's order: kernel is created first
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, n)| (k.as_str(), n))
    }

    /// Number of entries at this level.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).use_bias(false).init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(vars.collection("params").unwrap().len(), 1); // kernel only
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether this level is empty.
    ///
    /// ```
    /// use nnjit::variables::{Dict, Leaf, Node};
    /// let mut d = Dict::new();
    /// assert!(d.is_empty());
    /// d.insert("w", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![1]))));
    /// assert!(!d.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn walk<'a>(&'a self, prefix: &mut String, out: &mut Vec<(String, &'a Leaf)>) {
        for (k, n) in &self.entries {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(k);
            match n {
                Node::Leaf(l) => out.push((prefix.clone(), l)),
                Node::Dict(d) => d.walk(prefix, out),
            }
            prefix.truncate(len);
        }
    }

    /// Every leaf with its `/`-joined path relative to this dict, in insertion order.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let params = vars.collection("params").unwrap();
    /// let paths: Vec<String> = params.leaves().into_iter().map(|(p, _)| p).collect();
    /// assert_eq!(paths, ["kernel", "bias"]); // relative to the dict
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn leaves(&self) -> Vec<(String, &Leaf)> {
        let mut out = Vec::new();
        self.walk(&mut String::new(), &mut out);
        out
    }

    fn bits_eq(&self, other: &Dict) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().all(|(k, n)| match (n, other.get(k)) {
                (Node::Leaf(a), Some(Node::Leaf(b))) => {
                    a.array.shape() == b.array.shape()
                        && a.array.iter().zip(b.array.iter()).all(|(x, y)| x.to_bits() == y.to_bits())
                }
                (Node::Dict(a), Some(Node::Dict(b))) => a.bits_eq(b),
                _ => false,
            })
    }
}

/// The variables of a module: collections (`params`, `batch_stats`, any user collection), each a
/// nested dict of arrays.
///
/// ```
/// use nnjit::nn::{self, Module};
/// use ndarray::array;
///
/// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &array![1.0f32, 2.0, 3.0])?;
/// assert_eq!(vars.get("params/kernel").unwrap().shape(), &[3, 4]);
/// assert_eq!(vars.num_elements(), 16);
/// println!("{vars}"); // a shape summary
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Variables {
    root: Dict,
    /// Changes on every mutation; clones share it (equal ids imply equal contents).
    generation: u64,
}

impl Default for Variables {
    fn default() -> Self {
        Variables { root: Dict::new(), generation: next_version() }
    }
}

impl PartialEq for Variables {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Variables {
    /// No collections.
    ///
    /// ```
    /// let vars = nnjit::Variables::new();
    /// assert!(vars.is_empty());
    /// assert_eq!(vars.num_elements(), 0);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Variables::default()
    }

    /// An id of the current contents: it changes whenever the tree is mutated, and clones
    /// share it. Lifted modules use it to reuse parameters bound for the same variables.
    ///
    /// ```
    /// let mut vars = nnjit::Variables::new();
    /// let g = vars.generation();
    /// assert_eq!(vars.clone().generation(), g); // clones share it
    /// vars.insert("params/w", ndarray::ArrayD::zeros(vec![1]))?;
    /// assert_ne!(vars.generation(), g); // any mutation changes it
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// An empty tree whose generation is assigned on first mutation (scratch trees of a call
    /// that usually stay empty).
    pub(crate) fn untracked() -> Self {
        Variables { root: Dict::new(), generation: 0 }
    }

    fn touch(&mut self) {
        self.generation = next_version();
    }

    /// The collections as one dict (`{"params": {...}, "batch_stats": {...}}`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::BatchNorm::new().init(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0]])?;
    /// let top: Vec<&str> = vars.as_dict().iter().map(|(k, _)| k).collect();
    /// assert!(top.contains(&"params") && top.contains(&"batch_stats"));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn as_dict(&self) -> &Dict {
        &self.root
    }

    /// Builds variables from a dict whose top-level keys are collections.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// use nnjit::Variables;
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &[1.0f32])?;
    /// let rebuilt = Variables::from_dict(vars.as_dict().clone());
    /// assert!(rebuilt.bits_eq(&vars));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn from_dict(root: Dict) -> Self {
        Variables { root, generation: next_version() }
    }

    /// The collection `name`, if present.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(vars.collection("params").unwrap().len(), 2);
    /// assert!(vars.collection("batch_stats").is_none()); // Dense has no state
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn collection(&self, name: &str) -> Option<&Dict> {
        self.root.dict(name)
    }

    /// Names of the collections, in order.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::BatchNorm::new().init(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0]])?;
    /// let mut names: Vec<&str> = vars.collection_names().collect();
    /// names.sort();
    /// assert_eq!(names, ["batch_stats", "params"]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.root.iter().map(|(k, _)| k)
    }

    /// Removes a whole collection, returning it.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let mut vars = nn::BatchNorm::new().init(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0]])?;
    /// // params, batch_stats = variables['params'], variables['batch_stats']
    /// let stats = vars.remove_collection("batch_stats").unwrap();
    /// assert_eq!(stats.len(), 2); // mean, var
    /// assert_eq!(vars.collection_names().collect::<Vec<_>>(), ["params"]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn remove_collection(&mut self, name: &str) -> Option<Dict> {
        self.touch();
        match self.root.remove(name)? {
            Node::Dict(d) => Some(d),
            Node::Leaf(_) => None,
        }
    }

    /// The collection `name`, created empty if missing.
    ///
    /// ```
    /// use nnjit::variables::{Leaf, Node};
    /// let mut vars = nnjit::Variables::new();
    /// vars.collection_mut_or_insert("params").insert("w", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(vec![2]))));
    /// assert_eq!(vars.get("params/w").unwrap().len(), 2);
    /// ```
    pub fn collection_mut_or_insert(&mut self, name: &str) -> &mut Dict {
        self.touch();
        self.root.dict_mut_or_insert(name)
    }

    /// Inserts or replaces the collection `name`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let x = ndarray::array![[1.0f32, 2.0], [3.0, 5.0]];
    /// let bn = nn::BatchNorm::new();
    /// let mut vars = bn.init(nn::PRNGKey(0), &x)?;
    /// let (_, mut updates) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
    /// let stats = updates.remove_collection("batch_stats").unwrap();
    /// vars.insert_collection("batch_stats", stats); // variables = {**variables, 'batch_stats': ...}
    /// assert!((vars.get("batch_stats/mean").unwrap()[0] - 0.02).abs() < 1e-6); // 0.99·0 + 0.01·2
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn insert_collection(&mut self, name: impl Into<String>, dict: Dict) {
        self.touch();
        self.root.insert(name, Node::Dict(dict));
    }

    /// The leaf at a `/`-joined path whose first segment is the collection
    /// (`params/Dense_0/kernel`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let leaf = vars.leaf("params/kernel").unwrap();
    /// assert_eq!(leaf.array().shape(), &[3, 4]);
    /// assert!(vars.leaf("params").is_none()); // a dict, not an array
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn leaf(&self, path: &str) -> Option<&Leaf> {
        let mut segs = path.split('/').filter(|s| !s.is_empty()).peekable();
        let mut dict = &self.root;
        while let Some(seg) = segs.next() {
            match (dict.get(seg)?, segs.peek()) {
                (Node::Dict(d), Some(_)) => dict = d,
                (Node::Leaf(l), None) => return Some(l),
                _ => return None,
            }
        }
        None
    }

    /// The array at a `/`-joined path (`params/Dense_0/kernel`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// assert_eq!(vars.get("params/bias").unwrap(), &ndarray::ArrayD::<f32>::zeros(vec![4]));
    /// assert!(vars.get("params/Dense_0/bias").is_none());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn get(&self, path: &str) -> Option<&ArrayD<f32>> {
        self.leaf(path).map(Leaf::array)
    }

    /// The array at `path` as `(shape, row-major values)`, for code that does not use ndarray.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(2).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let (shape, values) = vars.get_vec("params/kernel").unwrap();
    /// assert_eq!((shape, values.len()), (vec![3, 2], 6));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn get_vec(&self, path: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        self.get(path).map(|a| (a.shape().to_vec(), a.iter().copied().collect()))
    }

    /// Inserts `values` (row-major) with `shape` at `path`; an error if the lengths disagree.
    ///
    /// ```
    /// let mut v = nnjit::Variables::new();
    /// v.insert_vec("params/bias", &[3], vec![0.0, 1.0, 2.0])?;
    /// assert!(v.insert_vec("params/bias", &[4], vec![0.0; 3]).is_err());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn insert_vec(&mut self, path: &str, shape: &[usize], values: Vec<f32>) -> Result<()> {
        let n = crate::fallible::checked_len(path, shape)?;
        if n != values.len() {
            return Err(Error::invalid(
                "",
                format!("{} values do not fill shape {shape:?} at \"{path}\"", values.len()),
            ));
        }
        let array =
            ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).map_err(|e| Error::invalid("", e.to_string()))?;
        self.insert(path, array)
    }

    /// A view of the array at `path`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let k = vars.view("params/kernel").unwrap();
    /// assert_eq!(k.index_axis(ndarray::Axis(1), 0).len(), 3); // the weights into output 0
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn view(&self, path: &str) -> Option<ArrayViewD<'_, f32>> {
        self.get(path).map(|a| a.view())
    }

    /// The array at `path`, mutably (its version id changes).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let m = nn::Dense::new(2);
    /// let mut vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// vars.get_mut("params/bias").unwrap().fill(1.0);
    /// vars.get_mut("params/kernel").unwrap().fill(0.0);
    /// assert_eq!(m.apply(&vars, &[5.0f32])?, ndarray::ArrayD::from_elem(vec![2], 1.0f32));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn get_mut(&mut self, path: &str) -> Option<&mut ArrayD<f32>> {
        self.touch();
        let mut segs = path.split('/').filter(|s| !s.is_empty()).peekable();
        let mut dict = &mut self.root;
        while let Some(seg) = segs.next() {
            let last = segs.peek().is_none();
            match dict.get_mut(seg)? {
                Node::Dict(d) if !last => dict = d,
                Node::Leaf(l) if last => return Some(l.array_mut()),
                _ => return None,
            }
        }
        None
    }

    /// Inserts (or replaces) the array at a `/`-joined path, creating dicts on the way.
    ///
    /// ```
    /// use nnjit::Variables;
    /// let mut v = Variables::new();
    /// v.insert("params/bias", ndarray::ArrayD::zeros(ndarray::IxDyn(&[4])))?;
    /// assert_eq!(v.get("params/bias").unwrap().len(), 4);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn insert(&mut self, path: &str, array: ArrayD<f32>) -> Result<()> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segs.len() < 2 {
            return Err(Error::invalid("", format!("variable path \"{path}\" must name a collection and a variable")));
        }
        let (name, dirs) = segs.split_last().expect("checked above: at least two segments");
        self.touch();
        let mut dict = &mut self.root;
        for d in dirs {
            dict = dict.dict_mut_or_insert(d);
        }
        dict.insert(*name, Node::Leaf(Leaf::new(array)));
        Ok(())
    }

    /// Every array with its full path (`params/Dense_0/kernel`), in insertion order.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let sizes: Vec<(String, usize)> = vars.leaves().into_iter().map(|(p, l)| (p, l.array().len())).collect();
    /// assert_eq!(sizes, [("params/kernel".to_string(), 12), ("params/bias".to_string(), 4)]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn leaves(&self) -> Vec<(String, &Leaf)> {
        self.root.leaves()
    }

    /// Every path with its shape: the same as Flax's `jax.tree.map(jnp.shape, variables)`.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// // jax.tree.map(jnp.shape, variables) == {'params': {'kernel': (3, 4), 'bias': (4,)}}
    /// assert_eq!(vars.shapes(), [("params/kernel".to_string(), vec![3, 4]), ("params/bias".to_string(), vec![4])]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.leaves().into_iter().map(|(p, l)| (p, l.array().shape().to_vec())).collect()
    }

    /// Total number of array elements over all collections.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let vars = nn::BatchNorm::new().init(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0, 3.0]])?;
    /// assert_eq!(vars.num_elements(), 4 * 3); // scale, bias, mean, var
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn num_elements(&self) -> usize {
        self.leaves().iter().map(|(_, l)| l.array().len()).sum()
    }

    /// Whether both trees have the same structure and bit-identical arrays (NaN payloads and
    /// signed zeros included; `==` compares values instead).
    ///
    /// ```
    /// let mut a = nnjit::Variables::new();
    /// a.insert("params/b", ndarray::ArrayD::from_elem(vec![1], 0.0f32))?;
    /// let mut b = nnjit::Variables::new();
    /// b.insert("params/b", ndarray::ArrayD::from_elem(vec![1], -0.0f32))?;
    /// assert_eq!(a, b); // 0.0 == -0.0
    /// assert!(!a.bits_eq(&b)); // but not the same bits
    /// assert!(a.bits_eq(&a.clone()));
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn bits_eq(&self, other: &Variables) -> bool {
        self.root.bits_eq(&other.root)
    }

    /// Copies every collection of `other` into `self`, replacing same-named collections
    /// (what Flax users write as `{**variables, **updates}`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Mutable, Rngs};
    /// let x = ndarray::array![[1.0f32], [3.0]];
    /// let bn = nn::BatchNorm::new();
    /// let mut vars = bn.init(nn::PRNGKey(0), &x)?;
    /// let (_, updates) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
    /// vars.merge(updates); // {**variables, **updates}
    /// assert!((vars.get("batch_stats/mean").unwrap()[0] - 0.02).abs() < 1e-6); // 0.99·0 + 0.01·2
    /// assert!(vars.get("params/scale").is_some()); // other collections kept
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn merge(&mut self, other: Variables) {
        self.touch();
        for (k, n) in other.root.entries {
            self.root.insert(k, n);
        }
    }

    /// Whether there are no collections.
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// assert!(nnjit::Variables::new().is_empty());
    /// // A module without variables initializes to an empty tree:
    /// assert!(nn::Dropout::new(0.5).deterministic(true).init(nn::PRNGKey(0), &[1.0f32])?.is_empty());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

/// Widest column that `Display for Variables` and `tabulate` pad to.
pub(crate) const MAX_ALIGN: usize = 120;

/// Writes `s` left-aligned in `width` characters (what `{s:width$}` does, without its limit of
/// 65,535 on `width`).
pub(crate) fn write_padded(f: &mut fmt::Formatter<'_>, s: &str, width: usize) -> fmt::Result {
    f.write_str(s)?;
    for _ in s.chars().count()..width {
        f.write_str(" ")?;
    }
    Ok(())
}

impl fmt::Display for Variables {
    /// A shape summary, one line per array: `params/Dense_0/kernel  (3, 4)  12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes = self.shapes();
        // Paths are aligned up to MAX_ALIGN characters; longer ones overflow their column, so
        // one hostile key cannot pad every line (nor reach `{:width$}`'s limit of 65,535).
        let width = shapes.iter().map(|(p, _)| p.chars().count()).max().unwrap_or(0).min(MAX_ALIGN);
        for (p, s) in &shapes {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            // Leaves are allocated arrays, so the product fits; saturate all the same.
            let n = s.iter().fold(1usize, |acc, &d| acc.saturating_mul(d));
            let tuple = match dims.as_slice() {
                [d] => format!("({d},)"),
                _ => format!("({})", dims.join(", ")),
            };
            write_padded(f, p, width)?;
            writeln!(f, "  {tuple}  {n}")?;
        }
        write!(f, "total: {} arrays, {} elements", shapes.len(), self.num_elements())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr(shape: &[usize], v: f32) -> ArrayD<f32> {
        ArrayD::from_elem(IxDyn(shape), v)
    }

    #[test]
    fn paths_order_versions() {
        let mut v = Variables::new();
        v.insert("params/Dense_0/kernel", arr(&[3, 4], 1.0)).unwrap();
        v.insert("params/Dense_0/bias", arr(&[4], 0.0)).unwrap();
        v.insert("batch_stats/BatchNorm_0/mean", arr(&[4], 0.0)).unwrap();
        v.insert("params/BatchNorm_0/scale", arr(&[4], 1.0)).unwrap();
        let paths: Vec<String> = v.leaves().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "params/Dense_0/kernel",
                "params/Dense_0/bias",
                "params/BatchNorm_0/scale",
                "batch_stats/BatchNorm_0/mean"
            ]
        );
        assert_eq!(v.collection_names().collect::<Vec<_>>(), ["params", "batch_stats"]);
        assert!(v.get("params/Dense_0").is_none());
        assert!(v.get("params/Dense_0/kernel/x").is_none());
        let before = v.leaf("params/Dense_0/kernel").unwrap().version();
        let c = v.clone();
        assert_eq!(c.leaf("params/Dense_0/kernel").unwrap().version(), before);
        v.get_mut("params/Dense_0/kernel").unwrap()[[0, 0]] = 2.0;
        assert_ne!(v.leaf("params/Dense_0/kernel").unwrap().version(), before);
        assert_ne!(v, c);
        assert!(v.insert("kernel", arr(&[1], 0.0)).is_err());
        let g = v.generation();
        assert_eq!(v.clone().generation(), g);
        v.insert("params/x", arr(&[1], 0.0)).unwrap();
        assert_ne!(v.generation(), g);
        assert_eq!(v.num_elements(), 12 + 4 + 4 + 4 + 1);
        assert!(v.to_string().contains("params/Dense_0/kernel"));
    }

    /// Issue 14.1: a path wider than 65,535 characters made `{p:width$}` panic ("Formatting
    /// argument out of range"). Paths now align up to `MAX_ALIGN` characters and overflow beyond.
    #[test]
    fn display_survives_paths_wider_than_the_format_width_limit() {
        let mut v = Variables::new();
        let long = format!("params/{}", "k".repeat(70_000));
        v.insert(&long, arr(&[2], 0.0)).unwrap();
        v.insert("params/b", arr(&[3], 0.0)).unwrap();
        let text = v.to_string();
        assert!(text.contains(&format!("{long}  (2,)  2\n")), "long path printed whole");
        let short = text.lines().find(|l| l.starts_with("params/b ")).unwrap();
        assert_eq!(short.len(), MAX_ALIGN + "  (3,)  3".len(), "short paths padded to the capped width");
    }

    #[test]
    fn wide_levels_keep_order_and_lookups_through_the_index() {
        let mut d = Dict::new();
        for i in 0..1000 {
            d.insert(format!("k{i}"), Node::Leaf(Leaf::new(arr(&[1], i as f32))));
        }
        assert!(d.index.is_some());
        assert_eq!(d.len(), 1000);
        assert_eq!(d.iter().nth(500).map(|(k, _)| k), Some("k500"));
        d.insert("k7", Node::Leaf(Leaf::new(arr(&[1], -1.0))));
        assert_eq!(d.iter().nth(7).map(|(k, _)| k), Some("k7"), "replacing keeps the position");
        assert_eq!(d.leaf("k7").unwrap().array()[[0]], -1.0);
        assert!(d.remove("k3").is_some());
        assert!(d.get("k3").is_none());
        assert_eq!(d.leaf("k999").unwrap().array()[[0]], 999.0);
        assert_eq!(d.iter().nth(3).map(|(k, _)| k), Some("k4"));
        d.dict_mut_or_insert("sub").insert("x", Node::Leaf(Leaf::new(arr(&[1], 1.0))));
        assert!(d.dict("sub").is_some());
        let mut small = Dict::new();
        for (k, n) in d.iter() {
            small.insert(k, n.clone());
        }
        assert_eq!(small, d);
    }

    #[test]
    fn bits_eq_sees_signed_zero_and_nan() {
        let mut a = Variables::new();
        a.insert("params/b", arr(&[1], 0.0)).unwrap();
        let mut b = Variables::new();
        b.insert("params/b", arr(&[1], -0.0)).unwrap();
        assert_eq!(a, b);
        assert!(!a.bits_eq(&b));
        let mut n = Variables::new();
        n.insert("params/b", arr(&[1], f32::NAN)).unwrap();
        assert!(n.bits_eq(&n.clone()));
        assert_ne!(n, n.clone());
    }
}
