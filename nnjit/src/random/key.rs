//! JAX PRNG keys: creation from a seed, `fold_in` and `split`.
//!
//! ```
//! use nnjit::random::{fold_in, split, PRNGKey};
//! let key = PRNGKey(0); // jax.random.PRNGKey(0)
//! let [a, b] = key.split::<2>(); // jax.random.split(key)
//! assert_eq!(split(key, 2)?, vec![a, b]);
//! assert_eq!(fold_in(key, 1), b); // partitionable split: key i is fold_in(key, i)
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::fmt;

use crate::error::{Error, Result};
use crate::fallible::try_with_capacity;

use super::threefry::threefry2x32;

/// A JAX `threefry2x32` PRNG key: two `u32` words, exactly the `uint32[2]` array that
/// `jax.random.PRNGKey` returns.
///
/// Keys are plain values: deriving new keys ([`Key::fold_in`], [`Key::split`]) never changes
/// the key they come from.
///
/// ```
/// use nnjit::random::{Key, PRNGKey};
/// let k = PRNGKey(42);
/// assert_eq!(k, Key::from_words([0, 42]));
/// assert_eq!(k.to_string(), "[0x00000000, 0x0000002a]");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key([u32; 2]);

impl Key {
    /// The key with the given words (`jax.random.wrap_key_data`-like, for raw `uint32[2]`).
    ///
    /// ```
    /// use nnjit::random::{Key, PRNGKey};
    /// // The key data of jax.random.PRNGKey(42): Array([ 0, 42], dtype=uint32)
    /// assert_eq!(Key::from_words([0, 42]), PRNGKey(42));
    /// assert_eq!(Key::from_words([1, 2]).words(), [1, 2]);
    /// ```
    pub const fn from_words(words: [u32; 2]) -> Key {
        Key(words)
    }

    /// The two words of the key (`jax.random.key_data`).
    ///
    /// ```
    /// use nnjit::random::PRNGKey;
    /// assert_eq!(PRNGKey(7).words(), [0, 7]); // jax.random.key_data(PRNGKey(7))
    /// let [hi, lo]: [u32; 2] = PRNGKey(0).fold_in(1).words();
    /// assert_ne!((hi, lo), (0, 0));
    /// ```
    pub const fn words(self) -> [u32; 2] {
        self.0
    }

    /// `jax.random.PRNGKey(seed)` with `jax_enable_x64=False` (JAX's default): the key is
    /// `[0, seed mod 2³²]`. Same as [`PRNGKey`].
    ///
    /// ```
    /// use nnjit::random::Key;
    /// assert_eq!(Key::from_seed(-1).words(), [0, 0xFFFF_FFFF]);
    /// assert_eq!(Key::from_seed((1 << 32) + 5).words(), [0, 5]);
    /// ```
    pub const fn from_seed(seed: i64) -> Key {
        // The seed becomes int64, is canonicalised (wrapped) to int32, and the high word is a
        // logical shift of that 32-bit value by 32, i.e. zero.
        Key([0, seed as u32])
    }

    /// `jax.random.PRNGKey(seed)` with `jax_enable_x64=True`: `[seed >> 32, seed mod 2³²]`
    /// (two's complement). Not the mode Flax uses by default; provided for completeness.
    ///
    /// ```
    /// use nnjit::random::Key;
    /// assert_eq!(Key::from_seed_x64(-1).words(), [0xFFFF_FFFF, 0xFFFF_FFFF]);
    /// assert_eq!(Key::from_seed_x64((1 << 32) + 5).words(), [1, 5]);
    /// ```
    pub const fn from_seed_x64(seed: i64) -> Key {
        Key([(seed >> 32) as u32, seed as u32])
    }

    /// Like [`Key::from_seed`] for a seed given as a wider integer (e.g. parsed from Python
    /// source or JSON): a seed outside `[-2⁶³, 2⁶³)` is an error, as JAX raises
    /// `OverflowError` for it.
    ///
    /// ```
    /// use nnjit::random::Key;
    /// assert_eq!(Key::from_seed_i128(-(1 << 63)).unwrap().words(), [0, 0]);
    /// assert!(Key::from_seed_i128(1 << 63).is_err());
    /// ```
    pub fn from_seed_i128(seed: i128) -> Result<Key> {
        i64::try_from(seed).map(Key::from_seed).map_err(|_| {
            Error::invalid(
                "",
                format!(
                    "PRNGKey seed {seed} does not fit in int64 \
                     (JAX raises OverflowError for seeds outside [-2**63, 2**63))"
                ),
            )
        })
    }

    /// `jax.random.fold_in(key, data)`: the key `threefry2x32(key, (0, data))`.
    ///
    /// ```
    /// use nnjit::random::PRNGKey;
    /// let k = PRNGKey(0).fold_in(0xBF8B_4530);
    /// assert_eq!(k.words(), [0x5527_B11E, 0xC7BE_436D]);
    /// ```
    pub fn fold_in(self, data: u32) -> Key {
        Key(threefry2x32(self.0, [0, data]))
    }

    /// `jax.random.split(key, n)` with `jax_threefry_partitionable=True` (the default of
    /// current JAX): key `i` is `threefry2x32(key, (i >> 32, i mod 2³²))`, so for `i < 2³²`
    /// it equals `key.fold_in(i)`. Fails only if the `n` keys cannot be allocated.
    ///
    /// ```
    /// use nnjit::random::PRNGKey;
    /// let keys = PRNGKey(7).split_n(3).unwrap();
    /// assert_eq!(keys.len(), 3);
    /// assert_eq!(keys[2], PRNGKey(7).fold_in(2));
    /// ```
    pub fn split_n(self, n: usize) -> Result<Vec<Key>> {
        let mut out = try_with_capacity("split keys", n)?;
        out.extend((0..n as u64).map(|i| self.split_key(i)));
        Ok(out)
    }

    /// `jax.random.split(key, N)` for a number of keys known at compile time.
    ///
    /// ```
    /// use nnjit::random::PRNGKey;
    /// let [a, b] = PRNGKey(0).split::<2>();
    /// assert_eq!((a, b), (PRNGKey(0).fold_in(0), PRNGKey(0).fold_in(1)));
    /// ```
    pub fn split<const N: usize>(self) -> [Key; N] {
        std::array::from_fn(|i| self.split_key(i as u64))
    }

    fn split_key(self, i: u64) -> Key {
        Key(threefry2x32(self.0, [(i >> 32) as u32, i as u32]))
    }
}

impl From<[u32; 2]> for Key {
    fn from(words: [u32; 2]) -> Key {
        Key(words)
    }
}

impl From<Key> for [u32; 2] {
    fn from(key: Key) -> [u32; 2] {
        key.0
    }
}

impl fmt::Display for Key {
    /// Formats as `[0x5527b11e, 0xc7be436d]` (the hex words of the golden files).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#010x}, {:#010x}]", self.0[0], self.0[1])
    }
}

/// `jax.random.PRNGKey(seed)` with JAX's default `jax_enable_x64=False`: the key
/// `[0, seed mod 2³²]`.
///
/// For seeds that may not fit in `i64` use [`Key::from_seed_i128`], which reports JAX's
/// `OverflowError` as an error.
///
/// ```
/// use nnjit::random::PRNGKey;
/// assert_eq!(PRNGKey(0).words(), [0, 0]);
/// assert_eq!(PRNGKey(-1).words(), [0, 0xFFFF_FFFF]);
/// assert_eq!(PRNGKey(1 << 32).words(), [0, 0]);
/// ```
#[allow(non_snake_case)]
pub const fn PRNGKey(seed: i64) -> Key {
    Key::from_seed(seed)
}

/// `jax.random.fold_in(key, data)`; see [`Key::fold_in`].
///
/// ```
/// use nnjit::random::{fold_in, PRNGKey};
/// let k1 = fold_in(PRNGKey(0), 0xBF8B_4530);
/// assert_eq!(fold_in(k1, 0xC4EA_21BB).words(), [0xCB91_EA54, 0x9BCC_492D]);
/// ```
pub fn fold_in(key: Key, data: u32) -> Key {
    key.fold_in(data)
}

/// `jax.random.split(key, n)` (partitionable layout); see [`Key::split_n`].
///
/// ```
/// use nnjit::random::{split, PRNGKey};
/// let keys = split(PRNGKey(0), 2).unwrap();
/// assert_eq!(keys, vec![PRNGKey(0).fold_in(0), PRNGKey(0).fold_in(1)]);
/// ```
pub fn split(key: Key, n: usize) -> Result<Vec<Key>> {
    key.split_n(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_spec_section_1() {
        let cases: [(i128, u32); 10] = [
            (0, 0),
            (-1, 0xFFFF_FFFF),
            ((1 << 32) + 5, 5),
            (1 << 32, 0),
            (-(1 << 31) - 1, 0x7FFF_FFFF),
            (-(1 << 31), 0x8000_0000),
            ((1 << 63) - 1, 0xFFFF_FFFF),
            (-(1 << 63), 0),
            ((1 << 40) + 123, 123),
            (987_654_321_987, (987_654_321_987i64 as u64 & 0xFFFF_FFFF) as u32),
        ];
        for (seed, lo) in cases {
            let k = Key::from_seed_i128(seed).unwrap();
            assert_eq!(k.words(), [0, lo], "seed {seed}");
            assert_eq!(PRNGKey(seed as i64), k);
        }
        assert!(Key::from_seed_i128(1 << 63).is_err());
        assert!(Key::from_seed_i128(-(1 << 63) - 1).is_err());
        assert!(Key::from_seed_i128(i128::MAX).is_err());
        let msg = Key::from_seed_i128(1 << 64).unwrap_err().to_string();
        assert!(msg.contains("OverflowError"), "{msg}");
    }

    #[test]
    fn x64_seeds() {
        assert_eq!(Key::from_seed_x64(-1).words(), [u32::MAX, u32::MAX]);
        assert_eq!(Key::from_seed_x64((1 << 32) + 5).words(), [1, 5]);
    }

    #[test]
    fn worked_example_keys() {
        let root = PRNGKey(0);
        let k1 = root.fold_in(0xBF8B_4530);
        assert_eq!(k1, Key::from_words([0x5527_B11E, 0xC7BE_436D]));
        let kjit = fold_in(k1, 0xC4EA_21BB);
        assert_eq!(kjit.words(), [0xCB91_EA54, 0x9BCC_492D]);
        assert_eq!(kjit.to_string(), "[0xcb91ea54, 0x9bcc492d]");
    }

    #[test]
    fn split_is_fold_in() {
        for seed in [0i64, 1, -1, 42, 123_456_789] {
            let k = PRNGKey(seed);
            let keys = split(k, 9).unwrap();
            for (i, sk) in keys.iter().enumerate() {
                assert_eq!(*sk, k.fold_in(i as u32));
                assert_eq!(sk.words(), threefry2x32(k.words(), [0, i as u32]));
            }
            let arr = k.split::<9>();
            assert_eq!(arr.to_vec(), keys);
            // Keys are values: deriving does not change the parent.
            assert_eq!(k, PRNGKey(seed));
        }
        assert!(split(PRNGKey(0), 0).unwrap().is_empty());
        assert_eq!(PRNGKey(3).split::<0>(), []);
    }

    #[test]
    fn split_huge_is_an_error() {
        assert!(split(PRNGKey(0), 100_000_000_000).is_err());
        assert!(split(PRNGKey(0), usize::MAX).is_err());
    }

    #[test]
    fn conversions() {
        let k: Key = [1, 2].into();
        let w: [u32; 2] = k.into();
        assert_eq!(w, [1, 2]);
    }
}
