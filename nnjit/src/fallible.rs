//! Fallible allocation: asking for an absurd size returns an error instead of aborting.
//!
//! ```
//! use nnjit::fallible::{checked_len, try_filled};
//! assert_eq!(checked_len("kernel", &[3, 4])?, 12);
//! assert!(checked_len("kernel", &[usize::MAX, 2]).is_err()); // an error, not an abort
//! assert_eq!(try_filled("bias", 4, 0.0)?, vec![0.0; 4]);
//! # Ok::<(), nnjit::Error>(())
//! ```

use crate::error::{Error, Result};

/// Number of elements of `shape`, or [`Error::SizeOverflow`] if it (or its byte size as f32)
/// does not fit in `usize`/`isize`.
///
/// ```
/// use nnjit::{fallible::checked_len, Error};
/// assert_eq!(checked_len("kernel", &[3, 4])?, 12);
/// assert_eq!(checked_len("scalar", &[])?, 1); // a 0-d array has one element
/// assert!(matches!(checked_len("kernel", &[usize::MAX, 2]), Err(Error::SizeOverflow { .. })));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn checked_len(what: &str, shape: &[usize]) -> Result<usize> {
    let overflow = || Error::SizeOverflow { what: what.to_string(), shape: shape.to_vec() };
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(overflow)?;
    // Rust allocations are limited to isize::MAX bytes.
    match n.checked_mul(std::mem::size_of::<f32>()) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(n),
        _ => Err(overflow()),
    }
}

/// A `Vec<f32>` of `len` copies of `value`, reserved fallibly.
///
/// ```
/// let ones = nnjit::fallible::try_filled("scale", 3, 1.0)?;
/// assert_eq!(ones, vec![1.0f32; 3]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn try_filled(what: &str, len: usize, value: f32) -> Result<Vec<f32>> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// A `Vec<f32>` of `len` zeros, reserved fallibly and cleared with one `memset` (per-element
/// `resize` costs ~4 instructions per float, which shows on small layers).
///
/// ```
/// let z = nnjit::fallible::try_zeroed("output", 5)?;
/// assert_eq!(z, vec![0.0f32; 5]);
/// assert!(z.iter().all(|v| v.to_bits() == 0)); // +0.0, not -0.0
/// # Ok::<(), nnjit::Error>(())
/// ```
#[inline]
pub fn try_zeroed(what: &str, len: usize) -> Result<Vec<f32>> {
    let mut v: Vec<f32> = try_with_capacity(what, len)?;
    // SAFETY: `v` has capacity for `len` floats (reserved above); all-zero bytes are the f32
    // +0.0, so after the write the first `len` elements are initialized.
    unsafe {
        std::ptr::write_bytes(v.as_mut_ptr(), 0, len);
        v.set_len(len);
    }
    Ok(v)
}

/// An empty `Vec<T>` with room for `len` elements, reserved fallibly.
///
/// ```
/// let v: Vec<f32> = nnjit::fallible::try_with_capacity("buffer", 16)?;
/// assert!(v.is_empty() && v.capacity() >= 16);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[inline]
pub fn try_with_capacity<T>(what: &str, len: usize) -> Result<Vec<T>> {
    let failed = || Error::Allocation { what: what.to_string(), bytes: len.saturating_mul(std::mem::size_of::<T>()) };
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| failed())?;
    if layout.size() == 0 {
        return Ok(Vec::new()); // nothing to allocate (a zero length, or zero-sized elements)
    }
    // One call to the allocator: `try_reserve_exact` on an empty `Vec` goes through the
    // generic growth path first (~40 instructions, which shows on every small output).
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { std::alloc::alloc(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(failed());
    }
    // SAFETY: `ptr` comes from the global allocator with `Layout::array::<T>(len)`, the layout
    // a `Vec<T>` of capacity `len` has; no element is initialized and the length is 0.
    Ok(unsafe { Vec::from_raw_parts(ptr, 0, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_huge_requests_are_errors() {
        assert!(matches!(checked_len("x", &[usize::MAX, 2]), Err(Error::SizeOverflow { .. })));
        assert!(matches!(checked_len("x", &[1 << 62]), Err(Error::SizeOverflow { .. })));
        assert_eq!(checked_len("x", &[3, 4]).unwrap(), 12);
        assert_eq!(checked_len("x", &[]).unwrap(), 1);
        // 10^11 f32 = 400 GB: more than this machine has; must fail cleanly.
        assert!(matches!(try_filled("x", 100_000_000_000, 0.0), Err(Error::Allocation { .. })));
    }
}
