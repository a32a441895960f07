//! Runs every case of a `golden_modules_public.json`-format file through nnjit, plain and
//! lifted, and writes `{"cases": [{"plain": {...}, "lifted": {...}}]}` with the golden key names.
//!
//!     cargo run --release --example flax_parity -- --cases tests/data/golden_modules_public.json --emit out.json
//!
//! Without arguments it runs the golden file shipped in `tests/data` and prints a summary.

fn run(args: &[String]) -> Result<String, String> {
    let mut cases = None;
    let mut emit = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cases" => cases = Some(it.next().ok_or("--cases needs a file")?.clone()),
            "--emit" => emit = Some(it.next().ok_or("--emit needs a file")?.clone()),
            "--help" | "-h" => return Ok("usage: flax_parity [--cases FILE] [--emit OUT]".into()),
            other => return Err(format!("unknown argument \"{other}\"")),
        }
    }
    let path =
        cases.unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden_modules_public.json").into());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let result = nnjit_suite::parity::run_file(&text)?;
    let n = result["cases"].as_array().map_or(0, Vec::len);
    match emit {
        Some(out) => {
            std::fs::write(&out, result.to_string()).map_err(|e| format!("cannot write {out}: {e}"))?;
            Ok(format!("{n} cases from {path} written to {out}"))
        }
        None => Ok(format!("{n} cases from {path} run (plain and lifted); pass --emit OUT to write them")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(msg) => println!("{msg}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
