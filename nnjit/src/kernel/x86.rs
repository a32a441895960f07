//! x86-64 microkernels: AVX-512F (`__m512`, 16 lanes, 32 registers, masked tails) and
//! AVX2+FMA (`__m256`, 8 lanes, 16 registers).
//!
//! The `#[inline(always)]` [`Simd`] methods below are only ever inlined into the
//! `#[target_feature]` trampolines of this file, which module `isa` hands out only after
//! `is_x86_feature_detected!` confirmed the features (so valgrind, which hides AVX-512, gets
//! the AVX2 path).
//!
//! Tile plans (accumulators per tile):
//! - AVX-512: one row → 8 vectors (128 columns, 8 independent chains); more rows → 6 rows ×
//!   4 vectors (24 zmm accumulators + 4 weight vectors + 1 broadcast = 29 of 32 registers).
//! - AVX2: one row → 8 vectors (64 columns); two rows → 2 × 4; more → 6 rows × 2 vectors
//!   (12 ymm accumulators + 2 + 1 = 15 of 16 registers).

// AVX-512 intrinsics and `target_feature(enable = "avx512f")` are stable since Rust 1.89: the
// workspace `rust-version` (1.85) must be raised to 1.89 (requested of the lead).
// Value-only intrinsics are safe functions in current Rust when their feature is enabled at
// compile time (e.g. `-C target-cpu=native`); the `unsafe` blocks are then redundant.
#![allow(unused_unsafe)]

use core::arch::x86_64::*;

use super::simd::{
    drive, drive_ldy, fixed_body, small_body, small_table, tile_body, tile_table, Geometry, Simd, SmallFn, SmallTable,
    Tile, TileFn,
};
use super::small::{compact_body, narrow_body, ANY_D, NARROW_MAX_D};

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
        tile_table!(tile512, mr, nv, ld, st;
            1 x 1, 2 x 1, 3 x 1, 4 x 1, 5 x 1, 6 x 1,
            1 x 2, 2 x 2, 3 x 2, 4 x 2, 5 x 2, 6 x 2,
            1 x 3, 2 x 3, 3 x 3, 4 x 3, 5 x 3, 6 x 3,
            1 x 4, 2 x 4, 3 x 4, 4 x 4, 5 x 4, 6 x 4,
            1 x 5, 1 x 6, 1 x 7, 1 x 8)
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

/// Stores the first `rem` (0..=7) lanes of `v` with plain 4/2/1-lane stores.
///
/// # Safety
/// `p` valid for `rem` writes; AVX available.
#[inline(always)]
unsafe fn store_tail8(p: *mut f32, v: __m256, rem: usize) {
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

/// Stores the first `rem` (0..=3) lanes of `v` with plain 2/1-lane stores.
///
/// # Safety
/// `p` valid for `rem` writes; AVX available.
#[inline(always)]
unsafe fn store_tail4(p: *mut f32, v: __m128, rem: usize) {
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

/// AVX-512 microkernel trampoline.
///
/// # Safety
/// AVX-512F available and `t` as required by [`tile_body`].
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const MR: usize, const NV: usize, const LD: bool, const ST: bool>(t: &Tile) {
    // SAFETY: forwarded contract; this function is compiled with AVX-512F.
    unsafe { tile_body::<Avx512, MR, NV, LD, ST>(t) }
}

/// AVX-512 driver.
///
/// # Safety
/// AVX-512F available and `g` satisfies the [`Geometry`] invariants for 16 lanes.
pub(crate) unsafe fn drive512(g: &Geometry) {
    // SAFETY: forwarded contract.
    unsafe { drive::<Avx512>(g) }
}

/// AVX-512 driver with output rows `ldy` floats apart (a [`DriveLdyFn`](super::simd::DriveLdyFn)).
///
/// # Safety
/// AVX-512F available and `g` satisfies the [`Geometry`] invariants for 16 lanes, with
/// the `y` invariant of a `DriveLdyFn` for `ldy`.
pub(crate) unsafe fn drive512_ldy(g: &Geometry, ldy: usize) {
    // SAFETY: forwarded contract.
    unsafe { drive_ldy::<Avx512>(g, ldy) }
}

/// AVX-512 single-tile row kernel trampoline.
///
/// # Safety
/// The instruction set available and the arguments as required by [`small_body`].
#[target_feature(enable = "avx512f")]
unsafe fn small_tramp512<const NV: usize, const ST: bool, const ROWMAJOR: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
    rem: usize,
) {
    // SAFETY: forwarded contract; compiled with the instruction set.
    unsafe { small_body::<Avx512, NV, ST, ROWMAJOR, RELU>(w, bias, x, y, d, rem) }
}

small_table!(SMALL512_PACKED, small_tramp512, false; 1 2 3 4 5 6 7 8);
small_table!(SMALL512_ROWMAJOR, small_tramp512, true; 1 2 3 4 5 6 7 8);

/// AVX-512 single-row kernel for a `D → F` shape.
///
/// # Safety
/// AVX-512F available and the arguments as required by [`fixed_body`] (16-lane panels).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn fixed512<const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    // SAFETY: forwarded contract; the table covers (1, 1..=8).
    unsafe { fixed_body::<Avx512, D, F, 8>(w, bias, x, y, relu) }
}

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
        tile_table!(tile256, mr, nv, ld, st;
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

/// AVX2 microkernel trampoline.
///
/// # Safety
/// AVX2 and FMA available and `t` as required by [`tile_body`].
#[target_feature(enable = "avx2,fma")]
unsafe fn tile256<const MR: usize, const NV: usize, const LD: bool, const ST: bool>(t: &Tile) {
    // SAFETY: forwarded contract; this function is compiled with AVX2 and FMA.
    unsafe { tile_body::<Avx2, MR, NV, LD, ST>(t) }
}

/// AVX2 driver.
///
/// # Safety
/// AVX2 and FMA available and `g` satisfies the [`Geometry`] invariants for 8 lanes.
pub(crate) unsafe fn drive256(g: &Geometry) {
    // SAFETY: forwarded contract.
    unsafe { drive::<Avx2>(g) }
}

/// AVX2 driver with output rows `ldy` floats apart (a [`DriveLdyFn`](super::simd::DriveLdyFn)).
///
/// # Safety
/// AVX2 and FMA available and `g` satisfies the [`Geometry`] invariants for 8 lanes, with
/// the `y` invariant of a `DriveLdyFn` for `ldy`.
pub(crate) unsafe fn drive256_ldy(g: &Geometry, ldy: usize) {
    // SAFETY: forwarded contract.
    unsafe { drive_ldy::<Avx2>(g, ldy) }
}

/// AVX2 single-tile row kernel trampoline.
///
/// # Safety
/// The instruction set available and the arguments as required by [`small_body`].
#[target_feature(enable = "avx2,fma")]
unsafe fn small_tramp256<const NV: usize, const ST: bool, const ROWMAJOR: bool, const RELU: bool>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    d: usize,
    rem: usize,
) {
    // SAFETY: forwarded contract; compiled with the instruction set.
    unsafe { small_body::<Avx2, NV, ST, ROWMAJOR, RELU>(w, bias, x, y, d, rem) }
}

small_table!(SMALL256_PACKED, small_tramp256, false; 1 2 3 4 5 6 7 8);
small_table!(SMALL256_ROWMAJOR, small_tramp256, true; 1 2 3 4 5 6 7 8);

/// AVX2 single-row kernel for a `D → F` shape.
///
/// # Safety
/// AVX2 and FMA available and the arguments as required by [`fixed_body`] (8-lane panels).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn fixed256<const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    // SAFETY: forwarded contract; the table covers (1, 1..=8).
    unsafe { fixed_body::<Avx2, D, F, 8>(w, bias, x, y, relu) }
}

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

/// AVX2+FMA compact single-row kernel for `D → F` (module `small`): 128-bit vectors for
/// `F <= 4`, 256-bit otherwise. A [`FixedFn`](super::simd::FixedFn); `relu` is ignored
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

/// AVX-512F compact single-row kernel for `D → F` (module `small`): the narrowest vector
/// that fits, 128-bit for `F <= 4`, 256-bit for `F <= 8`, 512-bit otherwise. A
/// [`FixedFn`](super::simd::FixedFn); `relu` is ignored (`RELU` is).
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

/// 128-bit vectors whose FMA is one `vfmadd231ps` in inline assembly and whose other
/// operations are baseline SSE/SSE2: code that uses it needs no `#[target_feature]`, so
/// rustc can inline it into a caller compiled for plain x86-64 (the default target), with
/// no call through a function pointer. Only the FMA instruction needs FMA (and AVX, for its
/// VEX encoding) at run time: use it only where the caller has checked that (an `Avx2` or
/// `Avx512` [`Isa`](super::Isa)). The arithmetic is that of [`Fma128`]: one rounding per
/// FMA, the same compare for Relu and for canonical NaNs, so the bits are the same.
///
/// The VEX.128 FMA clears the upper halves of its register, so mixing it with legacy SSE
/// encodings leaves no dirty upper state (no transition penalty).
///
/// Whole-vector loads must be 16-byte aligned (the compact layout of `F <= 4` is: 4-float
/// rows from a 64-byte aligned buffer), so that SSE can fold them into arithmetic.
pub(crate) struct InlineFma128;

impl Simd for InlineFma128 {
    type V = __m128;
    const L: usize = 4;

    // The operations that are plain SSE (or SSE2) are those of `Fma128`, whose wrappers have
    // no `#[target_feature]` and so inline here too.
    #[inline(always)]
    fn plan(n: usize) -> (usize, usize) {
        Fma128::plan(n)
    }

    fn tile_fn(mr: usize, nv: usize, ld: bool, st: bool) -> Option<TileFn> {
        Fma128::tile_fn(mr, nv, ld, st)
    }

    #[inline(always)]
    unsafe fn zero() -> __m128 {
        // SAFETY: SSE only.
        unsafe { Fma128::zero() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m128 {
        debug_assert!((p as usize).is_multiple_of(16));
        // SAFETY: `p` valid for 4 reads (trait contract) and 16-byte aligned (this type's
        // contract), so SSE may fold the load into the bias add; SSE.
        unsafe { _mm_load_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, rem: usize) -> __m128 {
        let mut buf = [0.0f32; 4];
        // SAFETY: `p` valid for `rem` <= 4 reads (trait contract), `buf` holds 4 floats.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), rem.min(4));
            _mm_loadu_ps(buf.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> __m128 {
        let v: __m128;
        // SAFETY: `p` valid for one f32 read (trait contract); AVX available (this type's
        // contract). One `vbroadcastss` where SSE needs a load and a shuffle.
        unsafe {
            core::arch::asm!(
                "vbroadcastss {v}, dword ptr [{p}]",
                v = out(xmm_reg) v,
                p = in(reg) p,
                options(pure, readonly, nostack, preserves_flags)
            );
        }
        v
    }
    #[inline(always)]
    unsafe fn fma(acc: __m128, a: __m128, b: __m128) -> __m128 {
        let mut acc = acc;
        // SAFETY: FMA and AVX available (this type's contract). `vfmadd231ps acc, a, b`
        // computes a·b + acc with one rounding; it touches registers only.
        unsafe {
            core::arch::asm!(
                "vfmadd231ps {acc}, {a}, {b}",
                acc = inout(xmm_reg) acc,
                a = in(xmm_reg) a,
                b = in(xmm_reg) b,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        acc
    }
    #[inline(always)]
    unsafe fn canon_nan(a: __m128) -> __m128 {
        let mut a = a;
        // SAFETY: AVX available (this type's contract); registers only. Unordered compare of
        // `a` with itself: all-ones for NaN lanes, which the blend takes from the canonical
        // NaN (two VEX instructions where SSE2 would need five).
        unsafe {
            core::arch::asm!(
                "vcmpunordps {m}, {a}, {a}",
                "vblendvps {a}, {a}, {nan}, {m}",
                a = inout(xmm_reg) a,
                m = out(xmm_reg) _,
                nan = in(xmm_reg) _mm_set1_ps(f32::NAN),
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        a
    }
    #[inline(always)]
    unsafe fn add(a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE only.
        unsafe { Fma128::add(a, b) }
    }
    #[inline(always)]
    unsafe fn relu(a: __m128) -> __m128 {
        // SAFETY: SSE. `cmpltps` is an ordered `<`: false for NaN and -0.0, so those keep
        // `a`; lanes below zero are cleared to +0.0 (all bits zero), as in `Fma128::relu`.
        unsafe { _mm_andnot_ps(_mm_cmplt_ps(a, _mm_setzero_ps()), a) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m128) {
        // SAFETY: `p` valid for 4 writes (trait contract); SSE only.
        unsafe { Fma128::store(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: __m128, rem: usize) {
        // SAFETY: `p` valid for `rem` <= 4 writes (trait contract); SSE2 stores only
        // (`store_tail4`).
        unsafe { Fma128::store_part(p, v, rem) }
    }
}

/// The compact single-row kernel of a narrow layer (`1 <= F <= 4`) as inline code: the body
/// of [`compact256`]/[`compact512`] for `F <= 4` with [`InlineFma128`], so it can be inlined
/// into callers built for the default target, bits unchanged. A layer without a bias passes
/// `-0.0`s, which change nothing.
///
/// # Safety
/// FMA and AVX available (an `Avx2` or `Avx512` path was detected), `1 <= F <= 4`, the
/// arguments as required by [`compact_body`] with a bias, and `w` and `bias` 16-byte aligned.
#[inline(always)]
pub(crate) unsafe fn compact_inline<const D: usize, const F: usize>(
    w: *const f32,
    bias: *const f32,
    x: *const f32,
    y: *mut f32,
    relu: bool,
) {
    debug_assert!((1..=4).contains(&F));
    // SAFETY: forwarded contract; InlineFma128 needs FMA and AVX, which the caller checked.
    unsafe {
        if relu {
            compact_body::<InlineFma128, D, F, true, true>(w, bias, x, y)
        } else {
            compact_body::<InlineFma128, D, F, true, false>(w, bias, x, y)
        }
    }
}

/// AVX-512F narrow one-row kernel on 16-lane panels for `F <= 8` columns (module `small`):
/// 128-bit vectors for `F <= 4`, 256-bit otherwise; `DK` as in [`narrow_body`]. A
/// [`SmallFn`] (`rem` ignored).
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

/// AVX2+FMA narrow one-row kernel on 8-lane panels for `F <= 4` columns (128-bit vectors,
/// module `small`); `DK` as in [`narrow_body`]. A [`SmallFn`] (`rem` ignored).
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

/// A table of narrow kernels: `[f - 1][min(d, NARROW_MAX_D + 1)] = [identity, relu]`, the
/// last column for any `d` (run-time loop).
pub(crate) type NarrowTable<const NF: usize> = [[[SmallFn; 2]; NARROW_MAX_D + 2]; NF];

/// Generates a [`NarrowTable`] of a narrow trampoline for `F` in the list.
macro_rules! narrow_table {
    ($name:ident, $tramp:ident; $($f:literal)*) => {
        pub(crate) static $name: NarrowTable<{ [$($f),*].len() }> = [$(narrow_table!(@row $tramp, $f)),*];
    };
    (@row $tramp:ident, $f:literal) => {
        narrow_table!(@cols $tramp, $f; 0 1 2 3 4 5 6 7 8 ANY_D)
    };
    (@cols $tramp:ident, $f:literal; $($d:tt)*) => {
        [$([$tramp::<$f, $d, false> as SmallFn, $tramp::<$f, $d, true> as SmallFn]),*]
    };
}

narrow_table!(NARROW512, narrow512; 1 2 3 4 5 6 7 8);
narrow_table!(NARROW256, narrow256; 1 2 3 4);
