//! Instruction-set detection, and the one place that maps an [`Isa`] to its code: one
//! submodule per instruction set, each with an [`IsaCode`] implementation (its table of
//! [`Kernels`] and its [`FixedDense`](super::FixedDense) plans), chosen by the one `match` of
//! [`with_isa!`].
//!
//! | module | instruction set | vectors | used by |
//! |---|---|---|---|
//! | `scalar` | none ([`f32::mul_add`]) | 1 lane | [`Isa::Scalar`] |
//! | `avx2` | AVX2 + FMA | `__m256`, 8 lanes | [`Isa::Avx2`]; the 256-bit vectors of [`Isa::Avx512`]'s narrow kernels |
//! | `avx512` | AVX-512F | `__m512`, 16 lanes | [`Isa::Avx512`] |
//! | `fma128` | AVX + FMA, 128-bit | `__m128`, 4 lanes | the narrow kernels of both x86 paths |
//! | `inline_fma128` | SSE + inline-assembly FMA | `__m128`, 4 lanes | [`FixedDense`](super::FixedDense) layers inlined into their callers |
//! | `neon` | AArch64 NEON | `float32x4_t`, 4 lanes | [`Isa::Neon`] |
//!
//! Detection uses `is_x86_feature_detected!` / `is_aarch64_feature_detected!` at run time
//! (never compile-time assumptions), so a binary built for baseline x86-64 uses AVX-512 where
//! the CPU has it and AVX2 or scalar code elsewhere — including under valgrind, which hides
//! AVX-512 from CPUID.

use std::fmt;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::simd::Simd;
use super::simd::{small_index, DriveFn, DriveLdyFn, FixedFn, SmallFn, SmallTable};
#[cfg(target_arch = "x86_64")]
use super::small::packed_row;
use super::small::{NarrowTable, NARROW_MAX_D};
use crate::error::{Error, Result};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod fma128;
#[cfg(target_arch = "x86_64")]
pub(crate) mod inline_fma128;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod scalar;

/// A code path of the Dense kernels, named after the instruction set it uses.
///
/// Every path produces the same bits (see the [module docs](super)).
///
/// ```
/// use nnjit::kernel::{best_isa, Isa};
/// assert!(Isa::Scalar.is_available());
/// assert!(best_isa().is_available());
/// assert!(Isa::all_available().contains(&best_isa()));
/// assert_eq!(Isa::from_name("AVX512"), Some(Isa::Avx512));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable scalar code ([`f32::mul_add`]); always available.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512F, 16 lanes, masked tails.
    Avx512,
    /// AArch64 NEON (Advanced SIMD), 4 lanes.
    Neon,
}

impl Isa {
    /// Every path, in order of preference from least to most specific.
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// assert_eq!(Isa::ALL.len(), 4);
    /// assert_eq!(Isa::ALL[0], Isa::Scalar);
    /// assert!(Isa::ALL.iter().all(|isa| Isa::from_name(isa.name()) == Some(*isa)));
    /// ```
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// Lower-case name: `scalar`, `avx2`, `avx512` or `neon` (the values of `NNJIT_ISA`).
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// assert_eq!(Isa::Avx512.name(), "avx512"); // NNJIT_ISA=avx512
    /// assert_eq!(Isa::Scalar.to_string(), Isa::Scalar.name()); // Display prints the name
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a [`name`](Isa::name), ignoring ASCII case and surrounding whitespace.
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// assert_eq!(Isa::from_name(" Neon "), Some(Isa::Neon));
    /// assert_eq!(Isa::from_name("avx2"), Some(Isa::Avx2));
    /// assert_eq!(Isa::from_name("sse2"), None);
    /// ```
    pub fn from_name(s: &str) -> Option<Isa> {
        let s = s.trim();
        Isa::ALL.into_iter().find(|isa| isa.name().eq_ignore_ascii_case(s))
    }

    /// Whether this path can run on this CPU (detected at run time).
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// assert!(Isa::Scalar.is_available()); // everywhere
    /// #[cfg(target_arch = "x86_64")]
    /// assert!(!Isa::Neon.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every path available on this CPU, [`Isa::Scalar`] first.
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// let isas = Isa::all_available();
    /// assert_eq!(isas[0], Isa::Scalar);
    /// assert!(isas.contains(&Isa::detect()));
    /// assert!(isas.iter().all(|isa| isa.is_available()));
    /// ```
    pub fn all_available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// Lanes per vector, which is also the column-panel width of [`PackedDense`](super::PackedDense)
    /// (1 for the scalar path, which keeps row-major weights).
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// assert_eq!(Isa::Scalar.lanes(), 1);
    /// assert_eq!(Isa::Avx2.lanes(), 8); // 8 f32 in a ymm register
    /// assert_eq!(Isa::Avx512.lanes(), 16);
    /// assert_eq!(Isa::Neon.lanes(), 4);
    /// ```
    pub fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
            Isa::Neon => 4,
        }
    }

    /// The fastest available path, ignoring `NNJIT_ISA`.
    ///
    /// ```
    /// use nnjit::kernel::Isa;
    /// let isa = Isa::detect();
    /// assert!(isa.is_available());
    /// // The fastest one: no available path has more lanes.
    /// assert!(Isa::all_available().iter().all(|other| other.lanes() <= isa.lanes()));
    /// ```
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon].into_iter().find(|isa| isa.is_available()).unwrap_or(Isa::Scalar)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The path used when none is named: [`Isa::detect`], unless the environment variable
/// `NNJIT_ISA` (`scalar`, `avx2`, `avx512` or `neon`) names an available one. Unknown or
/// unavailable values are ignored. Decided on the first call and cached for the process.
///
/// ```
/// let isa = nnjit::kernel::best_isa();
/// assert_eq!(isa, nnjit::kernel::best_isa()); // cached
/// ```
pub fn best_isa() -> Isa {
    static BEST: OnceLock<Isa> = OnceLock::new();
    *BEST.get_or_init(|| {
        std::env::var("NNJIT_ISA")
            .ok()
            .and_then(|v| Isa::from_name(&v))
            .filter(|isa| isa.is_available())
            .unwrap_or_else(Isa::detect)
    })
}

fn unavailable(isa: Isa) -> Error {
    Error::invalid("", format!("the {isa} kernels are not available on this CPU"))
}

/// The code of one instruction set, implemented once per `Isa` (by a type of its module).
pub(crate) trait IsaCode {
    /// Its run-time kernels.
    const KERNELS: &'static Kernels;

    /// How a [`FixedDense`](super::FixedDense) `D → F` (with or without a bias) runs one row.
    fn fixed<const D: usize, const F: usize>(bias: bool) -> FixedPlan;
}

/// The run-time kernels of one instruction set: the dispatch table that every entry reads
/// (`dense`, [`PackedDense`](super::PackedDense), the threaded splits), chosen once per call
/// or per layer by [`kernels`].
#[derive(Debug)]
pub(crate) struct Kernels {
    /// Lanes per vector (= [`Isa::lanes`]).
    pub lanes: usize,
    /// The whole-problem driver.
    pub drive: DriveFn,
    /// The same driver with an output row stride (column ranges of a wider output).
    pub drive_ldy: DriveLdyFn,
    /// Columns of one register tile of `drive` for `n` rows, a multiple of `lanes` (16 on the
    /// scalar path, which has no tiles: one cache line of `y`).
    pub col_tile: fn(usize) -> usize,
    /// Single-tile row kernels on packed panels.
    pub small_packed: Option<&'static SmallTable>,
    /// Single-tile row kernels on row-major weights.
    pub small_rowmajor: Option<&'static SmallTable>,
    /// Narrow one-row kernels on packed panels, `[f - 1]` for `f` up to the length (module
    /// `small`); empty where there are none.
    pub narrow: &'static [NarrowTable],
}

/// The one place that maps an [`Isa`] to its code: `Some($body)` with `$K` the [`IsaCode`]
/// type of `$isa`, or `None` where `$isa` has no code on this architecture.
macro_rules! with_isa {
    ($isa:expr, $K:ident => $body:expr) => {
        match $isa {
            Isa::Scalar => {
                type $K = scalar::Scalar;
                Some($body)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                type $K = avx2::Avx2;
                Some($body)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                type $K = avx512::Avx512;
                Some($body)
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                type $K = neon::Neon;
                Some($body)
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    };
}

/// The kernels of `isa`, or an error if it cannot run here.
#[inline]
pub(crate) fn kernels(isa: Isa) -> Result<&'static Kernels> {
    if !isa.is_available() {
        return Err(unavailable(isa));
    }
    with_isa!(isa, K => K::KERNELS).ok_or_else(|| unavailable(isa))
}

impl Kernels {
    /// The single-tile row kernels `[identity, relu]` for `f` columns, row-major (`rowmajor`)
    /// or in packed panels, and the lanes of the last vector — if `f` fits one single-row
    /// tile (at most 8 vectors) and there are such kernels.
    #[inline]
    pub(crate) fn small(&self, f: usize, rowmajor: bool) -> Option<(&'static [SmallFn; 2], usize)> {
        let table = if rowmajor { self.small_rowmajor } else { self.small_packed }?;
        if f == 0 || f > 8 * self.lanes {
            return None;
        }
        let (i, rem) = small_index(f, self.lanes);
        Some((&table[i], rem))
    }

    /// The one-row kernels `[identity, relu]` of [`PackedDense`](super::PackedDense) for a
    /// `d × f` layer, and the lanes of the last vector, if `f` fits one tile.
    ///
    /// Narrow layers (`f <= 8` with AVX-512, `f <= 4` with AVX2) get the kernels of module
    /// `small`, with 128/256-bit vectors inside the wider panels and `f` — and a short `d` —
    /// as constants: such a kernel must be called with this `d` only. Others get
    /// [`Kernels::small`].
    pub(crate) fn packed_small(&self, d: usize, f: usize) -> Option<(&'static [SmallFn; 2], usize)> {
        if f >= 1 && f <= self.narrow.len() {
            return Some((&self.narrow[f - 1][d.min(NARROW_MAX_D + 1)], f));
        }
        self.small(f, false)
    }
}

/// Largest `D` for which a [`FixedDense`](super::FixedDense) whose columns do not fit one
/// compact tile runs the fully unrolled packed-panel kernel; longer contractions go through
/// the driver's loop, which overlaps consecutive calls better (measured) and amortises its
/// overhead.
pub(crate) const UNROLL_MAX_D: usize = 16;

/// How a [`FixedDense`](super::FixedDense) runs one row: the kernels `[identity, relu]`
/// (each also told `relu`), and the weight layout they read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedPlan {
    pub fns: [FixedFn; 2],
    /// `true`: the compact layout of module `small` (weights, then the padded bias);
    /// `false`: the packed panels (and padded bias) of [`PackedDense`](super::PackedDense).
    pub compact: bool,
    /// The compact kernel may instead run inline in the caller
    /// (`inline_fma128::compact_inline`): an x86 SIMD path (so FMA and AVX are there),
    /// `F <= 4` and `D <= INLINE_MAX_D`. Saves the call through the function pointer, which is
    /// most of the cost of such tiny layers.
    pub inline: bool,
}

impl FixedPlan {
    /// One kernel on the packed panels (told `relu`).
    pub(crate) fn packed(f: FixedFn) -> FixedPlan {
        FixedPlan { fns: [f, f], compact: false, inline: false }
    }
}

/// Longest contraction whose narrow compact kernel runs inline in the caller: beyond it the
/// call costs little next to the chain, and inlining would only grow the caller's code.
#[cfg(target_arch = "x86_64")]
const INLINE_MAX_D: usize = 16;

/// `[[identity, relu] without a bias, [identity, relu] with one]` of a compact kernel
/// `$k::<D, F, BIAS, RELU>` (module `small`) of an x86 SIMD path, for the `D` and `F` in scope.
#[cfg(target_arch = "x86_64")]
macro_rules! compact_fns {
    ($k:ident) => {
        [[$k::<D, F, false, false>, $k::<D, F, false, true>], [$k::<D, F, true, false>, $k::<D, F, true, true>]]
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use compact_fns;

/// The [`FixedDense`](super::FixedDense) plan of an x86 SIMD path `S` for `D → F` (with or
/// without a bias): when `F` fits one tile (`1 <= F <= 8` vectors), its compact kernels
/// `compact[bias]` (monomorphised for bias and activation, the narrowest vector that fits),
/// inline for narrow short layers (whose compact kernel has the body of
/// [`inline_fma128::compact_inline`]); otherwise the fully unrolled packed-panel kernel
/// `unrolled` up to [`UNROLL_MAX_D`], the driver beyond.
#[cfg(target_arch = "x86_64")]
pub(crate) fn x86_fixed<S: Simd, const D: usize, const F: usize>(
    bias: bool,
    compact: [[FixedFn; 2]; 2],
    unrolled: FixedFn,
) -> FixedPlan {
    if (1..=8 * S::L).contains(&F) {
        FixedPlan { fns: compact[usize::from(bias)], compact: true, inline: (1..=4).contains(&F) && D <= INLINE_MAX_D }
    } else if D <= UNROLL_MAX_D {
        FixedPlan::packed(unrolled)
    } else {
        FixedPlan::packed(packed_row::<S, D, F>)
    }
}

/// The single-row kernels of `isa` for the compile-time shape `D → F`, with or without a
/// bias (see each instruction set's [`IsaCode::fixed`]): on x86, when `F` fits one tile
/// (`1 <= F <= 8` vectors), the compact kernels of module `small`, monomorphised for bias and
/// activation and using the narrowest vector that fits; otherwise a kernel on the packed
/// panels.
pub(crate) fn fixed_kernels<const D: usize, const F: usize>(isa: Isa, bias: bool) -> Result<FixedPlan> {
    if !isa.is_available() {
        return Err(unavailable(isa));
    }
    with_isa!(isa, K => K::fixed::<D, F>(bias)).ok_or_else(|| unavailable(isa))
}
