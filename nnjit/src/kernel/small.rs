//! Single-row kernels for compile-time shapes, behind [`FixedDense`](super::FixedDense).
//!
//! A `D → F` layer whose `F` fits one register tile of the chosen instruction set gets its
//! own copy of the parameters in a *compact* layout and a kernel monomorphised for `(ISA,
//! D, F, bias, relu)`: the narrowest vector that fits `F` (128-bit FMA for `F <= 4`, 256-bit
//! for `F <= 8`, otherwise the ISA's widest), the contraction fully unrolled by rustc/LLVM
//! for small `D`, no masks (rows are zero-padded to whole vectors; only the last vector's
//! store may be partial, with plain narrower stores), the bias add fused, and no run-time
//! tests of bias or activation. It is chosen once, at bind time, by `isa::fixed_kernels` (through the instruction set's `IsaCode::fixed`).
//!
//! # Compact layout
//! Row `k` of `W` starts at `k·P` with `P = `[`row_stride`]`(F)` floats (columns `F..P`
//! are `+0.0`), `D` rows in all, followed by the `P` floats of the bias (also zero-padded)
//! when there is one. A single row reads the rows of `W` in order: one sequential stream.
//!
//! # Arithmetic
//! The kernels are [`tile_body`] (one row, `NV` vectors) with constant arguments, so each
//! lane is one output's chain: `acc = +0.0`, `acc = fma(x[k], W[k, j], acc)` for `k` in
//! increasing order, `+ b[j]` if there is a bias, then Relu if asked — the contract of the
//! [module docs](super), bit for bit. The padded lanes compute `+0.0`-weight chains that
//! are never stored.

// The compact kernels exist on x86-64 only (other targets keep the packed kernels).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::ptr;

use super::simd::{drive, tile_body, Geometry, Simd, SmallFn, Tile};

/// Floats per row of the compact layout for `f` columns: 4 for `f <= 4` (one 128-bit
/// vector), 8 for `f <= 8` (one 256-bit vector), otherwise `f` rounded up to 16 (whole
/// 512-bit vectors, or pairs of 256-bit vectors). Depends on `f` only, so the layout is
/// the same for every x86 path and every offset into it is a compile-time constant.
pub(crate) const fn row_stride(f: usize) -> usize {
    if f <= 4 {
        4
    } else if f <= 8 {
        8
    } else {
        f.div_ceil(16) * 16
    }
}

/// Floats of the compact buffer of a `d × f` layer (weights, then the bias if any), or
/// `None` on overflow.
pub(crate) fn compact_len(d: usize, f: usize, bias: bool) -> Option<usize> {
    d.checked_add(usize::from(bias))?.checked_mul(row_stride(f))
}

/// Writes row-major `w` (`d × f`) and `bias` into `dst` in the compact layout. `dst` must be
/// [`compact_len`] zeros.
pub(crate) fn pack_compact(dst: &mut [f32], w: &[f32], bias: Option<&[f32]>, d: usize, f: usize) {
    let p = row_stride(f);
    debug_assert_eq!(Some(dst.len()), compact_len(d, f, bias.is_some()));
    if f == 0 {
        return;
    }
    for (row, src) in dst.chunks_exact_mut(p).zip(w.chunks_exact(f)) {
        row[..f].copy_from_slice(src);
    }
    if let Some(b) = bias {
        dst[d * p..d * p + f].copy_from_slice(b);
    }
}

/// Body of a compact single-row kernel with `S`'s vectors: `y = act(x·W + b)` for one row
/// of a `D → F` layer in the compact layout.
///
/// Requires `1 <= F <= 8·S::L` and `F.div_ceil(S::L)·S::L <= row_stride(F)` (every load a
/// whole vector inside a padded row).
///
/// # Safety
/// `w` points at the compact layout of a `D × F` layer (`D·row_stride(F)` floats), `bias`
/// at its `row_stride(F)` bias floats if `BIAS` (ignored otherwise), `x` is valid for `D`
/// reads, `y` for `F` writes and overlaps none of them; `S`'s instruction set is available.
#[inline(always)]
pub(crate) unsafe fn compact_body<S: Simd, const D: usize, const F: usize, const BIAS: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
) {
    let l = S::L;
    let nv = F.div_ceil(l);
    debug_assert!(F >= 1 && nv <= 8 && nv * l <= row_stride(F));
    let rem = F - (nv - 1) * l;
    let st = rem != l;
    if BIAS {
        // SAFETY: with a bias, `bias` points at its floats (caller's contract), so it is not
        // null; telling the compiler removes the null test of the epilogue.
        unsafe { std::hint::assert_unchecked(!bias.is_null()) };
    }
    let t = Tile {
        k: D,
        x,
        ldx: D,
        w,
        ldw: row_stride(F),
        wv: l,
        bias: if BIAS { bias } else { ptr::null() },
        y,
        ldy: F,
        rem,
        relu: RELU,
        acc_in: false,
        epi: true,
    };
    macro_rules! tile {
        ($($n:literal)*) => {
            match (nv, st) {
                $(
                    // SAFETY: one row; vector v reads W[k, v·L .. v·L+L] for k < D, within the
                    // padded rows (`nv·L <= row_stride(F)`), and the padded bias likewise;
                    // stores cover columns 0..F (the last vector partially when `st`).
                    ($n, false) => unsafe { tile_body::<S, 1, $n, false, false>(&t) },
                    // SAFETY: as above.
                    ($n, true) => unsafe { tile_body::<S, 1, $n, false, true>(&t) },
                )*
                _ => unreachable!("compact kernels cover at most 8 vectors"),
            }
        };
    }
    tile!(1 2 3 4 5 6 7 8);
}

/// A single row of a `D → F` layer in the packed panels of `S` (`ldw = L`, `wv = D·L`,
/// padded), through the whole-problem driver: the fallback of [`FixedDense`](super::FixedDense)
/// for long contractions whose columns do not fit one tile.
///
/// # Safety
/// `w`/`bias` (or null) are `S`'s packed panels of a `D × F` layer, `x` valid for `D` reads,
/// `y` for `F` writes (overlapping none of them); `S`'s instruction set is available.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) unsafe fn packed_row<S: Simd, const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    let g = Geometry { n: 1, d: D, f: F, x, w, ldw: S::L, wv: D * S::L, bias, padded: true, y, relu, rev: false };
    // SAFETY: the caller's contract is the Geometry invariants of one padded row.
    unsafe { drive::<S>(&g) }
}

/// A single row of a `D → F` layer in NEON's packed panels through the one-tile kernels of
/// `PackedDense` (`F <= 32`): what `FixedDense` ran for long contractions before the
/// compact kernels, kept for NEON.
///
/// # Safety
/// As [`packed_row`] for NEON, and `1 <= F <= 32`.
#[cfg(target_arch = "aarch64")]
pub(crate) unsafe fn small_row_neon<const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    let (i, rem) = super::simd::small_index(F, 4);
    let k = super::isa::neon::SMALL_PACKED[i][usize::from(relu)];
    // SAFETY: the kernel of the table for F columns (`rem` lanes in the last vector) on NEON
    // panels of D × F, per the caller's contract.
    unsafe { k(w, bias, x, y, D, rem) }
}

/// `DK` of a [`narrow_body`] whose contraction length is only known at run time.
pub(crate) const ANY_D: usize = usize::MAX;

/// Contraction lengths `0..=NARROW_MAX_D` get narrow kernels with `d` a constant.
pub(crate) const NARROW_MAX_D: usize = 8;

/// Body of a narrow one-row kernel on packed panels `PL` lanes wide (those of
/// [`PackedDense`](super::PackedDense)) for exactly `F <= S::L <= PL` columns: reads only
/// the first `S::L` lanes of each panel row (128-bit or 256-bit vectors inside 512-bit
/// panels), with `F` a constant, so the store of the last lanes needs no run-time tests.
/// The signature of a `SmallFn` (`rem` is `F`, and ignored). `DK` is the contraction length
/// `d` if it is fixed (short contractions get their own unrolled kernels), or [`ANY_D`].
///
/// # Safety
/// `w` is the first packed panel (`d` rows of `PL` floats, zero-padded past `F`), `bias`
/// null or its padded panel, `x` valid for `d` reads, `y` for `F` writes (overlapping none
/// of them); `S`'s instruction set is available; `DK` is `d` or [`ANY_D`].
#[inline(always)]
pub(crate) unsafe fn narrow_body<S: Simd, const PL: usize, const F: usize, const DK: usize, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
) {
    debug_assert!(F >= 1 && F <= S::L && S::L <= PL);
    debug_assert!(DK == ANY_D || DK == d);
    // A constant contraction length is unrolled by the compiler.
    let d = if DK == ANY_D { d } else { DK };
    let t =
        Tile { k: d, x, ldx: d, w, ldw: PL, wv: d * PL, bias, y, ldy: F, rem: F, relu: RELU, acc_in: false, epi: true };
    // SAFETY: one row, one vector: W[k, 0..L] and bias[0..L] lie inside the padded panel
    // (L <= PL); the store covers columns 0..F (partially when F < L).
    unsafe {
        if F == S::L {
            tile_body::<S, 1, 1, false, false>(&t)
        } else {
            tile_body::<S, 1, 1, false, true>(&t)
        }
    }
}

/// A table of narrow kernels: `[f - 1][min(d, NARROW_MAX_D + 1)] = [identity, relu]`, the
/// last column for any `d` (run-time loop).
pub(crate) type NarrowTable = [[SmallFn; 2]; NARROW_MAX_D + 2];

/// Generates the `static $name: [NarrowTable; _]` of a narrow trampoline
/// `$tramp::<F, DK, RELU>` (see [`narrow_body`]) for `F` in the list (x86 only: NEON has no
/// narrow kernels).
#[cfg(target_arch = "x86_64")]
macro_rules! narrow_table {
    ($name:ident, $tramp:ident; $($f:literal)*) => {
        pub(crate) static $name: [$crate::kernel::small::NarrowTable; [$($f),*].len()] =
            [$($crate::kernel::small::narrow_table!(@row $tramp, $f)),*];
    };
    (@row $tramp:ident, $f:literal) => {
        $crate::kernel::small::narrow_table!(@cols $tramp, $f; 0 1 2 3 4 5 6 7 8 { $crate::kernel::small::ANY_D })
    };
    (@cols $tramp:ident, $f:literal; $($d:tt)*) => {
        [$([
            $tramp::<$f, $d, false> as $crate::kernel::simd::SmallFn,
            $tramp::<$f, $d, true> as $crate::kernel::simd::SmallFn,
        ]),*]
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use narrow_table;
