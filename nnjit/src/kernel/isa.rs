//! Instruction-set detection, and the one place that maps an [`Isa`] to its code.
//!
//! Detection uses `is_x86_feature_detected!` / `is_aarch64_feature_detected!` at run time
//! (never compile-time assumptions), so a binary built for baseline x86-64 uses AVX-512 where
//! the CPU has it and AVX2 or scalar code elsewhere — including under valgrind, which hides
//! AVX-512 from CPUID.

use std::fmt;
use std::sync::OnceLock;

use super::reference;
use super::simd::{small_index, DriveFn, FixedFn, SmallFn, SmallTable};
use crate::error::{Error, Result};

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

/// The whole-problem driver of `isa`, or an error if it cannot run here.
pub(crate) fn driver(isa: Isa) -> Result<DriveFn> {
    if !isa.is_available() {
        return Err(unavailable(isa));
    }
    match isa {
        Isa::Scalar => Ok(reference::drive_scalar as DriveFn),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Ok(super::x86::drive256 as DriveFn),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Ok(super::x86::drive512 as DriveFn),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Ok(super::aarch64::drive_neon as DriveFn),
        #[allow(unreachable_patterns)]
        _ => Err(unavailable(isa)),
    }
}

/// Largest `D` for which a [`FixedDense`](super::FixedDense) whose columns do not fit one
/// compact tile runs the fully unrolled packed-panel kernel; longer contractions go through
/// the driver's loop, which overlaps consecutive calls better (measured) and amortises its
/// overhead.
const UNROLL_MAX_D: usize = 16;

/// How a [`FixedDense`](super::FixedDense) runs one row: the kernels `[identity, relu]`
/// (each also told `relu`), and the weight layout they read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedPlan {
    pub fns: [FixedFn; 2],
    /// `true`: the compact layout of module `small` (weights, then the padded bias);
    /// `false`: the packed panels (and padded bias) of [`PackedDense`](super::PackedDense).
    pub compact: bool,
    /// The compact kernel may instead run inline in the caller (`x86::compact_inline`): an
    /// x86 SIMD path (so FMA and AVX are there), `F <= 4` and `D <= INLINE_MAX_D`. Saves the
    /// call through the function pointer, which is most of the cost of such tiny layers.
    pub inline: bool,
}

/// Longest contraction whose narrow compact kernel runs inline in the caller: beyond it the
/// call costs little next to the chain, and inlining would only grow the caller's code.
#[cfg(target_arch = "x86_64")]
const INLINE_MAX_D: usize = 16;

/// The single-row kernels of `isa` for the compile-time shape `D → F`, with or without a
/// bias: on x86, when `F` fits one tile (`1 <= F <= 8` vectors), the compact kernels of
/// module `small`, monomorphised for bias and activation and using the narrowest vector
/// that fits; otherwise a kernel on the packed panels.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(crate) fn fixed_kernels<const D: usize, const F: usize>(isa: Isa, bias: bool) -> Result<FixedPlan> {
    if !isa.is_available() {
        return Err(unavailable(isa));
    }
    let packed = |f: FixedFn| Ok(FixedPlan { fns: [f, f], compact: false, inline: false });
    #[cfg(target_arch = "x86_64")]
    macro_rules! compact {
        ($k:ident) => {{
            use super::x86::$k;
            let fns: [FixedFn; 2] = if bias {
                [$k::<D, F, true, false>, $k::<D, F, true, true>]
            } else {
                [$k::<D, F, false, false>, $k::<D, F, false, true>]
            };
            Ok(FixedPlan { fns, compact: true, inline: (1..=4).contains(&F) && D <= INLINE_MAX_D })
        }};
    }
    match isa {
        Isa::Scalar => packed(reference::fixed_scalar::<D, F>),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if (1..=8 * 8).contains(&F) => compact!(compact256),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if D <= UNROLL_MAX_D => packed(super::x86::fixed256::<D, F>),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => packed(super::small::packed_row::<super::x86::Avx2, D, F>),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if (1..=8 * 16).contains(&F) => compact!(compact512),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if D <= UNROLL_MAX_D => packed(super::x86::fixed512::<D, F>),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => packed(super::small::packed_row::<super::x86::Avx512, D, F>),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if D <= UNROLL_MAX_D || F == 0 => packed(super::aarch64::fixed_neon::<D, F>),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if F <= 8 * 4 => packed(super::small::small_row_neon::<D, F>),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => packed(super::small::packed_row::<super::aarch64::Neon, D, F>),
        #[allow(unreachable_patterns)]
        _ => Err(unavailable(isa)),
    }
}

/// The single-tile row kernels `[identity, relu]` of `isa` for `f` columns, row-major
/// (`rowmajor`) or in packed panels, and the lanes of the last vector — if `f` fits one
/// single-row tile (at most 8 vectors) and `isa` is an available SIMD path.
pub(crate) fn small_kernels(isa: Isa, f: usize, rowmajor: bool) -> Option<(&'static [SmallFn; 2], usize)> {
    let l = isa.lanes();
    if l == 1 || f == 0 || f > 8 * l || !isa.is_available() {
        return None;
    }
    let (i, rem) = small_index(f, l);
    let table: &'static SmallTable = match (isa, rowmajor) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, false) => &super::x86::SMALL256_PACKED,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, true) => &super::x86::SMALL256_ROWMAJOR,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, false) => &super::x86::SMALL512_PACKED,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, true) => &super::x86::SMALL512_ROWMAJOR,
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, false) => &super::aarch64::SMALL_NEON_PACKED,
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, true) => &super::aarch64::SMALL_NEON_ROWMAJOR,
        _ => return None,
    };
    Some((&table[i], rem))
}

/// The one-row kernels `[identity, relu]` of [`PackedDense`](super::PackedDense) for a
/// `d × f` layer packed for `isa`, and the lanes of the last vector, if `f` fits one tile.
///
/// Narrow layers (`f <= 8` with AVX-512, `f <= 4` with AVX2) get the kernels of module
/// `small`, with 128/256-bit vectors inside the wider panels and `f` — and a short `d` — as
/// constants: such a kernel must be called with this `d` only. Others get
/// [`small_kernels`].
pub(crate) fn packed_small_kernels(isa: Isa, d: usize, f: usize) -> Option<(&'static [SmallFn; 2], usize)> {
    #[cfg(target_arch = "x86_64")]
    if f >= 1 && isa.is_available() {
        let col = d.min(super::small::NARROW_MAX_D + 1);
        match isa {
            Isa::Avx512 if f <= super::x86::NARROW512.len() => return Some((&super::x86::NARROW512[f - 1][col], f)),
            Isa::Avx2 if f <= super::x86::NARROW256.len() => return Some((&super::x86::NARROW256[f - 1][col], f)),
            _ => {}
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = d;
    small_kernels(isa, f, false)
}
