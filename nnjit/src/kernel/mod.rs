//! Dense kernels: `y = act(x·W + b)` with the exact float32 arithmetic of Flax's `nn.Dense`
//! on CPU, fast on every path.
//!
//! # The arithmetic contract
//! `x` is `(N, D)` row-major, `W` is `(D, F)` row-major, `b` has `F` entries. For every
//! output `(n, j)`:
//!
//! ```text
//! acc = +0.0
//! for k in 0..D (increasing):  acc = fma(x[n, k], W[k, j], acc)   // one rounding (f32::mul_add)
//! y[n, j] = acc + b[j]                                          // no add without a bias
//! Relu:     y = if y < 0.0 { 0.0 } else { y }                   // NaN and -0.0 pass through
//! NaN:      y = if y is NaN { f32::NAN } else { y }             // one canonical NaN
//! ```
//!
//! Every path ([`Isa::Scalar`], [`Isa::Avx2`], [`Isa::Avx512`], [`Isa::Neon`]) and every
//! entry ([`dense`], [`PackedDense`], [`FixedDense`]) gives exactly these bits: the SIMD
//! kernels vectorise across output columns (one lane = one output's FMA chain) and tile
//! across rows; the contraction over `k` is never split or reordered. Infinities and NaNs
//! propagate as IEEE 754 does in that order. Which NaN an operation returns when NaNs meet
//! depends on operand order (which compilers may commute) and on the CPU (x86 and ARM make
//! different default NaNs), so every NaN output is replaced by the canonical quiet NaN
//! `f32::NAN` (`0x7FC0_0000`): NaN outputs too are bit-identical on every path and machine.
//! The floating-point environment (rounding, FTZ/DAZ) is never touched.
//!
//! # Design
//! Like `matrixmultiply`/BLIS: a small register-tiled microkernel (module `simd`) instantiated
//! at compile time, once per instruction set (one module each under `isa`, whose table of
//! kernels is chosen at one place), for several tile shapes (up to 6 rows × 4 zmm vectors on AVX-512, 6 × 2
//! ymm on AVX2, 1 row × 8 vectors for single-row products), a driver that covers the
//! output with tiles (masked/partial tiles for column tails), bias and activation fused
//! into the tile epilogue. [`PackedDense`] repacks weights once into 64-byte aligned column
//! panels and fixes the kernel (a function pointer) at construction; [`FixedDense`] also
//! fixes the shape at compile time. Instruction sets are detected at run time (see [`Isa`],
//! [`best_isa`]).
//!
//! Special cases: a single row whose `F` fits one tile (up to 128 columns on AVX-512, 64 on
//! AVX2, 32 on NEON) goes straight to one fully inlined tile function (no driver); a row or
//! two of large row-major weights (in [`dense`]) is computed in blocks of 4 consecutive `k`,
//! each output's chain carried through `y` between blocks (an f32 store and reload is exact),
//! so that the weights are read row by row; with 32 rows or more and rows of 256 floats or more
//! (8 rows where the rows are 4 KiB apart), each column tile's weights are copied a block of 128
//! `k` at a time into a contiguous block on the stack, which every row block then reads (in
//! place, a tile's strip of rows `F` floats apart crowds a few L1 sets). A [`PackedDense`] of 64 Ki weights or more reads
//! its column tiles backwards on every other call of a thread (module `sweep`), so that a
//! model whose weights outgrow the core's L2 finds most of them still there from the call
//! before. [`dense`] and [`PackedDense::apply`] run on the calling thread; [`parallel`] (all
//! of the threading: the splits, the worker pool, the thread-count setting) splits a product
//! across threads (rows or column panels of the output, never the contraction), which module
//! applies do when [`parallel::num_threads`] (`NNJIT_NUM_THREADS`) allows.
//!
//! ```
//! use nnjit::kernel::{dense, best_isa, Activation, DenseProblem};
//! let x = [1.0f32, 2.0, 3.0];                            // (N=1, D=3)
//! let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];             // (D=3, F=2)
//! let p = DenseProblem { x: &x, w: &w, bias: Some(&[0.5, -10.0]), n: 1, d: 3, f: 2, act: Activation::Relu };
//! let mut y = [0.0f32; 2];
//! dense(best_isa(), &p, &mut y)?;
//! assert_eq!(y, [4.5, 0.0]);
//! # Ok::<(), nnjit::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

mod fixed;
mod isa;
mod pack;
pub mod parallel;
pub mod reference;
mod simd;
mod small;
mod sweep;
#[cfg(test)]
mod tests;

pub use fixed::FixedDense;
#[cfg(target_arch = "x86_64")]
pub(crate) use fixed::InlineDense;
pub use isa::{best_isa, Isa};
pub use pack::PackedDense;

use std::ops::Range;

use crate::error::{Error, Result};

/// The activation fused into the kernel's epilogue.
///
/// ```
/// use nnjit::kernel::{best_isa, dense, Activation, DenseProblem};
/// let (x, w) = ([1.0f32, -1.0], [1.0f32]); // (N=2, D=1), (D=1, F=1)
/// let p = DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 1, f: 1, act: Activation::Identity };
/// let mut y = [0.0f32; 2];
/// dense(best_isa(), &p, &mut y)?;
/// assert_eq!(y, [1.0, -1.0]);
/// dense(best_isa(), &DenseProblem { act: Activation::Relu, ..p }, &mut y)?; // nn.relu fused in
/// assert_eq!(y, [1.0, 0.0]);
/// assert_eq!(Activation::default(), Activation::Identity);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// `y` unchanged.
    #[default]
    Identity,
    /// `if y < 0.0 { 0.0 } else { y }`: NaN stays NaN, `-0.0` stays `-0.0` (not `max`).
    Relu,
}

/// `Ok` iff `len == rows·cols` (without overflow).
#[inline]
pub(crate) fn check_len(what: &str, len: usize, rows: usize, cols: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(need) if need == len => Ok(()),
        _ => Err(len_error(what, len, rows, cols)),
    }
}

#[cold]
#[inline(never)]
fn len_error(what: &str, len: usize, rows: usize, cols: usize) -> Error {
    match rows.checked_mul(cols) {
        Some(need) => {
            Error::invalid("", format!("Dense kernel: `{what}` has {len} elements, expected {rows} x {cols} = {need}"))
        }
        None => Error::invalid("", format!("Dense kernel: `{what}` of shape ({rows}, {cols}) overflows usize")),
    }
}

/// A Dense problem `y = act(x·W + b)` on unpacked, row-major operands, named field by field:
/// what [`dense`], [`parallel::dense_threads`] and
/// [`reference::dense_reference`] compute (into an output `y`, row-major `(n, f)`, passed
/// beside it).
///
/// The lengths are checked by the entries, which return [`Error::InvalidArgument`] on any
/// mismatch.
///
/// ```
/// use nnjit::kernel::{best_isa, dense, Activation, DenseProblem};
/// let x = [1.0f32, 2.0, 3.0, 4.0]; // (N=2, D=2)
/// let w = [1.0f32, -1.0, 2.0, 0.5]; // (D=2, F=2)
/// let p = DenseProblem { x: &x, w: &w, bias: Some(&[0.0, 1.0]), n: 2, d: 2, f: 2, act: Activation::Relu };
/// let mut y = [0.0f32; 4];
/// dense(best_isa(), &p, &mut y)?;
/// assert_eq!(y, [5.0, 1.0, 11.0, 0.0]);
/// // Another batch of the same layer: struct update syntax.
/// dense(best_isa(), &DenseProblem { x: &[1.0, 0.0], n: 1, ..p }, &mut y[..2])?;
/// assert_eq!(y[..2], [1.0, 0.0]);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DenseProblem<'a> {
    /// The input, row-major `(n, d)`.
    pub x: &'a [f32],
    /// The kernel `W`, row-major `(d, f)` (as Flax stores a Dense kernel).
    pub w: &'a [f32],
    /// The bias, `f` entries; `None` adds nothing (`use_bias=False`).
    pub bias: Option<&'a [f32]>,
    /// Rows `N` of `x` and `y`.
    pub n: usize,
    /// Input features `D`.
    pub d: usize,
    /// Output features `F`.
    pub f: usize,
    /// The activation fused into the epilogue.
    pub act: Activation,
}

impl DenseProblem<'_> {
    /// Checks every length of the problem and of its output `y`.
    pub(crate) fn check(&self, y: &[f32]) -> Result<()> {
        check_len("x", self.x.len(), self.n, self.d)?;
        check_len("w", self.w.len(), self.d, self.f)?;
        if let Some(b) = self.bias {
            check_len("bias", b.len(), 1, self.f)?;
        }
        check_len("y", y.len(), self.n, self.f)
    }

    /// The raw form of the output columns `cols` of this problem for a driver of `lanes`
    /// lanes, with `y` the output's element `(0, 0)` (row-major weights read in place:
    /// `W[k, c0 + j]` at `w + c0 + j + k·f`, so `ldw = f`, `wv = lanes`, unpadded).
    #[inline]
    pub(crate) fn geometry(&self, lanes: usize, cols: Range<usize>, y: *mut f32) -> simd::Geometry {
        let c0 = cols.start;
        simd::Geometry {
            n: self.n,
            d: self.d,
            f: cols.end - c0,
            x: self.x.as_ptr(),
            w: self.w.as_ptr().wrapping_add(c0),
            ldw: self.f,
            wv: lanes,
            bias: self.bias.map_or(std::ptr::null(), |b| b.as_ptr().wrapping_add(c0)),
            padded: false,
            y: y.wrapping_add(c0),
            relu: self.act == Activation::Relu,
            rev: false,
        }
    }
}

/// `y = act(x·W + b)` for the problem `p` (unpacked, row-major operands: see
/// [`DenseProblem`]); `y` is row-major `(n, f)` and is overwritten.
///
/// The checked entry: returns [`Error::InvalidArgument`] on any length mismatch or if `isa`
/// is not available on this CPU, and never panics. Allocates nothing. For repeated use of
/// the same weights, [`PackedDense`] is faster.
///
/// ```
/// use nnjit::kernel::{dense, Activation, DenseProblem, Isa};
/// let x = [1.0f32, 2.0, 3.0, 4.0];          // (N=2, D=2)
/// let w = [1.0f32, -1.0, 2.0, 0.5];         // (D=2, F=2)
/// let p = DenseProblem { x: &x, w: &w, bias: None, n: 2, d: 2, f: 2, act: Activation::Identity };
/// let mut y = [0.0f32; 4];
/// for isa in Isa::all_available() {
///     dense(isa, &p, &mut y)?;
///     assert_eq!(y, [5.0, 0.0, 11.0, -1.0]);
/// }
/// assert!(dense(Isa::Scalar, &p, &mut y[..3]).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn dense(isa: Isa, p: &DenseProblem<'_>, y: &mut [f32]) -> Result<()> {
    p.check(y)?;
    let k = isa::kernels(isa)?;
    if p.n == 1 {
        if let Some((small, rem)) = k.small(p.f, true) {
            let b = p.bias.map_or(std::ptr::null(), |b| b.as_ptr());
            let relu = p.act == Activation::Relu;
            // SAFETY: lengths checked: `w` is row-major (d, f), `bias` has f floats, `x` d and
            // `y` f (a unique borrow); `small` is the one-tile kernel of `isa` (available) for
            // f columns with `rem` lanes in the last vector.
            unsafe { small[relu as usize](p.w.as_ptr(), b, p.x.as_ptr(), y.as_mut_ptr(), p.d, rem) };
            return Ok(());
        }
    }
    let g = p.geometry(k.lanes, 0..p.f, y.as_mut_ptr());
    // SAFETY: every length was checked against (n, d, f), so the row-major layout
    // (`ldw = f`, `wv = L`: W[k, j] at w + j + k·f) satisfies the Geometry invariants
    // unpadded; `y` is a unique borrow; `drive` belongs to `isa`, which is available.
    unsafe { (k.drive)(&g) };
    Ok(())
}
