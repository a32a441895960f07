//! [`FixedDense`]: the const-generic entry for shapes known at compile time.

use super::isa::{self, Isa};
use super::pack::PackedDense;
use super::simd::FixedFn;
use super::Activation;
use crate::error::Result;

/// Largest `D` for which [`FixedDense::apply`] runs the fully unrolled kernel.
const UNROLL_MAX_D: usize = 16;

/// A Dense layer `D → F` whose shape is known at compile time: parameters bound once,
/// arrays in and out, no heap allocation per call.
///
/// The single-row kernel is monomorphised for `D` and `F` and chosen (as a function pointer)
/// at construction, so the column tiling is resolved at compile time and small contractions
/// (`D <= 16`) are fully unrolled; longer ones use the [`PackedDense`] row kernel. Bits are identical to [`dense`](super::dense) and
/// [`reference::dense_reference`](super::reference::dense_reference).
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
#[derive(Clone, Debug)]
pub struct FixedDense<const D: usize, const F: usize> {
    packed: PackedDense,
    single: FixedFn,
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
        let single = isa::fixed_kernel::<D, F>(isa)?;
        let packed = PackedDense::new(isa, w, bias, D, F)?;
        Ok(FixedDense { packed, single })
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
        let mut y = [0.0f32; F];
        if D > UNROLL_MAX_D {
            // Long contractions: the packed kernel's loop overlaps consecutive calls better
            // than a fully unrolled chain (measured), and the call overhead is amortised.
            // SAFETY: `x` has D floats, `y` is a local of F floats.
            unsafe { self.packed.run(x.as_ptr(), 1, y.as_mut_ptr(), act == Activation::Relu) };
            return y;
        }
        // SAFETY: `single` is the D → F kernel of `self.isa()`, checked available in `new`;
        // `packed` holds that ISA's layout for exactly D × F (and F bias floats, or null);
        // `x` has D floats, `y` is a local of F floats.
        unsafe {
            (self.single)(
                self.packed.packed_w(),
                self.packed.packed_bias(),
                x.as_ptr(),
                y.as_mut_ptr(),
                act == Activation::Relu,
            )
        };
        y
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
        let mut y = [[0.0f32; F]; N];
        // SAFETY: nested arrays are contiguous, so `x` is N·D floats and `y` N·F floats,
        // row-major; `y` is a local.
        unsafe { self.packed.run(x.as_ptr().cast(), N, y.as_mut_ptr().cast(), act == Activation::Relu) };
        y
    }
}
