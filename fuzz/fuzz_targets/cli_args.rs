//! The example CLI's argument and JSON parsing: any bytes, split into arguments at NUL, must
//! give Ok or a one-line Err, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\0').collect();
    if let Err(e) = nnjit_suite::cli::parse_args(&args) {
        assert!(!e.contains('\n'), "multi-line error: {e}");
    }
    let _ = nnjit_suite::json::parse_matrix(&text);
    // The whole run, but only for small feature counts (the rest is parsing, covered above).
    if let Ok(a) = nnjit_suite::cli::parse_args(&args) {
        if a.features <= 64 && a.x.len() <= 4096 {
            let _ = nnjit_suite::cli::run(&args);
        }
    }
});
