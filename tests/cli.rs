//! The example CLIs run as a user runs them (the binaries `cargo test` builds under
//! `target/<profile>/examples/`): hostile arguments and inputs give a one-line `error: ...` on
//! stderr and exit code 2, never a panic (exit code 101). Issue 14's items 2, 5, 6 and 7.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The example's binary, next to this test's `deps/` directory; `None` when `cargo test` was
/// told to build only some targets (then there is nothing to run).
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} is not built (run the whole `cargo test`)", path.display());
        None
    }
}

fn run(name: &str, args: &[std::ffi::OsString]) -> Option<Output> {
    let out = Command::new(example(name)?).args(args).output().expect("the example starts");
    Some(out)
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

/// Exit code 2 and one line `error: ...` containing `needle`.
fn assert_clean_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "not one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_errors_in_every_example() {
    use std::os::unix::ffi::OsStringExt;
    for name in ["nn_jit_forward", "flax_parity", "checkpoints"] {
        let arg = std::ffi::OsString::from_vec(vec![b'-', 0xff]);
        if let Some(out) = run(name, &[arg]) {
            assert_clean_error(&out, "argument 1 is not valid UTF-8");
        }
    }
}

#[cfg(unix)]
#[test]
fn endless_inputs_are_refused_quickly() {
    for (name, args) in [("flax_parity", &["--cases", "/dev/zero"][..]), ("checkpoints", &["/dev/zero"][..])] {
        let start = Instant::now();
        if let Some(out) = run(name, &os(args)) {
            assert_clean_error(&out, "/dev/zero is larger than the limit of");
            assert!(start.elapsed() < Duration::from_secs(20), "{name} took {:?}", start.elapsed());
        }
    }
}

#[test]
fn checkpoint_errors_are_displayed_not_debugged() {
    let dir = std::env::temp_dir().join(format!("nnjit_cli_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.msgpack");
    std::fs::write(&bad, b"\x81\xa6params\x92\x01").unwrap();
    if let Some(out) = run("checkpoints", &[bad.clone().into_os_string()]) {
        assert_clean_error(&out, "cannot read Flax msgpack checkpoint");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("Format {"));
    }
    if let Some(out) = run("checkpoints", &[dir.join("missing.msgpack").into_os_string()]) {
        assert_clean_error(&out, "cannot open");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn finite_numbers_beyond_f32_are_errors() {
    if let Some(out) = run("nn_jit_forward", &os(&["--x", "[1, 2, 1e39]"])) {
        assert_clean_error(&out, "element 2 (1e39) is outside the float32 range");
    }
}

/// `flax_parity --emit` wrote `null` for NaN and ±inf outputs; Python's json writes `NaN`,
/// `Infinity`, `-Infinity` (and reads them back).
#[test]
fn emit_writes_non_finite_outputs_as_python_json_does() {
    let dir = std::env::temp_dir().join(format!("nnjit_emit_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = dir.join("cases.json");
    let x: Vec<String> = (0..8).map(|i| if i % 2 == 0 { "3e38".into() } else { "-3e38".into() }).collect();
    let case = format!(
        r#"{{"cases": [{{"model": "Mlp", "hidden": 16, "out": 4, "seed": 0, "x_shape": [2, 4], "x": [{}]}}]}}"#,
        x.join(", ")
    );
    std::fs::write(&cases, case).unwrap();
    let emitted = dir.join("out.json");
    let args = vec!["--cases".into(), cases.into_os_string(), "--emit".into(), emitted.clone().into_os_string()];
    if let Some(out) = run("flax_parity", &args) {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&emitted).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(text.contains("NaN") || text.contains("Infinity"), "the case overflows: {text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
