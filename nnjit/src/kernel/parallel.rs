//! Multithreaded Dense applies that split the *outputs* only.
//!
//! [`apply_threads`] cuts the rows of `x` (and of `y`) into contiguous blocks and runs
//! [`PackedDense::apply`] on each block, on the calling thread and the workers of a small
//! persistent pool (plain `std` threads, started once; no dependency). Every output's FMA chain stays whole on one thread, in the order of
//! the [module contract](super), so the bits are those of the single-threaded call and of
//! [`reference::dense_reference`](super::reference::dense_reference) — for any number of
//! threads.
//!
//! Waking a worker costs microseconds, more than small products take, so
//! [`threads_used`] keeps a problem on the calling thread unless every thread gets at least
//! [`MIN_MACS_PER_THREAD`] multiply-adds and at least [`ROW_BLOCK`] rows. Block boundaries
//! are multiples of [`ROW_BLOCK`] (the register tile height of the SIMD paths) where
//! possible, so a split adds no partial row tiles.

use std::sync::{Mutex, PoisonError};

use super::{check_len, pool, Activation, PackedDense};
use crate::error::Result;

/// Multiply-adds (`n·d·f` divided by the thread count) below which one more thread does
/// not pay for its wake-up: smaller problems stay on fewer threads (down to the caller alone).
///
/// Measured on a 2-core AMD EPYC VM (AVX-512, `bench/src/bin/threads.rs --nnjit --shape ..`)
/// with the persistent pool: `12×128×128` (2·10⁵ FMAs, 3.4 µs) gained only 1.12× on two
/// threads, `12×256×256` (7.9·10⁵) 1.70×, `24×256×256` 1.82×. (With a thread started per
/// call, ~27 µs, the break-even was ~4·10⁶ FMAs per thread.)
///
/// ```
/// use nnjit::kernel::parallel::{threads_used, MIN_MACS_PER_THREAD};
/// assert_eq!(threads_used(12, 128, 128, 2), 1); // 2·10⁵ FMAs: one thread
/// assert!(12 * 128 * 128 < 2 * MIN_MACS_PER_THREAD);
/// assert_eq!(threads_used(32, 256, 256, 2), 2);
/// ```
pub const MIN_MACS_PER_THREAD: usize = 1 << 17;

/// Rows per register tile of the SIMD paths; row blocks are multiples of it where possible,
/// and each thread gets at least this many rows.
///
/// ```
/// use nnjit::kernel::parallel::{threads_used, ROW_BLOCK};
/// assert_eq!(threads_used(ROW_BLOCK, 4096, 4096, 2), 1); // one row block: not split
/// ```
pub const ROW_BLOCK: usize = 6;

/// Row blocks per thread: more blocks than threads, handed out from a shared counter, so
/// that the calling thread (which starts at once) does more of the work while a worker wakes
/// up, and a worker the OS delays leaves its blocks to the others.
const BLOCKS_PER_THREAD: usize = 2;

/// How many threads (the caller included) [`apply_threads`] uses for an `(n, d) · (d, f)`
/// problem when allowed up to `threads`: at most `threads` (0 counts as 1) and at most one per
/// [`ROW_BLOCK`] rows, and only as many as get [`MIN_MACS_PER_THREAD`] multiply-adds each.
///
/// ```
/// use nnjit::kernel::parallel::threads_used;
/// assert_eq!(threads_used(128, 1024, 1024, 2), 2); // a large GEMM: split
/// assert_eq!(threads_used(128, 1024, 1024, 0), 1); // 0 and 1 mean the calling thread
/// assert_eq!(threads_used(1, 4096, 4096, 8), 1); // one row cannot be split
/// assert_eq!(threads_used(8, 16, 16, 8), 1); // too small to be worth a thread
/// ```
pub fn threads_used(n: usize, d: usize, f: usize, threads: usize) -> usize {
    let macs = (n as u128).saturating_mul(d as u128).saturating_mul(f as u128);
    let by_work = macs / MIN_MACS_PER_THREAD as u128;
    let by_rows = (n / ROW_BLOCK) as u128;
    threads.min(by_work.min(by_rows).try_into().unwrap_or(usize::MAX)).max(1)
}

/// `y = act(x·W + b)` for `n` rows, like [`PackedDense::apply`], on up to `threads` threads
/// (the calling thread included).
///
/// The rows are split into [`threads_used`] contiguous blocks, one per thread; the
/// contraction is never split, so `y` has exactly the bits of `layer.apply(x, n, y, act)`
/// whatever `threads` is. Problems too small to gain from threads run on the calling thread
/// only (see [`MIN_MACS_PER_THREAD`]). If the system cannot start a thread, the calling
/// thread computes its blocks.
///
/// Allocates nothing but the threads' stacks and a few words. Errors
/// ([`Error::InvalidArgument`](crate::Error::InvalidArgument)) only on length mismatches;
/// never panics.
///
/// ```
/// use nnjit::kernel::{best_isa, parallel::apply_threads, Activation, PackedDense};
/// let (n, d, f) = (256, 128, 128);
/// let x: Vec<f32> = (0..n * d).map(|i| (i % 7) as f32 - 3.0).collect();
/// let w: Vec<f32> = (0..d * f).map(|i| (i % 5) as f32 * 0.25).collect();
/// let layer = PackedDense::new(best_isa(), &w, Some(&vec![0.5; f]), d, f)?;
///
/// let mut y1 = vec![0.0f32; n * f];
/// layer.apply(&x, n, &mut y1, Activation::Relu)?;
/// let mut y2 = vec![0.0f32; n * f];
/// apply_threads(&layer, &x, n, &mut y2, Activation::Relu, 2)?; // two threads
/// assert_eq!(y1, y2); // the same bits
/// assert!(apply_threads(&layer, &x[1..], n, &mut y2, Activation::Relu, 2).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn apply_threads(
    layer: &PackedDense,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    act: Activation,
    threads: usize,
) -> Result<()> {
    let t = threads_used(n, layer.d(), layer.f(), threads);
    apply_split(layer, x, n, y, act, t)
}

/// [`apply_threads`] on exactly `t` threads (fewer if `n` has fewer rows), whatever the size
/// of the problem: up to [`BLOCKS_PER_THREAD`]`·t` row blocks in a shared queue.
pub(crate) fn apply_split(
    layer: &PackedDense,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    act: Activation,
    t: usize,
) -> Result<()> {
    let (d, f) = (layer.d(), layer.f());
    check_len("x", x.len(), n, d)?;
    check_len("y", y.len(), n, f)?;
    let t = t.min(n);
    if t <= 1 || d == 0 || f == 0 {
        return layer.apply(x, n, y, act);
    }
    let nb = t.saturating_mul(BLOCKS_PER_THREAD).min(n.div_ceil(ROW_BLOCK)).max(t);
    // Block boundaries: i·n/nb rounded to the nearest multiple of ROW_BLOCK (so every block
    // but the last is whole register tiles), computed without overflow.
    let bound = |i: usize| -> usize {
        let (i, n, nb, rb) = (i as u128, n as u128, nb as u128, ROW_BLOCK as u128);
        let r = ((i * n + nb * rb / 2) / (nb * rb)) * rb;
        r.min(n) as usize
    };
    let mut blocks: Vec<Block<'_>> = Vec::with_capacity(nb);
    let (mut xr, mut yr) = (x, y);
    let mut start = 0;
    for i in 1..=nb {
        let end = if i == nb { n } else { bound(i) };
        if end > start {
            let rows = end - start;
            let (xb, xrest) = xr.split_at(rows * d);
            let (yb, yrest) = std::mem::take(&mut yr).split_at_mut(rows * f);
            blocks.push((xb, yb, rows));
            (xr, yr) = (xrest, yrest);
            start = end;
        }
    }
    let helpers = blocks.len().min(t) - 1;
    let blocks: Vec<Mutex<Option<Block<'_>>>> = blocks.into_iter().map(|b| Mutex::new(Some(b))).collect();
    let first_error = Mutex::new(Ok(()));
    // Each task computes one row block; the calling thread takes blocks too, so a busy or
    // missing worker leaves its blocks to the others.
    pool::run(blocks.len(), helpers, &|i| {
        let block = blocks[i].lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((xb, yb, rows)) = block {
            if let Err(e) = layer.apply(xb, rows, yb, act) {
                let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
                if first.is_ok() {
                    *first = Err(e);
                }
            }
        }
    });
    first_error.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Threads in nnjit's worker pool (started on first use: the available cores minus one; the
/// calling thread is the other). [`apply_threads`] uses at most this many plus the caller.
///
/// ```
/// let workers = nnjit::kernel::parallel::pool_workers();
/// assert!(workers < std::thread::available_parallelism().map_or(1, |n| n.get()).max(1));
/// ```
pub fn pool_workers() -> usize {
    pool::workers()
}

/// One row block: input rows, output rows, row count.
type Block<'a> = (&'a [f32], &'a mut [f32], usize);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::reference::dense_reference;
    use crate::kernel::Isa;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        // Values over many binades and of both signs, so that any reordering changes bits.
        let mut s = seed.wrapping_mul(0x9E37_79B9) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let m = (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                m * (2.0f32).powi((s % 16) as i32 - 8)
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every split of every shape, on every path: the bits of one thread and of the reference.
    #[test]
    fn splits_keep_the_bits() {
        let shapes = [(2, 3, 5), (7, 16, 17), (13, 33, 65), (32, 64, 40), (50, 129, 31), (97, 20, 130)];
        for (si, &(n, d, f)) in shapes.iter().enumerate() {
            let x = data(n * d, 3 * si as u32 + 1);
            let w = data(d * f, 3 * si as u32 + 2);
            let b = data(f, 3 * si as u32 + 3);
            for (bias, act) in [(true, Activation::Identity), (true, Activation::Relu), (false, Activation::Identity)] {
                let b = bias.then_some(&b[..]);
                let mut want = vec![0.0f32; n * f];
                dense_reference(&x, &w, b, &mut want, n, d, f, act).unwrap();
                for isa in Isa::all_available() {
                    let layer = PackedDense::new(isa, &w, b, d, f).unwrap();
                    let mut one = vec![f32::NAN; n * f];
                    layer.apply(&x, n, &mut one, act).unwrap();
                    assert_eq!(bits(&one), bits(&want), "{isa} {n}x{d}x{f} single");
                    for t in [1, 2, 3, 7, n, n + 5] {
                        let mut y = vec![f32::NAN; n * f];
                        apply_split(&layer, &x, n, &mut y, act, t).unwrap();
                        assert_eq!(bits(&y), bits(&want), "{isa} {n}x{d}x{f} split into {t}");
                        let mut y = vec![f32::NAN; n * f];
                        apply_threads(&layer, &x, n, &mut y, act, t).unwrap();
                        assert_eq!(bits(&y), bits(&want), "{isa} {n}x{d}x{f} apply_threads({t})");
                    }
                }
            }
        }
    }

    /// Large enough that `apply_threads` itself splits (checked through `threads_used`).
    #[test]
    fn large_problem_is_split_and_exact() {
        let (n, d, f) = (48, 512, 400);
        assert_eq!(threads_used(n, d, f, 2), 2);
        assert_eq!(threads_used(n, d, f, 7), 7);
        assert_eq!(threads_used(n, d, f, 64), 8); // one ROW_BLOCK of 6 rows each at least
        assert_eq!(threads_used(12, 256, 256, 64), 2); // 12 rows: two row blocks
        let (x, w, b) = (data(n * d, 11), data(d * f, 12), data(f, 13));
        let mut want = vec![0.0f32; n * f];
        dense_reference(&x, &w, Some(&b), &mut want, n, d, f, Activation::Relu).unwrap();
        for isa in Isa::all_available() {
            let layer = PackedDense::new(isa, &w, Some(&b), d, f).unwrap();
            for t in [1, 2, 3, 7] {
                let mut y = vec![f32::NAN; n * f];
                apply_threads(&layer, &x, n, &mut y, Activation::Relu, t).unwrap();
                assert_eq!(bits(&y), bits(&want), "{isa} apply_threads({t})");
            }
        }
    }

    #[test]
    fn block_bounds_and_degenerate_shapes() {
        // n = 0, d = 0 (y = bias), f = 0: nothing to split, nothing panics.
        let layer = PackedDense::new(Isa::Scalar, &[], Some(&[1.5, -2.0]), 0, 2).unwrap();
        let mut y = vec![0.0f32; 20];
        apply_split(&layer, &[], 10, &mut y, Activation::Relu, 3).unwrap();
        assert!(y.chunks(2).all(|r| r == [1.5, 0.0]));
        let layer = PackedDense::new(Isa::Scalar, &[], None, 3, 0).unwrap();
        apply_split(&layer, &[0.0; 30], 10, &mut [], Activation::Identity, 3).unwrap();
        let layer = PackedDense::new(Isa::Scalar, &[1.0; 6], None, 3, 2).unwrap();
        apply_split(&layer, &[], 0, &mut [], Activation::Identity, 3).unwrap();
        // Length errors, before any thread starts.
        assert!(apply_split(&layer, &[0.0; 8], 3, &mut [0.0; 6], Activation::Identity, 2).is_err());
        assert!(apply_split(&layer, &[0.0; 9], 3, &mut [0.0; 5], Activation::Identity, 2).is_err());
        assert!(apply_threads(&layer, &[0.0; 9], usize::MAX, &mut [0.0; 5], Activation::Identity, 2).is_err());
        // The thread count.
        assert_eq!(threads_used(usize::MAX, usize::MAX, usize::MAX, 5), 5);
        assert_eq!(threads_used(12, 1 << 20, 1 << 10, 5), 2); // one per ROW_BLOCK rows
        assert_eq!(threads_used(0, 0, 0, 5), 1);
    }
}
