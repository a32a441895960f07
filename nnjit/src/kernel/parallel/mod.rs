//! Multithreaded Dense applies that split the *outputs* only.
//!
//! [`apply_threads`] cuts the output `y` into parts and computes each part on one thread:
//! the calling thread or a worker of a small persistent pool (plain `std` threads, started
//! once; no dependency; module `pool`). [`choose_split`] picks how:
//!
//! * [`Split::Columns`]: ranges of output columns (all rows each). Each thread then reads
//!   only its own part of `W`, the large operand, so two cores read it at about twice the
//!   bandwidth: the choice whenever it can use as many threads as a row split, from a batch-1
//!   GEMV whose weights stream from L3 to a large GEMM. A range is made of whole packed column
//!   panels (its first column is a multiple of the lane count `L`), and of whole register
//!   tiles of the layer's path (on AVX-512, 6 panels for one row, 4 for more) when the ranges are
//!   wide enough for that to cost little balance; only the last range can end in a partial
//!   panel. Each range is computed by the same driver and tiles as a single-threaded apply,
//!   with the output row stride of the whole `y`.
//! * [`Split::Rows`]: contiguous blocks of rows of `x` and `y`, each computed by
//!   [`PackedDense::apply`], where they allow more threads than columns do (many rows, few
//!   output columns). Every thread gets at least [`ROW_BLOCK`] rows, and block boundaries are
//!   multiples of `ROW_BLOCK` (the register tile height of the SIMD paths) where possible, so
//!   a split adds no partial row tiles.
//!
//! Either way every output's FMA chain stays whole on one thread, in the order of the
//! [module contract](super) (the contraction is never split), so the bits are those of the
//! single-threaded call and of
//! [`reference::dense_reference`](super::reference::dense_reference) — for any number of
//! threads and either split.
//!
//! Waking a worker costs microseconds, more than small products take, so
//! [`choose_split`] keeps a problem on the calling thread unless every thread gets at least
//! [`MIN_MACS_PER_THREAD`] multiply-adds, and at least [`ROW_BLOCK`] rows or [`COL_BLOCK`]
//! columns.
//!
//! All of the threading of the kernels lives here: the splits (this file), the worker pool
//! (module `pool`) and the thread-count setting ([`num_threads`], module `settings`).

mod pool;
mod settings;

use std::sync::{Mutex, PoisonError};

use super::{dense, isa, Activation, DenseProblem, Isa, PackedDense};
use crate::error::Result;

pub use settings::{num_threads, set_num_threads};

/// Multiply-adds (`n·d·f` divided by the thread count) below which one more thread does
/// not pay for its wake-up: smaller problems stay on fewer threads (down to the caller alone).
/// The same bound holds for row and column splits.
///
/// Measured on a 2-core AMD EPYC VM (AVX-512, `bench/src/bin/threads.rs --nnjit --shape ..`)
/// with the persistent pool. Row splits: `12×128×128` (2·10⁵ FMAs, 3.4 µs) gained only 1.12×
/// on two threads, `12×256×256` (7.9·10⁵) 1.70×, `24×256×256` 1.82×. (With a thread started
/// per call, ~27 µs, the break-even was ~4·10⁶ FMAs per thread.) Column splits (forced, with
/// the bound lowered): `1×128×128` took 2.0× as long on two threads, `1×256×256` (6.6·10⁴
/// FMAs, 2.4 µs) and `1×256×512` (1.3·10⁵) gained 1.00–1.02×, while `1×512×512` and
/// `1×1024×256` (2.6·10⁵) gained 1.7×, `4×256×256` 1.3×: the same bound.
///
/// ```
/// use nnjit::kernel::parallel::{threads_used, MIN_MACS_PER_THREAD};
/// assert_eq!(threads_used(12, 128, 128, 2), 1); // 2·10⁵ FMAs: one thread
/// assert!(12 * 128 * 128 < 2 * MIN_MACS_PER_THREAD);
/// assert_eq!(threads_used(32, 256, 256, 2), 2);
/// assert_eq!(threads_used(1, 256, 256, 2), 1); // a GEMV of 6.6·10⁴ FMAs: one thread
/// assert_eq!(threads_used(1, 512, 512, 2), 2); // 2.6·10⁵ FMAs: two
/// ```
pub const MIN_MACS_PER_THREAD: usize = 1 << 17;

/// Rows per register tile of the SIMD paths; row blocks are multiples of it where possible,
/// and each thread of a row split gets at least this many rows.
///
/// ```
/// use nnjit::kernel::parallel::{choose_split, Split, ROW_BLOCK};
/// // Rows split in blocks of at least ROW_BLOCK (here the 64 columns cannot be split).
/// assert_eq!(choose_split(ROW_BLOCK, 4096, 64, 2), Split::Serial); // one row block
/// assert_eq!(choose_split(2 * ROW_BLOCK, 4096, 64, 2), Split::Rows(2));
/// ```
pub const ROW_BLOCK: usize = 6;

/// Fewest output columns per thread of a column split: 4 AVX-512 panels, 8 AVX2 panels, 16
/// NEON panels, at least two thirds of a one-row register tile on every SIMD path (96
/// columns on AVX-512, 64 on AVX2, 32 on NEON). (The ranges
/// themselves are cut at the panel and tile boundaries of the layer's path, see the
/// [module docs](self).)
///
/// ```
/// use nnjit::kernel::parallel::{choose_split, Split, COL_BLOCK};
/// assert_eq!(choose_split(1, 1 << 16, COL_BLOCK, 2), Split::Serial); // one block of columns
/// assert_eq!(choose_split(1, 1 << 16, 2 * COL_BLOCK, 2), Split::Columns(2));
/// ```
pub const COL_BLOCK: usize = 64;

/// Row blocks per thread: more blocks than threads, handed out from a shared counter, so
/// that the calling thread (which starts at once) does more of the work while a worker wakes
/// up, and a worker the OS delays leaves its blocks to the others.
const BLOCKS_PER_THREAD: usize = 2;

/// Column ranges per thread (as [`BLOCKS_PER_THREAD`] for rows). One range per thread
/// measured the same within ±5% (`1×512×512`, `1×1024×1024`, `8×1024×1024`, two threads).
const COL_RANGES_PER_THREAD: usize = 2;

/// How [`apply_threads`] divides the work of one product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// All on the calling thread: too small, or nothing to split.
    Serial,
    /// Blocks of rows, on this many threads (at least 2, the caller included).
    Rows(usize),
    /// Ranges of output columns (all rows each), on this many threads (at least 2, the
    /// caller included).
    Columns(usize),
}

impl Split {
    /// The threads used, the caller included: 1 for [`Split::Serial`].
    ///
    /// ```
    /// use nnjit::kernel::parallel::Split;
    /// assert_eq!(Split::Serial.threads(), 1);
    /// assert_eq!(Split::Columns(3).threads(), 3);
    /// ```
    pub fn threads(self) -> usize {
        match self {
            Split::Serial => 1,
            Split::Rows(t) | Split::Columns(t) => t,
        }
    }
}

/// How [`apply_threads`] splits an `(n, d) · (d, f)` problem when allowed up to `threads`
/// threads (0 counts as 1), the caller included.
///
/// Each thread must get at least [`MIN_MACS_PER_THREAD`] multiply-adds. A row split gives
/// every thread at least [`ROW_BLOCK`] rows, a column split at least [`COL_BLOCK`] columns;
/// of the two, the one that can use more threads is chosen, and columns on a tie: each thread
/// then streams only its part of `W` (the large operand) instead of all of it. Measured on the
/// 2-core development machine, back to back, speed-up on 2 threads by columns (by rows):
/// `32×256×256` 1.87× (1.52×), `64×512×512` 1.98× (1.85×), `128×1024×1024` 1.86–2.00×
/// (1.81×), `256×784×128` 1.90–1.98× (1.93×), `12×1024×1024` 1.95× (1.86–1.90×),
/// `48×512×400` 1.84–1.90× (1.75–1.89×). Rows are chosen where they allow more threads (few
/// output columns). Does not depend on the instruction set.
///
/// ```
/// use nnjit::kernel::parallel::{choose_split, Split};
/// assert_eq!(choose_split(128, 1024, 1024, 2), Split::Columns(2)); // a large GEMM
/// assert_eq!(choose_split(256, 784, 64, 2), Split::Rows(2)); // 64 columns: one COL_BLOCK
/// assert_eq!(choose_split(1, 1024, 1024, 2), Split::Columns(2)); // a batch-1 GEMV
/// assert_eq!(choose_split(8, 1024, 1024, 2), Split::Columns(2)); // fewer than 2·ROW_BLOCK rows
/// assert_eq!(choose_split(12, 1024, 1024, 4), Split::Columns(4)); // rows: only 2 blocks
/// assert_eq!(choose_split(1, 4096, 4096, 8), Split::Columns(8));
/// assert_eq!(choose_split(1, 256, 256, 2), Split::Serial); // too small to be worth a thread
/// assert_eq!(choose_split(128, 1024, 1024, 1), Split::Serial);
/// ```
#[inline]
pub fn choose_split(n: usize, d: usize, f: usize, threads: usize) -> Split {
    if threads <= 1 {
        // The common case (and the default): no arithmetic on the shape.
        return Split::Serial;
    }
    let macs = (n as u128).saturating_mul(d as u128).saturating_mul(f as u128);
    let by_work = macs / MIN_MACS_PER_THREAD as u128;
    let most = |by_shape: usize| -> usize { (threads as u128).min(by_work).min(by_shape as u128) as usize };
    let rows = most(n / ROW_BLOCK);
    let cols = most(f / COL_BLOCK);
    if cols >= 2 && cols >= rows {
        Split::Columns(cols)
    } else if rows >= 2 {
        Split::Rows(rows)
    } else {
        Split::Serial
    }
}

/// How many threads (the caller included) [`apply_threads`] uses for an `(n, d) · (d, f)`
/// problem when allowed up to `threads`: `choose_split(n, d, f, threads).threads()`, see
/// [`choose_split`]. At most `threads` (0 counts as 1).
///
/// ```
/// use nnjit::kernel::parallel::threads_used;
/// assert_eq!(threads_used(128, 1024, 1024, 2), 2); // a large GEMM (by columns)
/// assert_eq!(threads_used(128, 1024, 1024, 0), 1); // 0 and 1 mean the calling thread
/// assert_eq!(threads_used(1, 1024, 1024, 2), 2); // one row: columns split
/// assert_eq!(threads_used(1, 4096, 4096, 8), 8);
/// assert_eq!(threads_used(1, 4096, 64, 8), 1); // 64 columns: one COL_BLOCK, not split
/// assert_eq!(threads_used(8, 16, 16, 8), 1); // too small to be worth a thread
/// ```
pub fn threads_used(n: usize, d: usize, f: usize, threads: usize) -> usize {
    choose_split(n, d, f, threads).threads()
}

/// `y = act(x·W + b)` for `n` rows, like [`PackedDense::apply`], on up to `threads` threads
/// (the calling thread included).
///
/// The outputs are split as [`choose_split`] says: into contiguous blocks of rows, or, for
/// problems with few rows, into ranges of whole column panels; each part is computed on one
/// thread. The contraction is never split, so `y` has exactly the bits of
/// `layer.apply(x, n, y, act)` whatever `threads` is. Problems too small to gain from
/// threads run on the calling thread only (see [`MIN_MACS_PER_THREAD`]). If the system
/// cannot start a thread, the calling thread computes its parts.
///
/// Allocates nothing but a few words per part (and, on first use, the pool's threads).
/// Errors ([`Error::InvalidArgument`](crate::Error::InvalidArgument)) only on length
/// mismatches; never panics.
///
/// ```
/// use nnjit::kernel::{best_isa, parallel::apply_threads, Activation, PackedDense};
/// let (n, d, f) = (256, 128, 64); // many rows, few output columns: rows are split
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
///
/// // One row of a wide layer: the columns are split.
/// let (d, f) = (1024, 1000);
/// let w: Vec<f32> = (0..d * f).map(|i| (i % 11) as f32 - 5.0).collect();
/// let layer = PackedDense::new(best_isa(), &w, None, d, f)?;
/// let x: Vec<f32> = (0..d).map(|i| (i % 3) as f32 * 0.5).collect();
/// let (mut y1, mut y2) = (vec![0.0f32; f], vec![0.0f32; f]);
/// layer.apply(&x, 1, &mut y1, Activation::Identity)?;
/// apply_threads(&layer, &x, 1, &mut y2, Activation::Identity, 2)?;
/// assert_eq!(y1, y2);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[inline]
pub fn apply_threads(
    layer: &PackedDense,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    act: Activation,
    threads: usize,
) -> Result<()> {
    match choose_split(n, layer.d(), layer.f(), threads) {
        Split::Serial => layer.apply(x, n, y, act),
        split => apply_split(layer, x, n, y, act, split),
    }
}

/// [`apply_threads`] with the split given, whatever the size of the problem (tests force
/// each kind): by rows on exactly `t` threads (fewer if `n` has fewer rows, see
/// [`split_rows`]), or by columns on exactly `t` threads (fewer if `f` has fewer panels, see
/// [`split_cols`]).
pub(crate) fn apply_split(
    layer: &PackedDense,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    act: Activation,
    split: Split,
) -> Result<()> {
    layer.check_io(x, n, y)?;
    let (d, f) = (layer.d(), layer.f());
    match split {
        Split::Rows(t) => split_rows(x, n, d, y, f, t, &|xb, rows, yb| layer.apply(xb, rows, yb, act)),
        Split::Columns(t) if n > 0 && d > 0 => {
            let relu = act == Activation::Relu;
            let rev = layer.next_sweep();
            let out = OutPtr(y.as_mut_ptr());
            split_cols(f, layer.isa().lanes(), layer.col_tile(n), t, &|c0, c1| {
                // SAFETY: `c0` is a multiple of L (a panel boundary) and c0 < c1 <= f
                // (`split_cols`); `x` has n·d floats and `y` n·f (checked above), so
                // y[r·f + j] is in bounds for r < n, j < f. The ranges are disjoint and each
                // runs once, so no two threads write the same float, and `run_cols` writes only
                // its columns; `y` is a unique borrow not otherwise used until `split_cols`
                // returns, after every range.
                unsafe { layer.run_cols(x.as_ptr(), n, out.get(), f, c0..c1, relu, rev) };
            });
            Ok(())
        }
        _ => layer.apply(x, n, y, act),
    }
}

/// [`dense`] (row-major weights, read in place) on up to `threads` threads,
/// the calling thread included: the unpacked counterpart of [`apply_threads`], with the same
/// [`choose_split`] and the same bits as `dense` for any `threads`. What `nn::Dense` runs.
///
/// Errors as `dense` (lengths, an unavailable `isa`); never panics.
///
/// ```
/// use nnjit::kernel::parallel::dense_threads;
/// use nnjit::kernel::{best_isa, dense, Activation, DenseProblem};
/// let (n, d, f) = (1, 1024, 1000); // one row of a wide layer: split by columns
/// let w: Vec<f32> = (0..d * f).map(|i| (i % 11) as f32 - 5.0).collect();
/// let x: Vec<f32> = (0..d).map(|i| (i % 3) as f32 * 0.5).collect();
/// let b = vec![0.25f32; f];
/// let p = DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu };
/// let (mut y1, mut y2) = (vec![0.0f32; f], vec![0.0f32; f]);
/// dense(best_isa(), &p, &mut y1)?;
/// dense_threads(best_isa(), &p, &mut y2, 2)?;
/// assert_eq!(y1, y2);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[inline]
pub fn dense_threads(isa: Isa, p: &DenseProblem<'_>, y: &mut [f32], threads: usize) -> Result<()> {
    match choose_split(p.n, p.d, p.f, threads) {
        Split::Serial => dense(isa, p, y),
        split => dense_split(isa, p, y, split),
    }
}

/// [`dense_threads`] with the split given (tests force each kind).
pub(crate) fn dense_split(isa: Isa, p: &DenseProblem<'_>, y: &mut [f32], split: Split) -> Result<()> {
    if split == Split::Serial {
        return dense(isa, p, y);
    }
    p.check(y)?;
    let kernels = isa::kernels(isa)?;
    let (n, d, f) = (p.n, p.d, p.f);
    match split {
        Split::Rows(t) => split_rows(p.x, n, d, y, f, t, &|x, n, yb| dense(isa, &DenseProblem { x, n, ..*p }, yb)),
        _ => {
            let out = OutPtr(y.as_mut_ptr());
            split_cols(f, kernels.lanes, (kernels.col_tile)(n), split.threads(), &|c0, c1| {
                let g = p.geometry(kernels.lanes, c0..c1, out.get());
                // SAFETY: lengths checked against (n, d, f) and c0 < c1 <= f, so the
                // sub-problem's unpadded row-major weights (`ldw = f`, `wv = L`), bias and
                // input are in bounds, and y[r·f + c0 + j] for r < n, j < c1 - c0 lies in `y`.
                // The column ranges are disjoint and each runs once, so no two threads write
                // the same float; `y` is a unique borrow not otherwise used until `split_cols`
                // returns. `drive_ldy` is the strided driver of `isa`, which is available.
                unsafe { (kernels.drive_ldy)(&g, f) };
            });
            Ok(())
        }
    }
}

/// Runs `run(x_block, rows, y_block)` over contiguous row blocks of `x` (`n × d`) and `y`
/// (`n × f`, lengths checked by the caller) on `t` threads (fewer if `n` has fewer rows),
/// returning the first error: up to [`BLOCKS_PER_THREAD`]`·t` blocks in a shared queue,
/// whose boundaries are multiples of [`ROW_BLOCK`] where possible.
#[allow(clippy::type_complexity)]
pub(crate) fn split_rows(
    x: &[f32],
    n: usize,
    d: usize,
    y: &mut [f32],
    f: usize,
    t: usize,
    run: &(dyn Fn(&[f32], usize, &mut [f32]) -> Result<()> + Sync),
) -> Result<()> {
    let t = t.min(n);
    if t <= 1 || d == 0 || f == 0 {
        return run(x, n, y);
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
            if let Err(e) = run(xb, rows, yb) {
                let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
                if first.is_ok() {
                    *first = Err(e);
                }
            }
        }
    });
    first_error.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `run(c0, c1)` over ranges of the `f` output columns on `t` threads (fewer if `f`
/// has fewer panels of `l` lanes): up to [`COL_RANGES_PER_THREAD`]`·t` ranges in a shared
/// queue. Every range is non-empty and starts at a multiple of `l`, so its weights are
/// whole packed panels; boundaries are rounded to multiples of `tile_cols` (a register tile)
/// when every range is at least [`TILES_PER_RANGE`] tiles wide. The ranges cover `0..f`
/// exactly once.
fn split_cols(f: usize, l: usize, tile_cols: usize, t: usize, run: &(dyn Fn(usize, usize) + Sync)) {
    let panels = f.div_ceil(l);
    let t = t.min(panels).max(1);
    let nb = t.saturating_mul(COL_RANGES_PER_THREAD).min(panels).max(1);
    // Boundaries in panels: i·panels/nb rounded to the nearest multiple of `unit` (whole
    // register tiles if the ranges are wide enough, else single panels), without overflow.
    let tile = (tile_cols / l).max(1);
    let unit = if panels / nb >= TILES_PER_RANGE * tile { tile } else { 1 };
    let bound = |i: usize| -> usize {
        let (i, p, nb, u) = (i as u128, panels as u128, nb as u128, unit as u128);
        (((i * p + nb * u / 2) / (nb * u)) * u).min(p) as usize
    };
    let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(nb);
    let mut start = 0;
    for i in 1..=nb {
        let end = if i == nb { panels } else { bound(i) };
        if end > start {
            ranges.push((start * l, (end * l).min(f)));
            start = end;
        }
    }
    if ranges.len() <= 1 || t <= 1 {
        if f > 0 {
            run(0, f);
        }
        return;
    }
    let helpers = ranges.len().min(t) - 1;
    // Each task computes all rows of one column range; the calling thread takes ranges too.
    pool::run(ranges.len(), helpers, &|i| {
        let (c0, c1) = ranges[i];
        run(c0, c1);
    });
}

/// Register tiles each column range must be wide for the range boundaries to be rounded to
/// whole tiles: rounding then unbalances two threads by at most half a tile in
/// `TILES_PER_RANGE`.
const TILES_PER_RANGE: usize = 4;

/// The output of a column split, shared by its tasks, which write disjoint columns.
struct OutPtr(*mut f32);

impl OutPtr {
    /// The pointer (a method, so that closures capture the whole `OutPtr`, which is `Sync`,
    /// rather than its raw-pointer field, which is not).
    fn get(&self) -> *mut f32 {
        self.0
    }
}

// SAFETY: an `OutPtr` is only dereferenced by the tasks of a column split, each writing its own
// column range (disjoint floats), while the unique borrow it came from is not used.
unsafe impl Sync for OutPtr {}

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

    /// `apply_threads` on each of `ts` threads gives `want`, bit for bit.
    fn assert_threads_exact(layer: &PackedDense, x: &[f32], n: usize, act: Activation, want: &[f32], ts: &[usize]) {
        let (isa, d, f) = (layer.isa(), layer.d(), layer.f());
        for &t in ts {
            let mut y = vec![f32::NAN; n * f];
            apply_threads(layer, x, n, &mut y, act, t).unwrap();
            assert_eq!(bits(&y), bits(want), "{isa} {n}x{d}x{f} {act:?} apply_threads({t})");
        }
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
                dense_reference(&DenseProblem { x: &x, w: &w, bias: b, n, d, f, act }, &mut want).unwrap();
                for isa in Isa::all_available() {
                    let layer = PackedDense::new(isa, &w, b, d, f).unwrap();
                    let mut one = vec![f32::NAN; n * f];
                    layer.apply(&x, n, &mut one, act).unwrap();
                    assert_eq!(bits(&one), bits(&want), "{isa} {n}x{d}x{f} single");
                    let ts = [1, 2, 3, 7, n, n + 5];
                    for t in ts {
                        let mut y = vec![f32::NAN; n * f];
                        apply_split(&layer, &x, n, &mut y, act, Split::Rows(t)).unwrap();
                        assert_eq!(bits(&y), bits(&want), "{isa} {n}x{d}x{f} split into {t}");
                    }
                    assert_threads_exact(&layer, &x, n, act, &want, &ts);
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
        assert_eq!(choose_split(n, d, f, 64), Split::Rows(8)); // one ROW_BLOCK of 6 rows each at least
        assert_eq!(choose_split(12, 256, 256, 64), Split::Columns(4)); // 2 row blocks, 4 COL_BLOCKs
        assert_eq!(choose_split(12, 256, 256, 2), Split::Columns(2)); // a tie: columns
        assert_eq!(choose_split(48, 512, 64, 2), Split::Rows(2)); // 64 columns: one COL_BLOCK
        let (x, w, b) = (data(n * d, 11), data(d * f, 12), data(f, 13));
        let mut want = vec![0.0f32; n * f];
        dense_reference(&DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu }, &mut want)
            .unwrap();
        for isa in Isa::all_available() {
            let layer = PackedDense::new(isa, &w, Some(&b), d, f).unwrap();
            assert_threads_exact(&layer, &x, n, Activation::Relu, &want, &[1, 2, 3, 7]);
        }
    }

    #[test]
    fn block_bounds_and_degenerate_shapes() {
        // n = 0, d = 0 (y = bias), f = 0: nothing to split, nothing panics.
        let layer = PackedDense::new(Isa::Scalar, &[], Some(&[1.5, -2.0]), 0, 2).unwrap();
        let mut y = vec![0.0f32; 20];
        apply_split(&layer, &[], 10, &mut y, Activation::Relu, Split::Rows(3)).unwrap();
        assert!(y.chunks(2).all(|r| r == [1.5, 0.0]));
        let layer = PackedDense::new(Isa::Scalar, &[], None, 3, 0).unwrap();
        apply_split(&layer, &[0.0; 30], 10, &mut [], Activation::Identity, Split::Rows(3)).unwrap();
        let layer = PackedDense::new(Isa::Scalar, &[1.0; 6], None, 3, 2).unwrap();
        apply_split(&layer, &[], 0, &mut [], Activation::Identity, Split::Rows(3)).unwrap();
        // Length errors, before any thread starts.
        assert!(apply_split(&layer, &[0.0; 8], 3, &mut [0.0; 6], Activation::Identity, Split::Rows(2)).is_err());
        assert!(apply_split(&layer, &[0.0; 9], 3, &mut [0.0; 5], Activation::Identity, Split::Rows(2)).is_err());
        assert!(apply_threads(&layer, &[0.0; 9], usize::MAX, &mut [0.0; 5], Activation::Identity, 2).is_err());
        // The thread count.
        assert_eq!(threads_used(usize::MAX, usize::MAX, usize::MAX, 5), 5);
        assert_eq!(choose_split(12, 1 << 20, 1 << 10, 5), Split::Columns(5)); // 2 row blocks only
        assert_eq!(choose_split(12, 1 << 20, 64, 5), Split::Rows(2)); // one COL_BLOCK only
        assert_eq!(choose_split(11, 1 << 20, 1 << 10, 5), Split::Columns(5));
        assert_eq!(choose_split(1, 1 << 20, 200, 5), Split::Columns(3)); // 3 COL_BLOCKs
        assert_eq!(choose_split(1, 1 << 20, 127, 5), Split::Serial); // 1 COL_BLOCK
        assert_eq!(choose_split(0, 0, 0, 5), Split::Serial);
        assert_eq!(choose_split(1, 1 << 20, 1 << 10, 0), Split::Serial);
        assert_eq!(threads_used(0, 0, 0, 5), 1);
        // Just below and at the work bound (two threads' worth of MIN_MACS_PER_THREAD).
        let m = 2 * MIN_MACS_PER_THREAD;
        assert_eq!(choose_split(1, m / 128 - 1, 128, 2), Split::Serial);
        assert_eq!(choose_split(1, m / 128, 128, 2), Split::Columns(2));
    }

    /// Values over many binades with 1 in 6 special (NaN, ±inf, ±0, subnormal, huge).
    fn data_specials(len: usize, seed: u32) -> Vec<f32> {
        const SPECIALS: [f32; 8] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e-40, -1e-45, 1e30];
        let plain = data(len, seed);
        let mut s = seed.wrapping_mul(0x2545_F491) | 1;
        plain
            .into_iter()
            .map(|v| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if s.is_multiple_of(6) {
                    SPECIALS[(s >> 8) as usize % SPECIALS.len()]
                } else {
                    v
                }
            })
            .collect()
    }

    /// Forced column splits (`apply_split`) of every row count 1..=11 and of column counts
    /// below one panel, below two panels, not a multiple of any lane count, and wide enough
    /// for tile-rounded boundaries; with specials, on every path: the reference's bits.
    #[test]
    fn column_splits_keep_the_bits() {
        let fs = [3, 16, 20, 31, 33, 64, 100, 130, 257];
        let mut seed = 0u32;
        for n in 1..=11 {
            for &f in &fs {
                for d in [1, 6, 23] {
                    seed += 1;
                    let specials = seed.is_multiple_of(2);
                    let gen = |len, s| if specials { data_specials(len, s) } else { data(len, s) };
                    let (x, w, b) = (gen(n * d, 3 * seed), gen(d * f, 3 * seed + 1), gen(f, 3 * seed + 2));
                    for (bias, act) in [
                        (true, Activation::Relu),
                        (false, Activation::Identity),
                        (seed.is_multiple_of(3), ACTS[seed as usize % 2]),
                    ] {
                        check_cols(&x, &w, bias.then_some(&b[..]), n, d, f, act, &[1, 2, 3, 7]);
                    }
                }
            }
        }
    }

    const ACTS: [Activation; 2] = [Activation::Identity, Activation::Relu];

    /// `apply_split` by columns on `ts` threads for every available path against the reference.
    #[allow(clippy::too_many_arguments)]
    fn check_cols(
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        n: usize,
        d: usize,
        f: usize,
        act: Activation,
        ts: &[usize],
    ) {
        let mut want = vec![0.0f32; n * f];
        dense_reference(&DenseProblem { x, w, bias: b, n, d, f, act }, &mut want).unwrap();
        for isa in Isa::all_available() {
            let layer = PackedDense::new(isa, w, b, d, f).unwrap();
            for &t in ts {
                let mut y = vec![-3.0f32; n * f];
                apply_split(&layer, x, n, &mut y, act, Split::Columns(t)).unwrap();
                assert_eq!(
                    bits(&y),
                    bits(&want),
                    "{isa} {n}x{d}x{f} bias={} {act:?}: columns split into {t}",
                    b.is_some()
                );
                // The unpacked weights (what `nn::Dense` runs), split either way.
                for split in [Split::Columns(t), Split::Rows(t)] {
                    let mut y = vec![-3.0f32; n * f];
                    dense_split(isa, &DenseProblem { x, w, bias: b, n, d, f, act }, &mut y, split).unwrap();
                    assert_eq!(
                        bits(&y),
                        bits(&want),
                        "{isa} {n}x{d}x{f} bias={} {act:?}: unpacked {split:?}",
                        b.is_some()
                    );
                }
            }
        }
    }

    /// Wide layers, whose range boundaries are rounded to whole register tiles (with 2 and 7
    /// threads on AVX-512), and odd widths.
    #[test]
    fn wide_column_splits_keep_the_bits() {
        for (i, &(n, d, f)) in
            [(1, 3, 1605), (2, 2, 1543), (1, 2, 5403), (5, 3, 2050), (11, 2, 1601)].iter().enumerate()
        {
            let s = 1000 + 3 * i as u32;
            let (x, w, b) = (data_specials(n * d, s), data(d * f, s + 1), data(f, s + 2));
            check_cols(&x, &w, Some(&b), n, d, f, Activation::Relu, &[2, 3, 7]);
            check_cols(&x, &w, None, n, d, f, Activation::Identity, &[2, 7]);
        }
    }

    /// Column ranges of unpacked weights large enough for the contraction-blocked driver
    /// (which keeps partial sums in `y`, so it must use the output row stride too).
    #[test]
    fn unpacked_column_splits_of_large_layers() {
        for (i, &(n, d, f)) in [(1, 640, 1100), (2, 520, 1030)].iter().enumerate() {
            let s = 3000 + 3 * i as u32;
            let (x, w, b) = (data_specials(n * d, s), data(d * f, s + 1), data(f, s + 2));
            let mut want = vec![0.0f32; n * f];
            dense_reference(&DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu }, &mut want)
                .unwrap();
            for isa in Isa::all_available() {
                for t in [2, 3] {
                    let mut y = vec![-3.0f32; n * f];
                    dense_split(
                        isa,
                        &DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu },
                        &mut y,
                        Split::Columns(t),
                    )
                    .unwrap();
                    assert_eq!(bits(&y), bits(&want), "{isa} {n}x{d}x{f}: unpacked columns split into {t}");
                }
                let mut y = vec![-3.0f32; n * f];
                dense_threads(
                    isa,
                    &DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu },
                    &mut y,
                    2,
                )
                .unwrap();
                assert_eq!(bits(&y), bits(&want), "{isa} {n}x{d}x{f}: dense_threads");
            }
        }
        // Errors, not panics.
        let mut y = vec![0.0f32; 4];
        assert!(dense_threads(
            Isa::Scalar,
            &DenseProblem { x: &[1.0; 3], w: &[1.0; 11], bias: None, n: 1, d: 3, f: 4, act: Activation::Identity },
            &mut y,
            2
        )
        .is_err());
        assert!(dense_split(
            Isa::Scalar,
            &DenseProblem { x: &[1.0; 3], w: &[1.0; 12], bias: None, n: 1, d: 3, f: 4, act: Activation::Identity },
            &mut y[..3],
            Split::Columns(2)
        )
        .is_err());
    }

    /// `apply_threads` itself picks a column split for these shapes, and keeps the bits.
    #[test]
    fn apply_threads_splits_columns() {
        for (i, &(n, d, f)) in [(1, 512, 520), (1, 900, 300), (4, 200, 333), (11, 100, 260)].iter().enumerate() {
            assert!(matches!(choose_split(n, d, f, 2), Split::Columns(2)), "{n}x{d}x{f}");
            let s = 2000 + 3 * i as u32;
            let (x, w, b) = (data_specials(n * d, s), data(d * f, s + 1), data(f, s + 2));
            for (bias, act) in [(true, Activation::Relu), (false, Activation::Identity)] {
                let b = bias.then_some(&b[..]);
                let mut want = vec![0.0f32; n * f];
                dense_reference(&DenseProblem { x: &x, w: &w, bias: b, n, d, f, act }, &mut want).unwrap();
                for isa in Isa::all_available() {
                    let layer = PackedDense::new(isa, &w, b, d, f).unwrap();
                    assert_threads_exact(&layer, &x, n, act, &want, &[1, 2, 3, 7]);
                }
            }
        }
    }

    /// `run_cols` writes exactly its columns of its rows, at the stride it is given (wider
    /// than the layer here), and the bits of the reference there.
    #[test]
    fn run_cols_writes_only_its_columns() {
        let (d, f, ldy) = (9, 45, 53);
        let (w, b) = (data(d * f, 31), data(f, 32));
        for n in [1, 2, 7] {
            let x = data(n * d, 33 + n as u32);
            let mut want = vec![0.0f32; n * f];
            dense_reference(&DenseProblem { x: &x, w: &w, bias: Some(&b), n, d, f, act: Activation::Relu }, &mut want)
                .unwrap();
            for isa in Isa::all_available() {
                let l = isa.lanes();
                let layer = PackedDense::new(isa, &w, Some(&b), d, f).unwrap();
                let starts: Vec<usize> = (0..f).step_by(l).collect();
                for &c0 in &starts {
                    let ends = [c0, (c0 + 1).min(f), (c0 + l).min(f), (c0 + 2 * l + 3).min(f), f];
                    for (c1, rev) in ends.into_iter().flat_map(|c1| [(c1, false), (c1, true)]) {
                        let sentinel = f32::from_bits(0x7F80_1234);
                        let mut y = vec![sentinel; n * ldy];
                        // SAFETY: c0 is a multiple of L, c0 <= c1 <= f; x has n·d floats; y has
                        // n·ldy >= (n-1)·ldy + f floats; nothing else uses y.
                        unsafe { layer.run_cols(x.as_ptr(), n, y.as_mut_ptr(), ldy, c0..c1, true, rev) };
                        for r in 0..n {
                            for j in 0..ldy {
                                let got = y[r * ldy + j].to_bits();
                                if (c0..c1).contains(&j) {
                                    assert_eq!(
                                        got,
                                        want[r * f + j].to_bits(),
                                        "{isa} n={n} {c0}..{c1} rev={rev}: ({r}, {j})"
                                    );
                                } else {
                                    assert_eq!(
                                        got,
                                        sentinel.to_bits(),
                                        "{isa} n={n} {c0}..{c1} rev={rev}: wrote ({r}, {j})"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn column_split_degenerate_shapes() {
        // d = 0 (y = bias), f = 0, n = 0: nothing to split, nothing panics.
        for isa in Isa::all_available() {
            let layer = PackedDense::new(isa, &[], Some(&vec![-1.5; 300]), 0, 300).unwrap();
            let mut y = vec![0.0f32; 600];
            apply_split(&layer, &[], 2, &mut y, Activation::Identity, Split::Columns(3)).unwrap();
            assert!(y.iter().all(|&v| v == -1.5));
            let layer = PackedDense::new(isa, &[], None, 3, 0).unwrap();
            apply_split(&layer, &[0.0; 30], 10, &mut [], Activation::Identity, Split::Columns(3)).unwrap();
            let layer = PackedDense::new(isa, &[1.0; 600], None, 3, 200).unwrap();
            apply_split(&layer, &[], 0, &mut [], Activation::Identity, Split::Columns(3)).unwrap();
            // Length errors, before any thread starts.
            assert!(
                apply_split(&layer, &[0.0; 5], 2, &mut [0.0; 400], Activation::Identity, Split::Columns(2)).is_err()
            );
            assert!(
                apply_split(&layer, &[0.0; 6], 2, &mut [0.0; 399], Activation::Identity, Split::Columns(2)).is_err()
            );
            assert!(apply_split(
                &layer,
                &[0.0; 6],
                usize::MAX,
                &mut [0.0; 400],
                Activation::Identity,
                Split::Columns(2)
            )
            .is_err());
            // The register tile is a whole number of panels.
            for n in [1, 2, 3, 6, 100] {
                assert_eq!(layer.col_tile(n) % isa.lanes(), 0, "{isa}");
                assert!(layer.col_tile(n) <= 2 * COL_BLOCK, "{isa}");
            }
        }
    }
}
