//! Checkpoint I/O: Flax's msgpack checkpoints and safetensors files.
//!
//! - [`flax`] (feature `flax-checkpoint`): the bytes of `flax.serialization.to_bytes(variables)`,
//!   read ([`flax::from_bytes`], like `flax.serialization.msgpack_restore`) and written
//!   ([`flax::to_bytes`], the same bytes as Flax for float32 trees). Flax's layer (its ext types
//!   for arrays, chunked arrays) is nnjit's; [`msgpack`] reads and writes the values under it
//!   with the `rmp` crate.
//! - [`safetensors`] (feature `safetensors`): Hugging Face's format, with `/`-joined tensor names
//!   (`params/Dense_0/kernel`), written byte for byte as the Python `safetensors` library does,
//!   on the reference `safetensors` crate.
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
mod common;
