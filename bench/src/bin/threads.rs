//! Large Dense products on one and two threads: nnjit's `parallel::apply_threads` (rows or,
//! for few rows, output columns split; bits unchanged) against the peers that can use
//! threads (faer `Par::rayon(2)`, gemm `Parallelism::Rayon(2)`, candle with
//! `RAYON_NUM_THREADS=2`).
//!
//! `cargo run --release -p nnjit-bench --bin threads [-- --quick] [--repeat K] [--shape NxDxF ...] [--nnjit] [--skip TEXT ...]`
//!
//! For each shape, every contender is verified (nnjit bit for bit against the reference,
//! peers within float32 rounding), then timed `K` times (default 3) with
//! `probe::interleaved_samples` — contenders interleaved, so a change of machine load hits
//! them alike. Prints the median over the passes (and the spread), each time relative to
//! nnjit on one thread and each 2-thread time relative to the same library on one thread
//! (both paired by round: the median over every round of every pass of the per-round
//! quotient), with the 1-minute load average before and after the shape; writes
//! `bench/results/threads.csv`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use nnjit::kernel::parallel::{apply_threads, choose_split, set_num_threads, Split};
use nnjit::kernel::reference::dense_reference;
use nnjit::kernel::{best_isa, Activation, DenseProblem, PackedDense};
use nnjit::nn::Module;
use nnjit_bench::max_rel_diff;
use nnjit_bench::probe::{interleaved_samples, median, paired_ratio};
use nnjit_bench::Problem;

/// The default shapes `(N, D, F)`: large GEMMs, then a batch-1 GEMV and a
/// batch of 8 whose 4 MiB of weights stream from L3 (all split by columns on 2 threads).
const SHAPES: [(usize, usize, usize); 6] =
    [(32, 256, 256), (64, 512, 512), (128, 1024, 1024), (256, 784, 128), (1, 1024, 1024), (8, 1024, 1024)];

const OURS_1T: &str = "nnjit PackedDense";

struct Contender {
    name: &'static str,
    /// The same library on one thread (for the speed-up column).
    base: &'static str,
    threads: usize,
    exact: bool,
    /// One forward; with `true`, returns `y` row-major.
    run: Box<dyn FnMut(bool) -> Option<Vec<f32>>>,
}

fn contender(
    name: &'static str,
    base: &'static str,
    threads: usize,
    exact: bool,
    run: impl FnMut(bool) -> Option<Vec<f32>> + 'static,
) -> Contender {
    Contender { name, base, threads, exact, run: Box::new(run) }
}

fn nnjit_contender(p: &Problem, threads: usize) -> Contender {
    let (n, d, f) = (p.n, p.d, p.f);
    let layer = PackedDense::new(best_isa(), &p.w, Some(&p.b), d, f).expect("pack");
    let x = p.x.clone();
    let mut y = vec![0.0f32; n * f];
    let name = if threads == 1 { OURS_1T } else { "nnjit apply_threads" };
    contender(name, OURS_1T, threads, true, move |out| {
        if threads == 1 {
            layer.apply(black_box(&x), n, &mut y, Activation::Identity).unwrap();
        } else {
            apply_threads(&layer, black_box(&x), n, &mut y, Activation::Identity, threads).unwrap();
        }
        black_box(&mut y);
        out.then(|| y.clone())
    })
}

/// The lifted module front door, `JitDense::apply` (parameters from `Variables`, output
/// allocated), with `set_num_threads(threads)`: what a model gets from `NNJIT_NUM_THREADS`.
fn module_contender(p: &Problem, threads: usize) -> Contender {
    let vars = nnjit_bench::variables(p);
    let x = nnjit::ndarray::Array2::from_shape_vec((p.n, p.d), p.x.clone()).expect("shape");
    let m = nnjit::nn::JitDense::new(p.f);
    let name = if threads == 1 { "nnjit JitDense.apply" } else { "nnjit JitDense.apply, 2 threads" };
    contender(name, "nnjit JitDense.apply", threads, true, move |out| {
        set_num_threads(threads);
        let y = m.apply(black_box(&vars), black_box(&x)).expect("apply");
        set_num_threads(1);
        let y = black_box(y);
        out.then(|| y.iter().copied().collect())
    })
}

fn faer_contender(p: &Problem, threads: usize) -> Contender {
    use faer::{linalg::matmul::matmul, Accum, Mat, Par};
    let (n, d, f) = (p.n, p.d, p.f);
    let x = Mat::<f32>::from_fn(n, d, |i, k| p.x[i * d + k]);
    let w = Mat::<f32>::from_fn(d, f, |k, j| p.w[k * f + j]);
    let b = p.b.clone();
    let mut y = Mat::<f32>::zeros(n, f);
    let par = if threads == 1 { Par::Seq } else { Par::rayon(threads) };
    let name = if threads == 1 { "faer matmul" } else { "faer matmul Par::rayon(2)" };
    contender(name, "faer matmul", threads, false, move |out| {
        for (j, &bj) in b.iter().enumerate() {
            y.col_mut(j).fill(bj);
        }
        matmul(&mut y, Accum::Add, black_box(&x), &w, 1.0, par);
        black_box(&mut y);
        out.then(|| (0..n).flat_map(|i| (0..f).map(move |j| (i, j))).map(|(i, j)| y[(i, j)]).collect())
    })
}

fn gemm_contender(p: &Problem, threads: usize) -> Contender {
    let (n, d, f) = (p.n, p.d, p.f);
    let (x, w, b) = (p.x.clone(), p.w.clone(), p.b.clone());
    let mut y = vec![0.0f32; n * f];
    let par = if threads == 1 { gemm::Parallelism::None } else { gemm::Parallelism::Rayon(threads) };
    let name = if threads == 1 { "gemm crate" } else { "gemm crate Rayon(2)" };
    contender(name, "gemm crate", threads, false, move |out| {
        nnjit_bench::gemm_forward(n, d, f, black_box(&x), &w, &b, &mut y, par);
        black_box(&mut y);
        out.then(|| y.clone())
    })
}

/// candle sizes its gemm call from `RAYON_NUM_THREADS` (set to 2 in `main`).
fn candle_contender(p: &Problem) -> Contender {
    use candle_core::{Device, Tensor};
    let dev = Device::Cpu;
    let x = Tensor::from_slice(&p.x, (p.n, p.d), &dev).unwrap();
    let w = Tensor::from_slice(&p.w, (p.d, p.f), &dev).unwrap();
    let b = Tensor::from_slice(&p.b, p.f, &dev).unwrap();
    contender("candle matmul + bias (2 thr)", "", 2, false, move |out| {
        let y = black_box(&x).matmul(&w).unwrap().broadcast_add(&b).unwrap();
        black_box(&y);
        out.then(|| y.flatten_all().unwrap().to_vec1::<f32>().unwrap())
    })
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) this process has used so far (Linux; NaN elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the `(comm)`: state is field 3, utime/stime are fields 14/15 (clock ticks).
    let Some(rest) = stat.rsplit_once(')').map(|r| r.1) else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

struct Row {
    shape: String,
    n: usize,
    d: usize,
    f: usize,
    name: &'static str,
    threads: usize,
    exact: bool,
    ns: f64,
    min: f64,
    max: f64,
    ratio: f64,
    speedup: f64,
    load_before: f64,
    load_after: f64,
    cores_used: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let repeat: usize = args
        .windows(2)
        .find(|w| w[0] == "--repeat")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(if quick { 1 } else { 3 })
        .max(1);
    // `--nnjit`: nnjit's contenders only (for tuning the split).
    let nnjit_only = args.iter().any(|a| a == "--nnjit");
    // `--skip TEXT` (repeatable): leaves out the contenders whose name contains TEXT.
    let skip: Vec<&str> = args.windows(2).filter(|w| w[0] == "--skip").map(|w| w[1].as_str()).collect();
    let only: Vec<&str> = args.windows(2).filter(|w| w[0] == "--shape").map(|w| w[1].as_str()).collect();
    // The global rayon pool (faer, gemm) and candle's gemm calls: two threads.
    std::env::set_var("RAYON_NUM_THREADS", "2");
    let (sample, samples) = if quick { (Duration::from_millis(5), 5) } else { (Duration::from_millis(20), 9) };

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "nnjit Dense on 1 and 2 threads — path {}, {cores} cores available, {repeat} passes of {samples} samples",
        best_isa()
    );
    println!("load average (1 min) at start: {:.2}", loadavg());
    println!();

    // `--shape NxDxF` picks shapes (any, not only the defaults).
    let parse = |s: &str| -> Option<(usize, usize, usize)> {
        let v: Vec<usize> = s.split('x').map(|t| t.parse().ok()).collect::<Option<_>>()?;
        (v.len() == 3).then(|| (v[0], v[1], v[2]))
    };
    let shapes: Vec<(usize, usize, usize)> =
        if only.is_empty() { SHAPES.to_vec() } else { only.iter().filter_map(|s| parse(s)).collect() };
    let mut rows: Vec<Row> = Vec::new();
    for &(n, d, f) in &shapes {
        let p = Problem::new(n, d, f);
        let mut cs = vec![
            nnjit_contender(&p, 1),
            nnjit_contender(&p, 2),
            module_contender(&p, 1),
            module_contender(&p, 2),
            faer_contender(&p, 1),
            faer_contender(&p, 2),
            gemm_contender(&p, 1),
            gemm_contender(&p, 2),
            candle_contender(&p),
        ];
        if nnjit_only {
            cs.truncate(4);
        }
        cs.retain(|c| !skip.iter().any(|s| c.name.contains(s)));
        let mut want = vec![0.0f32; n * f];
        dense_reference(
            &DenseProblem { x: &p.x, w: &p.w, bias: Some(&p.b), n, d, f, act: Activation::Identity },
            &mut want,
        )
        .expect("reference");
        for c in cs.iter_mut() {
            let got = (c.run)(true).expect("output");
            let ok = if c.exact {
                got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits())
            } else {
                max_rel_diff(&got, &want) <= 1e-3
            };
            if !ok {
                eprintln!("verification failed: {} on {}", c.name, p.label());
                std::process::exit(1);
            }
        }

        let load_before = loadavg();
        let (cpu0, wall0) = (cpu_seconds(), std::time::Instant::now());
        // Per contender: each pass's median, and every round of every pass (for paired ratios).
        let mut passes: Vec<Vec<f64>> = vec![Vec::new(); cs.len()];
        let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); cs.len()];
        for _ in 0..repeat {
            let mut units: Vec<Box<dyn FnMut() + '_>> = cs
                .iter_mut()
                .map(|c| {
                    let run = &mut c.run;
                    Box::new(move || {
                        black_box(run(false));
                    }) as Box<dyn FnMut() + '_>
                })
                .collect();
            let mut refs: Vec<&mut dyn FnMut()> = units.iter_mut().map(|u| &mut **u as &mut dyn FnMut()).collect();
            for (i, s) in interleaved_samples(&mut refs, sample, samples).into_iter().enumerate() {
                passes[i].push(median(&s));
                rounds[i].extend(s);
            }
        }
        let load_after = loadavg();
        // Cores this process had on average: near 1 + (share of time in 2-thread
        // contenders) when it had two; near 1 when another process held the second core.
        let cores_used = (cpu_seconds() - cpu0) / wall0.elapsed().as_secs_f64();

        let meds: Vec<f64> = passes.iter().map(|v| median(v)).collect();
        let at = |name: &str| cs.iter().position(|c| c.name == name);
        let ours = at(OURS_1T).map_or(&[][..], |i| rounds[i].as_slice());
        println!(
            "{:>14}  ({} FMAs; nnjit on 2 threads: {})   load {load_before:.2} -> {load_after:.2}, \
             cores used {cores_used:.2}",
            p.label(),
            n * d * f,
            match choose_split(n, d, f, 2) {
                Split::Serial => "not split".to_string(),
                Split::Rows(t) => format!("rows split into {t} threads"),
                Split::Columns(t) => format!("columns split into {t} threads"),
            }
        );
        println!(
            "    {:<30} {:>3} {:>12} {:>19} {:>8} {:>10}",
            "contender", "thr", "median ns", "passes min..max", "/ ours1", "1thr/this"
        );
        for (i, c) in cs.iter().enumerate() {
            let (min, max) = passes[i].iter().fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
            // Paired by round: a slower phase of the machine hits both sides alike.
            let ratio = paired_ratio(&rounds[i], ours);
            let base = at(c.base).filter(|_| c.threads > 1);
            let speedup = base.map_or(f64::NAN, |b| paired_ratio(&rounds[b], &rounds[i]));
            println!(
                "    {:<30} {:>3} {:>12.0} {:>9.0}..{:<9.0} {:>7.2}x {:>9}{}",
                c.name,
                c.threads,
                meds[i],
                min,
                max,
                ratio,
                if speedup.is_nan() { "-".to_string() } else { format!("{speedup:.2}x") },
                if c.exact { "" } else { "   (not Flax-exact)" }
            );
            rows.push(Row {
                shape: p.label(),
                n,
                d,
                f,
                name: c.name,
                threads: c.threads,
                exact: c.exact,
                ns: meds[i],
                min,
                max,
                ratio,
                speedup,
                load_before,
                load_after,
                cores_used,
            });
        }
        println!();
    }

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let mut csv = String::from(
        "shape,n,d,f,contender,threads,flax_exact,median_ns,pass_min_ns,pass_max_ns,ratio_to_nnjit_1t,\
         speedup_vs_same_lib_1t,load1_before,load1_after,cores_used\n",
    );
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},\"{}\",{},{},{:.0},{:.0},{:.0},{:.3},{},{:.2},{:.2},{:.2}",
            r.shape,
            r.n,
            r.d,
            r.f,
            r.name,
            r.threads,
            r.exact,
            r.ns,
            r.min,
            r.max,
            r.ratio,
            if r.speedup.is_nan() { String::new() } else { format!("{:.3}", r.speedup) },
            r.load_before,
            r.load_after,
            r.cores_used
        );
    }
    let path = dir.join("threads.csv");
    match std::fs::write(&path, csv) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
