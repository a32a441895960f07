//! Flax's static rng derivation (`flax.core.scope._fold_in_static`): a scope's static suffix
//! folded into a key.
//!
//! Flax folds a scope's static suffix (module names and per-stream counters) into a key by
//! hashing it with SHA-1 (RustCrypto's [`sha1`] crate here; not used for any security
//! purpose, only to produce Flax's words) and folding the first four digest bytes in with
//! [`fold_in`](super::fold_in). With Flax's default `flax_fix_rng_separator=False` the parts
//! are concatenated without a separator.
//!
//! ```
//! use nnjit::random::static_suffix::{fold_in_static, SuffixPart::{Index, Name}};
//! use nnjit::random::PRNGKey;
//! let root = PRNGKey(0);
//! // make_rng('params') #1 at the top scope, and #1 inside child scope `Dense_0`:
//! let top = fold_in_static(root, &[Index(1)]);
//! let child = fold_in_static(root, &[Name("Dense_0"), Index(1)]);
//! assert_eq!(top.words(), [0x5527_B11E, 0xC7BE_436D]);
//! assert_ne!(top, child);
//! ```

use sha1::{Digest, Sha1};

use super::key::Key;

/// One element of a Flax rng suffix: a module name or an integer counter.
///
/// ```
/// use nnjit::random::static_suffix::{suffix_hash, SuffixPart};
/// assert_eq!(SuffixPart::from("Dense_0"), SuffixPart::Name("Dense_0"));
/// assert_eq!(SuffixPart::from(1u64), SuffixPart::Index(1));
/// // Index(0) has no bytes: it hashes like nothing at all (SHA-1 of "" starts da39a3ee).
/// assert_eq!(suffix_hash(&[SuffixPart::Index(0)], false), 0xDA39_A3EE);
/// // Concatenated without a separator, ["Dense_", 0] is not ["Dense_0"]: Index(0) adds no byte, Name("0") adds b"0".
/// assert_ne!(suffix_hash(&["Dense_".into(), 0u64.into()], false), suffix_hash(&["Dense_0".into()], false));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SuffixPart<'a> {
    /// A string (a module name such as `Dense_0`), hashed as its UTF-8 bytes.
    Name(&'a str),
    /// A non-negative integer (a `make_rng` counter), hashed as its minimal big-endian bytes
    /// (`n.to_bytes((n.bit_length() + 7) // 8, 'big')`, so `0` contributes no bytes).
    Index(u64),
}

impl<'a> From<&'a str> for SuffixPart<'a> {
    fn from(name: &'a str) -> Self {
        SuffixPart::Name(name)
    }
}

impl From<u64> for SuffixPart<'_> {
    fn from(n: u64) -> Self {
        SuffixPart::Index(n)
    }
}

impl SuffixPart<'_> {
    fn absorb(&self, h: &mut Sha1) {
        match *self {
            SuffixPart::Name(s) => h.update(s.as_bytes()),
            SuffixPart::Index(n) => {
                let bytes = n.to_be_bytes();
                let skip = (n.leading_zeros() / 8) as usize;
                h.update(bytes.get(skip..).unwrap_or_default());
            }
        }
    }
}

/// The 32-bit word Flax folds in for `parts`: the first four bytes (big-endian) of the SHA-1
/// of the parts' bytes, each preceded by a `0` byte if `separator` is true
/// (`flax_fix_rng_separator=True`).
///
/// ```
/// use nnjit::random::static_suffix::{suffix_hash, SuffixPart};
/// assert_eq!(suffix_hash(&[SuffixPart::Index(1)], false), 0xBF8B_4530);
/// assert_eq!(suffix_hash(&[SuffixPart::Index(2)], false), 0xC4EA_21BB);
/// ```
pub fn suffix_hash(parts: &[SuffixPart<'_>], separator: bool) -> u32 {
    let mut h = Sha1::new();
    for part in parts {
        if separator {
            h.update([0]);
        }
        part.absorb(&mut h);
    }
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Flax's `_fold_in_static(key, parts)` with the default `flax_fix_rng_separator=False`:
/// `key` itself if `parts` is empty, else `fold_in(key, suffix_hash(parts))`.
///
/// ```
/// use nnjit::random::static_suffix::{fold_in_static, SuffixPart::Index};
/// use nnjit::random::PRNGKey;
/// // Kernel key of `nn.Dense(F).init(PRNGKey(0), x)` (the first `make_rng('params')`).
/// let k = fold_in_static(PRNGKey(0), &[Index(1)]);
/// assert_eq!(k.words(), [0x5527_B11E, 0xC7BE_436D]);
/// assert_eq!(fold_in_static(k, &[]), k);
/// ```
pub fn fold_in_static(key: Key, parts: &[SuffixPart<'_>]) -> Key {
    if parts.is_empty() {
        return key;
    }
    key.fold_in(suffix_hash(parts, false))
}

/// `_fold_in_static` with `flax_fix_rng_separator=True`: a `0` byte is hashed before each
/// part, so `("ab", "c")` and `("a", "bc")` give different keys. Not Flax's default.
///
/// ```
/// use nnjit::random::static_suffix::{fold_in_static, fold_in_static_with_separator, SuffixPart::Name};
/// use nnjit::random::PRNGKey;
/// let k = PRNGKey(0);
/// assert_eq!(fold_in_static(k, &[Name("ab"), Name("c")]), fold_in_static(k, &[Name("a"), Name("bc")]));
/// assert_ne!(
///     fold_in_static_with_separator(k, &[Name("ab"), Name("c")]),
///     fold_in_static_with_separator(k, &[Name("a"), Name("bc")]),
/// );
/// ```
pub fn fold_in_static_with_separator(key: Key, parts: &[SuffixPart<'_>]) -> Key {
    if parts.is_empty() {
        return key;
    }
    key.fold_in(suffix_hash(parts, true))
}

#[cfg(test)]
mod tests {
    use super::SuffixPart::{Index, Name};
    use super::*;
    use crate::random::PRNGKey;

    #[test]
    fn hash_words() {
        assert_eq!(suffix_hash(&[Index(1)], false), 0xBF8B_4530);
        assert_eq!(suffix_hash(&[Index(2)], false), 0xC4EA_21BB);
        assert_eq!(suffix_hash(&[Index(3)], false), 0x9842_926A);
        // 0 has no bytes: same as hashing the empty string.
        assert_eq!(suffix_hash(&[Index(0)], false), 0xDA39_A3EE);
        assert_eq!(suffix_hash(&[Index(255)], false), 0x85E5_3271);
        assert_eq!(suffix_hash(&[Index(256)], false), 0x0E35_6BA5);
        assert_eq!(suffix_hash(&[Name("params")], false), 0xFD7B_034E);
        assert_eq!(suffix_hash(&[Name("Dense_0"), Index(1)], false), 0xB2B7_1315);
        assert_eq!(suffix_hash(&[Name("Dense_0"), Index(1)], true), 0xFFA3_CA5F);
    }

    #[test]
    fn spec_keys() {
        let root = PRNGKey(0);
        let k1 = fold_in_static(root, &[Index(1)]);
        assert_eq!(k1.words(), [0x5527_B11E, 0xC7BE_436D]);
        let kjit = fold_in_static(k1, &[Index(2)]);
        assert_eq!(kjit.words(), [0xCB91_EA54, 0x9BCC_492D]);
        assert_eq!(fold_in_static(root, &[]), root);
        assert_eq!(fold_in_static_with_separator(root, &[]), root);
    }

    #[test]
    fn conversions() {
        assert_eq!(SuffixPart::from("x"), Name("x"));
        assert_eq!(SuffixPart::from(7u64), Index(7));
    }
}
