//! The arithmetic contract in plain scalar Rust (the portable scalar path is `isa::scalar`).
//!
//! [`dense_reference`] is the contract written as literally as possible; every other path
//! is tested against it bit for bit. It uses [`f32::mul_add`], which is a correctly rounded
//! fused multiply-add on every target (an `fma` instruction where the CPU has one, an exact
//! software `fmaf` where it does not), so it is exact on CPUs without FMA too.
//!
//! ```
//! use nnjit::kernel::{dense, reference::dense_reference, Activation, DenseProblem, Isa};
//! let (x, w) = ([0.1f32, 0.2, 0.3], [0.7f32, -1.3, 2.9, 0.01, -0.5, 1e-3]); // (1, 3) · (3, 2)
//! let p = DenseProblem { x: &x, w: &w, bias: None, n: 1, d: 3, f: 2, act: Activation::Identity };
//! let mut want = [0.0f32; 2];
//! dense_reference(&p, &mut want)?;
//! for isa in Isa::all_available() {
//!     let mut y = [0.0f32; 2];
//!     dense(isa, &p, &mut y)?;
//!     assert_eq!(y.map(f32::to_bits), want.map(f32::to_bits)); // every path: the same bits
//! }
//! # Ok::<(), nnjit::Error>(())
//! ```

use super::{Activation, DenseProblem};
use crate::error::Result;

/// `y = act(x·W + b)`, computed exactly as the contract states:
/// for every output `(n, j)`, `acc = +0.0`, then `acc = fma(x[n,k], W[k,j], acc)` for `k` in
/// increasing order, then `y = acc + b[j]` (no add without bias), then the activation.
///
/// Slow (one output at a time, walking `W` by columns); meant as the oracle for tests.
/// Arguments and errors as for [`dense`](super::dense).
///
/// ```
/// use nnjit::kernel::{reference::dense_reference, Activation, DenseProblem};
/// let (x, w, b) = ([1.0f32, 2.0], [1.0f32, -1.0, 0.5, 2.0], [0.25f32, 0.0]);
/// let p = DenseProblem { x: &x, w: &w, bias: Some(&b), n: 1, d: 2, f: 2, act: Activation::Relu };
/// let mut y = [0.0f32; 2];
/// dense_reference(&p, &mut y).unwrap();
/// assert_eq!(y, [2.25, 3.0]);
/// ```
pub fn dense_reference(p: &DenseProblem<'_>, y: &mut [f32]) -> Result<()> {
    p.check(y)?;
    let DenseProblem { x, w, bias, n, d, f, act } = *p;
    for r in 0..n {
        for j in 0..f {
            let mut acc = 0.0f32;
            for k in 0..d {
                acc = x[r * d + k].mul_add(w[k * f + j], acc);
            }
            let mut out = match bias {
                Some(b) => acc + b[j],
                None => acc,
            };
            if act == Activation::Relu && out < 0.0 {
                out = 0.0;
            }
            y[r * f + j] = canon_nan(out);
        }
    }
    Ok(())
}

/// `v`, or the canonical quiet NaN `f32::NAN` if `v` is any NaN (the contract's last step:
/// which NaN an operation returns varies with operand order and CPU; this one does not).
///
/// ```
/// use nnjit::kernel::reference::canon_nan;
/// assert_eq!(canon_nan(f32::from_bits(0xFFC0_0000)).to_bits(), 0x7FC0_0000); // x86's default NaN
/// assert_eq!(canon_nan(-0.0).to_bits(), (-0.0f32).to_bits()); // everything else unchanged
/// ```
#[inline]
#[must_use]
pub fn canon_nan(v: f32) -> f32 {
    if v.is_nan() {
        f32::NAN
    } else {
        v
    }
}
