//! Float32 `log`, `log1p`, `erf` and `erf_inv` exactly as XLA:CPU evaluates them
//! (with its FMA contractions), so that samples match JAX bit for bit.
//!
//! Every `fma` below is a single-rounding `f32::mul_add`; every other operation is one
//! correctly rounded IEEE-754 binary32 operation. See SPEC §6.1–6.4.
//!
//! ```
//! use nnjit::random::xla_math::{erf, erf_inv, log};
//! assert_eq!(log(1.0), 0.0);
//! assert_eq!(erf(0.0), 0.0);
//! assert!((erf(erf_inv(0.5)) - 0.5).abs() < 1e-6);
//! ```

/// `f32(√2) = 1.41421354` (`0x3FB504F3`).
///
/// ```
/// use nnjit::random::xla_math::SQRT_2;
/// assert_eq!(SQRT_2, std::f32::consts::SQRT_2); // the f32 nearest to √2
/// assert_eq!(SQRT_2.to_bits(), 0x3FB5_04F3);
/// ```
pub const SQRT_2: f32 = f32::from_bits(0x3FB5_04F3);

/// `f32(1/√2)` (`0x3F3504F3`): XLA rewrites `x / f32(√2)` as `x * FRAC_1_SQRT_2`.
///
/// ```
/// use nnjit::random::xla_math::{FRAC_1_SQRT_2, SQRT_2};
/// assert_eq!(FRAC_1_SQRT_2, std::f32::consts::FRAC_1_SQRT_2);
/// assert_eq!(FRAC_1_SQRT_2.to_bits(), 0x3F35_04F3);
/// assert!((FRAC_1_SQRT_2 * SQRT_2 - 1.0).abs() <= f32::EPSILON);
/// ```
pub const FRAC_1_SQRT_2: f32 = f32::from_bits(0x3F35_04F3);

const LOG_C: [u32; 9] = [
    0x3D90_21BB,
    0xBDEB_D1B8,
    0x3DEF_251A,
    0xBDFE_5D4F,
    0x3E11_E9BF,
    0xBE2A_AE50,
    0x3E4C_CEAC,
    0xBE7F_FFFC,
    0x3EAA_AAAA,
];
const LOG_Q1: f32 = f32::from_bits(0xB95E_8083);
const LOG_Q2: f32 = f32::from_bits(0x3F31_8000);
const SQRT_HALF: f32 = f32::from_bits(0x3F35_04F3);

#[inline(always)]
fn c(bits: u32) -> f32 {
    f32::from_bits(bits)
}

/// Natural logarithm as XLA:CPU computes it for float32 (the Cephes/Eigen `logf` polynomial
/// with XLA's FMA pattern). Special cases: `log(x<0) = NaN`, `log(±0) = -inf`,
/// `log(+inf) = +inf`, `log(NaN) = NaN`. Like XLA:CPU, which runs with denormals-are-zero,
/// a subnormal input counts as zero and gives `-inf`.
///
/// ```
/// use nnjit::random::xla_math::log;
/// assert_eq!(log(1.0), 0.0);
/// assert_eq!(log(0.0), f32::NEG_INFINITY);
/// assert!(log(-1.0).is_nan());
/// ```
#[inline(always)]
pub fn log(v: f32) -> f32 {
    if v.abs() < f32::MIN_POSITIVE {
        // ±0, or a subnormal that XLA:CPU's DAZ mode reads as zero.
        return f32::NEG_INFINITY;
    }
    if v.is_nan() || v < 0.0 {
        return f32::NAN;
    }
    if v == f32::INFINITY {
        return f32::INFINITY;
    }
    let (_, e, x) = log_reduce(v);
    let x2 = x * x;
    let x3 = x2 * x;
    let mut y = x.mul_add(c(LOG_C[0]), c(LOG_C[1]));
    let mut y1 = x.mul_add(c(LOG_C[3]), c(LOG_C[4]));
    let mut y2 = x.mul_add(c(LOG_C[6]), c(LOG_C[7]));
    y = y.mul_add(x, c(LOG_C[2]));
    y1 = y1.mul_add(x, c(LOG_C[5]));
    y2 = y2.mul_add(x, c(LOG_C[8]));
    y = y.mul_add(x3, y1);
    y = y.mul_add(x3, y2);
    y = y.mul_add(x3, e * LOG_Q1);
    let r = (x - x2 * 0.5) + y;
    e.mul_add(LOG_Q2, r)
}

/// Range reduction of [`log`] for a positive normal `v`: the mantissa `m` in `[0.5, 1)`, the
/// exponent `e` (as a float) and `x`, with `log(v) ≈ e·ln2 + log1p(x)`.
#[inline(always)]
fn log_reduce(v: f32) -> (f32, f32, f32) {
    let bits = v.to_bits();
    let mut e = (((bits >> 23) & 0xFF) as i32 - 127) as f32 + 1.0;
    let m = f32::from_bits((bits & 0x807F_FFFF) | 0x3F00_0000);
    let x = if m < SQRT_HALF {
        e -= 1.0;
        (m - 1.0) + m
    } else {
        m - 1.0
    };
    (m, e, x)
}

const LOG1P_THRESHOLD: f32 = f32::from_bits(0x3ED4_13CD);
const LOG1P_P: [u32; 7] = [0x383D_E04B, 0x3EFF_40C5, 0x40D2_84FA, 0x41EF_4B9C, 0x4273_CC76, 0x4264_73AD, 0x41A0_5101];
const LOG1P_Q: [u32; 7] = [0x3F80_0000, 0x4171_01AD, 0x42A6_185B, 0x435D_C32D, 0x439A_8CA3, 0x4358_6D8A, 0x4270_7982];

/// `log(1 + t)` as XLA:CPU computes it for float32: a Cephes rational approximation for
/// `|t| < √2 − 1`, otherwise [`log`]`(1 + t)`.
///
/// ```
/// use nnjit::random::xla_math::log1p;
/// assert_eq!(log1p(0.0), 0.0);
/// assert_eq!(log1p(-1.0), f32::NEG_INFINITY);
/// assert_eq!(log1p(f32::from_bits(0xBD4122D3)).to_bits(), 0xBD45D67D);
/// ```
#[inline(always)]
pub fn log1p(t: f32) -> f32 {
    if t.abs() < LOG1P_THRESHOLD {
        let x2 = t * t;
        let n = horner(&LOG1P_P, t);
        let q = horner(&LOG1P_Q, t);
        let r = n / q;
        let s = (t * x2) * r + x2 * -0.5;
        t + s
    } else {
        log(t + 1.0)
    }
}

/// FMA Horner chain `p = c0; p = fma(p, x, c_i)` over the coefficient bit patterns.
#[inline(always)]
fn horner(coeffs: &[u32], x: f32) -> f32 {
    let mut p = c(coeffs[0]);
    for &k in &coeffs[1..] {
        p = p.mul_add(x, c(k));
    }
    p
}

const ERFINV_A: [u32; 9] = [
    0x32F1_6588,
    0x34B8_4B36,
    0xB66C_7357,
    0xB693_5AC1,
    0x3965_32DB,
    0xBAA4_5408,
    0xBB88_E4EF,
    0x3E7C_8F63,
    0x3FC0_2E2F,
];
const ERFINV_B: [u32; 9] = [
    0xB951_F09B,
    0x38D3_B56B,
    0x3AB0_DC72,
    0xBB70_BDE7,
    0x3BBC_127B,
    0xBBF9_C5D7,
    0x3C1A_A57E,
    0x3F80_36DB,
    0x4035_4F7E,
];

/// Inverse error function as XLA computes it for float32 (Giles' approximation, both the
/// `w < 5` and the `w ≥ 5` branch). `erf_inv(±1) = ±inf`; `|u| > 1` gives NaN.
///
/// ```
/// use nnjit::random::xla_math::erf_inv;
/// assert_eq!(erf_inv(f32::from_bits(0x3F6028F5)).to_bits(), 0x3F8B154A);
/// assert_eq!(erf_inv(1.0), f32::INFINITY);
/// assert_eq!(erf_inv(0.0), 0.0);
/// ```
#[inline(always)]
pub fn erf_inv(u: f32) -> f32 {
    if u.abs() == 1.0 {
        return u * f32::INFINITY;
    }
    let t = u * -u;
    let w = -log1p(t);
    let p = if w < 5.0 { horner(&ERFINV_A, w - 2.5) } else { horner(&ERFINV_B, w.sqrt() - 3.0) };
    p * u
}

const ERF_CLAMP: f32 = f32::from_bits(0x406F_9C68);
const ERF_P: [u32; 5] = [0x3970_2D51, 0x3B5F_5DA2, 0x3D50_B6EB, 0x3E3D_A740, 0x3F90_6EBA];
const ERF_Q: [u32; 7] = [0xB3FD_3906, 0x37C5_88DF, 0x3A85_6D28, 0x3C66_87D4, 0x3DE3_4C21, 0x3EFE_B44A, 0x3F80_0000];

/// Error function as XLA:CPU's scalar float32 `erf` computes it (rational approximation on
/// `|x| < 3.74392128`, `±1` beyond).
///
/// ```
/// use nnjit::random::xla_math::{erf, SQRT_2};
/// assert_eq!(erf(-SQRT_2).to_bits(), 0xBF745A18);
/// assert_eq!(erf(10.0), 1.0);
/// ```
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x.abs() >= ERF_CLAMP {
        return 1.0f32.copysign(x);
    }
    let x2 = x * x;
    let num = x * horner(&ERF_P, x2);
    let den = horner(&ERF_Q, x2);
    num / den
}

mod host {
    extern "C" {
        /// The C library's float32 error function (libm's `erff`).
        pub fn erff(x: f32) -> f32;
    }
}

/// The host C library's float32 `erff`, which XLA's constant folder (its `HloEvaluator`)
/// calls to fold `erf` of a constant: under `jax.jit`, `erf(lower / √2)` of
/// `jax.random.truncated_normal` is this function, not XLA's compiled [`erf`].
///
/// The value is the platform's: the goldens were made with glibc 2.36 (x86-64), whose
/// `erff` is the fdlibm algorithm; JAX on another C library folds with that library's `erff`,
/// and so does this function.
///
/// ```
/// use nnjit::random::xla_math::{erf, host_erf};
/// assert_eq!(host_erf(0.0), 0.0);
/// assert_eq!(host_erf(f32::INFINITY), 1.0);
/// // erf(-0.25/√2): the constant XLA folds is not what its compiled erf computes.
/// let x = -0.25f32 / std::f32::consts::SQRT_2;
/// assert_eq!(host_erf(x).to_bits(), 0xBE4A_268A);
/// assert_eq!(erf(x).to_bits(), 0xBE4A_268C);
/// ```
pub fn host_erf(x: f32) -> f32 {
    // SAFETY: `erff` is a pure function of its argument, defined for every float
    // (C99 7.12.8.1); the C library is linked by `std`.
    unsafe { host::erff(x) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(bits: u32) -> f32 {
        f32::from_bits(bits)
    }

    #[test]
    fn log_special_cases() {
        assert!(log(-1.0).is_nan());
        assert!(log(-f32::MIN_POSITIVE).is_nan());
        assert!(log(f32::NEG_INFINITY).is_nan());
        assert!(log(f32::NAN).is_nan());
        assert_eq!(log(0.0), f32::NEG_INFINITY);
        assert_eq!(log(-0.0), f32::NEG_INFINITY);
        assert_eq!(log(f32::INFINITY), f32::INFINITY);
        assert_eq!(log(1.0), 0.0);
        // Subnormals read as zero (DAZ).
        assert_eq!(log(f32::from_bits(1)), f32::NEG_INFINITY);
        assert!((log(f32::MIN_POSITIVE) + 87.336_55).abs() < 1e-4);
        assert!((log(f32::MAX) - 88.722_84).abs() < 1e-4);
    }

    #[test]
    fn log_is_accurate() {
        // Not bit-exact against libm (it is XLA's polynomial), but within a couple of ulps.
        let mut v = 1e-30f32;
        while v < 1e30 {
            let got = log(v) as f64;
            let want = (v as f64).ln();
            assert!((got - want).abs() <= 2.5e-7 * want.abs().max(1.0), "log({v}) = {got}, want {want}");
            v *= 1.37;
        }
    }

    #[test]
    fn log_worked_element0() {
        // SPEC §10 element 0: 1+t = 0x3E6EE134, m = 0x3F6EE134, e = -2, x = 0xBD88F660,
        // log1p = 0xBFBA4E35.
        let (m, e, x) = log_reduce(f(0x3E6E_E134));
        assert_eq!((m.to_bits(), e, x.to_bits()), (0x3F6E_E134, -2.0, 0xBD88_F660));
        assert_eq!(log(f(0x3E6E_E134)).to_bits(), 0xBFBA_4E35);
        let t = f(0xBF44_47B3);
        assert_eq!((t + 1.0).to_bits(), 0x3E6E_E134);
        assert_eq!(log1p(t).to_bits(), 0xBFBA_4E35);
    }

    #[test]
    fn log1p_cases() {
        assert_eq!(log1p(0.0), 0.0);
        assert_eq!(log1p(-1.0), f32::NEG_INFINITY);
        assert!(log1p(-2.0).is_nan());
        assert!(log1p(f32::NAN).is_nan());
        assert_eq!(log1p(f32::INFINITY), f32::INFINITY);
        // Element 3 of SPEC §10 (rational branch).
        assert_eq!(log1p(f(0xBD41_22D3)).to_bits(), 0xBD45_D67D);
        for &t in &[-0.9f32, -0.5, -0.3, -1e-3, 1e-3, 0.3, 0.5, 2.0, 100.0] {
            let want = (t as f64).ln_1p();
            assert!((log1p(t) as f64 - want).abs() <= 3e-7 * want.abs(), "log1p({t})");
        }
    }

    #[test]
    fn erf_inv_worked_elements() {
        // SPEC §10, element 0 (log branch of log1p) and element 3 (rational branch).
        let u0 = f(0x3F60_28F5);
        let t0 = u0 * -u0;
        assert_eq!(t0.to_bits(), 0xBF44_47B3);
        assert_eq!((-log1p(t0) - 2.5).to_bits(), 0xBF85_B1CB);
        assert_eq!(horner(&ERFINV_A, f(0xBF85_B1CB)).to_bits(), 0x3F9E_D6B7);
        assert_eq!(erf_inv(u0).to_bits(), 0x3F8B_154A);
        assert_eq!((erf_inv(u0) * SQRT_2).to_bits(), 0x3FC4_B17B);

        let u3 = f(0x3E5E_5B80);
        let t3 = u3 * -u3;
        assert_eq!(t3.to_bits(), 0xBD41_22D3);
        assert_eq!((-log1p(t3) - 2.5).to_bits(), 0xC01C_E8A6);
        assert_eq!(horner(&ERFINV_A, f(0xC01C_E8A6)).to_bits(), 0x3F65_BFF0);
        assert_eq!(erf_inv(u3).to_bits(), 0x3E47_8E90);
        assert_eq!((erf_inv(u3) * SQRT_2).to_bits(), 0x3E8D_1BA7);
    }

    #[test]
    fn erf_inv_branches_and_edges() {
        assert_eq!(erf_inv(1.0), f32::INFINITY);
        assert_eq!(erf_inv(-1.0), f32::NEG_INFINITY);
        assert!(erf_inv(1.5).is_nan());
        assert!(erf_inv(f32::NAN).is_nan());
        assert_eq!(erf_inv(0.0), 0.0);
        assert_eq!(erf_inv(-0.5), -erf_inv(0.5));
        // w >= 5 branch: |u| close to 1.
        let u = f(0x3F7F_FFFF); // 0.99999994
        let w = -log1p(u * -u);
        assert!(w >= 5.0);
        let e = erf_inv(u) as f64;
        assert!((e - 3.8325).abs() < 2e-3, "{e}");
        // Monotone over a sweep that covers both branches.
        let mut prev = f32::NEG_INFINITY;
        let mut u = -0.999_999f32;
        while u < 0.999_999 {
            let e = erf_inv(u);
            assert!(e >= prev, "erf_inv not monotone at {u}");
            prev = e;
            u += 1.0e-4;
        }
    }

    #[test]
    fn erf_constants() {
        assert_eq!(erf(-2.0 * FRAC_1_SQRT_2).to_bits(), 0xBF74_5A18);
        assert_eq!(erf(2.0 * FRAC_1_SQRT_2).to_bits(), 0x3F74_5A18);
        assert_eq!((-2.0 * FRAC_1_SQRT_2).to_bits(), 0xBFB5_04F3);
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf(-3.8), -1.0);
        assert!(erf(f32::NAN).is_nan());
        for &x in &[0.1f32, 0.5, 1.0, 2.0, 3.0] {
            // erf(x) from a double-precision series is not available in std; check symmetry
            // and a few known values to 1e-6.
            assert_eq!(erf(-x), -erf(x));
        }
        assert!((erf(1.0) - 0.842_700_8).abs() < 1e-6);
        assert!((erf(0.5) - 0.520_499_9).abs() < 1e-6);
    }
}
