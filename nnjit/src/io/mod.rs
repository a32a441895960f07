//! Checkpoint I/O: Flax's msgpack checkpoints and safetensors files.
//!
//! - [`flax`] (feature `flax-checkpoint`): the bytes of `flax.serialization.to_bytes(variables)`,
//!   read ([`flax::from_bytes`], like `flax.serialization.msgpack_restore`) and written
//!   ([`flax::to_bytes`], the same bytes as Flax for float32 trees). Built on [`msgpack`], a small
//!   dependency-free msgpack codec.
//! - [`safetensors`] (feature `safetensors`): Hugging Face's format, with `/`-joined tensor names
//!   (`params/Dense_0/kernel`), written byte for byte as the Python `safetensors` library does.
//!
//! Both features are on by default. [`Variables`](crate::Variables) gets the shortcuts
//! `from_flax_bytes`, `to_flax_bytes`, `from_safetensors` and `to_safetensors`.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! use nnjit::Variables;
//!
//! let vars = nn::Dense::new(4).init(nn::PRNGKey(0), &ndarray::array![1.0f32, 2.0, 3.0])?;
//! let flax_bytes = vars.to_flax_bytes()?;         // what Flax's to_bytes writes
//! assert!(Variables::from_flax_bytes(&flax_bytes)?.bits_eq(&vars));
//! let st_bytes = vars.to_safetensors()?;          // what safetensors' save_file writes
//! assert!(Variables::from_safetensors(&st_bytes)?.bits_eq(&vars));
//! # Ok::<(), nnjit::Error>(())
//! ```
//!
//! Every reader treats its input as hostile: lengths are checked against the remaining input
//! before anything is allocated, nesting depth is bounded, sizes are computed with overflow
//! checks, and any malformed, truncated or unsupported input is an [`Error`], never
//! a panic or an abort.
//!
//! # Limits
//!
//! - **Input size.** The loaders accept at most [`MAX_INPUT_BYTES`] (16 GiB); [`read_file`]
//!   reads a file up to a limit you give (a regular file's size is checked first, an endless one
//!   such as `/dev/zero` stops one byte past the limit), and `safetensors::load_file` uses
//!   `MAX_INPUT_BYTES`. Beyond a limit: [`Error::InputTooLarge`].
//! - **Memory.** Loading a checkpoint of `n` bytes, valid or not, allocates at most
//!   [`MEMORY_PER_INPUT_BYTE`]` · n + `[`MEMORY_OVERHEAD`] bytes at its peak (16 · n + 16 MiB;
//!   the input itself not counted). The Flax reader decodes the msgpack stream straight into the
//!   variables (no intermediate tree of values), and both loaders charge each dict entry and array
//!   to a budget before allocating it, at its worst-case size. Arrays cost their `f32` data (1× a
//!   float32 file, 2× float16), so real checkpoints load at about their size; a file that
//!   describes more dicts and arrays than the bound allows (hundreds of thousands of empty
//!   dicts or tiny arrays per few MB) is refused with [`Error::Allocation`]
//!   naming the bound. `tests/memory_bound.rs` measures the peak with a counting allocator on
//!   hostile files (nested arrays, 10^6 keys, 10^6 empty tensors, deep names, chunk floods).
//!
//! Leaves are `f32` in nnjit. Files may store `float32`, `float16` and `bfloat16` (converted
//! exactly) or `float64` (rounded to the nearest `f32`, as numpy's `astype(np.float32)` does);
//! any other element type is an error naming the variable and the type.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest input the checkpoint loaders accept: 16 GiB (`2^34` bytes).
///
/// [`flax::from_bytes`] and [`safetensors::load`] return [`Error::InputTooLarge`] for longer
/// inputs, and `safetensors::load_file` reads no further than this. With the memory bound of the
/// loaders (peak heap at most [`MEMORY_PER_INPUT_BYTE`] times the input's size plus
/// [`MEMORY_OVERHEAD`], see the [module docs](self)), this bounds what any file can cost.
///
/// ```
/// assert_eq!(nnjit::io::MAX_INPUT_BYTES, 16 << 30);
/// ```
pub const MAX_INPUT_BYTES: usize = 1 << 34;

/// The loaders' memory bound, per byte of input: loading any checkpoint of `n` bytes (valid or
/// not) allocates at most `MEMORY_PER_INPUT_BYTE · n + MEMORY_OVERHEAD` bytes at its peak, the
/// input itself not counted. `tests/memory_bound.rs` checks it on hostile files with a
/// counting allocator.
///
/// ```
/// assert_eq!(nnjit::io::MEMORY_PER_INPUT_BYTE, 16);
/// ```
pub const MEMORY_PER_INPUT_BYTE: usize = 16;

/// The constant term of the loaders' memory bound: 16 MiB (see [`MEMORY_PER_INPUT_BYTE`]).
///
/// ```
/// assert_eq!(nnjit::io::MEMORY_OVERHEAD, 16 << 20);
/// ```
pub const MEMORY_OVERHEAD: usize = 16 << 20;

/// Reads a whole file, but no more than `max_bytes` of it: a longer file (or an endless one,
/// such as `/dev/zero` or a pipe) is an [`Error::InputTooLarge`] after at most `max_bytes + 1`
/// bytes were read; a regular file's size is checked before reading. Failures of the operating
/// system are [`Error::Io`], with the path and the `std::io::Error`.
///
/// ```
/// let path = std::env::temp_dir().join("nnjit_read_file_doc.bin");
/// std::fs::write(&path, b"12345").unwrap();
/// assert_eq!(nnjit::io::read_file(&path, 5)?, b"12345");
/// let too_long = nnjit::io::read_file(&path, 4).unwrap_err();
/// assert!(matches!(too_long, nnjit::Error::InputTooLarge { limit: 4, .. }));
/// let missing = nnjit::io::read_file("/no/such/file", 5).unwrap_err();
/// assert!(matches!(missing, nnjit::Error::Io { .. }));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn read_file(path: impl AsRef<Path>, max_bytes: usize) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let too_large = || Error::InputTooLarge { what: path.display().to_string(), limit: max_bytes as u64 };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    if meta.is_file() && meta.len() > max_bytes as u64 {
        return Err(too_large());
    }
    let mut out = Vec::new();
    if meta.is_file() {
        // A hint only: the file may change while it is read, `take` below is the real limit.
        let hint = usize::try_from(meta.len()).unwrap_or(max_bytes).min(max_bytes);
        out.try_reserve_exact(hint).map_err(|_| Error::Allocation { what: path.display().to_string(), bytes: hint })?;
    }
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = file.take(limit);
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, "read", e)),
        };
        if out.len().saturating_add(n) > max_bytes {
            return Err(too_large());
        }
        out.try_reserve(n)
            .map_err(|_| Error::Allocation { what: path.display().to_string(), bytes: out.len().saturating_add(n) })?;
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(out)
}

/// [`Error::InputTooLarge`] when `bytes` is longer than [`MAX_INPUT_BYTES`].
#[cfg(any(feature = "flax-checkpoint", feature = "safetensors"))]
pub(crate) fn check_input_size(what: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge { what: what.to_string(), limit: MAX_INPUT_BYTES as u64 });
    }
    Ok(())
}

#[cfg(feature = "flax-checkpoint")]
pub mod flax;
#[cfg(feature = "flax-checkpoint")]
pub mod msgpack;
#[cfg(feature = "safetensors")]
pub mod safetensors;
#[cfg(any(feature = "flax-checkpoint", feature = "safetensors"))]
mod variables_io;

#[cfg(any(feature = "flax-checkpoint", feature = "safetensors"))]
pub(crate) use common::*;

#[cfg(any(feature = "flax-checkpoint", feature = "safetensors"))]
mod common {
    use ndarray::{ArrayD, IxDyn};

    use crate::alloc::{checked_len, try_with_capacity};
    use crate::error::{Error, Result};

    /// The element types checkpoints may store, all read as `f32`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Dtype {
        /// IEEE half precision (converted exactly).
        F16,
        /// bfloat16 (converted exactly).
        BF16,
        /// IEEE single precision.
        F32,
        /// IEEE double precision (rounded to nearest `f32`).
        F64,
    }

    impl Dtype {
        /// Bytes per element.
        pub(crate) fn size(self) -> usize {
            match self {
                Dtype::F16 | Dtype::BF16 => 2,
                Dtype::F32 => 4,
                Dtype::F64 => 8,
            }
        }
    }

    /// IEEE half → f32, exactly (NaN payloads kept, as numpy does).
    pub(crate) fn f16_to_f32(h: u16) -> f32 {
        let sign = u32::from(h >> 15) << 31;
        let exp = u32::from((h >> 10) & 0x1f);
        let man = u32::from(h & 0x3ff);
        match exp {
            0 => {
                // Zero or subnormal: man · 2^-24, exact in f32.
                let v = man as f32 * (1.0 / 16_777_216.0);
                if sign != 0 {
                    -v
                } else {
                    v
                }
            }
            0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
            _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
        }
    }

    /// bfloat16 → f32, exactly.
    pub(crate) fn bf16_to_f32(b: u16) -> f32 {
        f32::from_bits(u32::from(b) << 16)
    }

    /// Decodes little-endian, C-order `data` of `dtype` into an array of `shape`.
    ///
    /// `data` must hold exactly the array's bytes; the size is checked (with overflow checks)
    /// before anything is allocated.
    pub(crate) fn decode_array(
        what: &str,
        path: &str,
        dtype: Dtype,
        shape: &[usize],
        data: &[u8],
    ) -> Result<ArrayD<f32>> {
        let n = checked_len(path, shape)?;
        let want = n
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::SizeOverflow { what: path.to_string(), shape: shape.to_vec() })?;
        if want != data.len() {
            return Err(Error::format(
                what,
                format!("{path}: shape {shape:?} of {dtype:?} needs {want} bytes but {} bytes are stored", data.len()),
            ));
        }
        let mut out = try_with_capacity::<f32>(path, n)?;
        match dtype {
            Dtype::F32 => {
                out.extend(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            }
            Dtype::F64 => out.extend(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
            ),
            Dtype::F16 => out.extend(data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
            Dtype::BF16 => out.extend(data.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
        }
        ArrayD::from_shape_vec(IxDyn(shape), out)
            .map_err(|e| Error::format(what, format!("{path}: shape {shape:?} is not valid: {e}")))
    }

    /// Appends the array's elements as little-endian f32 bytes in C (logical) order.
    pub(crate) fn write_f32_le(what: &str, array: ndarray::ArrayViewD<'_, f32>, out: &mut Vec<u8>) -> Result<()> {
        let bytes = array.len().saturating_mul(4);
        out.try_reserve(bytes).map_err(|_| Error::Allocation { what: what.to_string(), bytes })?;
        match array.as_slice() {
            Some(s) => s.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            None => array.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        Ok(())
    }

    /// What a loader may allocate: [`MEMORY_PER_INPUT_BYTE`](super::MEMORY_PER_INPUT_BYTE) − 4
    /// times the input's size plus half of [`MEMORY_OVERHEAD`](super::MEMORY_OVERHEAD) (the rest
    /// of the bound is left for what is charged only once allocated, and for what is not
    /// charged: error messages, the parsers' small buffers).
    ///
    /// Loaders charge every allocation they keep before making it, at its worst-case size
    /// (vector growth and hash-table resizes included, see the `*_COST` functions), and refund
    /// temporaries they free; a charge beyond the budget is an [`Error::Allocation`] that names
    /// the bound. So the bound holds for every input by construction, and
    /// `tests/memory_bound.rs` measures it on hostile files.
    pub(crate) struct Budget {
        what: &'static str,
        input: usize,
        left: usize,
    }

    impl Budget {
        pub(crate) fn new(what: &'static str, input: usize) -> Self {
            // 4 bytes per input byte and half the constant are kept for what is charged only
            // once allocated (one name at a time) or not charged (messages, small buffers).
            let left =
                (super::MEMORY_PER_INPUT_BYTE - 4).saturating_mul(input).saturating_add(super::MEMORY_OVERHEAD / 2);
            Budget { what, input, left }
        }

        /// Reserves `bytes` of the budget, or fails with [`Error::Allocation`].
        pub(crate) fn charge(&mut self, bytes: usize) -> Result<()> {
            if bytes > self.left {
                return Err(Error::Allocation {
                    what: format!(
                        "{} (loading {} bytes needs more than the loaders' memory bound of {} × the input + {} bytes: \
                         too many arrays or dicts for the file's size)",
                        self.what,
                        self.input,
                        super::MEMORY_PER_INPUT_BYTE,
                        super::MEMORY_OVERHEAD
                    ),
                    bytes,
                });
            }
            self.left -= bytes;
            Ok(())
        }

        /// What is left (to [`restore`](Budget::restore) after dropping what was built since).
        pub(crate) fn left(&self) -> usize {
            self.left
        }

        /// Sets what is left back to a value of [`left`](Budget::left), once everything
        /// charged since was freed.
        pub(crate) fn restore(&mut self, left: usize) {
            self.left = left;
        }

        /// Gives back a charge whose memory was freed.
        pub(crate) fn refund(&mut self, bytes: usize) {
            self.left = self.left.saturating_add(bytes);
        }
    }

    /// The worst-case cost of one dict entry whose key has `key_len` bytes: the entry in a
    /// growing vector (capacity up to twice the entries, and the old buffer while it moves:
    /// 3×), the key, and its copy and slot in the dict's index (a hash table of up to 2.3 slots
    /// per entry, 3.5 while it resizes).
    pub(crate) fn entry_cost(key_len: usize) -> usize {
        use crate::variables::Node;
        3 * std::mem::size_of::<(String, Node)>() + 4 * (std::mem::size_of::<(String, usize)>() + 1) + 2 * key_len
    }

    /// The worst-case cost of one array leaf of `rank` dims and `len` elements (besides its
    /// entry): the shared array header, its dims and strides when they do not fit inline (and
    /// ndarray's temporary copies of them while it builds the array), and the `f32` data.
    pub(crate) fn leaf_cost(rank: usize, len: usize) -> usize {
        let header = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<ArrayD<f32>>();
        header.saturating_add(rank.saturating_mul(40)).saturating_add(len.saturating_mul(4))
    }

    /// Pushes onto a vector, growing it fallibly (decoders grow with the input they have read,
    /// never with a length the input merely claims).
    pub(crate) fn try_push<T>(what: &str, v: &mut Vec<T>, item: T) -> Result<()> {
        if v.len() == v.capacity() {
            v.try_reserve(v.len().max(4)).map_err(|_| Error::Allocation {
                what: what.to_string(),
                bytes: v.len().saturating_mul(2 * std::mem::size_of::<T>()),
            })?;
        }
        v.push(item);
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn half_and_bfloat_conversions_are_exact() {
            assert_eq!(f16_to_f32(0x3c00), 1.0);
            assert_eq!(f16_to_f32(0xc000), -2.0);
            assert_eq!(f16_to_f32(0x7bff), 65504.0);
            assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
            assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
            assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
            assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
            assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
            assert!(f16_to_f32(0x7e00).is_nan());
            assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
            assert_eq!(bf16_to_f32(0x3f80), 1.0);
            assert_eq!(bf16_to_f32(0xc049), -3.140_625);
        }

        #[test]
        fn decode_checks_sizes_before_allocating() {
            let e = decode_array("t", "p", Dtype::F32, &[1_000_000_000_000], &[0; 4]).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e:?}");
            let e = decode_array("t", "p", Dtype::F32, &[1 << 40, 1 << 40], &[]).unwrap_err();
            assert!(matches!(e, Error::SizeOverflow { .. }), "{e:?}");
            let a = decode_array("t", "p", Dtype::F64, &[], &1.5f64.to_le_bytes()).unwrap();
            assert_eq!(a.shape(), &[] as &[usize]);
            assert_eq!(a[[]], 1.5);
            let a = decode_array("t", "p", Dtype::F32, &[0, 3], &[]).unwrap();
            assert_eq!(a.shape(), &[0, 3]);
        }
    }
}
