//! Flax msgpack and safetensors loaders on arbitrary bytes: Ok or Err, never a panic, and what
//! loads writes back and loads again to the same variables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnjit::io::{flax, safetensors};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = flax::from_bytes(data) {
        if let Ok(bytes) = flax::to_bytes(&v) {
            let again = flax::from_bytes(&bytes).expect("written bytes load");
            assert!(again.bits_eq(&v));
        }
    }
    if let Ok(v) = safetensors::load(data) {
        if let Ok(bytes) = safetensors::save(&v) {
            let again = safetensors::load(&bytes).expect("written bytes load");
            assert!(again.bits_eq(&v));
        }
    }
});
