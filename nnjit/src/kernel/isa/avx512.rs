//! AVX-512F: `__m512`, 16 lanes, 32 registers, masked tails.
//!
//! The `#[inline(always)]` [`Simd`] methods below are only ever inlined into functions compiled
//! with `#[target_feature(enable = "avx512f")]` (the trampolines of [`trampolines!`] and the
//! compact and narrow kernels below), which [`Isa::Avx512`](crate::kernel::Isa::Avx512)'s table
//! hands out only after `is_x86_feature_detected!` confirmed the feature (so valgrind, which
//! hides AVX-512, gets the AVX2 path).
//!
//! Tile plan: one row → 8 vectors (128 columns, 8 independent chains); more rows → 6 rows ×
//! 4 vectors (24 zmm accumulators + 4 weight vectors + 1 broadcast = 29 of 32 registers).

// AVX-512 intrinsics and `target_feature(enable = "avx512f")` are stable since Rust 1.89 (the
// workspace `rust-version`).
// Value-only intrinsics are safe functions in current Rust when their feature is enabled at
// compile time (e.g. `-C target-cpu=native`); the `unsafe` blocks are then redundant.
#![allow(unused_unsafe)]

use core::arch::x86_64::*;

use super::avx2::{store_tail8, Avx2};
use super::fma128::Fma128;
use super::{compact_fns, x86_fixed, FixedPlan, IsaCode, Kernels};
use crate::kernel::simd::{tile_table, trampolines, Simd, TileFn};
use crate::kernel::small::{compact_body, narrow_body, narrow_table};

/// AVX-512F.
pub(crate) struct Avx512;

/// The all-ones mask of the first `rem` (1..=16) lanes.
#[inline(always)]
fn mask16(rem: usize) -> __mmask16 {
    debug_assert!((1..=16).contains(&rem));
    ((1u32 << rem) - 1) as __mmask16
}

impl Simd for Avx512 {
    type V = __m512;
    const L: usize = 16;

    #[inline(always)]
    fn plan(n: usize) -> (usize, usize) {
        if n == 1 {
            // One row streams W: 6 panels at a time measured faster than 8 (1×256×256 from
            // L2: 2.40 against 2.56 µs; 1×1024×1024 from L3: 44.7 against 46.8 µs) and than 4.
            (6, 1)
        } else {
            (4, 6)
        }
    }

    fn tile_fn(mr: usize, nv: usize, ld: bool, st: bool) -> Option<TileFn> {
        tile_table!(tile, mr, nv, ld, st; rows6_vecs4)
    }

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: AVX-512F available (trait contract).
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: `p` valid for 16 reads (trait contract); unaligned load.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, rem: usize) -> __m512 {
        // SAFETY: masked-off lanes are not accessed (AVX-512 fault suppression); the first
        // `rem` floats are valid (trait contract).
        unsafe { _mm512_maskz_loadu_ps(mask16(rem), p) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m512 {
        // SAFETY: `p` valid for one read (trait contract).
        unsafe { _mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn fma(acc: __m512, a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available. vfmadd: a·b + acc, one rounding.
        unsafe { _mm512_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    unsafe fn canon_nan(a: __m512) -> __m512 {
        // SAFETY: AVX-512F available. Unordered compare of `a` with itself: true for NaN.
        unsafe { _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a), _mm512_set1_ps(f32::NAN)) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F available.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn relu(a: __m512) -> __m512 {
        // SAFETY: AVX-512F available. Ordered, non-signalling `<`: false for NaN and -0.0.
        unsafe {
            let z = _mm512_setzero_ps();
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, z);
            _mm512_mask_mov_ps(a, neg, z)
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // Two 256-bit stores rather than one 512-bit store: loads of the result that follow
        // soon (a caller copying the output, the next layer) can be forwarded from them,
        // while a zmm store stalls narrower loads on some CPUs (e.g. AMD Zen 4).
        // SAFETY: `p` valid for 16 writes (trait contract); AVX-512F available.
        unsafe {
            _mm256_storeu_ps(p, _mm512_castps512_ps256(v));
            _mm256_storeu_ps(p.add(8), hi256(v));
        }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m512, rem: usize) {
        // Plain stores of 8/4/2/1 lanes rather than a masked store (which cannot be
        // forwarded to later loads on some CPUs).
        // SAFETY: writes exactly the first `rem` <= 16 floats at `p`, which are valid (trait
        // contract); AVX-512F available.
        unsafe {
            if rem >= 16 {
                Self::store(p, v);
                return;
            }
            let (p, lo) = if rem & 8 != 0 {
                _mm256_storeu_ps(p, _mm512_castps512_ps256(v));
                (p.add(8), hi256(v))
            } else {
                (p, _mm512_castps512_ps256(v))
            };
            store_tail8(p, lo, rem & 7);
        }
    }
}

/// The upper 8 lanes of `v`.
#[inline(always)]
unsafe fn hi256(v: __m512) -> __m256 {
    // SAFETY: AVX-512F available (callers' contract).
    unsafe { _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))) }
}

trampolines!(Avx512, "avx512f");

/// AVX-512F compact single-row kernel for `D → F` (module `small`): the narrowest vector
/// that fits, 128-bit for `F <= 4`, 256-bit for `F <= 8`, 512-bit otherwise. A
/// [`FixedFn`](crate::kernel::simd::FixedFn); `relu` is ignored (`RELU` is).
///
/// # Safety
/// AVX-512F available, `1 <= F <= 128`, and the arguments as required by [`compact_body`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn compact512<const D: usize, const F: usize, const BIAS: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    _relu: bool,
) {
    // SAFETY: forwarded contract; compiled with AVX-512F, which implies AVX2 and FMA.
    unsafe {
        if F <= 4 {
            compact_body::<Fma128, D, F, BIAS, RELU>(w, bias, x, y)
        } else if F <= 8 {
            compact_body::<Avx2, D, F, BIAS, RELU>(w, bias, x, y)
        } else {
            compact_body::<Avx512, D, F, BIAS, RELU>(w, bias, x, y)
        }
    }
}

/// AVX-512F narrow one-row kernel on 16-lane panels for `F <= 8` columns (module `small`):
/// 128-bit vectors for `F <= 4`, 256-bit otherwise; `DK` as in [`narrow_body`]. A
/// [`SmallFn`](crate::kernel::simd::SmallFn) (`rem` ignored).
///
/// # Safety
/// AVX-512F available, `1 <= F <= 8`, and the arguments as required by [`narrow_body`]
/// with 16-lane panels.
#[target_feature(enable = "avx512f")]
unsafe fn narrow512<const F: usize, const DK: usize, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
    _rem: usize,
) {
    // SAFETY: forwarded contract; compiled with AVX-512F, which implies AVX2 and FMA.
    unsafe {
        if F <= 4 {
            narrow_body::<Fma128, 16, F, DK, RELU>(w, bias, x, y, d)
        } else {
            narrow_body::<Avx2, 16, F, DK, RELU>(w, bias, x, y, d)
        }
    }
}

narrow_table!(NARROW, narrow512; 1 2 3 4 5 6 7 8);

impl IsaCode for Avx512 {
    const KERNELS: &'static Kernels = &simd_kernels(&NARROW);

    fn fixed<const D: usize, const F: usize>(bias: bool) -> FixedPlan {
        x86_fixed::<Self, D, F>(bias, compact_fns!(compact512), fixed::<D, F>)
    }
}
