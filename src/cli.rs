//! The `nn_jit_forward` example's command line, as a library so it is tested and fuzzed
//! in-process. Every failure is an `Err(String)` (one line for stderr), never a panic.

use nnjit::{nn_jit_forward_with, ForwardOptions};

use crate::json;

/// Usage text of `examples/nn_jit_forward.rs`.
pub const USAGE: &str = "usage: nn_jit_forward [--seed <i64>] [--features <usize>] [--x <JSON 1-D or 2-D array>] \
[--unjitted] [--flax-jit-rngs] [--json]
  Builds nn.jit(nn.Dense)(features), inits it with PRNGKey(seed) and x, applies it, prints the output.
  defaults: --seed 0 --features 4 --x [1,2,3]
  --unjitted       use the plain Dense instead of the lifted JitDense (same numbers)
  --flax-jit-rngs  init as Flax's nn.jit does (a #[nn::jit(flax_jit)] Dense: forked RNGs, jitted numerics)
  --json           print {\"output\", \"output_shape\", \"kernel\", \"bias\"} (floats round-trip exactly)";

/// The longest argument accepted, in bytes (1 MiB; Linux itself passes at most 128 KiB per
/// argument): a longer `--x` is an error, not a parse.
///
/// ```
/// use nnjit_suite::cli::{parse_args, MAX_ARG_BYTES};
/// let long = format!("[{}0]", "0,".repeat(MAX_ARG_BYTES / 2));
/// assert!(parse_args(&["--x", &long]).unwrap_err().contains("more than the limit"));
/// ```
pub const MAX_ARG_BYTES: usize = 1 << 20;

/// The program's arguments (without its name) as UTF-8 strings: an argument that is not valid
/// UTF-8 (`$'\xff'` in a shell) is a one-line error naming it, where `std::env::args()` panics.
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::ffi::OsStringExt;
/// let args = [std::ffi::OsString::from("--seed"), std::ffi::OsString::from_vec(vec![0xff])];
/// let err = nnjit_suite::cli::utf8_args(args).unwrap_err();
/// assert_eq!(err, "argument 2 is not valid UTF-8: \"\\xFF\"");
/// # }
/// assert_eq!(nnjit_suite::cli::utf8_args(["--json".into()]), Ok(vec!["--json".to_string()]));
/// ```
pub fn utf8_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Vec<String>, String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| a.into_string().map_err(|a| format!("argument {} is not valid UTF-8: {a:?}", i + 1)))
        .collect()
}

/// Parsed arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// `--seed`.
    pub seed: i64,
    /// `--features`.
    pub features: usize,
    /// Shape of `--x`.
    pub x_shape: Vec<usize>,
    /// Values of `--x`, row-major.
    pub x: Vec<f32>,
    /// `--unjitted`, `--flax-jit-rngs`.
    pub options: ForwardOptions,
    /// `--json`.
    pub json: bool,
    /// `--help`.
    pub help: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            seed: 0,
            features: 4,
            x_shape: vec![3],
            x: vec![1.0, 2.0, 3.0],
            options: ForwardOptions::default(),
            json: false,
            help: false,
        }
    }
}

/// Parses the arguments (without the program name).
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = argv.iter().map(AsRef::as_ref);
    if let Some((i, long)) = argv.iter().map(AsRef::as_ref).enumerate().find(|(_, a)| a.len() > MAX_ARG_BYTES) {
        return Err(format!("argument {} has {} bytes, more than the limit of {MAX_ARG_BYTES}", i + 1, long.len()));
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().map(str::to_string).ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "--seed" => {
                let v = value("--seed")?;
                let wide: i128 = v.trim().parse().map_err(|_| format!("--seed must be an integer, got {v:?}"))?;
                a.seed = i64::try_from(wide).map_err(|_| {
                    format!("--seed {wide} is outside the int64 range (JAX raises OverflowError for it)")
                })?;
            }
            "--features" => {
                let v = value("--features")?;
                a.features =
                    v.trim().parse().map_err(|_| format!("--features must be a positive integer, got {v:?}"))?;
                if a.features == 0 {
                    return Err("--features must be at least 1".into());
                }
            }
            "--x" => {
                let v = value("--x")?;
                let (shape, xs) = json::parse_matrix(&v).map_err(|e| format!("--x: {e}"))?;
                a.x_shape = shape;
                a.x = xs;
            }
            "--unjitted" if inline.is_none() => a.options.unjitted = true,
            "--flax-jit-rngs" if inline.is_none() => a.options.flax_jit_rngs = true,
            "--json" if inline.is_none() => a.json = true,
            "--help" | "-h" if inline.is_none() => a.help = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(a)
}

/// Runs the example: returns what it prints on stdout, or the one-line error for stderr.
pub fn run<S: AsRef<str>>(argv: &[S]) -> Result<String, String> {
    let a = parse_args(argv)?;
    if a.help {
        return Ok(USAGE.to_string());
    }
    let x = nnjit::ndarray::ArrayD::from_shape_vec(nnjit::ndarray::IxDyn(&a.x_shape), a.x.clone())
        .map_err(|e| format!("--x: {e}"))?;
    let r = nn_jit_forward_with(a.seed, &x, a.features, a.options).map_err(|e| e.to_string())?;
    if a.json {
        return Ok(format!(
            "{{\"output\": {}, \"output_shape\": {}, \"kernel\": {}, \"bias\": {}}}",
            json::floats(r.output.iter()),
            json::ints(r.output.shape()),
            json::floats(r.kernel.iter()),
            json::floats(r.bias.iter()),
        ));
    }
    let which = if a.options.unjitted { "plain nn.Dense" } else { "lifted JitDense" };
    let params = if a.options.flax_jit_rngs { "Flax nn.jit RNG derivation" } else { "plain nn.Dense RNG derivation" };
    let vals: Vec<String> = r.output.iter().map(|v| format!("{v}")).collect();
    Ok(format!(
        "nn_jit_forward(seed={}, x shape {:?}, features={}) [{which}, {params}]\noutput {:?}: [{}]",
        a.seed,
        a.x_shape,
        a.features,
        r.output.shape(),
        vals.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let a = parse_args::<&str>(&[]).unwrap();
        assert_eq!(a, Args::default());
        let a = parse_args(&["--seed", "-5", "--features=7", "--x", "[[1,2],[3,4]]", "--json", "--unjitted"]).unwrap();
        assert_eq!(
            (a.seed, a.features, a.x_shape.clone(), a.json, a.options.unjitted),
            (-5, 7, vec![2, 2], true, true)
        );
        let a = parse_args(&["--seed", "9223372036854775807"]).unwrap();
        assert_eq!(a.seed, i64::MAX);
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            &["--seed"][..],
            &["--seed", "9223372036854775808"],
            &["--seed", "1.5"],
            &["--features", "0"],
            &["--features", "-1"],
            &["--x", "[]"],
            &["--x", "[[1],[1,2]]"],
            &["--bogus"],
            &["--json=1"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
        assert!(run(&["--features", "100000000000"]).is_err());
        let huge = format!("[{}1]", "1,".repeat(MAX_ARG_BYTES));
        assert!(parse_args(&["--x", &huge]).is_err_and(|e| e.contains("more than the limit")));
    }

    /// Issue 14.7: a finite number outside float32's range is a typing mistake, reported on one
    /// line naming the element, not an infinite input.
    #[test]
    fn out_of_range_numbers_are_errors() {
        let e = parse_args(&["--x", "[1, 1e39]"]).unwrap_err();
        assert_eq!(e, "--x: element 1 (1e39) is outside the float32 range (about ±3.4e38)");
        let e = parse_args(&["--x", "[[1, 2], [-4e38, 0]]"]).unwrap_err();
        assert!(e.contains("element [1][0]") && !e.contains('\n'), "{e}");
        // Explicit infinities and the float32 extremes are inputs.
        assert!(parse_args(&["--x", "[Infinity, -3.4028235e38, 1e-50]"]).is_ok());
    }

    #[test]
    fn prints_flax_numbers() {
        let out = run(&["--json", "--flax-jit-rngs"]).unwrap();
        assert!(out.contains("-1.2027218"), "{out}");
        let out = run::<&str>(&[]).unwrap();
        assert!(out.contains("3.0442703"), "{out}");
    }
}
