//! SHA-1 (FIPS 180-4), used only to reproduce Flax's `_fold_in_static` rng derivation.
//!
//! SHA-1 is not used for any security purpose here: Flax hashes the static suffix of a
//! random stream (module names and counters) with it, and nnjit must produce the same words.
//!
//! ```
//! use nnjit::random::sha1::sha1;
//! // hashlib.sha1(b"abc").hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"
//! assert_eq!(sha1(b"abc")[..4], [0xa9, 0x99, 0x3e, 0x36]);
//! ```

/// Incremental SHA-1 hasher (`hashlib.sha1()` equivalent).
///
/// ```
/// use nnjit::random::sha1::Sha1;
/// let mut h = Sha1::new();
/// h.update(b"a");
/// h.update(b"bc");
/// assert_eq!(h.finalize()[..4], [0xa9, 0x99, 0x3e, 0x36]);
/// ```
#[derive(Clone, Debug)]
pub struct Sha1 {
    state: [u32; 5],
    block: [u8; 64],
    block_len: usize,
    total_len: u64,
}

impl Default for Sha1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1 {
    /// A hasher with nothing absorbed yet.
    ///
    /// ```
    /// use nnjit::random::sha1::Sha1;
    /// // Nothing absorbed: the digest of b"" (da39a3ee5e6b4b0d...).
    /// assert_eq!(Sha1::new().finalize()[..4], [0xda, 0x39, 0xa3, 0xee]);
    /// ```
    pub fn new() -> Self {
        Sha1 {
            state: [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0],
            block: [0; 64],
            block_len: 0,
            total_len: 0,
        }
    }

    /// Absorbs `data` (may be called any number of times, like `hashlib`'s `update`).
    ///
    /// ```
    /// use nnjit::random::sha1::{sha1, Sha1};
    /// let data = [7u8; 100]; // more than one 64-byte block
    /// let mut h = Sha1::new();
    /// for chunk in data.chunks(33) {
    ///     h.update(chunk);
    /// }
    /// assert_eq!(h.finalize(), sha1(&data)); // chunking does not matter
    /// ```
    pub fn update(&mut self, mut data: &[u8]) {
        self.total_len = self.total_len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.block_len).min(data.len());
            self.block[self.block_len..self.block_len + take].copy_from_slice(&data[..take]);
            self.block_len += take;
            data = &data[take..];
            if self.block_len == 64 {
                let block = self.block;
                self.compress(&block);
                self.block_len = 0;
            }
        }
    }

    /// Pads the message and returns the 20-byte digest.
    ///
    /// ```
    /// use nnjit::random::sha1::Sha1;
    /// let mut h = Sha1::new();
    /// h.update(b"Dense_0");
    /// let digest = h.finalize();
    /// assert_eq!(digest.len(), 20);
    /// assert_eq!(digest, nnjit::random::sha1::sha1(b"Dense_0"));
    /// ```
    pub fn finalize(mut self) -> [u8; 20] {
        let bit_len = self.total_len.wrapping_mul(8);
        self.block[self.block_len] = 0x80;
        self.block_len += 1;
        if self.block_len > 56 {
            self.block[self.block_len..].fill(0);
            let block = self.block;
            self.compress(&block);
            self.block_len = 0;
        }
        self.block[self.block_len..56].fill(0);
        self.block[56..].copy_from_slice(&bit_len.to_be_bytes());
        let block = self.block;
        self.compress(&block);
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = self.state;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A82_7999),
                1 => (b ^ c ^ d, 0x6ED9_EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// SHA-1 digest of `data` in one call.
///
/// ```
/// use nnjit::random::sha1::sha1;
/// assert_eq!(sha1(b"")[..4], [0xda, 0x39, 0xa3, 0xee]);
/// ```
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(data);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 20]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_digests() {
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(sha1(b"The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        // One million 'a' (FIPS 180 test vector), fed in uneven pieces.
        let mut h = Sha1::new();
        let chunk = [b'a'; 997];
        let mut left = 1_000_000usize;
        while left > 0 {
            let n = left.min(chunk.len());
            h.update(&chunk[..n]);
            left -= n;
        }
        assert_eq!(hex(h.finalize()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    #[test]
    fn padding_boundaries() {
        // Lengths around the 55/56/64-byte padding edges must agree between one-shot and
        // byte-by-byte hashing.
        for len in [55usize, 56, 57, 63, 64, 65, 119, 120, 128] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut h = Sha1::new();
            for b in &data {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(h.finalize(), sha1(&data), "len {len}");
        }
        // Known: sha1 of 64 'a'.
        assert_eq!(hex(sha1(&[b'a'; 64])), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
    }
}
