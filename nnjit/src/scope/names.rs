//! Names in the module tree: path segments ([`Name`], [`PathNode`]), Flax's automatic names
//! (`Dense_0`), explicit names and their collisions ([`Error::NameInUse`]), and bound children
//! ([`Child`]).

use std::sync::Arc;

use crate::error::{Error, NameKind, Result};
use crate::module::{ChildName, Feed, Module};
use crate::variables::{Dict, Node};

use super::Scope;

/// A segment name: automatic (`Dense_0`, built without allocating) or explicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    Auto(&'static str, u32),
    Given(Arc<str>),
}

impl Name {
    pub(super) fn matches(&self, key: &str) -> bool {
        match self {
            Name::Given(n) => **n == *key,
            Name::Auto(base, i) => auto_key_is(key, base, *i),
        }
    }

    /// The dict under the first key of `parent` this name matches (`None` when that key
    /// holds a leaf).
    pub(super) fn find_dict<'d>(&self, parent: &'d Dict) -> Option<&'d Dict> {
        let node = match self {
            // Keys are unique: the first match is the only one.
            Name::Given(n) => parent.get(n)?,
            Name::Auto(..) => parent.iter().find(|(k, _)| self.matches(k))?.1,
        };
        match node {
            Node::Dict(d) => Some(d),
            Node::Leaf(_) => None,
        }
    }

    pub(super) fn to_string_owned(&self) -> String {
        match self {
            Name::Given(n) => n.to_string(),
            Name::Auto(b, i) => format!("{b}_{i}"),
        }
    }
}

/// Whether `key` is `{base}_{i}`, the number with leading zeros or not (what
/// `key.strip_prefix(base)`, `strip_prefix('_')` and `parse::<u32>()` of the rest accept,
/// without a sign), checked byte by byte: the digits first (sibling keys mostly differ there),
/// then the type name, with no `memcmp` call or parse.
fn auto_key_is(key: &str, base: &str, i: u32) -> bool {
    let (k, b) = (key.as_bytes(), base.as_bytes());
    if k.len() < b.len() + 2 || k[b.len()] != b'_' {
        return false;
    }
    let mut v = 0u64;
    for &c in &k[b.len() + 1..] {
        if !c.is_ascii_digit() {
            return false;
        }
        v = v * 10 + u64::from(c - b'0');
        if v > u64::from(u32::MAX) {
            return false;
        }
    }
    v == u64::from(i) && k[..b.len()].iter().zip(b).all(|(x, y)| x == y)
}

/// A node of the scope path, linked to its parent (no allocation per child).
#[derive(Clone, Copy)]
pub(crate) struct PathNode<'a> {
    pub(super) parent: Option<&'a PathNode<'a>>,
    pub(super) name: Option<&'a Name>,
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
    pub(super) fn resolve<'d>(&self, root: &'d Dict) -> Option<&'d Dict> {
        match (self.parent, self.name) {
            (Some(p), Some(name)) => {
                let parent = p.resolve(root)?;
                name.find_dict(parent)
            }
            _ => Some(root),
        }
    }
}

/// Counters of a scope's automatic child names (`Dense_0`, `Dense_1`, ...), one per type name.
/// A scope rarely has children of more than a few types, so the counters live inline: a `Vec`
/// here cost an allocation on every module call.
#[derive(Default)]
pub(super) struct AutoNames {
    inline: [(&'static str, u32); 4],
    len: usize,
    spill: Vec<(&'static str, u32)>,
}

impl AutoNames {
    /// If `name` is an automatic name this scope has handed out (`Dense_0` after the first
    /// unnamed `Dense`), the type name it was handed out for.
    pub(super) fn issued(&self, name: &str) -> Option<&'static str> {
        let (base, index) = name.rsplit_once('_')?;
        let canonical =
            !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) && (index == "0" || !index.starts_with('0'));
        let index = index.parse::<u32>().ok().filter(|_| canonical)?;
        self.inline[..self.len]
            .iter()
            .chain(&self.spill)
            .find(|(b, last)| *b == base && index <= *last)
            .map(|(b, _)| *b)
    }

    /// The next index for `base`: 0 for its first child, then 1, 2, ...
    pub(super) fn next(&mut self, base: &'static str) -> u32 {
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

impl<'c, 'v> Scope<'c, 'v> {
    pub(super) fn auto_index(&mut self, base: &'static str) -> u32 {
        self.auto_names.next(base)
    }

    /// A [`Error::NameInUse`] for `name` in this scope.
    pub(super) fn name_in_use(
        &self,
        kind: NameKind,
        name: &str,
        existing: &'static str,
        requested: &'static str,
    ) -> Error {
        Error::NameInUse { kind, name: name.into(), module: self.module, path: self.path(), existing, requested }
    }

    /// The next automatic name for a child of type `base` (`Dense_0`, `Dense_1`, ...); an error
    /// if an explicit name took it before.
    pub(super) fn auto_name(&mut self, base: &'static str) -> Result<Name> {
        let index = self.auto_index(base);
        let name = Name::Auto(base, index);
        if let Some((_, ty)) = self.given.iter().find(|(g, _)| name.matches(g)) {
            return Err(self.name_in_use(NameKind::Submodule, &name.to_string_owned(), ty, base));
        }
        Ok(name)
    }

    /// Reserves the explicit child name `name` for a module of type `ty` (Flax's `name=`): an
    /// error if it is not a valid name or is in use (an earlier child, automatic name or
    /// variable of this scope).
    pub(super) fn reserve_name(&mut self, name: &str, ty: &'static str) -> Result<Name> {
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid(self.path(), format!("invalid submodule name \"{name}\"")));
        }
        if let Some((_, other)) = self.given.iter().find(|(g, _)| **g == *name) {
            return Err(self.name_in_use(NameKind::Submodule, name, other, ty));
        }
        if let Some(base) = self.auto_names.issued(name) {
            return Err(self.name_in_use(NameKind::Submodule, name, base, ty));
        }
        if self.has_variable_named(name) {
            return Err(self.name_in_use(NameKind::Submodule, name, "", ty));
        }
        let shared: Arc<str> = Arc::from(name);
        self.given.push((Arc::clone(&shared), ty));
        Ok(Name::Given(shared))
    }

    /// Whether a variable `name` of any collection lies directly in this scope.
    pub(super) fn has_variable_named(&self, name: &str) -> bool {
        // Not `has_variable`: a name check is no branch of the body, so a trace records nothing.
        let here = |c: &str| self.traced_written(c, name).is_some() || self.read_leaf(c, name).is_some();
        self.frame.out.collection_names().any(here) || self.frame.input.is_some_and(|i| i.collection_names().any(here))
    }

    /// An error if `name` is a child's name in this scope (a variable may not take it).
    pub(super) fn check_variable_name(&self, kind: NameKind, name: &str) -> Result<()> {
        match self.given.iter().find(|(g, _)| **g == *name) {
            Some((_, ty)) => Err(self.name_in_use(kind, name, ty, "")),
            None => Ok(()),
        }
    }

    /// Runs `module` as a child with Flax's automatic name (`{TypeName}_{index}`, counted per
    /// type name in this scope), like instantiating and calling a submodule in `@nn.compact`.
    /// A module with its own name ([`Module::named`]) runs under that name; an
    /// [`nn::Sequential`](crate::nn::Sequential) built here runs its layers as children of
    /// this scope, as in Flax.
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
    ///         let h = s.call(&nn::Dense::new(3).named("head"), h)?; // nn.Dense(3, name="head")
    ///         s.call(&nn::Dense::new(1), h) // Dense_1
    ///     }
    /// }
    /// let vars = TwoLayers.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert_eq!(vars.get("params/Dense_0/kernel").unwrap().shape(), &[2, 3]);
    /// assert_eq!(vars.get("params/head/kernel").unwrap().shape(), &[3, 3]);
    /// assert_eq!(vars.get("params/Dense_1/kernel").unwrap().shape(), &[3, 1]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn call<M: Module + ?Sized>(&mut self, module: &M, x: impl Feed<M::Input>) -> Result<M::Output> {
        match module.child_name() {
            ChildName::Auto => {
                let base = module.type_name();
                let name = self.auto_name(base)?;
                self.run_child(&name, module, base, x)
            }
            ChildName::Given(name) => {
                let ty = module.type_name();
                let name = self.reserve_name(name, ty)?;
                self.run_child(&name, module, ty, x)
            }
            ChildName::Inline => {
                // Flax still names the container (its counter moves); its layers are ours.
                self.auto_index(module.type_name());
                module.call_inline(self, x.feed()?)
            }
        }
    }

    /// Runs `module` as a child named `name` (Flax's `name=` argument, and what a `setup`
    /// field is named after). A name already in use in this scope is
    /// [`Error::NameInUse`]; to call one child several times, bind it with
    /// [`child_named`](Scope::child_named).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// /// `setup`: `self.enc = nn.Dense(3)`; `__call__`: `self.enc(x)`.
    /// struct Encoder;
    /// impl Module for Encoder {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.call_named("enc", &nn::Dense::new(3), x)
    ///     }
    /// }
    /// let vars = Encoder.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert!(vars.get("params/enc/kernel").is_some());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn call_named<M: Module + ?Sized>(
        &mut self,
        name: &str,
        module: &M,
        x: impl Feed<M::Input>,
    ) -> Result<M::Output> {
        let ty = module.type_name();
        let name = self.reserve_name(name, ty)?;
        self.run_child(&name, module, ty, x)
    }

    /// Binds `module` as a child of this scope under its automatic name (or its own, see
    /// [`Module::named`]) without calling it: Flax's `d = nn.Dense(3)` in `@nn.compact`. The
    /// returned [`Child`] may be called any number of times and always shares its variables.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// /// `d = nn.Dense(3); y = d(relu(d(x)))` then `nn.Dense(2)`.
    /// struct Shared;
    /// impl Module for Shared {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let dense = nn::Dense::new(3);
    ///         let d = s.child(&dense)?; // Dense_0, bound now
    ///         let h = d.call(s, x)?;
    ///         let h = d.call(s, nn::relu(h))?; // the same Dense_0
    ///         s.call(&nn::Dense::new(2), h) // Dense_1
    ///     }
    /// }
    /// let vars = Shared.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let paths: Vec<String> = vars.shapes().into_iter().map(|(p, _)| p).collect();
    /// assert_eq!(paths, ["params/Dense_0/kernel", "params/Dense_0/bias", "params/Dense_1/kernel", "params/Dense_1/bias"]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn child<'m, M: Module + ?Sized>(&mut self, module: &'m M) -> Result<Child<'m, M>> {
        let ty = module.type_name();
        let name = match module.child_name() {
            ChildName::Given(name) => self.reserve_name(name, ty)?,
            ChildName::Auto | ChildName::Inline => self.auto_name(ty)?,
        };
        Ok(Child { module, name, ty, scope: self.id })
    }

    /// Binds `module` as the child `name` (a `setup` field: `self.enc = nn.Dense(3)`, or
    /// `nn.Dense(3, name="enc")`), callable any number of times (see [`Scope::child`]).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// /// `setup`: `self.heads = {"a": nn.Dense(2), "b": nn.Dense(2)}` (Flax names them `heads_a`, `heads_b`).
    /// struct Heads;
    /// impl Module for Heads {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let dense = nn::Dense::new(2);
    ///         let a = s.child_named("heads_a", &dense)?;
    ///         let b = s.child_named("heads_b", &dense)?;
    ///         Ok(a.call(s, &x)? + b.call(s, &x)?)
    ///     }
    /// }
    /// let vars = Heads.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert!(vars.get("params/heads_a/kernel").is_some() && vars.get("params/heads_b/kernel").is_some());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn child_named<'m, M: Module + ?Sized>(&mut self, name: &str, module: &'m M) -> Result<Child<'m, M>> {
        let ty = module.type_name();
        let name = self.reserve_name(name, ty)?;
        Ok(Child { module, name, ty, scope: self.id })
    }

    /// Binds a list of modules as `{field}_0`, `{field}_1`, ... (a `setup` list:
    /// `self.layers = [nn.Dense(3), nn.Dense(2)]`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Stack;
    /// impl Module for Stack {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let widths = [nn::Dense::new(3), nn::Dense::new(2)];
    ///         let layers = s.child_list("layers", &widths)?; // layers_0, layers_1
    ///         let mut h = x;
    ///         for layer in &layers {
    ///             h = layer.call(s, h)?;
    ///         }
    ///         Ok(h)
    ///     }
    /// }
    /// let vars = Stack.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// assert_eq!(vars.get("params/layers_1/kernel").unwrap().shape(), &[3, 2]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn child_list<'m, M: Module>(&mut self, field: &str, modules: &'m [M]) -> Result<Vec<Child<'m, M>>> {
        modules.iter().enumerate().map(|(i, m)| self.child_named(&format!("{field}_{i}"), m)).collect()
    }

    pub(super) fn run_child<M: Module + ?Sized>(
        &mut self,
        name: &Name,
        module: &M,
        type_name: &'static str,
        x: impl Feed<M::Input>,
    ) -> Result<M::Output> {
        let x = x.feed()?;
        // Resolved here, once per scope, each child's own params are one lookup.
        let params_parent = match self.params_here.get() {
            Some(resolved) => Some(resolved),
            None => self.frame.input.is_some().then(|| self.input_params()),
        };
        self.frame.scopes += 1;
        let id = self.frame.scopes;
        let mut child = Scope {
            frame: &mut *self.frame,
            node: PathNode { parent: Some(&self.node), name: Some(name) },
            fork: self.fork.clone(),
            auto_names: AutoNames::default(),
            given: Vec::new(),
            module: type_name,
            id,
            params_here: std::cell::Cell::new(None),
            params_parent,
        };
        child.run_module(module, x)
    }
}

/// A child module bound to a scope under its name ([`Scope::child`], [`Scope::child_named`],
/// [`Scope::child_list`]): Flax's submodule instance, which may be called several times and
/// always uses the same variables.
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
///
/// struct Twice;
/// impl Module for Twice {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let dense = nn::Dense::new(2);
///         let d = s.child(&dense)?;
///         assert_eq!(d.name(), "Dense_0");
///         let h = d.call(s, x)?;
///         d.call(s, h)
///     }
/// }
/// let vars = Twice.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
/// assert_eq!(vars.shapes().len(), 2); // one kernel, one bias
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct Child<'m, M: ?Sized> {
    module: &'m M,
    name: Name,
    ty: &'static str,
    scope: u64,
}

impl<M: Module + ?Sized> Child<'_, M> {
    /// Calls the child in `scope`, which must be the scope that bound it (else
    /// [`Error::InvalidArgument`]).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Outer;
    /// impl Module for Outer {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let dense = nn::Dense::new(2);
    ///         let d = s.child_named("proj", &dense)?;
    ///         d.call(s, x)
    ///     }
    /// }
    /// assert!(Outer.init(nn::PRNGKey(0), &[1.0f32])?.get("params/proj/kernel").is_some());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn call(&self, scope: &mut Scope<'_, '_>, x: impl Feed<M::Input>) -> Result<M::Output> {
        if scope.id != self.scope {
            return Err(Error::invalid(
                scope.path(),
                format!("child \"{}\" was bound in another scope; call it in the scope that bound it", self.name()),
            ));
        }
        scope.run_child(&self.name, self.module, self.ty, x)
    }

    /// The child's name in its parent (`Dense_0`, `enc`, `layers_1`).
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Names;
    /// impl Module for Names {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let layers = [nn::Dense::new(2), nn::Dense::new(2)];
    ///         let names: Vec<String> = s.child_list("layers", &layers)?.iter().map(|c| c.name()).collect();
    ///         assert_eq!(names, ["layers_0", "layers_1"]);
    ///         Ok(x)
    ///     }
    /// }
    /// Names.init(nn::PRNGKey(0), &[1.0f32])?;
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> String {
        self.name.to_string_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::auto_key_is;

    /// `auto_key_is` accepts what prefix, `_` and `parse::<u32>` without a sign accept, and
    /// nothing else.
    #[test]
    fn auto_key_is_parse() {
        let rests = ["0", "00", "1", "01", "10", "007", "+1", "-1", "", "1a", " 1", "4294967295", "4294967296", "99"];
        for base in ["Dense", "D", "Dense_1"] {
            for rest in rests {
                for key in [format!("{base}_{rest}"), format!("{base}{rest}"), format!("X{base}_{rest}")] {
                    for i in [0, 1, 7, 10, 99, u32::MAX] {
                        let parsed = key
                            .strip_prefix(base)
                            .and_then(|r| r.strip_prefix('_'))
                            .is_some_and(|r| r.parse::<u32>().ok() == Some(i) && !r.starts_with('+'));
                        assert_eq!(auto_key_is(&key, base, i), parsed, "{key:?} vs {base}_{i}");
                    }
                }
            }
        }
    }
}
