//! Dense forward: nnjit against its peers, with this machine's roofline.
//!
//! `cargo run --release -p nnjit-bench --bin report [-- --quick] [--shape NxDxF ...]`
//!
//! Probes the single-core FMA peak and the cache bandwidths, times every contender of
//! `nnjit_bench::contenders` at every shape (the median of interleaved samples), prints a
//! table with each time relative to nnjit's `PackedDense`, to the best exact lifted entry (the faster
//! of `PackedDense` and, where it is instantiated, `FixedDense`, named in column
//! `best_lifted_entry`) and to the roofline bound, then a summary of the best lifted entry
//! against the best peer library per shape, and writes `bench/results/dense.csv` and
//! `bench/results/dense.svg`. Every row is kept; the best-lifted columns only add a view.
//! Ratios between contenders are paired by round (the median of the per-round quotients), so
//! that a slower phase of a shared machine hits both sides of a ratio alike; ratios to the
//! roofline bound divide the median.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use nnjit_bench::chart::{Bar, BarChart, Group, Layout, Series};
use nnjit_bench::probe::{interleaved_samples, median, paired_ratio, Machine};
use nnjit_bench::{contenders, is_peer, single_threaded, verify, Problem, LIFTED, OURS, SHAPES};

struct Row {
    shape: String,
    n: usize,
    d: usize,
    f: usize,
    name: String,
    exact: bool,
    ns: f64,
    /// Nanoseconds per forward in each round (what the paired ratios are taken from).
    samples: Vec<f64>,
    ratio: f64,
    /// The best exact lifted entry at this shape (see the module docs).
    best_lifted: String,
    ratio_best_lifted: f64,
    bound_ns: f64,
    chain_ns: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--shape NxDxF` (repeatable) restricts the run to those shapes.
    let only: Vec<&str> = args.windows(2).filter(|w| w[0] == "--shape").map(|w| w[1].as_str()).collect();
    single_threaded();
    let (sample, samples) = if quick { (Duration::from_millis(5), 5) } else { (Duration::from_millis(20), 11) };

    let m = Machine::probe();
    println!("nnjit Dense benchmark — single core, nnjit path: {}", nnjit::kernel::best_isa());
    println!(
        "machine: FMA peak {:.1} GFLOP/s ({}), FMA latency {:.2} ns; caches L1 {} KiB, L2 {} KiB, L3 {} MiB",
        m.peak_flops / 1e9,
        m.isa,
        m.fma_latency * 1e9,
        m.caches[0] >> 10,
        m.caches[1] >> 10,
        m.caches[2] >> 20
    );
    println!(
        "read bandwidth GB/s: L1 {:.0}, L2 {:.0}, L3 {:.0}, DRAM {:.0}",
        m.bandwidth[0] / 1e9,
        m.bandwidth[1] / 1e9,
        m.bandwidth[2] / 1e9,
        m.bandwidth[3] / 1e9
    );
    println!();

    let mut rows: Vec<Row> = Vec::new();
    for &(n, d, f) in &SHAPES {
        let p = Problem::new(n, d, f);
        if !only.is_empty() && !only.contains(&p.label().as_str()) {
            continue;
        }
        let mut cs = contenders(&p, true);
        if let Err(e) = verify(&p, &mut cs) {
            eprintln!("verification failed: {e}");
            std::process::exit(1);
        }
        let bound = m.bound_ns(&p);
        let chain = m.chain_ns(&p);
        let level = ["L1", "L2", "L3", "DRAM"][m.level_of(p.w_bytes())];
        println!(
            "{:>14}  W {:>7.1} KiB in {level:<4}  roofline bound {:>10.1} ns   FMA-chain bound {:>8.1} ns",
            p.label(),
            p.w_bytes() / 1024.0,
            bound,
            chain
        );
        let reps: Vec<u64> = cs.iter_mut().map(|c| c.batch()).collect();
        let mut runs: Vec<Box<dyn FnMut() + '_>> =
            cs.iter_mut().zip(&reps).map(|(c, &r)| Box::new(move || c.run_batch(r)) as Box<dyn FnMut()>).collect();
        let mut refs: Vec<&mut dyn FnMut()> = runs.iter_mut().map(|r| &mut **r as &mut dyn FnMut()).collect();
        // Per contender, nanoseconds per forward in each round.
        let per_round: Vec<Vec<f64>> = interleaved_samples(&mut refs, sample, samples)
            .into_iter()
            .zip(&reps)
            .map(|(s, &r)| s.into_iter().map(|ns| ns / r as f64).collect())
            .collect();
        drop(refs);
        drop(runs);
        let timed: Vec<(String, bool, f64, Vec<f64>)> =
            cs.iter().zip(per_round).map(|(c, s)| (c.name.clone(), c.exact, median(&s), s)).collect();
        let ours = timed.iter().find(|t| t.0 == OURS).map_or(&[][..], |t| t.3.as_slice());
        let (best_name, best_ns, best) = timed
            .iter()
            .filter(|t| LIFTED.contains(&t.0.as_str()))
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .map_or((OURS.to_string(), median(ours), ours), |t| (t.0.clone(), t.2, t.3.as_slice()));
        println!("    best exact lifted entry: {best_name} ({best_ns:.1} ns)");
        println!(
            "    {:<34} {:>12} {:>9} {:>12} {:>9}",
            "contender", "median ns", "/ packed", "/ best lift", "/ bound"
        );
        for (name, exact, ns, samples) in &timed {
            let (ratio, ratio_best_lifted) = (paired_ratio(samples, ours), paired_ratio(samples, best));
            println!(
                "    {:<34} {:>12.2} {:>8.2}x {:>11.2}x {:>8.2}x{}",
                name,
                ns,
                ratio,
                ratio_best_lifted,
                ns / bound,
                if *exact { "" } else { "   (not Flax-exact)" }
            );
            rows.push(Row {
                shape: p.label(),
                n,
                d,
                f,
                name: name.clone(),
                exact: *exact,
                ns: *ns,
                samples: samples.clone(),
                ratio,
                best_lifted: best_name.clone(),
                ratio_best_lifted,
                bound_ns: bound,
                chain_ns: chain,
            });
        }
        println!();
    }

    summary(&rows);

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let mut csv = String::from(
        "shape,n,d,f,contender,flax_exact,median_ns,ratio_to_nnjit,best_lifted_entry,ratio_to_best_lifted,bound_ns,ratio_to_bound,chain_bound_ns\n",
    );
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},\"{}\",{},{:.2},{:.3},\"{}\",{:.3},{:.1},{:.3},{:.1}",
            r.shape,
            r.n,
            r.d,
            r.f,
            r.name,
            r.exact,
            r.ns,
            r.ratio,
            r.best_lifted,
            r.ratio_best_lifted,
            r.bound_ns,
            r.ns / r.bound_ns,
            r.chain_ns
        );
    }
    write(&dir.join("dense.csv"), &csv);
    write(&dir.join("dense.svg"), &svg(&rows, &m));
}

/// Per shape: nnjit's `PackedDense`, the best exact lifted entry (named), the best peer
/// library, and the best lifted entry's time relative to that peer, paired by round (the goal
/// is at most 0.9×).
fn summary(rows: &[Row]) {
    let mut shapes: Vec<&str> = Vec::new();
    for r in rows {
        if !shapes.contains(&r.shape.as_str()) {
            shapes.push(&r.shape);
        }
    }
    println!("summary: best exact lifted entry against the best peer library (goal: ours / peer <= 0.90)");
    println!(
        "    {:>14} {:>12} {:>20} {:>12} {:>28} {:>12} {:>12}",
        "shape", "packed ns", "best lifted entry", "ns", "best peer", "ns", "ours / peer"
    );
    for shape in shapes {
        let at: Vec<&Row> = rows.iter().filter(|r| r.shape == shape).collect();
        let packed = at.iter().find(|r| r.name == OURS).map_or(f64::NAN, |r| r.ns);
        let Some(best) = at.iter().filter(|r| LIFTED.contains(&r.name.as_str())).min_by(|a, b| a.ns.total_cmp(&b.ns))
        else {
            continue;
        };
        let peer = at.iter().filter(|r| is_peer(&r.name)).min_by(|a, b| a.ns.total_cmp(&b.ns));
        let (peer_name, peer_ns, vs_peer) = peer
            .map_or(("-", f64::NAN, f64::NAN), |p| (p.name.as_str(), p.ns, paired_ratio(&best.samples, &p.samples)));
        let short = best.name.strip_prefix("nnjit ").unwrap_or(&best.name);
        println!(
            "    {:>14} {:>12.2} {:>20} {:>12.2} {:>28} {:>12.2} {:>11.2}x",
            shape, packed, short, best.ns, peer_name, peer_ns, vs_peer
        );
    }
    println!();
}

fn write(path: &std::path::Path, s: &str) {
    match std::fs::write(path, s) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// Grouped bars per shape: each contender's median time relative to the roofline bound
/// (log scale), so 1× is the machine's limit.
fn svg(rows: &[Row], m: &Machine) -> String {
    const PALETTE: [&str; 12] = [
        "#1b9e77", "#66c2a5", "#0d5c46", "#a6d854", "#d95f02", "#7570b3", "#e7298a", "#e6ab02", "#a6761d", "#666666",
        "#1f78b4", "#fb9a99",
    ];
    let mut names: Vec<&str> = Vec::new();
    let mut shapes: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
        if !shapes.contains(&r.shape.as_str()) {
            shapes.push(&r.shape);
        }
    }
    let groups = shapes
        .iter()
        .map(|&shape| Group {
            label: shape.to_string(),
            bars: names
                .iter()
                .map(|&name| {
                    let r = rows.iter().find(|r| r.shape == shape && r.name == name)?;
                    let ratio = r.ns / r.bound_ns;
                    let title = format!("{name} {shape}: {:.1} ns, {ratio:.2}× bound, {:.2}× nnjit", r.ns, r.ratio);
                    Some(Bar { ratio, title })
                })
                .collect(),
        })
        .collect();
    BarChart {
        title: "Dense forward y = xW + b, single core: time / roofline bound (log scale; lower is better)".into(),
        subtitle: format!(
            "peak {:.0} GFLOP/s ({}), bandwidth L1/L2/L3/DRAM {:.0}/{:.0}/{:.0}/{:.0} GB/s; nnjit path {}",
            m.peak_flops / 1e9,
            m.isa,
            m.bandwidth[0] / 1e9,
            m.bandwidth[1] / 1e9,
            m.bandwidth[2] / 1e9,
            m.bandwidth[3] / 1e9,
            nnjit::kernel::best_isa()
        ),
        reference: "roofline bound".into(),
        series: names
            .iter()
            .enumerate()
            .map(|(i, name)| Series { label: name.to_string(), color: PALETTE[i % PALETTE.len()] })
            .collect(),
        groups,
        sections: Vec::new(),
        layout: Layout {
            bar: 9.0,
            group_gap: 14.0,
            group_inset: 7.0,
            left: 70.0,
            top: 60.0,
            plot_h: 360.0,
            subtitle_y: 40.0,
            right: 110.0,
            min_width: 0.0,
            below: 90.0,
            group_label_dy: 16.0,
            legend_cols: 3,
            legend_col_w: 300.0,
            legend_dy: 44.0,
        },
    }
    .svg()
}
