//! 128-bit FMA (`__m128`, 4 lanes) on x86-64: the narrowest vectors of the compact and narrow
//! single-row kernels of both x86 paths (no tiles or driver of its own), and the 2/1-lane
//! tail stores the wider x86 vectors end with.

// Value-only intrinsics are safe functions in current Rust when their feature is enabled at
// compile time (e.g. `-C target-cpu=native`); the `unsafe` blocks are then redundant.
#![allow(unused_unsafe)]

use core::arch::x86_64::*;

use crate::kernel::simd::{Simd, TileFn};

/// 128-bit FMA (`__m128`, 4 lanes), for the compact single-row kernels of narrow layers
/// (`F <= 4`) on either x86 path: the VEX/EVEX encodings need AVX and FMA, which both the
/// AVX2+FMA and the AVX-512F trampolines enable. Not used by the tiled driver.
pub(crate) struct Fma128;

impl Simd for Fma128 {
    type V = __m128;
    const L: usize = 4;

    #[inline(always)]
    fn plan(_n: usize) -> (usize, usize) {
        (1, 1)
    }

    fn tile_fn(_mr: usize, _nv: usize, _ld: bool, _st: bool) -> Option<TileFn> {
        // No trampolines: only the compact kernels use these vectors (the driver splits
        // into scalar tiles if it were ever handed this type).
        None
    }

    #[inline(always)]
    unsafe fn zero() -> __m128 {
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m128 {
        // SAFETY: `p` valid for 4 reads (trait contract); unaligned load.
        unsafe { _mm_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, rem: usize) -> __m128 {
        // SAFETY: vmaskmovps does not access masked-off lanes; the first `rem` floats are
        // valid (trait contract); AVX available.
        unsafe {
            let idx = _mm_setr_epi32(0, 1, 2, 3);
            let m = _mm_cmpgt_epi32(_mm_set1_epi32(rem as i32), idx);
            _mm_maskload_ps(p, m)
        }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m128 {
        // SAFETY: `p` valid for one f32 read (trait contract); AVX available.
        unsafe { _mm_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn fma(acc: __m128, a: __m128, b: __m128) -> __m128 {
        // SAFETY: FMA available. vfmadd: a·b + acc, one rounding.
        unsafe { _mm_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    unsafe fn canon_nan(a: __m128) -> __m128 {
        // SAFETY: AVX available (this type is used only under `avx2,fma`). Unordered compare
        // of `a` with itself: all-ones for NaN lanes, which the blend takes from the canonical NaN.
        unsafe { _mm_blendv_ps(a, _mm_set1_ps(f32::NAN), _mm_cmp_ps::<_CMP_UNORD_Q>(a, a)) }
    }
    #[inline(always)]
    unsafe fn add(a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE is part of x86-64.
        unsafe { _mm_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn relu(a: __m128) -> __m128 {
        // SAFETY: AVX available. Ordered, non-signalling `<`: false for NaN and -0.0, so
        // those keep `a`; lanes below zero are cleared to +0.0 (all bits zero).
        unsafe {
            let z = _mm_setzero_ps();
            _mm_andnot_ps(_mm_cmp_ps::<_CMP_LT_OQ>(a, z), a)
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m128) {
        // SAFETY: `p` valid for 4 writes (trait contract).
        unsafe { _mm_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m128, rem: usize) {
        // SAFETY: `p` valid for `rem` <= 4 writes (trait contract); AVX available.
        unsafe {
            if rem >= 4 {
                _mm_storeu_ps(p, v);
            } else {
                store_tail4(p, v, rem);
            }
        }
    }
}

/// Stores the first `rem` (0..=3) lanes of `v` with plain 2/1-lane stores.
///
/// # Safety
/// `p` valid for `rem` writes; AVX available.
#[inline(always)]
pub(super) unsafe fn store_tail4(p: *mut f32, v: __m128, rem: usize) {
    // SAFETY: each branch writes lanes below `rem` only, within the caller's bound.
    unsafe {
        let (p, v) = if rem & 2 != 0 {
            _mm_storel_epi64(p.cast(), _mm_castps_si128(v)); // unaligned 8-byte store
            (p.add(2), _mm_movehl_ps(v, v))
        } else {
            (p, v)
        };
        if rem & 1 != 0 {
            _mm_store_ss(p, v);
        }
    }
}
