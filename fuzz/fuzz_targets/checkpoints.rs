//! Flax msgpack and safetensors loaders on arbitrary bytes: Ok or Err, never a panic; what
//! loads prints (`Display`), writes back and loads again to the same variables; and every load
//! stays within the loaders' documented memory bound (checked with a counting allocator).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use nnjit::io::{flax, safetensors, MEMORY_OVERHEAD, MEMORY_PER_INPUT_BYTE};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `load`, asserting that its peak extra heap stays within the documented bound.
fn bounded<T>(data: &[u8], load: impl FnOnce(&[u8]) -> nnjit::Result<T>) -> nnjit::Result<T> {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = load(data);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    // The result itself is counted; libFuzzer's own allocations on this thread are not made
    // during the load.
    assert!(peak <= MEMORY_PER_INPUT_BYTE * data.len() + MEMORY_OVERHEAD, "peak {peak} for {} bytes", data.len());
    r
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = bounded(data, flax::from_bytes) {
        let text = v.to_string();
        assert!(text.ends_with(" elements"));
        if let Ok(bytes) = flax::to_bytes(&v) {
            let again = flax::from_bytes(&bytes).expect("written bytes load");
            assert!(again.bits_eq(&v));
        }
    }
    if let Ok(v) = bounded(data, safetensors::load) {
        let _ = v.to_string();
        if let Ok(bytes) = safetensors::save(&v) {
            let again = safetensors::load(&bytes).expect("written bytes load");
            assert!(again.bits_eq(&v));
        }
    }
});
