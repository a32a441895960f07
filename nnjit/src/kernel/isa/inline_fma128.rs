//! 128-bit vectors for code inlined into callers built for the default x86-64 target: SSE,
//! with the FMA (and a few AVX instructions) in inline assembly.

// Value-only intrinsics are safe functions in current Rust when their feature is enabled at
// compile time (e.g. `-C target-cpu=native`); the `unsafe` blocks are then redundant.
#![allow(unused_unsafe)]

use core::arch::x86_64::*;

use super::fma128::Fma128;
use crate::kernel::simd::{Simd, TileFn};
use crate::kernel::small::compact_body;

/// 128-bit vectors whose FMA is one `vfmadd231ps` in inline assembly and whose other
/// operations are baseline SSE/SSE2: code that uses it needs no `#[target_feature]`, so
/// rustc can inline it into a caller compiled for plain x86-64 (the default target), with
/// no call through a function pointer. Only the FMA instruction needs FMA (and AVX, for its
/// VEX encoding) at run time: use it only where the caller has checked that (an `Avx2` or
/// `Avx512` [`Isa`](crate::kernel::Isa)). The arithmetic is that of [`Fma128`]: one rounding per
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
/// of [`compact256`](super::avx2::compact256)/[`compact512`](super::avx512::compact512) for `F <= 4` with [`InlineFma128`], so it can be inlined
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
