//! Flax checkpoints in, safetensors out.
//!
//!     cargo run --release --example checkpoints [-- FLAX_MSGPACK_FILE]
//!
//! Loads variables written by `flax.serialization.to_bytes` (by default the Mlp fixture made by
//! real Flax in `tests/data/checkpoints`), applies them, writes them back as Flax msgpack (the
//! same bytes) and as safetensors (`params/Dense_0/kernel` keys, readable by Python's
//! `safetensors`), and reads that back. Files larger than 256 MiB are refused (the loaders' own
//! limit is `nnjit::io::MAX_INPUT_BYTES`); every failure is one line on stderr and exit code 2.

use nnjit::ndarray::Array2;
use nnjit::nn::Module;
use nnjit::Variables;
use nnjit_suite::models::JitMlp;

/// The largest file this example reads.
const MAX_FILE_BYTES: usize = 256 << 20;

fn run(args: &[String]) -> Result<String, String> {
    let path = match args {
        [] => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoints/mlp.msgpack").to_string(),
        [flag] if flag == "--help" || flag == "-h" => return Ok("usage: checkpoints [FLAX_MSGPACK_FILE]".into()),
        [path] => path.clone(),
        _ => return Err("expected at most one argument, a Flax msgpack file (see --help)".into()),
    };
    let bytes = nnjit::io::read_file(&path, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
    let vars = Variables::from_flax_bytes(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let mut out = format!("{path}:\n{vars}\n\n");

    // The fixture's model: Mlp(hidden=7, out=3) on x = linspace(-1, 1, 15).reshape(3, 5).
    let x = Array2::from_shape_fn((3, 5), |(i, j)| -1.0 + 2.0 * (i * 5 + j) as f32 / 14.0);
    if vars.get("params/Dense_0/kernel").map(|k| k.shape()) == Some(&[5, 7][..]) {
        match (JitMlp { hidden: 7, out: 3 }).apply(&vars, &x) {
            Ok(y) => out.push_str(&format!("JitMlp(7, 3) output:\n{y}\n\n")),
            Err(e) => out.push_str(&format!("not the fixture's Mlp(7, 3): {e}\n\n")),
        }
    }

    let again = vars.to_flax_bytes().map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "written back as Flax msgpack: {} bytes, identical to the input: {}\n",
        again.len(),
        again == bytes
    ));
    let st = vars.to_safetensors().map_err(|e| e.to_string())?;
    let back = Variables::from_safetensors(&st).map_err(|e| e.to_string())?;
    out.push_str(&format!("as safetensors: {} bytes, reads back bit-identical: {}", st.len(), back.bits_eq(&vars)));
    Ok(out)
}

fn main() {
    let result = nnjit_suite::cli::utf8_args(std::env::args_os().skip(1)).and_then(|args| run(&args));
    match result {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
