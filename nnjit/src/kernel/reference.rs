//! The arithmetic contract in plain scalar Rust, and the portable scalar path.
//!
//! [`dense_reference`] is the contract written as literally as possible; every other path
//! is tested against it bit for bit. It uses [`f32::mul_add`], which is a correctly rounded
//! fused multiply-add on every target (an `fma` instruction where the CPU has one, an exact
//! software `fmaf` where it does not), so it is exact on CPUs without FMA too.
//!
//! ```
//! use nnjit::kernel::{dense, reference::dense_reference, Activation, Isa};
//! let (x, w) = ([0.1f32, 0.2, 0.3], [0.7f32, -1.3, 2.9, 0.01, -0.5, 1e-3]); // (1, 3) · (3, 2)
//! let mut want = [0.0f32; 2];
//! dense_reference(&x, &w, None, &mut want, 1, 3, 2, Activation::Identity)?;
//! for isa in Isa::all_available() {
//!     let mut y = [0.0f32; 2];
//!     dense(isa, &x, &w, None, &mut y, 1, 3, 2, Activation::Identity)?;
//!     assert_eq!(y.map(f32::to_bits), want.map(f32::to_bits)); // every path: the same bits
//! }
//! # Ok::<(), nnjit::Error>(())
//! ```

use super::simd::Geometry;
use super::{check_dense_args, Activation};
use crate::error::Result;

/// `y = act(x·W + b)`, computed exactly as the contract states:
/// for every output `(n, j)`, `acc = +0.0`, then `acc = fma(x[n,k], W[k,j], acc)` for `k` in
/// increasing order, then `y = acc + b[j]` (no add without bias), then the activation.
///
/// Slow (one output at a time, walking `W` by columns); meant as the oracle for tests.
/// Arguments and errors as for [`dense`](super::dense).
///
/// ```
/// use nnjit::kernel::{reference::dense_reference, Activation};
/// let (x, w, b) = ([1.0f32, 2.0], [1.0f32, -1.0, 0.5, 2.0], [0.25f32, 0.0]);
/// let mut y = [0.0f32; 2];
/// dense_reference(&x, &w, Some(&b), &mut y, 1, 2, 2, Activation::Relu).unwrap();
/// assert_eq!(y, [2.25, 3.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense_reference(
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
    for r in 0..n {
        for j in 0..f {
            let mut acc = 0.0f32;
            for k in 0..d {
                acc = x[r * d + k].mul_add(w[k * f + j], acc);
            }
            let mut out = match bias {
                Some(b) => acc + b[j],
                None => acc,
            };
            if act == Activation::Relu && out < 0.0 {
                out = 0.0;
            }
            y[r * f + j] = canon_nan(out);
        }
    }
    Ok(())
}

/// `v`, or the canonical quiet NaN `f32::NAN` if `v` is any NaN (the contract's last step:
/// which NaN an operation returns varies with operand order and CPU; this one does not).
///
/// ```
/// use nnjit::kernel::reference::canon_nan;
/// assert_eq!(canon_nan(f32::from_bits(0xFFC0_0000)).to_bits(), 0x7FC0_0000); // x86's default NaN
/// assert_eq!(canon_nan(-0.0).to_bits(), (-0.0f32).to_bits()); // everything else unchanged
/// ```
#[inline]
#[must_use]
pub fn canon_nan(v: f32) -> f32 {
    if v.is_nan() {
        f32::NAN
    } else {
        v
    }
}

/// The scalar path: the same chains as [`dense_reference`], in an order friendly to
/// row-major weights (each output row accumulates in `y`, one weight row at a time).
///
/// # Safety
/// `g` satisfies the [`Geometry`] invariants for 1 lane (element `W[k, j]` at
/// `w + j·wv + k·ldw`).
pub(crate) unsafe fn drive_scalar(g: &Geometry) {
    // SAFETY: forwarded contract; `ldy = f` is the row-major `(n, f)` output of the invariants.
    unsafe { drive_scalar_ldy(g, g.f) }
}

/// [`drive_scalar`] with output rows `ldy` floats apart (a
/// [`DriveLdyFn`](super::simd::DriveLdyFn)): the same chains, written at `y + r·ldy + j` for
/// `r < n`, `j < f` only.
///
/// # Safety
/// `g` satisfies the [`Geometry`] invariants for 1 lane, with the `y` invariant of a
/// `DriveLdyFn` for `ldy`.
pub(crate) unsafe fn drive_scalar_ldy(g: &Geometry, ldy: usize) {
    for r in 0..g.n {
        let xr = g.x.wrapping_add(r * g.d);
        let yr = g.y.wrapping_add(r * ldy);
        for j in 0..g.f {
            // SAFETY: y[r, j] is in bounds for writes (Geometry invariants).
            unsafe { *yr.wrapping_add(j) = 0.0 };
        }
        for k in 0..g.d {
            // SAFETY: x[r, k] is in bounds.
            let xv = unsafe { *xr.wrapping_add(k) };
            let wk = g.w.wrapping_add(k * g.ldw);
            for j in 0..g.f {
                let yp = yr.wrapping_add(j);
                // SAFETY: W[k, j] and y[r, j] are in bounds; y does not overlap W.
                unsafe { *yp = xv.mul_add(*wk.wrapping_add(j * g.wv), *yp) };
            }
        }
        for j in 0..g.f {
            let yp = yr.wrapping_add(j);
            // SAFETY: y[r, j] and (if non-null) bias[j] are in bounds.
            unsafe {
                if !g.bias.is_null() {
                    *yp += *g.bias.wrapping_add(j);
                }
                if g.relu && *yp < 0.0 {
                    *yp = 0.0;
                }
                *yp = canon_nan(*yp);
            }
        }
    }
}

/// The scalar single-row kernel for a compile-time shape (row-major weights).
///
/// # Safety
/// `w` valid for `D·F` reads (row-major), `bias` null or valid for `F` reads, `x` for `D`
/// reads, `y` for `F` writes, `y` overlapping none of them.
pub(crate) unsafe fn fixed_scalar<const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    let g = Geometry { n: 1, d: D, f: F, x, w, ldw: F, wv: 1, bias, padded: false, y, relu };
    // SAFETY: the caller's contract is the Geometry invariants for one row.
    unsafe { drive_scalar(&g) }
}
