//! `nn_jit_forward(seed, x, features)`: build the jitted Dense, init with `PRNGKey(seed)` and
//! `x`, apply, print the output. `--help` lists the options.
//!
//!     cargo run --release --example nn_jit_forward -- --seed 0 --features 4 --x '[1,2,3]'

fn main() {
    match nnjit_suite::cli::utf8_args(std::env::args_os().skip(1)).and_then(|args| nnjit_suite::cli::run(&args)) {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
