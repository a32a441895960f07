//! The Threefry-2x32 block cipher (20 rounds), JAX's default PRNG (`threefry2x32`).
//!
//! ```
//! use nnjit::random::{threefry::bits_at, threefry2x32, PRNGKey};
//! let key = PRNGKey(0);
//! assert_eq!(key.fold_in(5).words(), threefry2x32(key.words(), [0, 5])); // fold_in is one block
//! let [y0, y1] = threefry2x32(key.words(), [0, 3]);
//! assert_eq!(bits_at(key.words(), 3), y0 ^ y1);
//! ```

/// Rotation constants of the even (`0`) and odd (`1`) groups of four mix steps.
const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];

/// Key-schedule parity constant of Threefry.
const PARITY: u32 = 0x1BD1_1BDA;

/// Encrypts the counter pair `x` under `key` with 20 rounds of Threefry-2x32, exactly as
/// `jax.random`'s `threefry_2x32` does (all additions wrap modulo 2³²).
///
/// ```
/// use nnjit::random::threefry2x32;
/// // fold_in([0, 0], 0xBF8B4530): the kernel key of a plain Flax Dense with seed 0.
/// assert_eq!(threefry2x32([0, 0], [0, 0xBF8B4530]), [0x5527B11E, 0xC7BE436D]);
/// ```
#[inline(always)]
pub fn threefry2x32(key: [u32; 2], x: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], key[0] ^ key[1] ^ PARITY];
    let mut x0 = x[0].wrapping_add(ks[0]);
    let mut x1 = x[1].wrapping_add(ks[1]);
    for i in 0..5usize {
        for &r in &ROTATIONS[i % 2] {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r);
            x1 ^= x0;
        }
        x0 = x0.wrapping_add(ks[(i + 1) % 3]);
        x1 = x1.wrapping_add(ks[(i + 2) % 3]).wrapping_add(i as u32 + 1);
    }
    [x0, x1]
}

/// The 32 random bits of element `index` of an array drawn with
/// `jax_threefry_partitionable=True`: the 64-bit row-major index is split into
/// `(hi, lo)` words, encrypted, and the two output words are xor-ed.
///
/// ```
/// use nnjit::random::{random_bits, threefry::bits_at, PRNGKey};
/// let key = PRNGKey(3);
/// let bits = random_bits(key, &[2, 3])?; // jax.random.bits(key, (2, 3))
/// assert_eq!(bits[[1, 2]], bits_at(key.words(), 5)); // row-major index 5
/// assert_eq!(bits_at([0xCB91_EA54, 0x9BCC_492D], 0), 0xF56C_3B28);
/// # Ok::<(), nnjit::Error>(())
/// ```
#[inline(always)]
pub fn bits_at(key: [u32; 2], index: u64) -> u32 {
    let [y0, y1] = threefry2x32(key, [(index >> 32) as u32, index as u32]);
    y0 ^ y1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_worked_values() {
        // SPEC §10.
        assert_eq!(threefry2x32([0, 0], [0, 0xBF8B_4530]), [0x5527_B11E, 0xC7BE_436D]);
        assert_eq!(threefry2x32([0x5527_B11E, 0xC7BE_436D], [0, 0xC4EA_21BB]), [0xCB91_EA54, 0x9BCC_492D]);
        assert_eq!(threefry2x32([0xCB91_EA54, 0x9BCC_492D], [0, 0]), [0x7345_0A90, 0x8629_31B8]);
        assert_eq!(bits_at([0xCB91_EA54, 0x9BCC_492D], 0), 0xF56C_3B28);
    }

    #[test]
    fn random123_known_answers() {
        // Known-answer vectors of the Random123 reference (threefry2x32, 20 rounds), also used
        // by JAX's own test-suite.
        assert_eq!(threefry2x32([0, 0], [0, 0]), [0x6B20_0159, 0x99BA_4EFE]);
        assert_eq!(threefry2x32([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]), [0x1CB9_96FC, 0xBB00_2BE7]);
        assert_eq!(threefry2x32([0x1319_8A2E, 0x0370_7344], [0x243F_6A88, 0x85A3_08D3]), [0xC492_3A9C, 0x483D_F7A0]);
    }

    #[test]
    fn high_counter_word_is_used() {
        let k = [1, 2];
        assert_ne!(bits_at(k, 1 << 32), bits_at(k, 0));
        let [y0, y1] = threefry2x32(k, [1, 0]);
        assert_eq!(bits_at(k, 1 << 32), y0 ^ y1);
    }
}
