//! Flax msgpack and safetensors loaders on arbitrary bytes: Ok or Err, never a panic; what
//! loads prints (`Display`), writes back and loads again to the same variables; and every load
//! stays within the loaders' documented memory bound (checked with a counting allocator).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnjit::io::{flax, safetensors, MEMORY_OVERHEAD, MEMORY_PER_INPUT_BYTE};

// The test suites' counting global allocator (installed by including it).
#[path = "../../tests/common/counting_alloc.rs"]
mod counting_alloc;

/// Runs `load`, asserting that its peak extra heap stays within the documented bound.
fn bounded<T>(data: &[u8], load: impl FnOnce(&[u8]) -> nnjit::Result<T>) -> nnjit::Result<T> {
    let (peak, r) = counting_alloc::peak_extra(|| load(data));
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
