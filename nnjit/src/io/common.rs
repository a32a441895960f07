//! What the checkpoint readers share: element types and their conversion to `f32`, array
//! decoding and encoding, and the memory budget that keeps every loader within the bound of the
//! [module docs](super).

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::fallible::{checked_len, try_with_capacity};

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
pub(crate) fn decode_array(what: &str, path: &str, dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<ArrayD<f32>> {
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
            data.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
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
        let left = (super::MEMORY_PER_INPUT_BYTE - 4).saturating_mul(input).saturating_add(super::MEMORY_OVERHEAD / 2);
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
