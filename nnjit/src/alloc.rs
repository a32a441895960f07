//! Fallible allocation: asking for an absurd size returns an error instead of aborting.

use crate::error::{Error, Result};

/// Number of elements of `shape`, or [`Error::SizeOverflow`] if it (or its byte size as f32)
/// does not fit in `usize`/`isize`.
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
pub fn try_filled(what: &str, len: usize, value: f32) -> Result<Vec<f32>> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// An empty `Vec<T>` with room for `len` elements, reserved fallibly.
pub fn try_with_capacity<T>(what: &str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::Allocation {
        what: what.to_string(),
        bytes: len.saturating_mul(std::mem::size_of::<T>()),
    })?;
    Ok(v)
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
