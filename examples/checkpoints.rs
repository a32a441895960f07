//! Flax checkpoints in, safetensors out.
//!
//!     cargo run --release --example checkpoints [-- FLAX_MSGPACK_FILE]
//!
//! Loads variables written by `flax.serialization.to_bytes` (by default the Mlp fixture made by
//! real Flax in `tests/data/checkpoints`), applies them, writes them back as Flax msgpack (the
//! same bytes) and as safetensors (`params/Dense_0/kernel` keys, readable by Python's
//! `safetensors`), and reads that back.

use nnjit::ndarray::Array2;
use nnjit::nn::Module;
use nnjit::Variables;
use nnjit_suite::models::JitMlp;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoints/mlp.msgpack").into());
    let bytes = std::fs::read(&path)?;
    let vars = Variables::from_flax_bytes(&bytes)?;
    println!("{path}:\n{vars}\n");

    // The fixture's model: Mlp(hidden=7, out=3) on x = linspace(-1, 1, 15).reshape(3, 5).
    let x = Array2::from_shape_fn((3, 5), |(i, j)| -1.0 + 2.0 * (i * 5 + j) as f32 / 14.0);
    if vars.get("params/Dense_0/kernel").map(|k| k.shape()) == Some(&[5, 7][..]) {
        let y = JitMlp { hidden: 7, out: 3 }.apply(&vars, &x)?;
        println!("JitMlp(7, 3) output:\n{y}\n");
    }

    let again = vars.to_flax_bytes()?;
    println!("written back as Flax msgpack: {} bytes, identical to the input: {}", again.len(), again == bytes);
    let st = vars.to_safetensors()?;
    let back = Variables::from_safetensors(&st)?;
    println!("as safetensors: {} bytes, reads back bit-identical: {}", st.len(), back.bits_eq(&vars));
    Ok(())
}
