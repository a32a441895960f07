//! Quick probes of this machine for the roofline: single-core FMA peak and latency, cache
//! sizes and read bandwidth per cache level, and a median timer.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Iterations of `f` that take about `sample` (after running it for about that long, which
/// also warms caches and clocks).
pub fn calibrate(f: &mut dyn FnMut(), sample: Duration) -> u64 {
    let mut iters = 1u64;
    let per = loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        let e = t.elapsed();
        if e >= sample / 4 || iters >= 1 << 30 {
            break e.as_secs_f64() / iters as f64;
        }
        iters *= 4;
    };
    let t = Instant::now();
    while t.elapsed() < sample {
        f();
    }
    ((sample.as_secs_f64() / per.max(1e-12)) as u64).max(1)
}

/// Nanoseconds per call over one timed batch of `iters` calls, after an untimed eighth of
/// that (to re-warm caches another contender may have evicted).
pub fn sample_ns(f: &mut dyn FnMut(), iters: u64) -> f64 {
    for _ in 0..(iters / 8).max(1) {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / iters as f64
}

/// Nanoseconds per call of each of `fs` in each round, `[contender][round]`: one sample of
/// each per round, in turn, so that a slow phase of the machine (another process, clock
/// changes) hits every contender alike instead of whichever happened to run then.
pub fn interleaved_samples(fs: &mut [&mut dyn FnMut()], sample: Duration, rounds: usize) -> Vec<Vec<f64>> {
    let iters: Vec<u64> = fs.iter_mut().map(|f| calibrate(*f, sample)).collect();
    let mut times = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds.max(1) {
        for (i, f) in fs.iter_mut().enumerate() {
            times[i].push(sample_ns(*f, iters[i]));
        }
    }
    times
}

/// Each contender's time relative to contender 0, paired by round: the median over rounds of
/// `samples[i][r] / samples[0][r]`. A slow phase that hits one round's contenders alike
/// cancels, where a ratio of two medians would carry it whenever the two medians come from
/// different rounds.
///
/// ```
/// let s = vec![vec![100.0, 200.0, 110.0], vec![150.0, 290.0, 160.0]];
/// let r = nnjit_bench::probe::paired_ratios(&s);
/// assert_eq!(r[0], 1.0);
/// assert_eq!(r[1], 160.0 / 110.0); // the median of 1.5, 1.45 and 1.4545…
/// ```
#[must_use]
pub fn paired_ratios(samples: &[Vec<f64>]) -> Vec<f64> {
    let Some(base) = samples.first() else { return Vec::new() };
    samples.iter().map(|s| paired_ratio(s, base)).collect()
}

/// `a`'s time relative to `b`'s, paired by round: the median of `a[r] / b[r]`.
///
/// ```
/// assert_eq!(nnjit_bench::probe::paired_ratio(&[2.0, 9.0, 4.0], &[1.0, 3.0, 4.0]), 2.0);
/// ```
#[must_use]
pub fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    median(&a.iter().zip(b).map(|(a, b)| a / b).collect::<Vec<_>>())
}

/// The median of `v` (the upper one of an even count); NaN when `v` is empty.
///
/// ```
/// assert_eq!(nnjit_bench::probe::median(&[3.0, 1.0, 2.0]), 2.0);
/// ```
#[must_use]
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Data-cache sizes in bytes of one core: `[L1d, L2, L3]` (Linux sysfs; typical values
/// elsewhere).
pub fn cache_sizes() -> [usize; 3] {
    let mut out = [32 << 10, 1 << 20, 32 << 20];
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok().map(|s| s.trim().to_string());
        let (Some(level), Some(ty), Some(size)) = (read("level"), read("type"), read("size")) else {
            continue;
        };
        if ty == "Instruction" {
            continue;
        }
        let bytes = match size.strip_suffix('K') {
            Some(k) => k.parse::<usize>().ok().map(|k| k << 10),
            None => size.strip_suffix('M').and_then(|m| m.parse::<usize>().ok()).map(|m| m << 20),
        };
        if let (Ok(level), Some(bytes)) = (level.parse::<usize>(), bytes) {
            if (1..=3).contains(&level) {
                out[level - 1] = bytes;
            }
        }
    }
    out
}

/// Machine numbers for the roofline.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Single-core f32 FMA peak, flop/s (FMA = 2 flops).
    pub peak_flops: f64,
    /// Latency of one dependent f32 FMA, seconds.
    pub fma_latency: f64,
    /// `[L1d, L2, L3]` sizes in bytes.
    pub caches: [usize; 3],
    /// Read bandwidth in bytes/s with the data in L1, L2, L3 and DRAM.
    pub bandwidth: [f64; 4],
    /// Which instruction set the probes used.
    pub isa: &'static str,
}

impl Machine {
    /// Runs the probes (about a second).
    pub fn probe() -> Machine {
        let caches = cache_sizes();
        let (peak_flops, fma_latency, isa) = fma_probe();
        let sizes = [caches[0] / 2, caches[1] / 2, (caches[2] / 4).max(caches[1] * 2), (caches[2] * 8).max(256 << 20)];
        let bandwidth = sizes.map(read_bandwidth);
        Machine { peak_flops, fma_latency, caches, bandwidth, isa }
    }

    /// The cache level (0 = L1, .., 3 = DRAM) that `bytes` fit in.
    pub fn level_of(&self, bytes: f64) -> usize {
        self.caches.iter().position(|&c| bytes <= c as f64).unwrap_or(3)
    }

    /// Roofline bound in ns for a Dense problem: `max(flops / peak, bytes / bandwidth of the
    /// level W fits in)`.
    pub fn bound_ns(&self, p: &crate::Problem) -> f64 {
        let compute = p.flops() / self.peak_flops;
        let memory = p.bytes() / self.bandwidth[self.level_of(p.w_bytes())];
        compute.max(memory) * 1e9
    }

    /// Latency bound in ns of the contract's sequential FMA chain: every output needs `D`
    /// dependent FMAs, so no schedule finishes sooner than `D × latency`.
    pub fn chain_ns(&self, p: &crate::Problem) -> f64 {
        p.d as f64 * self.fma_latency * 1e9
    }
}

/// `(peak flop/s, FMA latency in s, isa name)`.
fn fma_probe() -> (f64, f64, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected.
            return unsafe { x86::probe512() };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA detected.
            return unsafe { x86::probe256() };
        }
    }
    portable_probe()
}

fn time_best(mut f: impl FnMut() -> f32) -> f64 {
    (0..9)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn portable_probe() -> (f64, f64, &'static str) {
    let iters = 20_000_000usize;
    let lat = time_best(|| {
        let mut a = black_box(1.0f32);
        for _ in 0..iters {
            a = a.mul_add(0.999, 0.001);
        }
        a
    }) / iters as f64;
    let thr = time_best(|| {
        let mut a = [black_box(1.0f32); 8];
        for _ in 0..iters / 8 {
            for v in a.iter_mut() {
                *v = v.mul_add(0.999, 0.001);
            }
        }
        a.iter().sum()
    });
    (2.0 * iters as f64 / thr, lat, "scalar")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::time_best;
    use core::arch::x86_64::*;

    const ITERS: usize = 10_000_000;

    #[target_feature(enable = "avx512f")]
    unsafe fn peak512() -> f32 {
        let m = _mm512_set1_ps(0.999);
        let c = _mm512_set1_ps(0.001);
        let mut a = [_mm512_set1_ps(std::hint::black_box(1.0)); 12];
        for _ in 0..ITERS {
            for v in a.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, c);
            }
        }
        a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn lat512() -> f32 {
        let m = _mm512_set1_ps(0.999);
        let c = _mm512_set1_ps(0.001);
        let mut a = _mm512_set1_ps(std::hint::black_box(1.0));
        for _ in 0..ITERS {
            a = _mm512_fmadd_ps(a, m, c);
        }
        _mm512_reduce_add_ps(a)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn peak256() -> f32 {
        let m = _mm256_set1_ps(0.999);
        let c = _mm256_set1_ps(0.001);
        let mut a = [_mm256_set1_ps(std::hint::black_box(1.0)); 12];
        for _ in 0..ITERS {
            for v in a.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, c);
            }
        }
        let mut out = [0.0f32; 8];
        let s = a.iter().fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn lat256() -> f32 {
        let m = _mm256_set1_ps(0.999);
        let c = _mm256_set1_ps(0.001);
        let mut a = _mm256_set1_ps(std::hint::black_box(1.0));
        for _ in 0..ITERS {
            a = _mm256_fmadd_ps(a, m, c);
        }
        _mm_cvtss_f32(_mm256_castps256_ps128(a))
    }

    /// # Safety
    /// AVX-512F available.
    pub(super) unsafe fn probe512() -> (f64, f64, &'static str) {
        // SAFETY: AVX-512F available (caller).
        let peak = time_best(|| unsafe { peak512() });
        // SAFETY: as above.
        let lat = time_best(|| unsafe { lat512() });
        (2.0 * 16.0 * 12.0 * ITERS as f64 / peak, lat / ITERS as f64, "avx512")
    }

    /// # Safety
    /// AVX2 and FMA available.
    pub(super) unsafe fn probe256() -> (f64, f64, &'static str) {
        // SAFETY: AVX2 and FMA available (caller).
        let peak = time_best(|| unsafe { peak256() });
        // SAFETY: as above.
        let lat = time_best(|| unsafe { lat256() });
        (2.0 * 8.0 * 12.0 * ITERS as f64 / peak, lat / ITERS as f64, "avx2")
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum256(v: &[f32]) -> f32 {
        let mut acc = [_mm256_setzero_ps(); 8];
        for c in v.chunks_exact(64) {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` has 64 floats, so 8 floats at 8·i are in bounds.
                *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(c.as_ptr().add(8 * i)) });
            }
        }
        let s = acc.iter().fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum512(v: &[f32]) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 8];
        for c in v.chunks_exact(128) {
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` has 128 floats, so 16 floats at 16·i are in bounds.
                *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(c.as_ptr().add(16 * i)) });
            }
        }
        let s = acc.iter().fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v));
        _mm512_reduce_add_ps(s)
    }
}

/// Read bandwidth (bytes/s) over a buffer of `bytes` (best of 15 trials of ~32 MiB read).
fn read_bandwidth(bytes: usize) -> f64 {
    let v = vec![1.0f32; (bytes / 4).max(128)];
    let sum = |v: &[f32]| -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F detected.
                return unsafe { x86::sum512(v) };
            }
            if is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 detected.
                return unsafe { x86::sum256(v) };
            }
        }
        v.chunks_exact(16).fold([0.0f32; 16], |mut a, c| {
            for (x, y) in a.iter_mut().zip(c) {
                *x += y;
            }
            a
        })[0]
    };
    black_box(sum(&v)); // warm
    let reps = ((32 << 20) / bytes.max(1)).clamp(1, 100_000);
    // Best of many short trials: robust against other processes on the machine.
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t = Instant::now();
        for _ in 0..reps {
            black_box(sum(black_box(&v)));
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    (v.len() * 4) as f64 / best
}
