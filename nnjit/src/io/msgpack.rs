//! msgpack values for Flax checkpoints, on the [`rmp`] crate's format layer.
//!
//! [`rmp`] reads and writes every msgpack format (its markers, lengths and numbers); this module
//! adds what nnjit needs on top: a [`Value`] tree whose strings and payloads borrow from the
//! input, and a pull reader (`Reader`, crate-internal) that the Flax loader uses to decode a
//! checkpoint straight into variables. Anything outside msgpack (the reserved byte `0xc1`) is an
//! error. The encoder picks the same (smallest) formats as the Python `msgpack` package with
//! `use_bin_type=True` (rmp's `write_uint`, `write_sint`, `write_str_len`, ... do), so it
//! reproduces its bytes.
//!
//! Decoding is written for hostile input: every length is checked against the remaining input
//! before anything is allocated, containers grow only with elements actually read, nesting is
//! bounded by [`MAX_DEPTH`], strings must be UTF-8 (as `msgpack.unpackb(raw=False)` requires),
//! and trailing bytes after the value are an error (Python's `ExtraData`).
//!
//! ```
//! use nnjit::io::msgpack::{decode, encode, Value};
//!
//! let v = Value::Map(vec![(Value::from("shape"), Value::Array(vec![Value::UInt(3), Value::UInt(4)]))]);
//! let bytes = encode(&v)?;
//! assert_eq!(bytes, b"\x81\xa5shape\x92\x03\x04");
//! assert_eq!(decode(&bytes)?, v);
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::borrow::Cow;
use std::convert::Infallible;

use rmp::decode::{self as rd, Bytes};
use rmp::encode::{self as wr, ByteBuf, ValueWriteError};
use rmp::Marker;

use crate::error::{Error, Result};
use crate::io::try_push;

/// Nesting deeper than this (arrays and maps inside each other) is rejected, when decoding and
/// when encoding.
///
/// ```
/// use nnjit::io::msgpack::{decode, MAX_DEPTH};
///
/// // MAX_DEPTH nested arrays are fine, one more is rejected (no stack overflow on hostile input).
/// let mut ok = vec![0x91u8; MAX_DEPTH];
/// ok.push(0xc0); // nil
/// assert!(decode(&ok).is_ok());
/// let mut deep = vec![0x91u8; MAX_DEPTH + 1];
/// deep.push(0xc0);
/// assert!(decode(&deep).is_err());
/// ```
pub const MAX_DEPTH: usize = 128;

const WHAT: &str = "msgpack data";

/// A msgpack value. Strings, binaries and ext payloads borrow from the decoded input.
///
/// ```
/// use nnjit::io::msgpack::{decode, Value};
///
/// // Flax's array payload: [shape, dtype name, raw bytes].
/// let v = decode(b"\x93\x91\x02\xa7float32\xc4\x08\0\0\x80?\0\0\0@")?;
/// let Value::Array(items) = v else { unreachable!() };
/// assert_eq!(items[0], Value::Array(vec![Value::UInt(2)]));
/// assert_eq!(items[1].as_str(), Some("float32"));
/// assert!(matches!(&items[2], Value::Bin(b) if b.len() == 8));
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// `nil` (Python `None`).
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer (decoded from the `int 8/16/32/64` and negative fixint formats).
    Int(i64),
    /// An unsigned integer (decoded from the `uint 8/16/32/64` and positive fixint formats).
    UInt(u64),
    /// `float 32`.
    F32(f32),
    /// `float 64` (what Python floats encode to).
    F64(f64),
    /// A UTF-8 string (`fixstr`, `str 8/16/32`).
    Str(Cow<'a, str>),
    /// Raw bytes (`bin 8/16/32`; Python `bytes`).
    Bin(Cow<'a, [u8]>),
    /// An array (Python lists and tuples).
    Array(Vec<Value<'a>>),
    /// A map, entries in encoded order (Python dicts, insertion-ordered).
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// An extension value: type code and payload (Flax stores arrays as code 1).
    Ext(i8, Cow<'a, [u8]>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl Value<'_> {
    /// The value as a non-negative integer (`UInt`, or `Int` ≥ 0).
    ///
    /// ```
    /// use nnjit::io::msgpack::Value;
    /// assert_eq!(Value::UInt(3).as_u64(), Some(3));
    /// assert_eq!(Value::Int(4).as_u64(), Some(4)); // a shape dimension, however it was encoded
    /// assert_eq!(Value::Int(-1).as_u64(), None);
    /// assert_eq!(Value::from("3").as_u64(), None);
    /// ```
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        self.head().as_u64()
    }

    /// The string, if this is a `Str`.
    ///
    /// ```
    /// use nnjit::io::msgpack::Value;
    /// assert_eq!(Value::from("float32").as_str(), Some("float32"));
    /// assert_eq!(Value::Bin(b"float32"[..].into()).as_str(), None);
    /// ```
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages (`"map"`, `"int"`, ...).
    ///
    /// ```
    /// use nnjit::io::msgpack::Value;
    /// assert_eq!(Value::Map(vec![]).kind(), "map");
    /// assert_eq!(Value::UInt(1).kind(), "int");
    /// assert_eq!(Value::Int(-1).kind(), "int");
    /// assert_eq!(Value::F64(1.0).kind(), "float");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.head().kind()
    }

    /// The value as one item of the reader (containers as their length).
    fn head(&self) -> Head<'_> {
        match self {
            Value::Nil => Head::Nil,
            Value::Bool(b) => Head::Bool(*b),
            Value::Int(n) => Head::Int(*n),
            Value::UInt(n) => Head::UInt(*n),
            Value::F32(x) => Head::F32(*x),
            Value::F64(x) => Head::F64(*x),
            Value::Str(s) => Head::Str(s),
            Value::Bin(b) => Head::Bin(b),
            Value::Array(items) => Head::Array(items.len()),
            Value::Map(entries) => Head::Map(entries.len()),
            Value::Ext(code, payload) => Head::Ext(*code, payload),
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Decoding
// ----------------------------------------------------------------------------------------------

/// Decodes exactly one msgpack value spanning all of `bytes`.
///
/// This builds a [`Value`] tree: up to about 128 bytes of memory per input byte (a 32-byte
/// `Value` per item, in vectors that grow by doubling). The checkpoint loader does not use it:
/// [`flax::from_bytes`](crate::io::flax::from_bytes) reads the stream directly, within the
/// loaders' memory bound (see the [module docs](crate::io)).
///
/// Errors ([`Error::Format`]) name the byte offset of the problem: truncated input, a length
/// larger than the rest of the input, invalid UTF-8 in a string, the reserved byte `0xc1`,
/// nesting deeper than [`MAX_DEPTH`], or bytes left over after the value.
///
/// ```
/// use nnjit::io::msgpack::{decode, Value};
/// assert_eq!(decode(b"\x93\x01\xff\xc3")?, Value::Array(vec![Value::UInt(1), Value::Int(-1), Value::Bool(true)]));
/// assert!(decode(b"\x93\x01").is_err()); // truncated
/// assert!(decode(b"\xdd\xff\xff\xff\xff").is_err()); // claims 4 billion elements
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn decode(bytes: &[u8]) -> Result<Value<'_>> {
    let mut r = Reader::new(bytes);
    let v = r.value(0)?;
    r.finish()?;
    Ok(v)
}

/// One msgpack item as read by [`Reader::head`]: a scalar, a string or binary borrowed from
/// the input, an ext value, or the header of an array or map (whose items follow).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
    Str(&'a str),
    Bin(&'a [u8]),
    /// An array of this many items (at most the bytes left: every item takes one).
    Array(usize),
    /// A map of this many entries (at most half the bytes left).
    Map(usize),
    Ext(i8, &'a [u8]),
}

impl Head<'_> {
    /// A short name of the item's kind, for error messages (`"map"`, `"int"`, ...).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool(_) => "bool",
            Head::Int(_) | Head::UInt(_) => "int",
            Head::F32(_) | Head::F64(_) => "float",
            Head::Str(_) => "str",
            Head::Bin(_) => "bin",
            Head::Array(_) => "array",
            Head::Map(_) => "map",
            Head::Ext(..) => "ext",
        }
    }

    /// The value as a non-negative integer.
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Head::UInt(n) => Some(n),
            Head::Int(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }
}

/// A pull reader of msgpack: one [`Head`] at a time, allocating nothing, so that callers build
/// only what they keep (the Flax loader reads a checkpoint straight into `Variables`). rmp
/// decodes each item's marker, length and number; this reader borrows strings and payloads
/// from the input and checks every claimed length against what is left.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// An error at the current position.
    pub(crate) fn err(&self, message: String) -> Error {
        Error::format(WHAT, format!("{message} (at byte {})", self.pos))
    }

    /// The current byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to an offset returned by [`Reader::pos`].
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error if bytes are left after the value (Python's `ExtraData`).
    pub(crate) fn finish(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.err(format!("{} bytes left over after the value", self.remaining())));
        }
        Ok(())
    }

    /// Reads one item: a whole scalar, string, binary or ext value, or an array's or map's
    /// header (its items are read by the next calls). On an error the position is the item's.
    pub(crate) fn head(&mut self) -> Result<Head<'a>> {
        let mut rest = Bytes::new(self.buf.get(self.pos..).unwrap_or_default());
        let Some(&first) = rest.remaining_slice().first() else {
            return Err(self.err("truncated input: a value needs 1 byte, 0 left".to_string()));
        };
        // rmp reads the marker and what follows it; it fails only on input too short for the
        // marker's fixed-size fields (the dispatch below never asks for another kind).
        let short = |kind: &str, e: &dyn std::fmt::Debug| {
            self.err(format!("truncated input: {kind} (marker 0x{first:02x}) is cut short: {e:?}"))
        };
        let head = match Marker::from_u8(first) {
            Marker::Reserved => return Err(self.err("byte 0xc1 is never used in msgpack".to_string())),
            Marker::Null => {
                rd::read_nil(&mut rest).map_err(|e| short("a nil", &e))?;
                Head::Nil
            }
            Marker::True | Marker::False => Head::Bool(rd::read_bool(&mut rest).map_err(|e| short("a bool", &e))?),
            Marker::FixPos(_) | Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
                Head::UInt(rd::read_int(&mut rest).map_err(|e| short("an uint", &e))?)
            }
            Marker::FixNeg(_) | Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
                Head::Int(rd::read_int(&mut rest).map_err(|e| short("an int", &e))?)
            }
            Marker::F32 => Head::F32(rd::read_f32(&mut rest).map_err(|e| short("a float 32", &e))?),
            Marker::F64 => Head::F64(rd::read_f64(&mut rest).map_err(|e| short("a float 64", &e))?),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let n = rd::read_str_len(&mut rest).map_err(|e| short("a str length", &e))?;
                let s = take(&mut rest, n).ok_or_else(|| self.too_short("str", n, &rest))?;
                match std::str::from_utf8(s) {
                    Ok(s) => Head::Str(s),
                    Err(e) => return Err(self.err(format!("str of {n} bytes is not valid UTF-8: {e}"))),
                }
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = rd::read_bin_len(&mut rest).map_err(|e| short("a bin length", &e))?;
                Head::Bin(take(&mut rest, n).ok_or_else(|| self.too_short("bin", n, &rest))?)
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                let meta = rd::read_ext_meta(&mut rest).map_err(|e| short("an ext header", &e))?;
                let payload =
                    take(&mut rest, meta.size).ok_or_else(|| self.too_short("ext payload", meta.size, &rest))?;
                Head::Ext(meta.typeid, payload)
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                let n = rd::read_array_len(&mut rest).map_err(|e| short("an array length", &e))?;
                // Every element takes at least one byte: a count beyond the rest of the input is a lie.
                let left = rest.remaining_slice().len();
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= left)
                    .ok_or_else(|| self.err(format!("array claims {n} elements but only {left} bytes are left")))?;
                Head::Array(n)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                let n = rd::read_map_len(&mut rest).map_err(|e| short("a map length", &e))?;
                let left = rest.remaining_slice().len();
                let fits = usize::try_from(n).ok().filter(|&n| n.checked_mul(2).is_some_and(|b| b <= left));
                let n =
                    fits.ok_or_else(|| self.err(format!("map claims {n} entries but only {left} bytes are left")))?;
                Head::Map(n)
            }
        };
        self.pos = self.buf.len() - rest.remaining_slice().len();
        Ok(head)
    }

    fn too_short(&self, what: &str, n: u32, rest: &Bytes<'_>) -> Error {
        self.err(format!("truncated input: {what} needs {n} bytes, {} left", rest.remaining_slice().len()))
    }

    /// Skips one whole value, however nested, without allocating or recursing.
    pub(crate) fn skip(&mut self) -> Result<()> {
        let mut left: usize = 1;
        while left > 0 {
            left -= 1;
            match self.head()? {
                Head::Array(n) => left = left.saturating_add(n),
                Head::Map(n) => left = left.saturating_add(n.saturating_mul(2)),
                _ => {}
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(match self.head()? {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::Int(n) => Value::Int(n),
            Head::UInt(n) => Value::UInt(n),
            Head::F32(x) => Value::F32(x),
            Head::F64(x) => Value::F64(x),
            Head::Str(s) => Value::Str(Cow::Borrowed(s)),
            Head::Bin(b) => Value::Bin(Cow::Borrowed(b)),
            Head::Ext(code, p) => Value::Ext(code, Cow::Borrowed(p)),
            Head::Array(n) => {
                let mut items = Vec::new();
                for _ in 0..n {
                    let v = self.value(depth + 1)?;
                    try_push(WHAT, &mut items, v)?;
                }
                Value::Array(items)
            }
            Head::Map(n) => {
                let mut entries = Vec::new();
                for _ in 0..n {
                    let k = self.value(depth + 1)?;
                    let v = self.value(depth + 1)?;
                    try_push(WHAT, &mut entries, (k, v))?;
                }
                Value::Map(entries)
            }
        })
    }
}

/// The next `n` bytes of `rest` (advancing it), or `None` if fewer are left.
fn take<'a>(rest: &mut Bytes<'a>, n: u32) -> Option<&'a [u8]> {
    let (s, tail) = rest.remaining_slice().split_at_checked(usize::try_from(n).ok()?)?;
    *rest = Bytes::new(tail);
    Some(s)
}

// ----------------------------------------------------------------------------------------------
// Encoding
// ----------------------------------------------------------------------------------------------

/// Encodes a value, choosing the smallest format for every integer, string, binary, container
/// and ext header, as the Python `msgpack` package does (`use_bin_type=True`).
///
/// Errors: a string, binary, container or ext payload longer than msgpack allows (2^32 - 1), or
/// nesting deeper than [`MAX_DEPTH`].
///
/// ```
/// use nnjit::io::msgpack::{encode, Value};
/// assert_eq!(encode(&Value::Int(-1))?, [0xff]);
/// assert_eq!(encode(&Value::UInt(200))?, [0xcc, 200]);
/// assert_eq!(encode(&Value::Int(5))?, [0x05]); // non-negative: unsigned formats, like Python
/// assert_eq!(encode(&Value::F64(1.0))?, [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn encode(value: &Value<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out` (see [`encode`]).
///
/// ```
/// use nnjit::io::msgpack::{encode_into, Value};
/// let mut out = vec![0x92]; // the header of a 2-element array
/// encode_into(&Value::from("a"), &mut out)?;
/// encode_into(&Value::Nil, &mut out)?;
/// assert_eq!(out, b"\x92\xa1a\xc0");
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn encode_into(value: &Value<'_>, out: &mut Vec<u8>) -> Result<()> {
    encode_at(value, out, 0)
}

fn encode_at(value: &Value<'_>, out: &mut Vec<u8>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::format(WHAT, format!("cannot encode nesting deeper than {MAX_DEPTH} levels")));
    }
    match value {
        Value::Nil => put(out, wr::write_nil),
        Value::Bool(b) => put(out, |w| wr::write_bool(w, *b)),
        Value::Int(n) => put(out, |w| wr::write_sint(w, *n)),
        Value::UInt(n) => put(out, |w| wr::write_uint(w, *n)),
        Value::F32(x) => put(out, |w| wr::write_f32(w, *x)),
        Value::F64(x) => put(out, |w| wr::write_f64(w, *x)),
        Value::Str(s) => write_str(out, s)?,
        Value::Bin(b) => {
            write_bin_len(out, b.len())?;
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_array_len(out, items.len())?;
            for v in items {
                encode_at(v, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            write_map_len(out, entries.len())?;
            for (k, v) in entries {
                encode_at(k, out, depth + 1)?;
                encode_at(v, out, depth + 1)?;
            }
        }
        Value::Ext(code, payload) => {
            write_ext_len(out, *code, payload.len())?;
            out.extend_from_slice(payload);
        }
    }
    Ok(())
}

/// Runs one of rmp's writers on `out`, through rmp's `ByteBuf`, whose writes cannot fail.
fn put<T, E: Unreachable>(out: &mut Vec<u8>, write: impl FnOnce(&mut ByteBuf) -> std::result::Result<T, E>) {
    let mut buf = ByteBuf::from(std::mem::take(out));
    let written = write(&mut buf);
    *out = buf.into();
    if let Err(e) = written {
        e.unreachable()
    }
}

/// The error types of rmp's writers on a `ByteBuf`: uninhabited.
trait Unreachable {
    fn unreachable(self) -> !;
}

impl Unreachable for Infallible {
    fn unreachable(self) -> ! {
        match self {}
    }
}

impl Unreachable for ValueWriteError<Infallible> {
    fn unreachable(self) -> ! {
        match self {
            ValueWriteError::InvalidMarkerWrite(e) | ValueWriteError::InvalidDataWrite(e) => match e {},
        }
    }
}

/// A length as msgpack stores it (`u32`), or an error naming what is too long.
fn len32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::format(WHAT, format!("cannot encode a {what} of length {n}: msgpack allows at most 2^32 - 1"))
    })
}

/// Writes a non-negative integer in the smallest format (rmp's `write_uint`).
pub(crate) fn write_uint(out: &mut Vec<u8>, n: u64) {
    put(out, |w| wr::write_uint(w, n));
}

/// Writes a string in the smallest format (`fixstr`, `str 8/16/32`).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let n = len32("str", s.len())?;
    put(out, |w| wr::write_str_len(w, n));
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Writes the header of a binary of `n` bytes (`bin 8/16/32`); the caller appends the bytes.
pub(crate) fn write_bin_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = len32("bin", n)?;
    put(out, |w| wr::write_bin_len(w, n));
    Ok(())
}

/// Writes the header of an array of `n` elements; the caller appends the elements.
pub(crate) fn write_array_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = len32("array", n)?;
    put(out, |w| wr::write_array_len(w, n));
    Ok(())
}

/// Writes the header of a map of `n` entries; the caller appends keys and values alternately.
pub(crate) fn write_map_len(out: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = len32("map", n)?;
    put(out, |w| wr::write_map_len(w, n));
    Ok(())
}

/// Writes the header of an ext value with a payload of `n` bytes (`fixext 1/2/4/8/16` when `n`
/// is one of those sizes, else `ext 8/16/32`); the caller appends the payload.
pub(crate) fn write_ext_len(out: &mut Vec<u8>, code: i8, n: usize) -> Result<()> {
    let n = len32("ext payload", n)?;
    put(out, |w| wr::write_ext_meta(w, n, code));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(v: Value<'_>) -> Vec<u8> {
        let bytes = encode(&v).unwrap();
        assert_eq!(decode(&bytes).unwrap(), v, "{bytes:x?}");
        bytes
    }

    #[test]
    fn integer_formats_match_python_msgpack() {
        assert_eq!(rt(Value::UInt(0)), [0x00]);
        assert_eq!(rt(Value::UInt(127)), [0x7f]);
        assert_eq!(rt(Value::UInt(128)), [0xcc, 0x80]);
        assert_eq!(rt(Value::UInt(256)), [0xcd, 0x01, 0x00]);
        assert_eq!(rt(Value::UInt(65536)), [0xce, 0, 1, 0, 0]);
        assert_eq!(rt(Value::UInt(1 << 32)), [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(rt(Value::Int(-1)), [0xff]);
        assert_eq!(rt(Value::Int(-32)), [0xe0]);
        assert_eq!(rt(Value::Int(-33)), [0xd0, 0xdf]);
        assert_eq!(rt(Value::Int(-129)), [0xd1, 0xff, 0x7f]);
        assert_eq!(rt(Value::Int(-32769)), [0xd2, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(rt(Value::Int(i64::MIN)), [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        // Non-negative Int encodes like Python ints: unsigned formats.
        assert_eq!(encode(&Value::Int(5)).unwrap(), [0x05]);
        assert_eq!(decode(&[0xd0, 0x05]).unwrap(), Value::Int(5));
        assert_eq!(Value::Int(5).as_u64(), Some(5));
        assert_eq!(Value::Int(-5).as_u64(), None);
    }

    #[test]
    fn lengths_pick_the_smallest_format() {
        let s31 = "a".repeat(31);
        let s32 = "a".repeat(32);
        let s256 = "a".repeat(256);
        let s65536 = "a".repeat(65536);
        assert_eq!(rt(Value::from(s31.as_str()))[0], 0xbf);
        assert_eq!(rt(Value::from(s32.as_str()))[..2], [0xd9, 32]);
        assert_eq!(rt(Value::from(s256.as_str()))[..3], [0xda, 1, 0]);
        assert_eq!(rt(Value::from(s65536.as_str()))[..5], [0xdb, 0, 1, 0, 0]);
        assert_eq!(rt(Value::Bin(vec![7; 255].into()))[..2], [0xc4, 255]);
        assert_eq!(rt(Value::Bin(vec![7; 256].into()))[..3], [0xc5, 1, 0]);
        assert_eq!(rt(Value::Bin(vec![7; 65536].into()))[..5], [0xc6, 0, 1, 0, 0]);
        assert_eq!(rt(Value::Array(vec![Value::Nil; 15]))[0], 0x9f);
        assert_eq!(rt(Value::Array(vec![Value::Nil; 16]))[..3], [0xdc, 0, 16]);
        assert_eq!(rt(Value::Array(vec![Value::Nil; 65536]))[..5], [0xdd, 0, 1, 0, 0]);
        let m = |n: usize| Value::Map((0..n).map(|i| (Value::UInt(i as u64), Value::Nil)).collect());
        assert_eq!(rt(m(15))[0], 0x8f);
        assert_eq!(rt(m(16))[..3], [0xde, 0, 16]);
        assert_eq!(rt(m(65536))[..5], [0xdf, 0, 1, 0, 0]);
        for (n, head) in [(1, 0xd4), (2, 0xd5), (4, 0xd6), (8, 0xd7), (16, 0xd8)] {
            assert_eq!(rt(Value::Ext(1, vec![0; n].into()))[..2], [head, 1]);
        }
        assert_eq!(rt(Value::Ext(-1, vec![0; 3].into()))[..3], [0xc7, 3, 0xff]);
        assert_eq!(rt(Value::Ext(1, vec![0; 17].into()))[..3], [0xc7, 17, 1]);
        assert_eq!(rt(Value::Ext(1, vec![0; 0].into()))[..3], [0xc7, 0, 1]);
        assert_eq!(rt(Value::Ext(1, vec![0; 256].into()))[..4], [0xc8, 1, 0, 1]);
        assert_eq!(rt(Value::Ext(1, vec![0; 65536].into()))[..6], [0xc9, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn scalars_round_trip() {
        rt(Value::Nil);
        rt(Value::Bool(true));
        rt(Value::Bool(false));
        assert_eq!(rt(Value::F32(1.5)), [0xca, 0x3f, 0xc0, 0, 0]);
        rt(Value::F64(-0.1));
        rt(Value::from("héllo"));
        rt(Value::Map(vec![(Value::from("k"), Value::Array(vec![Value::Nil, Value::Bin(vec![1, 2].into())]))]));
    }

    #[test]
    fn hostile_input_is_an_error() {
        for bad in [
            &[][..],
            &[0xc1],
            &[0xd9],
            &[0xd9, 5, b'a'],
            &[0xa2, 0xff, 0xfe],                   // invalid UTF-8
            &[0xdb, 0xff, 0xff, 0xff, 0xff],       // str of 4 GiB
            &[0xc6, 0xff, 0xff, 0xff, 0xff, 0],    // bin of 4 GiB
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 1],    // ext of 4 GiB
            &[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0], // array of 4 billion
            &[0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0], // map of 2 billion
            &[0x92, 0xc0],                         // truncated array
            &[0xc0, 0xc0],                         // trailing bytes
            &[0xcb, 0, 0, 0],                      // truncated float
        ] {
            let e = decode(bad).unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{bad:x?}: {e:?}");
        }
        let deep = vec![0x91u8; 100_000];
        assert!(decode(&deep).unwrap_err().to_string().contains("nesting"));
        let mut ok = vec![0x91u8; MAX_DEPTH];
        ok.push(0xc0);
        assert!(decode(&ok).is_ok());
        let mut v = Value::Nil;
        for _ in 0..=MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        assert!(encode(&v).is_err());
    }
}
