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
//! at compile time for several tile shapes (up to 6 rows × 4 zmm vectors on AVX-512, 6 × 2
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
//! so that the weights are read row by row. [`dense`] and [`PackedDense::apply`] run on the
//! calling thread; [`parallel`] splits a product across threads (rows or column panels of the
//! output, never the contraction), which module applies do when
//! [`parallel::num_threads`] (`NNJIT_NUM_THREADS`) allows.
//!
//! ```
//! use nnjit::kernel::{dense, best_isa, Activation};
//! let x = [1.0f32, 2.0, 3.0];                            // (N=1, D=3)
//! let w = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];             // (D=3, F=2)
//! let mut y = [0.0f32; 2];
//! dense(best_isa(), &x, &w, Some(&[0.5, -10.0]), &mut y, 1, 3, 2, Activation::Relu)?;
//! assert_eq!(y, [4.5, 0.0]);
//! # Ok::<(), nnjit::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod fixed;
mod isa;
mod pack;
pub mod parallel;
mod pool;
pub mod reference;
mod simd;
mod small;
#[cfg(test)]
mod tests;
mod threads;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use fixed::FixedDense;
pub use isa::{best_isa, Isa};
pub use pack::PackedDense;

use crate::error::{Error, Result};

/// The activation fused into the kernel's epilogue.
///
/// ```
/// use nnjit::kernel::{best_isa, dense, Activation};
/// let (x, w) = ([1.0f32, -1.0], [1.0f32]); // (N=2, D=1), (D=1, F=1)
/// let mut y = [0.0f32; 2];
/// dense(best_isa(), &x, &w, None, &mut y, 2, 1, 1, Activation::Identity)?;
/// assert_eq!(y, [1.0, -1.0]);
/// dense(best_isa(), &x, &w, None, &mut y, 2, 1, 1, Activation::Relu)?; // nn.relu fused in
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

/// Checks every length of a Dense problem.
pub(crate) fn check_dense_args(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &[f32],
    n: usize,
    d: usize,
    f: usize,
) -> Result<()> {
    check_len("x", x.len(), n, d)?;
    check_len("w", w.len(), d, f)?;
    if let Some(b) = bias {
        check_len("bias", b.len(), 1, f)?;
    }
    check_len("y", y.len(), n, f)
}

/// `y = act(x·W + b)` on unpacked, row-major operands: `x` is `(n, d)`, `w` is `(d, f)`,
/// `bias` has `f` entries, `y` is `(n, f)` and is overwritten.
///
/// The checked entry: returns [`Error::InvalidArgument`] on any length mismatch or if `isa`
/// is not available on this CPU, and never panics. Allocates nothing. For repeated use of
/// the same weights, [`PackedDense`] is faster.
///
/// ```
/// use nnjit::kernel::{dense, Isa, Activation};
/// let x = [1.0f32, 2.0, 3.0, 4.0];          // (N=2, D=2)
/// let w = [1.0f32, -1.0, 2.0, 0.5];         // (D=2, F=2)
/// let mut y = [0.0f32; 4];
/// for isa in Isa::all_available() {
///     dense(isa, &x, &w, None, &mut y, 2, 2, 2, Activation::Identity)?;
///     assert_eq!(y, [5.0, 0.0, 11.0, -1.0]);
/// }
/// assert!(dense(Isa::Scalar, &x, &w, None, &mut y[..3], 2, 2, 2, Activation::Identity).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    n: usize,
    d: usize,
    f: usize,
    act: Activation,
) -> Result<()> {
    check_dense_args(x, w, bias, y, n, d, f)?;
    let relu = act == Activation::Relu;
    if n == 1 {
        if let Some((k, rem)) = isa::small_kernels(isa, f, true) {
            let b = bias.map_or(std::ptr::null(), |b| b.as_ptr());
            // SAFETY: lengths checked: `w` is row-major (d, f), `bias` has f floats, `x` d and
            // `y` f (a unique borrow); `k` is the one-tile kernel of `isa` (available) for f
            // columns with `rem` lanes in the last vector.
            unsafe { k[relu as usize](w.as_ptr(), b, x.as_ptr(), y.as_mut_ptr(), d, rem) };
            return Ok(());
        }
    }
    let drive = isa::driver(isa)?;
    let g = simd::Geometry {
        n,
        d,
        f,
        x: x.as_ptr(),
        w: w.as_ptr(),
        ldw: f,
        wv: isa.lanes(),
        bias: bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        padded: false,
        y: y.as_mut_ptr(),
        relu,
    };
    // SAFETY: every length was checked against (n, d, f), so the row-major layout
    // (`ldw = f`, `wv = L`: W[k, j] at w + j + k·f) satisfies the Geometry invariants
    // unpadded; `y` is a unique borrow; `drive` belongs to `isa`, which is available.
    unsafe { drive(&g) };
    Ok(())
}
