//! Weight packing and [`PackedDense`].
//!
//! SIMD paths store `W` as column panels one vector wide (`L` = 16 for AVX-512, 8 for AVX2,
//! 4 for NEON): panel `p` holds columns `p·L .. p·L+L` for every `k`, `k`-major, in one
//! contiguous, 64-byte aligned block, zero-padded past column `F`. A register tile of `NV`
//! vectors reads `NV` panels as sequential streams, and the padding makes every weight and
//! bias load a full vector (only the last vector's store is partial). The scalar path keeps
//! the weights row-major.

use std::fmt;
use std::ops::Range;

use super::isa::{self, Isa, Kernels};
use super::simd::{DriveFn, Geometry, SmallFn};
use super::sweep;
use super::{check_len, Activation};
use crate::error::{Error, Result};
use crate::fallible::try_with_capacity;

/// 64 bytes of f32, 64-byte aligned: the allocation unit of packed weights.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64([f32; 16]);

/// A zero-initialised, 64-byte aligned f32 buffer, allocated fallibly.
#[derive(Clone)]
pub(crate) struct AlignedBuf {
    chunks: Vec<Align64>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeros, or [`Error::Allocation`] if the memory cannot be had.
    pub(crate) fn zeroed(what: &str, len: usize) -> Result<Self> {
        let n = len.div_ceil(16);
        let mut chunks = try_with_capacity::<Align64>(what, n)?;
        chunks.resize(n, Align64([0.0; 16]));
        Ok(AlignedBuf { chunks, len })
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.chunks.as_ptr().cast()
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Align64` is `repr(C)` around `[f32; 16]` with size 64 = 16·4 (no padding),
        // so `chunks` is `16·chunks.len() >= len` initialised, contiguous f32.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, through the unique borrow of `chunks`.
        unsafe { std::slice::from_raw_parts_mut(self.chunks.as_mut_ptr().cast(), self.len) }
    }
}

/// Dense weights (and bias) repacked once for one [`Isa`], for repeated applies.
///
/// This is the form the "lifted" (`nn.jit`-style) path binds its parameters in: `new` checks
/// the shapes, packs the weights into 64-byte aligned column panels of the ISA's vector
/// width and picks the kernel; [`apply`](PackedDense::apply) only checks lengths and calls
/// it — no allocation, no feature detection per call. Results are bit-identical to
/// [`dense`](super::dense) and to [`reference::dense_reference`](super::reference::dense_reference).
///
/// A layer of 64 Ki weights or more reads its column tiles backwards on every other call of
/// a thread, so that a model a little larger than the core's L2 finds most of its weights
/// still cached from the call before (the same bits either way; the direction is kept per
/// thread, outside the layer).
///
/// ```
/// use nnjit::kernel::{best_isa, Activation, PackedDense};
/// // W is (D=2, F=3), row-major.
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let b = [0.5f32, -100.0, 0.0];
/// let layer = PackedDense::new(best_isa(), &w, Some(&b), 2, 3)?;
/// let x = [1.0f32, 1.0, 2.0, 0.0]; // two rows
/// let mut y = [0.0f32; 6];
/// layer.apply(&x, 2, &mut y, Activation::Relu)?;
/// assert_eq!(y, [5.5, 0.0, 9.0, 2.5, 0.0, 6.0]);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone)]
pub struct PackedDense {
    isa: Isa,
    d: usize,
    f: usize,
    w: AlignedBuf,
    bias: Option<AlignedBuf>,
    ldw: usize,
    wv: usize,
    /// The kernels of `isa` (the strided driver and tile width of column ranges,
    /// [`PackedDense::run_cols`]).
    kernels: &'static Kernels,
    /// `kernels.drive`, copied next to the other fields an apply reads.
    drive: DriveFn,
    /// One-row kernels `[identity, relu]` when `F` fits one tile (possibly specific to `d`).
    small: Option<&'static [SmallFn; 2]>,
    /// Lanes of the last vector (for `small`).
    rem: usize,
    /// Whether the column tiles' order alternates from call to call (large weights; see
    /// module `sweep`).
    sweep: bool,
}

impl fmt::Debug for PackedDense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedDense")
            .field("isa", &self.isa)
            .field("d", &self.d)
            .field("f", &self.f)
            .field("bias", &self.bias.is_some())
            .finish_non_exhaustive()
    }
}

impl PackedDense {
    /// Packs `w` (row-major `(d, f)`) and `bias` (`f`) for `isa`.
    ///
    /// Errors: [`Error::InvalidArgument`] if `isa` is not available or a length does not
    /// match; [`Error::SizeOverflow`] / [`Error::Allocation`] if the packed buffer cannot be
    /// sized or allocated.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, PackedDense};
    /// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // (d=3, f=2), row-major, as Flax stores a Dense kernel
    /// let packed = PackedDense::new(best_isa(), &w, Some(&[0.0, 0.0]), 3, 2)?;
    /// assert_eq!((packed.d(), packed.f()), (3, 2));
    /// assert!(PackedDense::new(best_isa(), &w, None, 2, 2).is_err()); // 6 weights are not (2, 2)
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn new(isa: Isa, w: &[f32], bias: Option<&[f32]>, d: usize, f: usize) -> Result<Self> {
        let kernels = isa::kernels(isa)?;
        check_len("w", w.len(), d, f)?;
        if let Some(b) = bias {
            check_len("bias", b.len(), 1, f)?;
        }
        // Every output row has f floats: f itself must be a possible f32 length.
        crate::fallible::checked_len("Dense output row", &[f])?;
        let l = isa.lanes();
        let panels = f.div_ceil(l);
        let overflow = || Error::SizeOverflow { what: "packed Dense kernel".into(), shape: vec![d, f] };
        let padded = panels.checked_mul(l).ok_or_else(overflow)?;
        let len = crate::fallible::checked_len("packed Dense kernel", &[padded, d]).map_err(|_| overflow())?;
        let mut wbuf = AlignedBuf::zeroed("packed Dense kernel", len)?;
        let (ldw, wv) = if l == 1 { (f, 1) } else { (l, d * l) };
        {
            let dst = wbuf.as_mut_slice();
            if l == 1 {
                dst.copy_from_slice(w);
            } else {
                for p in 0..panels {
                    let c0 = p * l;
                    let cols = (f - c0).min(l);
                    for k in 0..d {
                        let at = p * d * l + k * l;
                        dst[at..at + cols].copy_from_slice(&w[k * f + c0..k * f + c0 + cols]);
                    }
                }
            }
        }
        let bias = match bias {
            Some(b) => {
                let mut buf = AlignedBuf::zeroed("packed Dense bias", padded)?;
                buf.as_mut_slice()[..f].copy_from_slice(b);
                Some(buf)
            }
            None => None,
        };
        let (small, rem) = match kernels.packed_small(d, f) {
            Some((k, rem)) => (Some(k), rem),
            None => (None, l),
        };
        let sweep = sweep::alternates(len);
        Ok(PackedDense { isa, d, f, w: wbuf, bias, ldw, wv, kernels, drive: kernels.drive, small, rem, sweep })
    }

    /// Input features `D`.
    ///
    /// ```
    /// use nnjit::kernel::{Isa, PackedDense};
    /// let packed = PackedDense::new(Isa::Scalar, &[0.0; 12], None, 3, 4)?;
    /// assert_eq!(packed.d(), 3); // the kernel's first axis
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn d(&self) -> usize {
        self.d
    }

    /// Output features `F`.
    ///
    /// ```
    /// use nnjit::kernel::{Isa, PackedDense};
    /// let packed = PackedDense::new(Isa::Scalar, &[0.0; 12], None, 3, 4)?;
    /// assert_eq!(packed.f(), 4); // = Dense features
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn f(&self) -> usize {
        self.f
    }

    /// The path the weights were packed for.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, PackedDense};
    /// let packed = PackedDense::new(best_isa(), &[0.0; 4], None, 2, 2)?;
    /// assert_eq!(packed.isa(), best_isa());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether a bias is added.
    ///
    /// ```
    /// use nnjit::kernel::{Isa, PackedDense};
    /// assert!(PackedDense::new(Isa::Scalar, &[0.0; 4], Some(&[0.0; 2]), 2, 2)?.has_bias());
    /// assert!(!PackedDense::new(Isa::Scalar, &[0.0; 4], None, 2, 2)?.has_bias()); // Dense(use_bias=False)
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// `y = act(x·W + b)` for `n` rows: `x` is row-major `(n, D)`, `y` row-major `(n, F)`.
    ///
    /// Allocates nothing. Errors ([`Error::InvalidArgument`]) only on length mismatches.
    ///
    /// ```
    /// use nnjit::kernel::{best_isa, Activation, PackedDense};
    /// let packed = PackedDense::new(best_isa(), &[1.0, -1.0], Some(&[0.0, 1.0]), 1, 2)?; // d=1, f=2
    /// let mut y = [0.0f32; 6];
    /// packed.apply(&[1.0, 2.0, 3.0], 3, &mut y, Activation::Relu)?; // 3 rows
    /// assert_eq!(y, [1.0, 0.0, 2.0, 0.0, 3.0, 0.0]);
    /// assert!(packed.apply(&[1.0, 2.0], 3, &mut y, Activation::Identity).is_err()); // x too short
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    // Always inlined: two length tests and a call through a table, where a call of its own
    // costs a bound 3 → 4 Dense a third of its time.
    #[inline(always)]
    pub fn apply(&self, x: &[f32], n: usize, y: &mut [f32], act: Activation) -> Result<()> {
        check_len("x", x.len(), n, self.d)?;
        check_len("y", y.len(), n, self.f)?;
        // SAFETY: lengths checked above; `y` is a unique borrow so it overlaps nothing.
        unsafe { self.run(x.as_ptr(), n, y.as_mut_ptr(), act == Activation::Relu) };
        Ok(())
    }

    /// `Ok` iff `x` is `(n, D)` and `y` is `(n, F)`.
    #[inline]
    pub(crate) fn check_io(&self, x: &[f32], n: usize, y: &[f32]) -> Result<()> {
        check_len("x", x.len(), n, self.d)?;
        check_len("y", y.len(), n, self.f)
    }

    /// The weights in packed order (panels, or row-major for the scalar path).
    #[inline]
    pub(crate) fn packed_w(&self) -> *const f32 {
        self.w.as_ptr()
    }

    /// The padded bias, or null.
    #[inline]
    pub(crate) fn packed_bias(&self) -> *const f32 {
        self.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr())
    }

    /// # Safety
    /// `x` valid for `n·D` reads, `y` valid for `n·F` writes and overlapping neither `x` nor
    /// this object.
    #[inline]
    pub(crate) unsafe fn run(&self, x: *const f32, n: usize, y: *mut f32, relu: bool) {
        if n == 1 {
            if let Some(small) = self.small {
                // SAFETY: `small` was chosen in `new` for `self.isa` (available) and `self.f`
                // (one tile whose last vector has `self.rem` lanes); the panels and bias are
                // that ISA's padded layout for `self.d × self.f`; `x`/`y` per the caller.
                unsafe { small[relu as usize](self.packed_w(), self.packed_bias(), x, y, self.d, self.rem) };
                return;
            }
        }
        let g = Geometry {
            n,
            d: self.d,
            f: self.f,
            x,
            w: self.packed_w(),
            ldw: self.ldw,
            wv: self.wv,
            bias: self.packed_bias(),
            padded: true,
            y,
            relu,
            rev: self.next_sweep(),
        };
        // SAFETY: `drive` belongs to `self.isa`, checked available in `new`; the panels and the
        // bias were laid out for its lane count with padding, `x`/`y` per the caller.
        unsafe { (self.drive)(&g) }
    }

    /// Columns of one register tile of this layer's driver for `n` rows (`L` times the
    /// vectors of [`Simd::plan`]: 96 on AVX-512 for one row, 64 for more; 64, 32 or 16 on
    /// AVX2; 32 or 16 on NEON); 16 (one cache line of `y`) on the scalar path, which has no
    /// tiles. Always a multiple of the panel width [`Isa::lanes`].
    pub(crate) fn col_tile(&self, n: usize) -> usize {
        (self.kernels.col_tile)(n)
    }

    /// The order of this thread's pass over the column tiles (`true`: last first),
    /// alternating from call to call for large weights (module `sweep`).
    #[inline]
    pub(crate) fn next_sweep(&self) -> bool {
        self.sweep && sweep::next_backwards(self.w.as_ptr() as usize)
    }

    /// Columns `cols = c0..c1` of `y = act(x·W + b)` for `n` rows, with rows of `y` `ldy`
    /// floats apart: writes `y[r·ldy + j]` for `r < n`, `j` in `c0..c1`, and nothing else.
    /// Every output is computed by the same driver and tile code as in [`run`](Self::run)
    /// (one whole FMA chain each), so its bits are those of `apply`. `rev`: the column tiles
    /// from the last to the first (every thread of one layer call takes the calling thread's
    /// [`next_sweep`](Self::next_sweep), so their ranges alternate together).
    ///
    /// # Safety
    /// `c0` is a multiple of [`Isa::lanes`] and `c0 <= c1 <= F`; `x` is valid for `n·D` reads;
    /// `y + r·ldy + j` is valid for writes for every `r < n` and `j` in `c0..c1`, and these
    /// floats overlap neither `x` nor this object (nor anything another thread accesses
    /// meanwhile).
    #[allow(clippy::too_many_arguments)] // a raw kernel entry: the product, then how to run it
    pub(crate) unsafe fn run_cols(
        &self,
        x: *const f32,
        n: usize,
        y: *mut f32,
        ldy: usize,
        cols: Range<usize>,
        relu: bool,
        rev: bool,
    ) {
        let (c0, c1) = (cols.start, cols.end);
        let l = self.isa.lanes();
        debug_assert!(c0.is_multiple_of(l) && c0 <= c1 && c1 <= self.f);
        let bias = self.packed_bias();
        let g = Geometry {
            n,
            d: self.d,
            f: c1 - c0,
            x,
            // Panel c0/L: W[k, c0 + j] for the sub-problem's column j (row-major for the
            // scalar path, where L = 1 and wv = 1).
            w: self.packed_w().wrapping_add(c0 / l * self.wv),
            ldw: self.ldw,
            wv: self.wv,
            bias: if bias.is_null() { bias } else { bias.wrapping_add(c0) },
            padded: true,
            y: y.wrapping_add(c0),
            relu,
            rev,
        };
        // SAFETY: `kernels` are those of `self.isa`, checked available in `new`. Since c0 is
        // a multiple of L, the sub-problem's panels are whole panels of this layer: its
        // weights W[k, j] and bias[j] for j < round_up(c1 - c0, L) lie within this layer's
        // padded panels and bias (c0 + round_up(c1 - c0, L) <= round_up(F, L)), which is the
        // padded Geometry invariant. `x` and the strided `y` per the caller.
        unsafe { (self.kernels.drive_ldy)(&g, ldy) }
    }

    /// The raw packed weights (for tests and debugging).
    #[cfg(test)]
    pub(crate) fn packed_slice(&self) -> &[f32] {
        self.w.as_slice()
    }
}
