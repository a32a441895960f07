//! `Variables`: Flax's nested collections tree (`{"params": {"Dense_0": {"kernel": ...}}}`).
//!
//! Keys keep insertion order, as Flax's dicts do (it matters for checkpoint bytes), and every
//! leaf carries a version id that changes whenever the leaf is replaced or borrowed mutably, so
//! lifted modules can cache packed parameters and know when they are stale.

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
#[derive(Clone)]
pub struct Leaf {
    array: Arc<ArrayD<f32>>,
    version: u64,
}

impl Leaf {
    /// Wraps an array as a new leaf (a fresh version id).
    #[must_use]
    pub fn new(array: ArrayD<f32>) -> Self {
        Leaf { array: Arc::new(array), version: next_version() }
    }

    /// The array.
    #[must_use]
    pub fn array(&self) -> &ArrayD<f32> {
        &self.array
    }

    /// The array, mutably; the leaf gets a new version id.
    pub fn array_mut(&mut self) -> &mut ArrayD<f32> {
        self.version = next_version();
        Arc::make_mut(&mut self.array)
    }

    /// The array, taken out of the leaf (copied only if it is shared).
    #[must_use]
    pub fn into_array(self) -> ArrayD<f32> {
        Arc::try_unwrap(self.array).unwrap_or_else(|a| (*a).clone())
    }

    /// The version id: equal ids imply equal contents (clones share the id).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
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
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An array.
    Leaf(Leaf),
    /// A nested dict.
    Dict(Dict),
}

/// An insertion-ordered dict of [`Node`]s (Flax's dict of a scope).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dict {
    entries: Vec<(String, Node)>,
}

impl Dict {
    /// An empty dict.
    #[must_use]
    pub fn new() -> Self {
        Dict::default()
    }

    /// The node under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// The node under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// The nested dict under `key`, if that key holds a dict.
    #[must_use]
    pub fn dict(&self, key: &str) -> Option<&Dict> {
        match self.get(key) {
            Some(Node::Dict(d)) => Some(d),
            _ => None,
        }
    }

    /// The leaf under `key`, if that key holds an array.
    #[must_use]
    pub fn leaf(&self, key: &str) -> Option<&Leaf> {
        match self.get(key) {
            Some(Node::Leaf(l)) => Some(l),
            _ => None,
        }
    }

    /// Inserts (or replaces, keeping its position) `key`.
    pub fn insert(&mut self, key: impl Into<String>, node: Node) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n = node,
            None => self.entries.push((key, node)),
        }
    }

    /// The nested dict under `key`, created empty if missing (replacing a leaf there).
    pub fn dict_mut_or_insert(&mut self, key: &str) -> &mut Dict {
        let pos = match self.entries.iter().position(|(k, _)| k == key) {
            Some(p) => {
                if !matches!(self.entries[p].1, Node::Dict(_)) {
                    self.entries[p].1 = Node::Dict(Dict::new());
                }
                p
            }
            None => {
                self.entries.push((key.to_string(), Node::Dict(Dict::new())));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[pos].1 {
            Node::Dict(d) => d,
            Node::Leaf(_) => unreachable!("replaced by a dict just above"),
        }
    }

    /// Removes `key`, returning its node.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// Keys and nodes in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.entries.iter().map(|(k, n)| (k.as_str(), n))
    }

    /// Number of entries at this level.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether this level is empty.
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
    #[must_use]
    pub fn new() -> Self {
        Variables::default()
    }

    /// An id of the current contents: it changes whenever the tree is mutated, and clones
    /// share it. Lifted modules use it to reuse parameters bound for the same variables.
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
    #[must_use]
    pub fn as_dict(&self) -> &Dict {
        &self.root
    }

    /// Builds variables from a dict whose top-level keys are collections.
    #[must_use]
    pub fn from_dict(root: Dict) -> Self {
        Variables { root, generation: next_version() }
    }

    /// The collection `name`, if present.
    #[must_use]
    pub fn collection(&self, name: &str) -> Option<&Dict> {
        self.root.dict(name)
    }

    /// Names of the collections, in order.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.root.iter().map(|(k, _)| k)
    }

    /// Removes a whole collection, returning it.
    pub fn remove_collection(&mut self, name: &str) -> Option<Dict> {
        self.touch();
        match self.root.remove(name)? {
            Node::Dict(d) => Some(d),
            Node::Leaf(_) => None,
        }
    }

    /// The collection `name`, created empty if missing.
    pub fn collection_mut_or_insert(&mut self, name: &str) -> &mut Dict {
        self.touch();
        self.root.dict_mut_or_insert(name)
    }

    /// Inserts or replaces the collection `name`.
    pub fn insert_collection(&mut self, name: impl Into<String>, dict: Dict) {
        self.touch();
        self.root.insert(name, Node::Dict(dict));
    }

    /// The leaf at a `/`-joined path whose first segment is the collection
    /// (`params/Dense_0/kernel`).
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
        let n = crate::alloc::checked_len(path, shape)?;
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
    #[must_use]
    pub fn view(&self, path: &str) -> Option<ArrayViewD<'_, f32>> {
        self.get(path).map(|a| a.view())
    }

    /// The array at `path`, mutably (its version id changes).
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
    #[must_use]
    pub fn leaves(&self) -> Vec<(String, &Leaf)> {
        self.root.leaves()
    }

    /// Every path with its shape: the same as Flax's `jax.tree.map(jnp.shape, variables)`.
    #[must_use]
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.leaves().into_iter().map(|(p, l)| (p, l.array().shape().to_vec())).collect()
    }

    /// Total number of array elements over all collections.
    #[must_use]
    pub fn num_elements(&self) -> usize {
        self.leaves().iter().map(|(_, l)| l.array().len()).sum()
    }

    /// Whether both trees have the same structure and bit-identical arrays (NaN payloads and
    /// signed zeros included; `==` compares values instead).
    #[must_use]
    pub fn bits_eq(&self, other: &Variables) -> bool {
        self.root.bits_eq(&other.root)
    }

    /// Copies every collection of `other` into `self`, replacing same-named collections
    /// (what Flax users write as `{**variables, **updates}`).
    pub fn merge(&mut self, other: Variables) {
        self.touch();
        for (k, n) in other.root.entries {
            self.root.insert(k, n);
        }
    }

    /// Whether there are no collections.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

impl fmt::Display for Variables {
    /// A shape summary, one line per array: `params/Dense_0/kernel  (3, 4)  12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shapes = self.shapes();
        let width = shapes.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        for (p, s) in &shapes {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            let n: usize = s.iter().product();
            let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
            writeln!(f, "{p:width$}  {tuple}  {n}")?;
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
