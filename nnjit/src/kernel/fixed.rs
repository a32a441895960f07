//! [`FixedDense`]: the const-generic entry for shapes known at compile time.

use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

use super::isa::{self, Isa};
use super::pack::{AlignedBuf, PackedDense};
use super::simd::FixedFn;
use super::small::{compact_len, pack_compact, row_stride};
use super::Activation;
use crate::error::{Error, Result};

/// A Dense layer `D → F` whose shape is known at compile time: parameters bound once,
/// arrays in and out, no heap allocation per call.
///
/// One row is one call of a kernel monomorphised for this `D` and `F` (and for the
/// presence of a bias and the activation), chosen as a function pointer at construction.
/// On x86, when `F` fits one register tile (up to 128 columns with AVX-512, 64 with AVX2),
/// that kernel reads its own compact copy of the parameters with the narrowest vector that
/// fits (128-bit FMA for `F <= 4`, 256-bit for `F <= 8`), without masks, the contraction
/// unrolled by rustc for small `D` and the bias add fused; wider layers use the packed
/// [`PackedDense`] kernels. Narrow layers (`F <= 4`, `D <= 16`) bound for AVX2 or AVX-512 run
/// that kernel inline in the caller instead of through the pointer: it is written with SSE
/// and an inline-assembly FMA, so it needs no `#[target_feature]` and inlines into code built
/// for the default target. Bits are identical to [`dense`](super::dense) and
/// [`reference::dense_reference`](super::reference::dense_reference) on every path.
///
/// ```
/// use nnjit::kernel::{best_isa, Activation, FixedDense};
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (D=2, F=3), row-major
/// let layer = FixedDense::<2, 3>::new(best_isa(), &w, Some(&[0.5, -100.0, 0.0]))?;
/// assert_eq!(layer.apply(&[1.0, 1.0]), [5.5, -93.0, 9.0]);
/// assert_eq!(layer.apply_act(&[1.0, 1.0], Activation::Relu), [5.5, 0.0, 9.0]);
/// assert_eq!(layer.apply_batch(&[[1.0, 1.0], [2.0, 0.0]]), [[5.5, -93.0, 9.0], [2.5, -96.0, 6.0]]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct FixedDense<const D: usize, const F: usize> {
    /// The single-row kernels `[identity, relu]`.
    kern: [FixedFn; 2],
    /// Non-null: run the compact kernel inline instead of through `kern` (x86 only; see
    /// `isa::FixedPlan::inline`), on this compact layout, which then always has a bias slot
    /// (`-0.0`s for a layer without a bias: adding them changes nothing, `+0.0 + -0.0` is
    /// `+0.0`), so one load gives the test, the weights and the bias.
    inline_w: *const f32,
    /// The weights and bias (or null) the kernels read: into `compact` if it is `Some`,
    /// otherwise into `packed`'s buffers. Both are heap buffers owned by `self` and never
    /// written after construction, so the pointers stay valid as long as `self`.
    w: *const f32,
    bias: *const f32,
    compact: Option<AlignedBuf>,
    packed: PackedDense,
}

// SAFETY: the raw pointers only point into immutable heap buffers owned by the value (see the
// fields), which are plain f32 data; sharing or sending the value shares or sends them.
unsafe impl<const D: usize, const F: usize> Send for FixedDense<D, F> {}
// SAFETY: as above; nothing is ever written through `&self`.
unsafe impl<const D: usize, const F: usize> Sync for FixedDense<D, F> {}

/// The inline kernel of a [`FixedDense`] with relu after it (`RELU`) or not, taken out once by
/// a caller that keeps the layer (a bound `Fixed` entry): an `Option` of it is tested as one
/// pointer, and the activation is in the type, so that test is the whole dispatch of a call (a
/// 3 → 4 layer: 0.96–0.99× the previous release's infallible entry, against 1.12–1.14× when
/// the layer's `Option`, its inline pointer and its activation were tested in turn).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct InlineDense<const D: usize, const F: usize, const RELU: bool> {
    /// The layer's compact layout (`inline_w`): D padded rows, then the bias slot.
    w: std::ptr::NonNull<f32>,
}

// SAFETY: as for `FixedDense`: `w` points into the immutable heap buffer of the layer it came
// from, plain f32 data, never written through.
#[cfg(target_arch = "x86_64")]
unsafe impl<const D: usize, const F: usize, const RELU: bool> Send for InlineDense<D, F, RELU> {}
// SAFETY: as above.
#[cfg(target_arch = "x86_64")]
unsafe impl<const D: usize, const F: usize, const RELU: bool> Sync for InlineDense<D, F, RELU> {}

#[cfg(target_arch = "x86_64")]
impl<const D: usize, const F: usize, const RELU: bool> InlineDense<D, F, RELU> {
    /// Writes `x·W + b` (then relu with `RELU`) to `y`.
    ///
    /// # Safety
    /// The [`FixedDense`] this came from ([`FixedDense::inline_dense`]) must still be alive
    /// (its buffers are freed with it), and `y` valid for writes of F floats.
    #[inline(always)]
    pub(crate) unsafe fn write(self, x: &[f32; D], y: *mut f32) {
        let w = self.w.as_ptr().cast_const();
        let bias = w.wrapping_add(D * row_stride(F));
        // SAFETY: `inline_w` is set only for a compact layout (64-byte aligned, 4-float rows,
        // then a bias slot) bound for an x86 SIMD path (checked available in `new`, so FMA and
        // AVX are there) with `1 <= F <= 4`, alive per this function's contract; `x` has D
        // floats, `y` room for F (this function's contract).
        unsafe { super::isa::inline_fma128::compact_inline::<D, F>(w, bias, x.as_ptr(), y, RELU) };
    }
}

impl<const D: usize, const F: usize> Clone for FixedDense<D, F> {
    fn clone(&self) -> Self {
        Self::assemble(self.kern, !self.inline_w.is_null(), self.compact.clone(), self.packed.clone())
    }
}

impl<const D: usize, const F: usize> fmt::Debug for FixedDense<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedDense")
            .field("d", &D)
            .field("f", &F)
            .field("isa", &self.isa())
            .field("bias", &self.packed.has_bias())
            .field("compact", &self.compact.is_some())
            .field("inline", &!self.inline_w.is_null())
            .finish_non_exhaustive()
    }
}

impl<const D: usize, const F: usize> FixedDense<D, F> {
    /// Binds `w` (row-major `(D, F)`) and `bias` (`F`) for `isa`.
    ///
    /// Errors ([`Error::InvalidArgument`](crate::Error::InvalidArgument)) if `isa` is not
    /// available or `w.len() != D·F` or `bias.len() != F`.
    ///
    /// ```
    /// use nnjit::kernel::{FixedDense, Isa};
    /// let w = [1.0f32; 6]; // (D=2, F=3)
    /// assert!(FixedDense::<2, 3>::new(Isa::Scalar, &w, None).is_ok());
    /// assert!(FixedDense::<3, 3>::new(Isa::Scalar, &w, None).is_err()); // w has D·F = 6 entries
    /// assert!(FixedDense::<2, 3>::new(Isa::Scalar, &w, Some(&[0.0; 2])).is_err()); // bias needs F = 3
    /// ```
    pub fn new(isa: Isa, w: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        let plan = isa::fixed_kernels::<D, F>(isa, bias.is_some())?;
        // Checks every length.
        let packed = PackedDense::new(isa, w, bias, D, F)?;
        let compact = if plan.compact {
            let overflow = || Error::SizeOverflow { what: "compact Dense kernel".into(), shape: vec![D, F] };
            let used = compact_len(D, F, bias.is_some()).ok_or_else(overflow)?;
            // The inline kernel always reads a bias slot (see `inline_w`).
            let len = if plan.inline { compact_len(D, F, true).ok_or_else(overflow)? } else { used };
            let mut buf = AlignedBuf::zeroed("compact Dense kernel", len)?;
            let (layout, slot) = buf.as_mut_slice().split_at_mut(used);
            pack_compact(layout, w, bias, D, F);
            // Empty, or the `-0.0` bias of an inline layer without one.
            slot.fill(-0.0);
            Some(buf)
        } else {
            None
        };
        Ok(Self::assemble(plan.fns, plan.inline, compact, packed))
    }

    /// Points the kernels' arguments at the buffers (which the value then owns).
    fn assemble(kern: [FixedFn; 2], inline: bool, compact: Option<AlignedBuf>, packed: PackedDense) -> Self {
        let (w, bias) = match &compact {
            Some(buf) => {
                let w = buf.as_ptr();
                // The bias follows the D padded rows of the compact layout.
                (w, if packed.has_bias() { w.wrapping_add(D * row_stride(F)) } else { ptr::null() })
            }
            None => (packed.packed_w(), packed.packed_bias()),
        };
        let inline_w = if inline && compact.is_some() { w } else { ptr::null() };
        FixedDense { kern, inline_w, w, bias, compact, packed }
    }

    /// The path the parameters were bound for.
    ///
    /// ```
    /// use nnjit::kernel::{FixedDense, Isa};
    /// let layer = FixedDense::<2, 2>::new(Isa::Scalar, &[1.0, 0.0, 0.0, 1.0], None)?;
    /// assert_eq!(layer.isa(), Isa::Scalar);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.packed.isa()
    }

    /// The same parameters as a [`PackedDense`] (runtime batch size).
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, Activation, FixedDense};
    /// let layer = FixedDense::<2, 2>::new(best_isa(), &[1.0, 2.0, 3.0, 4.0], Some(&[0.5, 0.5]))?;
    /// let packed = layer.packed(); // the same parameters, for a batch size known only at run time
    /// assert_eq!((packed.d(), packed.f(), packed.has_bias()), (2, 2, true));
    /// let mut y = [0.0f32; 4];
    /// packed.apply(&[1.0, 0.0, 0.0, 1.0], 2, &mut y, Activation::Identity)?;
    /// assert_eq!(y, [1.5, 2.5, 3.5, 4.5]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn packed(&self) -> &PackedDense {
        &self.packed
    }

    /// `x·W + b` for one row.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, FixedDense};
    /// // Identity kernel (D=F=2) plus bias.
    /// let layer = FixedDense::<2, 2>::new(best_isa(), &[1.0, 0.0, 0.0, 1.0], Some(&[0.5, -0.5]))?;
    /// assert_eq!(layer.apply(&[3.0, 4.0]), [3.5, 3.5]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline]
    pub fn apply(&self, x: &[f32; D]) -> [f32; F] {
        self.apply_act(x, Activation::Identity)
    }

    /// `act(x·W + b)` for one row.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, Activation, FixedDense};
    /// let layer = FixedDense::<1, 3>::new(best_isa(), &[1.0, -1.0, 0.0], None)?;
    /// let y = layer.apply_act(&[2.0], Activation::Relu);
    /// assert_eq!(y, [2.0, 0.0, 0.0]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline]
    pub fn apply_act(&self, x: &[f32; D], act: Activation) -> [f32; F] {
        let mut y = MaybeUninit::<[f32; F]>::uninit();
        // SAFETY: `y` has room for F floats, and `write_act` writes all of them.
        unsafe {
            self.write_act(x, y.as_mut_ptr().cast(), act);
            y.assume_init()
        }
    }

    /// Writes `act(x·W + b)` to `y` (a caller writes straight into the local it returns: a
    /// copy of the result through a second local had cost a bound 3 → 4 Dense 1.31–1.39× its
    /// time).
    ///
    /// # Safety
    /// `y` must be valid for writes of F floats.
    #[inline(always)]
    pub(crate) unsafe fn write_act(&self, x: &[f32; D], y: *mut f32, act: Activation) {
        let relu = act == Activation::Relu;
        // SAFETY (both): the kernel came from `self`, alive for this call; `y` per this
        // function's contract.
        #[cfg(target_arch = "x86_64")]
        if relu {
            if let Some(k) = self.inline_dense::<true>() {
                unsafe { k.write(x, y) };
                return;
            }
        } else if let Some(k) = self.inline_dense::<false>() {
            unsafe { k.write(x, y) };
            return;
        }
        // SAFETY: `kern` are the D → F kernels of `self.isa()` (checked available in `new`)
        // for the layout `w`/`bias` point into (owned by `self`, see the fields); `x` has D
        // floats, `y` room for F (this function's contract); every kernel writes all F.
        unsafe { (self.kern[usize::from(relu)])(self.w, self.bias, x.as_ptr(), y, relu) };
    }

    /// The inline kernel, relu after it with `RELU`, where this layer runs inline (x86,
    /// `F <= 4`, small `D`).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) fn inline_dense<const RELU: bool>(&self) -> Option<InlineDense<D, F, RELU>> {
        Some(InlineDense { w: std::ptr::NonNull::new(self.inline_w.cast_mut())? })
    }

    /// `x·W + b` for `N` rows.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, FixedDense};
    /// let layer = FixedDense::<2, 1>::new(best_isa(), &[1.0, 1.0], Some(&[1.0]))?; // y = x0 + x1 + 1
    /// assert_eq!(layer.apply_batch(&[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]), [[4.0], [8.0], [1.0]]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline]
    pub fn apply_batch<const N: usize>(&self, x: &[[f32; D]; N]) -> [[f32; F]; N] {
        self.apply_batch_act(x, Activation::Identity)
    }

    /// `act(x·W + b)` for `N` rows.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, Activation, FixedDense};
    /// let layer = FixedDense::<2, 1>::new(best_isa(), &[1.0, -1.0], None)?; // y = relu(x0 - x1)
    /// assert_eq!(layer.apply_batch_act(&[[3.0, 1.0], [1.0, 3.0]], Activation::Relu), [[2.0], [0.0]]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline]
    pub fn apply_batch_act<const N: usize>(&self, x: &[[f32; D]; N], act: Activation) -> [[f32; F]; N] {
        if N == 1 {
            // One row: the single-row kernel.
            return std::array::from_fn(|r| self.apply_act(&x[r], act));
        }
        let mut y = [[0.0f32; F]; N];
        // SAFETY: nested arrays are contiguous, so `x` is N·D floats and `y` N·F floats,
        // row-major; `y` is a local.
        unsafe { self.packed.run(x.as_ptr().cast(), N, y.as_mut_ptr().cast(), act == Activation::Relu) };
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which layers run inline: narrow compact layers on the x86 SIMD paths only. (That the
    /// inline path gives the reference bits is checked with every other path in
    /// `kernel::tests`.)
    #[test]
    fn narrow_layers_run_inline_on_x86_simd_paths() {
        let inline = |s: String| s.contains("inline: true");
        for isa in Isa::all_available() {
            let simd_x86 = cfg!(target_arch = "x86_64") && matches!(isa, Isa::Avx2 | Isa::Avx512);
            let narrow = FixedDense::<3, 4>::new(isa, &[1.0; 12], None).unwrap();
            assert_eq!(inline(format!("{narrow:?}")), simd_x86, "{isa}");
            assert_eq!(inline(format!("{:?}", narrow.clone())), simd_x86, "{isa} clone");
            let wide = FixedDense::<3, 5>::new(isa, &[1.0; 15], None).unwrap();
            assert!(!inline(format!("{wide:?}")), "{isa}");
            let long = FixedDense::<17, 4>::new(isa, &[1.0; 68], None).unwrap();
            assert!(!inline(format!("{long:?}")), "{isa}");
        }
    }
}
