//! The per-shape cache of a lifted type: "compile once per input shape, then reuse".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::kernel::{best_isa, PackedDense};
use crate::scope::{Name, PathNode};
use crate::variables::Leaf;

/// Bound parameters of one Dense call site: packed once per parameter version.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// Scope path of the call site and the variables it was bound for: a later call with the
    /// same variables at the same path reuses the packed kernel without looking anything up.
    path: Vec<Name>,
    generation: u64,
    dims: (usize, usize, bool),
    kernel_version: u64,
    bias_version: Option<u64>,
    packed: Arc<PackedDense>,
}

impl Slot {
    /// The packed kernel, if this slot was bound for the same variables (`generation`), path
    /// and dims: no lookups, no checks beyond these comparisons.
    pub(crate) fn hit(&self, generation: u64, path: &PathNode<'_>, dims: (usize, usize, bool)) -> Option<&PackedDense> {
        (self.generation == generation && self.dims == dims && path.is(&self.path)).then_some(&*self.packed)
    }
}

/// The bound call sites of a plan, in call order (one immutable snapshot per apply).
pub(crate) type Slots = Arc<Vec<Option<Slot>>>;

/// The packed kernel of call site `index` in `slots`, if it was bound for these variables,
/// path and dims (see [`Slot::hit`]).
pub(crate) fn slot_hit<'s>(
    slots: &'s Slots,
    index: usize,
    generation: u64,
    path: &PathNode<'_>,
    dims: (usize, usize, bool),
) -> Option<&'s PackedDense> {
    slots.get(index)?.as_ref()?.hit(generation, path, dims)
}

/// What a lifted module prepared for one input shape: for each Dense call site, in call order,
/// the parameters packed into the kernel's layout and the kernel chosen for its shape.
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(4);
/// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
/// m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
/// let plan = nn::JitDense::jit_cache().get(std::any::type_name::<nn::JitDense>(), &[3]).unwrap();
/// assert_eq!(plan.pack_count(), 1); // the one Dense call site, packed once
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ShapePlan {
    /// Copy on write: an apply takes the current snapshot once (one lock, one reference count)
    /// and reads its call sites without locking; binding a site publishes a new snapshot.
    slots: RwLock<Slots>,
    packs: AtomicUsize,
}

impl ShapePlan {
    /// The bound call sites as of now.
    pub(crate) fn snapshot(&self) -> Slots {
        Arc::clone(&self.slots.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Binds call site `index` to these (already shape-checked) parameters, packing them only
    /// if they are new or changed (their version ids differ).
    pub(crate) fn bind(
        &self,
        index: usize,
        generation: u64,
        path: &PathNode<'_>,
        dims: (usize, usize, bool),
        kernel: &Leaf,
        bias: Option<&Leaf>,
    ) -> Result<Arc<PackedDense>> {
        let bias_version = bias.map(Leaf::version);
        let reuse = match self.snapshot().get(index) {
            Some(Some(s)) if s.kernel_version == kernel.version() && s.bias_version == bias_version => {
                Some(Arc::clone(&s.packed))
            }
            _ => None,
        };
        let packed = match reuse {
            Some(p) => p,
            None => {
                let k = kernel.array().as_standard_layout();
                let b = bias.map(|b| b.array().as_standard_layout());
                let p = Arc::new(PackedDense::new(
                    best_isa(),
                    k.as_slice().expect("standard layout"),
                    b.as_ref().map(|b| b.as_slice().expect("standard layout")),
                    dims.0,
                    dims.1,
                )?);
                self.packs.fetch_add(1, Ordering::Relaxed);
                p
            }
        };
        let slot = Slot {
            path: path.names(),
            generation,
            dims,
            kernel_version: kernel.version(),
            bias_version,
            packed: Arc::clone(&packed),
        };
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let next = Arc::make_mut(&mut slots);
        if next.len() <= index {
            next.resize_with(index + 1, || None);
        }
        next[index] = Some(slot);
        Ok(packed)
    }

    /// How many times parameters were packed for this shape (once per call site and
    /// parameter version).
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(4);
    /// let mut vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// let ty = std::any::type_name::<nn::JitDense>();
    /// m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
    /// m.apply(&vars, &[4.0f32, 5.0, 6.0])?; // same parameters: not packed again
    /// assert_eq!(nn::JitDense::jit_cache().get(ty, &[3]).unwrap().pack_count(), 1);
    /// vars.get_mut("params/bias").unwrap().fill(1.0); // a new parameter version
    /// m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
    /// assert_eq!(nn::JitDense::jit_cache().get(ty, &[3]).unwrap().pack_count(), 2);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn pack_count(&self) -> usize {
        self.packs.load(Ordering::Relaxed)
    }
}

/// Whether two type names are the same; they usually are the same `&'static str`, so the
/// addresses are compared before the bytes.
fn same_type(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// A prepared shape: (type name, input shape, plan).
type PlanEntry = (&'static str, Vec<usize>, Arc<ShapePlan>);

/// The cache of one lifted type: one [`ShapePlan`] per input shape, like the cache of a
/// `jax.jit`-compiled function.
///
/// ```
/// use nnjit::jit::JitCache;
/// static CACHE: JitCache = JitCache::new(); // what #[nn::jit] generates for each lifted type
/// let a = CACHE.plan("Mlp", &[1, 3]);
/// let b = CACHE.plan("Mlp", &[1, 3]); // same shape: the same plan
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// CACHE.plan("Mlp", &[2, 3]);
/// assert_eq!(CACHE.size(), 2); // like jax.jit's _cache_size()
/// ```
#[derive(Debug, Default)]
pub struct JitCache {
    plans: RwLock<Vec<PlanEntry>>,
    prepared: AtomicUsize,
}

impl JitCache {
    /// An empty cache (usable in a `static`).
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// assert_eq!(cache.size(), 0);
    /// assert!(cache.get("Dense", &[3]).is_none());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        JitCache { plans: RwLock::new(Vec::new()), prepared: AtomicUsize::new(0) }
    }

    /// The plan of `shape` for type `ty`, prepared (once) if new.
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// let p = cache.plan("Dense", &[3]);
    /// assert_eq!(p.pack_count(), 0); // nothing bound yet
    /// assert!(std::sync::Arc::ptr_eq(&p, &cache.plan("Dense", &[3])));
    /// assert_eq!(cache.size(), 1);
    /// ```
    pub fn plan(&self, ty: &'static str, shape: &[usize]) -> Arc<ShapePlan> {
        let find = |plans: &Vec<PlanEntry>| {
            plans.iter().find(|(t, s, _)| same_type(t, ty) && s == shape).map(|(_, _, p)| Arc::clone(p))
        };
        if let Some(p) = find(&self.plans.read().unwrap_or_else(|e| e.into_inner())) {
            return p;
        }
        let mut plans = self.plans.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = find(&plans) {
            return p; // another thread prepared it meanwhile
        }
        let p = Arc::new(ShapePlan::default());
        plans.push((ty, shape.to_vec(), Arc::clone(&p)));
        self.prepared.fetch_add(1, Ordering::Relaxed);
        p
    }

    /// Number of input shapes prepared so far (JAX: `f._cache_size()`).
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// cache.plan("Dense", &[3]);
    /// cache.plan("Dense", &[3]);
    /// cache.plan("Dense", &[2, 3]);
    /// assert_eq!(cache.size(), 2); // one per distinct input shape
    /// ```
    #[must_use]
    pub fn size(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    /// The plan of an already prepared shape, without preparing one.
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// assert!(cache.get("Dense", &[3]).is_none()); // get never prepares
    /// cache.plan("Dense", &[3]);
    /// assert!(cache.get("Dense", &[3]).is_some());
    /// assert!(cache.get("Mlp", &[3]).is_none()); // plans are per type
    /// ```
    #[must_use]
    pub fn get(&self, ty: &'static str, shape: &[usize]) -> Option<Arc<ShapePlan>> {
        let plans = self.plans.read().unwrap_or_else(|e| e.into_inner());
        plans.iter().find(|(t, s, _)| same_type(t, ty) && s == shape).map(|(_, _, p)| Arc::clone(p))
    }

    /// Forgets every prepared shape (JAX: `jax.clear_caches()`).
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// cache.plan("Dense", &[3]);
    /// cache.clear(); // jax.clear_caches()
    /// assert_eq!(cache.size(), 0);
    /// assert!(cache.get("Dense", &[3]).is_none());
    /// ```
    pub fn clear(&self) {
        self.plans.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.prepared.store(0, Ordering::Relaxed);
    }
}
