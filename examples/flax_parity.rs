//! Runs every case of a `golden_modules_public.json`-format file through nnjit, plain and
//! lifted, and writes `{"cases": [{"plain": {...}, "lifted": {...}}]}` with the golden key names.
//!
//!     cargo run --release --example flax_parity -- --cases tests/data/golden_modules_public.json --emit out.json
//!
//! Without arguments it runs the golden file shipped in `tests/data` and prints a summary.
//! Case files larger than 64 MiB are refused; NaN and ±inf outputs are written as Python's
//! `json` writes them (`NaN`, `Infinity`, `-Infinity`); every failure is one line on stderr and
//! exit code 2.

/// The largest case file this example reads.
const MAX_CASES_BYTES: usize = 64 << 20;

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
    let bytes = nnjit::io::read_file(&path, MAX_CASES_BYTES).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{path} is not UTF-8 text: {e}"))?;
    let result = nnjit_suite::parity::run_file(&text)?;
    let n = result["cases"].as_array().map_or(0, Vec::len);
    match emit {
        Some(out) => {
            std::fs::write(&out, nnjit_suite::parity::to_text(&result))
                .map_err(|e| nnjit::Error::io(&out, "write", e).to_string())?;
            Ok(format!("{n} cases from {path} written to {out}"))
        }
        None => Ok(format!("{n} cases from {path} run (plain and lifted); pass --emit OUT to write them")),
    }
}

fn main() {
    match nnjit_suite::cli::utf8_args(std::env::args_os().skip(1)).and_then(|args| run(&args)) {
        Ok(msg) => println!("{msg}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
