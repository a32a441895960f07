//! The compilation cache of a lifted type: one [`Program`] per cache key, bounded
//! (least-recently-used), looked up by hash; and the store of packed Dense weights that all of
//! the type's programs share (one packing per parameter version).

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::error::Result;
use crate::jit::program::Program;
use crate::kernel::{best_isa, Isa, PackedDense};
use crate::scope::Mutable;
use crate::tensor::Meta;

/// A word-at-a-time multiplicative hash (rustc's FxHash): cache keys are a few words (a type
/// id, shapes, flags) hashed on every apply, where SipHash's strength buys nothing. Lookups
/// compare full keys, so a collision costs a comparison, never a wrong program.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// What a program was compiled for, besides the module's fields and the input's statics
/// (compared through `Any`).
pub(crate) struct Entry {
    pub(crate) module: Box<dyn Any + Send + Sync>,
    pub(crate) input: Box<dyn Any + Send + Sync>,
    pub(crate) output: Box<dyn Any + Send + Sync>,
    pub(crate) metas: Vec<Meta>,
    pub(crate) mutable: Mutable,
    pub(crate) rngs: Vec<String>,
    pub(crate) visible: Option<&'static [&'static str]>,
    pub(crate) program: Arc<Program>,
    last_used: AtomicU64,
    /// Cleared when the entry leaves the cache (evicted, replaced or cleared), so a per-thread
    /// shortcut to it is not used any more.
    live: std::sync::atomic::AtomicBool,
}

impl Entry {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        module: Box<dyn Any + Send + Sync>,
        input: Box<dyn Any + Send + Sync>,
        output: Box<dyn Any + Send + Sync>,
        metas: Vec<Meta>,
        mutable: Mutable,
        rngs: Vec<String>,
        visible: Option<&'static [&'static str]>,
        program: Arc<Program>,
    ) -> Self {
        Entry {
            module,
            input,
            output,
            metas,
            mutable,
            rngs,
            visible,
            program,
            last_used: AtomicU64::new(0),
            live: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether the entry is still in its cache.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }
}

/// Counters of a [`JitCache`] (JAX's `_cache_size()` and its hit/miss logging).
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(3);
/// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
/// let before = nn::JitDense::jit_cache().stats();
/// m.apply(&vars, &[1.0f32, 2.0])?;
/// m.apply(&vars, &[3.0f32, 4.0])?;
/// let after = nn::JitDense::jit_cache().stats();
/// assert!(after.hits > before.hits); // the second apply reused the program
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Programs held now.
    pub size: usize,
    /// Most programs held at once.
    pub capacity: usize,
    /// Applies that found their program.
    pub hits: u64,
    /// Traces (cache misses that compiled a program).
    pub traces: u64,
    /// Programs dropped to stay within capacity.
    pub evictions: u64,
    /// Entries compared with a call's key by lookups (lookups go by hash: a hit compares the
    /// entries sharing its hash, usually one).
    pub compares: u64,
}

/// The default capacity of a lifted type's cache (programs, i.e. distinct keys).
pub const DEFAULT_CAPACITY: usize = 64;

/// (kernel leaf version, bias leaf version, instruction set).
type PackKey = (u64, Option<u64>, Isa);

/// Packed Dense weights shared by the programs of a lifted type: one packing per (kernel,
/// bias) version; programs' bindings hold them, the store only remembers them weakly.
#[derive(Debug, Default)]
pub(crate) struct PackStore {
    map: Mutex<Option<Map<PackKey, Weak<PackedDense>>>>,
    packs: AtomicUsize,
}

impl PackStore {
    const fn new() -> Self {
        PackStore { map: Mutex::new(None), packs: AtomicUsize::new(0) }
    }

    /// The packed weights of these leaf versions, packing them if no binding holds them.
    pub(crate) fn get(
        &self,
        kernel: u64,
        bias: Option<u64>,
        w: &[f32],
        b: Option<&[f32]>,
        d: usize,
        f: usize,
    ) -> Result<Arc<PackedDense>> {
        let isa = best_isa();
        let key = (kernel, bias, isa);
        let mut guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(Map::default);
        if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
            return Ok(p);
        }
        let p = Arc::new(PackedDense::new(isa, w, b, d, f)?);
        self.packs.fetch_add(1, Ordering::Relaxed);
        if map.len() >= 64 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        map.insert(key, Arc::downgrade(&p));
        Ok(p)
    }
}

/// The hits of one remembered apply of one thread, counted by that thread alone (a load and a
/// store: no locked add on a line that every thread's repeats write), summed by
/// [`JitCache::stats`] and folded into the cache's count when dropped. Exact: only the owning
/// thread writes it.
#[derive(Debug)]
pub(crate) struct ThreadHits {
    cache: &'static JitCache,
    count: Arc<AtomicU64>,
}

impl ThreadHits {
    /// A new count of 0, registered in `cache`.
    pub(crate) fn new(cache: &'static JitCache) -> Self {
        let count = Arc::new(AtomicU64::new(0));
        cache.thread_hits.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&count));
        ThreadHits { cache, count }
    }

    /// The cache it counts for.
    pub(crate) fn cache(&self) -> &'static JitCache {
        self.cache
    }

    /// Counts one hit (on the owning thread).
    #[inline]
    pub(crate) fn add(&self) {
        let c = &*self.count;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

impl Drop for ThreadHits {
    fn drop(&mut self) {
        let mut counts = self.cache.thread_hits.lock().unwrap_or_else(|e| e.into_inner());
        self.cache.hits.fetch_add(self.count.load(Ordering::Relaxed), Ordering::Relaxed);
        counts.retain(|c| !Arc::ptr_eq(c, &self.count));
    }
}

/// The cache of one lifted type, like the cache of a `jax.jit`-compiled function: one
/// [`Program`] per key (the module's fields, input shapes and dtypes, static arguments,
/// mutable collections, RNG streams, lift options), least-recently-used eviction beyond
/// [`capacity`](JitCache::capacity), lookups by hash.
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(2);
/// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
/// let cache = nn::JitDense::jit_cache();
/// cache.clear();
/// for n in 1..=3 {
///     m.apply(&vars, &ndarray::Array2::<f32>::zeros((n, 1)))?; // three batch sizes
/// }
/// assert_eq!(cache.size(), 3);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Debug)]
pub struct JitCache {
    entries: RwLock<Option<Map<u64, Vec<Arc<Entry>>>>>,
    len: AtomicUsize,
    capacity: AtomicUsize,
    tick: AtomicU64,
    hits: AtomicU64,
    traces: AtomicU64,
    evictions: AtomicU64,
    compares: AtomicU64,
    /// The hit counts of remembered applies, one writer each (see [`ThreadHits`]).
    thread_hits: Mutex<Vec<Arc<AtomicU64>>>,
    pub(crate) packs: PackStore,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({:?})", self.program)
    }
}

impl Default for JitCache {
    fn default() -> Self {
        JitCache::new()
    }
}

impl JitCache {
    /// An empty cache with [`DEFAULT_CAPACITY`] (usable in a `static`).
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// assert_eq!(cache.size(), 0);
    /// assert_eq!(cache.capacity(), nnjit::jit::DEFAULT_CAPACITY);
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        JitCache {
            entries: RwLock::new(None),
            len: AtomicUsize::new(0),
            capacity: AtomicUsize::new(DEFAULT_CAPACITY),
            tick: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            traces: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            compares: AtomicU64::new(0),
            thread_hits: Mutex::new(Vec::new()),
            packs: PackStore::new(),
        }
    }

    /// Programs held now (JAX: `f._cache_size()`).
    ///
    /// ```
    /// assert_eq!(nnjit::jit::JitCache::new().size(), 0);
    /// ```
    #[must_use]
    pub fn size(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The most programs held at once.
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// cache.set_capacity(8);
    /// assert_eq!(cache.capacity(), 8);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Sets the capacity (at least 1), evicting least-recently-used programs beyond it.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// #[nn::jit]
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct Tiny { f: usize }
    /// impl Module for Tiny {
    ///     type Input = nn::Tensor;
    ///     type Output = nn::Tensor;
    ///     fn call(&self, s: &mut nn::Scope, x: nn::Tensor) -> nnjit::Result<nn::Tensor> {
    ///         s.call(&nn::Dense::new(self.f), x)
    ///     }
    /// }
    /// let m = JitTiny { f: 2 };
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// JitTiny::jit_cache().set_capacity(2);
    /// for n in 1..=5 {
    ///     m.apply(&vars, &ndarray::Array2::<f32>::zeros((n, 1)))?;
    /// }
    /// assert_eq!(m.cache_size(), 2); // bounded
    /// assert_eq!(JitTiny::jit_cache().stats().evictions, 3);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.evict(&mut guard);
    }

    /// Counters: size, capacity, hits, traces, evictions.
    ///
    /// ```
    /// let s = nnjit::jit::JitCache::new().stats();
    /// assert_eq!((s.size, s.hits, s.traces), (0, 0, 0));
    /// ```
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        // Under the lock: a count folded meanwhile is read once, in `hits` or in the list.
        let counts = self.thread_hits.lock().unwrap_or_else(|e| e.into_inner());
        let hits = self.hits.load(Ordering::Relaxed) + counts.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
        drop(counts);
        CacheStats {
            size: self.size(),
            capacity: self.capacity(),
            hits,
            traces: self.traces.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            compares: self.compares.load(Ordering::Relaxed),
        }
    }

    /// How many times Dense weights were packed for this type's programs (once per parameter
    /// version while some program's binding holds them).
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(4);
    /// let mut vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
    /// m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
    /// let packs = nn::JitDense::jit_cache().pack_count();
    /// m.apply(&vars, &[4.0f32, 5.0, 6.0])?; // same parameters: not packed again
    /// assert_eq!(nn::JitDense::jit_cache().pack_count(), packs);
    /// vars.get_mut("params/bias").unwrap().fill(1.0); // a new parameter version
    /// m.apply(&vars, &[1.0f32, 2.0, 3.0])?;
    /// assert_eq!(nn::JitDense::jit_cache().pack_count(), packs + 1);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn pack_count(&self) -> usize {
        self.packs.packs.load(Ordering::Relaxed)
    }

    /// Forgets every program (JAX: `jax.clear_caches()`).
    ///
    /// ```
    /// let cache = nnjit::jit::JitCache::new();
    /// cache.clear();
    /// assert_eq!(cache.size(), 0);
    /// ```
    pub fn clear(&self) {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = guard.take() {
            map.values().flatten().for_each(|e| e.live.store(false, Ordering::Relaxed));
        }
        self.len.store(0, Ordering::Relaxed);
    }

    /// Marks `e` used (a hit through a per-thread shortcut).
    pub(crate) fn touch(&self, e: &Entry) {
        self.mark_used(e);
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks `e` most recently used, without counting a hit.
    #[inline]
    pub(crate) fn mark_used(&self, e: &Entry) {
        // The most recently used entry stays so without another tick (one atomic add less on
        // a repeated call).
        if e.last_used.load(Ordering::Relaxed).wrapping_add(1) != self.tick.load(Ordering::Relaxed) {
            e.last_used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The entry with hash `h` that `matches` accepts, marking it used.
    pub(crate) fn find(&self, h: u64, matches: impl Fn(&Entry) -> bool) -> Option<Arc<Entry>> {
        let guard = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = guard.as_ref()?.get(&h)?.iter().find(|e| {
            self.compares.fetch_add(1, Ordering::Relaxed);
            matches(e)
        })?;
        e.last_used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(e))
    }

    /// Adds a freshly traced entry (replacing an equal one another thread added meanwhile).
    pub(crate) fn insert(&self, h: u64, entry: Entry, same: impl Fn(&Entry) -> bool) -> Arc<Entry> {
        self.traces.fetch_add(1, Ordering::Relaxed);
        entry.last_used.store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let entry = Arc::new(entry);
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(Map::default);
        let bucket = map.entry(h).or_default();
        let before = bucket.len();
        bucket.retain(|e| {
            let keep = !same(e);
            if !keep {
                e.live.store(false, Ordering::Relaxed);
            }
            keep
        });
        let replaced = before - bucket.len();
        bucket.push(Arc::clone(&entry));
        self.len.fetch_add(1, Ordering::Relaxed);
        self.len.fetch_sub(replaced, Ordering::Relaxed);
        self.evict(&mut guard);
        entry
    }

    /// Drops least-recently-used entries beyond the capacity.
    fn evict(&self, guard: &mut Option<Map<u64, Vec<Arc<Entry>>>>) {
        let Some(map) = guard.as_mut() else { return };
        while self.len.load(Ordering::Relaxed) > self.capacity() {
            let oldest = map
                .iter()
                .flat_map(|(h, b)| b.iter().enumerate().map(move |(i, e)| (e.last_used.load(Ordering::Relaxed), *h, i)))
                .min();
            let Some((_, h, i)) = oldest else { break };
            if let Some(b) = map.get_mut(&h) {
                b.remove(i).live.store(false, Ordering::Relaxed);
                if b.is_empty() {
                    map.remove(&h);
                }
            }
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}
