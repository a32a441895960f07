//! A counting global allocator for the tests that measure allocations: including this module
//! (`mod common;`) installs it for the whole test binary. It counts allocation calls (per
//! thread) and the bytes live and at their peak (for the process), and forwards every call to
//! the system allocator unchanged.
//!
//! The byte counters are global: tests that read them take [`serial`] so that they run one at
//! a time (or the binary holds a single test).

// Each test binary uses part of the helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

struct Counting;

thread_local! {
    /// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`) made by this thread: the test
    /// harness's own thread allocates whenever a test ends (printing its result), which a
    /// global count would charge to whichever test is counting then.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}
/// Bytes allocated and not yet freed, and the most of them seen since the last reset.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

fn grew(bytes: usize) {
    // `try_with`: a thread being torn down has no counter left (and is not counted).
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    let live = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(live, Ordering::SeqCst);
}

// SAFETY: forwards every call to the system allocator unchanged; only counts calls and bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's (a valid, non-zero-size layout).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` was allocated by `System` with this layout (above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a new block before the old one is freed (the worst case of a move).
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Holds the counters for one test at a time (a poisoned lock is taken over: a failed test
/// leaves the counters usable).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many allocation calls `f` made on the calling thread (the kernels' worker threads
/// allocate nothing per call: they run on buffers the caller passes).
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

/// The most bytes `f` held at once beyond what was live when it started, and its result.
pub fn peak_extra<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    (PEAK.load(Ordering::SeqCst) - base, r)
}
