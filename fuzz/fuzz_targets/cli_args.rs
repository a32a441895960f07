//! The example CLI's argument and JSON parsing: any bytes, split into arguments at NUL (raw, so
//! also not UTF-8), must give Ok or a one-line Err, never a panic.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // What `main` does with `std::env::args_os()`.
    let raw: Vec<OsString> = data.split(|&b| b == 0).map(|a| OsString::from_vec(a.to_vec())).collect();
    match nnjit_suite::cli::utf8_args(raw) {
        Ok(args) => assert!(std::str::from_utf8(data).is_ok(), "non-UTF-8 accepted: {args:?}"),
        Err(e) => assert!(!e.contains('\n') && std::str::from_utf8(data).is_err(), "{e}"),
    }
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\0').collect();
    if let Err(e) = nnjit_suite::cli::parse_args(&args) {
        assert!(!e.contains('\n'), "multi-line error: {e}");
    }
    if let Ok((_, xs)) = nnjit_suite::json::parse_matrix(&text) {
        // Finite numbers beyond f32 are errors, not infinities.
        assert!(xs.iter().all(|x| x.is_finite()) || text.contains("Infinity") || text.contains("NaN"));
    }
    // The whole run, but only for small feature counts (the rest is parsing, covered above).
    if let Ok(a) = nnjit_suite::cli::parse_args(&args) {
        if a.features <= 64 && a.x.len() <= 4096 {
            if let Err(e) = nnjit_suite::cli::run(&args) {
                assert!(!e.contains('\n'), "multi-line error: {e}");
            }
        }
    }
});
