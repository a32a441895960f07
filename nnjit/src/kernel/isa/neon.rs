//! AArch64 NEON microkernels (`float32x4_t`, 4 lanes, 32 registers).
//!
//! Compiled only on `aarch64`. `fmla` (`vfmaq_f32`) is a fused multiply-add with one
//! rounding, so the chains are the same as on every other path. Tails (fewer than 4 columns)
//! go through a small stack buffer: NEON has no masked loads or stores.
//!
//! Tile plan: one row → 8 vectors (32 columns, 8 chains); more rows → 6 rows × 4 vectors
//! (24 accumulators + 4 weight vectors + 1 broadcast = 29 of 32 registers).

// The value-only NEON intrinsics are safe functions in current Rust, and NEON is a baseline
// feature of AArch64 targets, so some `unsafe` blocks below are redundant there (but needed
// by older compilers).
#![allow(unused_unsafe)]

// Named imports, not a glob: `core::arch::aarch64` also exports the barrier domains `LD`
// and `ST`, which would shadow the const generic parameters of the trampolines below.
use core::arch::aarch64::{
    float32x4_t, vaddq_f32, vbslq_f32, vceqq_f32, vcltq_f32, vdupq_n_f32, vfmaq_f32, vld1q_dup_f32, vld1q_f32,
    vst1q_f32,
};

use super::{FixedPlan, IsaCode, Kernels, UNROLL_MAX_D};
use crate::kernel::simd::{tile_table, trampolines, Simd, TileFn};
use crate::kernel::small::{packed_row, small_row_neon};

/// NEON.
pub(crate) struct Neon;

impl Simd for Neon {
    type V = float32x4_t;
    const L: usize = 4;

    #[inline(always)]
    fn plan(n: usize) -> (usize, usize) {
        if n == 1 {
            (8, 1)
        } else {
            (4, 6)
        }
    }

    fn tile_fn(mr: usize, nv: usize, ld: bool, st: bool) -> Option<TileFn> {
        tile_table!(tile, mr, nv, ld, st; rows6_vecs4)
    }

    #[inline(always)]
    unsafe fn zero() -> float32x4_t {
        // SAFETY: NEON available (trait contract).
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        // SAFETY: `p` valid for 4 reads (trait contract); ld1 has no alignment requirement
        // beyond that of f32.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, rem: usize) -> float32x4_t {
        let mut tmp = [0.0f32; 4];
        // SAFETY: `p` valid for `rem` <= 4 reads (trait contract); `tmp` is a local of 4
        // floats that cannot overlap it.
        unsafe {
            core::ptr::copy_nonoverlapping(p, tmp.as_mut_ptr(), rem.min(4));
            vld1q_f32(tmp.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> float32x4_t {
        // SAFETY: `p` valid for one read (trait contract).
        unsafe { vld1q_dup_f32(p) }
    }
    #[inline(always)]
    unsafe fn fma(acc: float32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON available. fmla: acc + a·b, one rounding.
        unsafe { vfmaq_f32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn canon_nan(a: float32x4_t) -> float32x4_t {
        // SAFETY: NEON available. `a == a` is false exactly for NaN lanes, which the bit
        // select takes from the canonical NaN.
        unsafe { vbslq_f32(vceqq_f32(a, a), a, vdupq_n_f32(f32::NAN)) }
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON available.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn relu(a: float32x4_t) -> float32x4_t {
        // SAFETY: NEON available. fcmgt-based `<` is false for NaN and for -0.0 < 0.0, so
        // the bit select keeps `a` there.
        unsafe {
            let z = vdupq_n_f32(0.0);
            vbslq_f32(vcltq_f32(a, z), z, a)
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        // SAFETY: `p` valid for 4 writes (trait contract).
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: float32x4_t, rem: usize) {
        let mut tmp = [0.0f32; 4];
        // SAFETY: `tmp` holds 4 floats; `p` is valid for `rem` <= 4 writes (trait contract)
        // and cannot overlap the local `tmp`.
        unsafe {
            vst1q_f32(tmp.as_mut_ptr(), v);
            core::ptr::copy_nonoverlapping(tmp.as_ptr(), p, rem.min(4));
        }
    }
}

trampolines!(Neon, "neon");

impl IsaCode for Neon {
    const KERNELS: &'static Kernels = &simd_kernels(&[]);

    fn fixed<const D: usize, const F: usize>(_bias: bool) -> FixedPlan {
        if D <= UNROLL_MAX_D || F == 0 {
            FixedPlan::packed(fixed::<D, F>)
        } else if F <= 8 * Self::L {
            FixedPlan::packed(small_row_neon::<D, F>)
        } else {
            FixedPlan::packed(packed_row::<Self, D, F>)
        }
    }
}
