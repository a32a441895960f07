//! The portable scalar path: plain Rust, [`f32::mul_add`] (a correctly rounded fused
//! multiply-add on every target), row-major weights (one lane: `L = 1`), always available.

use super::{FixedPlan, IsaCode, Kernels};
use crate::kernel::reference::canon_nan;
use crate::kernel::simd::Geometry;

/// The scalar path's code.
pub(crate) struct Scalar;

impl IsaCode for Scalar {
    const KERNELS: &'static Kernels = &Kernels {
        lanes: 1,
        drive: drive_scalar,
        drive_ldy: drive_scalar_ldy,
        // No register tiles: one cache line of `y`.
        col_tile: |_| 16,
        small_packed: None,
        small_rowmajor: None,
        narrow: &[],
    };

    fn fixed<const D: usize, const F: usize>(_bias: bool) -> FixedPlan {
        FixedPlan::packed(fixed_scalar::<D, F>)
    }
}

/// The scalar path: the same chains as [`dense_reference`](crate::kernel::reference::dense_reference), in an order friendly to
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
/// [`DriveLdyFn`](crate::kernel::simd::DriveLdyFn)): the same chains, written at `y + r·ldy + j` for
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
    let g = Geometry { n: 1, d: D, f: F, x, w, ldw: F, wv: 1, bias, padded: false, y, relu, rev: false };
    // SAFETY: the caller's contract is the Geometry invariants for one row.
    unsafe { drive_scalar(&g) }
}
