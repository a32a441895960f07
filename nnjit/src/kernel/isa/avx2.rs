//! AVX2 + FMA: `__m256`, 8 lanes, 16 registers.
//!
//! The `#[inline(always)]` [`Simd`] methods below are only ever inlined into functions compiled
//! with `#[target_feature(enable = "avx2,fma")]` (the trampolines of [`trampolines!`], the
//! compact and narrow kernels below, and those of the AVX-512 path, which implies both), handed
//! out only after `is_x86_feature_detected!` confirmed the features.
//!
//! Tile plan: one row → 8 vectors (64 columns); two rows → 2 × 4; more → 6 rows × 2 vectors
//! (12 ymm accumulators + 2 + 1 = 15 of 16 registers).

// Value-only intrinsics are safe functions in current Rust when their feature is enabled at
// compile time (e.g. `-C target-cpu=native`); the `unsafe` blocks are then redundant.
#![allow(unused_unsafe)]

use core::arch::x86_64::*;

use super::fma128::{store_tail4, Fma128};
use super::{compact_fns, x86_fixed, FixedPlan, IsaCode, Kernels};
use crate::kernel::simd::{tile_table, trampolines, Simd, TileFn};
use crate::kernel::small::{compact_body, narrow_body, narrow_table};

/// AVX2 + FMA.
pub(crate) struct Avx2;

impl Simd for Avx2 {
    type V = __m256;
    const L: usize = 8;

    #[inline(always)]
    fn plan(n: usize) -> (usize, usize) {
        match n {
            1 => (8, 1),
            2 => (4, 2),
            _ => (2, 6),
        }
    }

    fn tile_fn(mr: usize, nv: usize, ld: bool, st: bool) -> Option<TileFn> {
        tile_table!(tile, mr, nv, ld, st;
            1 x 1, 2 x 1, 3 x 1, 4 x 1, 5 x 1, 6 x 1,
            1 x 2, 2 x 2, 3 x 2, 4 x 2, 5 x 2, 6 x 2,
            1 x 3, 2 x 3, 1 x 4, 2 x 4,
            1 x 5, 1 x 6, 1 x 7, 1 x 8)
    }

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: AVX available (trait contract).
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: `p` valid for 8 reads (trait contract); unaligned load.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, rem: usize) -> __m256 {
        // SAFETY: vmaskmovps does not access masked-off lanes (no fault, no read); the first
        // `rem` floats are valid (trait contract). AVX2 available.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let m = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), idx);
            _mm256_maskload_ps(p, m)
        }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m256 {
        // SAFETY: `p` valid and aligned for one f32 read (trait contract).
        unsafe { _mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn fma(acc: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: FMA available. vfmadd: a·b + acc, one rounding.
        unsafe { _mm256_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    unsafe fn canon_nan(a: __m256) -> __m256 {
        // SAFETY: AVX available. Unordered compare of `a` with itself: all-ones for NaN lanes,
        // which the blend takes from the canonical NaN.
        unsafe { _mm256_blendv_ps(a, _mm256_set1_ps(f32::NAN), _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a)) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX available.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn relu(a: __m256) -> __m256 {
        // SAFETY: AVX available. Ordered, non-signalling `<`: false for NaN and -0.0, so
        // the blend keeps `a` there.
        unsafe {
            let z = _mm256_setzero_ps();
            _mm256_blendv_ps(a, z, _mm256_cmp_ps::<_CMP_LT_OQ>(a, z))
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: `p` valid for 8 writes (trait contract).
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m256, rem: usize) {
        // SAFETY: `p` valid for `rem` <= 8 writes (trait contract); AVX available.
        unsafe {
            if rem >= 8 {
                _mm256_storeu_ps(p, v);
            } else {
                store_tail8(p, v, rem);
            }
        }
    }
}

/// Stores the first `rem` (0..=7) lanes of `v` with plain 4/2/1-lane stores.
///
/// # Safety
/// `p` valid for `rem` writes; AVX available.
#[inline(always)]
pub(super) unsafe fn store_tail8(p: *mut f32, v: __m256, rem: usize) {
    // SAFETY: each branch writes lanes below `rem` only, within the caller's bound.
    unsafe {
        let (p, v) = if rem & 4 != 0 {
            _mm_storeu_ps(p, _mm256_castps256_ps128(v));
            (p.add(4), _mm256_extractf128_ps::<1>(v))
        } else {
            (p, _mm256_castps256_ps128(v))
        };
        store_tail4(p, v, rem & 3);
    }
}

trampolines!(Avx2, "avx2,fma");

/// AVX2+FMA compact single-row kernel for `D → F` (module `small`): 128-bit vectors for
/// `F <= 4`, 256-bit otherwise. A [`FixedFn`](crate::kernel::simd::FixedFn); `relu` is ignored
/// (`RELU` is).
///
/// # Safety
/// AVX2 and FMA available, `1 <= F <= 64`, and the arguments as required by
/// [`compact_body`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn compact256<const D: usize, const F: usize, const BIAS: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    _relu: bool,
) {
    // SAFETY: forwarded contract; compiled with AVX2 and FMA, which both vector types need.
    unsafe {
        if F <= 4 {
            compact_body::<Fma128, D, F, BIAS, RELU>(w, bias, x, y)
        } else {
            compact_body::<Avx2, D, F, BIAS, RELU>(w, bias, x, y)
        }
    }
}

/// AVX2+FMA narrow one-row kernel on 8-lane panels for `F <= 4` columns (128-bit vectors,
/// module `small`); `DK` as in [`narrow_body`]. A [`SmallFn`](crate::kernel::simd::SmallFn) (`rem` ignored).
///
/// # Safety
/// AVX2 and FMA available, `1 <= F <= 4`, and the arguments as required by
/// [`narrow_body`] with 8-lane panels.
#[target_feature(enable = "avx2,fma")]
unsafe fn narrow256<const F: usize, const DK: usize, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
    _rem: usize,
) {
    // SAFETY: forwarded contract; compiled with AVX2 and FMA.
    unsafe { narrow_body::<Fma128, 8, F, DK, RELU>(w, bias, x, y, d) }
}

narrow_table!(NARROW, narrow256; 1 2 3 4);

impl IsaCode for Avx2 {
    const KERNELS: &'static Kernels = &simd_kernels(&NARROW);

    fn fixed<const D: usize, const F: usize>(bias: bool) -> FixedPlan {
        x86_fixed::<Self, D, F>(bias, compact_fns!(compact256), fixed::<D, F>)
    }
}
