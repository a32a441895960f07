//! Flax msgpack checkpoints: the bytes of `flax.serialization.to_bytes(variables)`.
//!
//! Flax writes the state dict as nested msgpack maps (string keys, in the dicts' insertion
//! order) and every array as msgpack ext type 1 whose payload is itself msgpack:
//! `[shape, dtype name, raw bytes]` (`_ndarray_to_bytes`: the shape as an array of ints, e.g.
//! `"float32"`, and the array's little-endian, C-order bytes as `bin`). Arrays larger than
//! 2^30 bytes are split by Flax into a `{"__msgpack_chunked_array__": true, "shape": {...},
//! "chunks": {...}}` map; both directions handle that too.
//!
//! [`from_bytes`] is `flax.serialization.msgpack_restore` for variable trees; [`to_bytes`]
//! produces the same bytes as Flax's `to_bytes` for trees of float32 arrays (checked byte for
//! byte against real Flax output in `tests/checkpoints.rs`).
//!
//! Reading accepts arrays of dtype `float32`, `float16` and `bfloat16` (exact) and `float64`
//! (rounded to the nearest `f32`), as ext type 1 (arrays) or 3 (numpy scalars, read as arrays of
//! shape `[]`). Anything else in the tree (integers such as an optimizer's `step`, Python floats,
//! strings, lists, complex numbers, other dtypes) is an error naming its path: nnjit variables
//! hold only float arrays.
//!
//! ```
//! use nnjit::io::flax;
//! use nnjit::Variables;
//!
//! let mut vars = Variables::new();
//! vars.insert("params/Dense_0/bias", ndarray::ArrayD::zeros(vec![2]))?;
//! let bytes = flax::to_bytes(&vars)?; // flax.serialization.to_bytes(variables)
//! let back = flax::from_bytes(&bytes)?; // flax.serialization.msgpack_restore(bytes)
//! assert_eq!(back.get("params/Dense_0/bias").unwrap().shape(), &[2]);
//! assert!(back.bits_eq(&vars));
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::borrow::Cow;
use std::collections::HashSet;

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::io::msgpack::{self, Value};
use crate::io::{decode_array, try_push, write_f32_le, Dtype};
use crate::variables::{Dict, Leaf, Node, Variables};

const WHAT: &str = "Flax msgpack checkpoint";

/// Flax's ext type code for arrays (`_MsgpackExtType.ndarray`).
///
/// ```
/// use nnjit::io::{flax, msgpack::{self, Value}};
///
/// let mut vars = nnjit::Variables::new();
/// vars.insert("params/w", ndarray::arr0(2.0f32).into_dyn())?;
/// let bytes = flax::to_bytes(&vars)?;
/// // {"params": {"w": ExtType(1, ...)}}: every array is an ext value of code EXT_NDARRAY.
/// let Value::Map(top) = msgpack::decode(&bytes)? else { unreachable!() };
/// let Value::Map(params) = &top[0].1 else { unreachable!() };
/// assert!(matches!(params[0].1, Value::Ext(flax::EXT_NDARRAY, _)));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub const EXT_NDARRAY: i8 = 1;
/// Flax's ext type code for complex Python numbers (`_MsgpackExtType.native_complex`, not
/// supported by nnjit).
///
/// ```
/// use nnjit::io::{flax, msgpack::{encode, Value}};
///
/// // {"params": {"c": ExtType(2, ...)}}, what Flax writes for a Python complex: rejected.
/// let c = Value::Ext(flax::EXT_NATIVE_COMPLEX, b"\x92\xcb\0\0\0\0\0\0\0\0\xcb\0\0\0\0\0\0\0\0"[..].into());
/// let tree = Value::Map(vec![("params".into(), Value::Map(vec![("c".into(), c)]))]);
/// let err = flax::from_bytes(&encode(&tree)?).unwrap_err();
/// assert!(err.to_string().contains("complex"));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub const EXT_NATIVE_COMPLEX: i8 = 2;
/// Flax's ext type code for numpy scalars (`_MsgpackExtType.npscalar`), read as arrays of shape `[]`.
///
/// ```
/// use nnjit::io::{flax, msgpack::{encode, Value}};
///
/// // np.float32(2.0) is stored as ExtType(3, packb(((), "float32", b"\0\0\0@"))).
/// let bytes = Value::Bin(b"\0\0\0@"[..].into()); // 2.0f32, little-endian
/// let payload = encode(&Value::Array(vec![Value::Array(vec![]), "float32".into(), bytes]))?;
/// let s = Value::Ext(flax::EXT_NPSCALAR, payload.into());
/// let tree = Value::Map(vec![("params".into(), Value::Map(vec![("s".into(), s)]))]);
/// let vars = flax::from_bytes(&encode(&tree)?)?;
/// assert_eq!(vars.get("params/s").unwrap(), &ndarray::arr0(2.0f32).into_dyn()); // shape []
/// # Ok::<(), nnjit::Error>(())
/// ```
pub const EXT_NPSCALAR: i8 = 3;

/// Flax's `MAX_CHUNK_SIZE`: arrays of more bytes than this are written in chunks.
///
/// ```
/// use nnjit::io::flax;
///
/// assert_eq!(flax::MAX_CHUNK_SIZE, 1 << 30); // 1 GiB, as in flax.serialization
/// // Small arrays are written whole, without the chunked-array marker.
/// let mut vars = nnjit::Variables::new();
/// vars.insert("params/kernel", ndarray::ArrayD::zeros(vec![3, 4]))?;
/// let bytes = flax::to_bytes(&vars)?;
/// assert!(!bytes.windows(25).any(|w| w == b"__msgpack_chunked_array__"));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub const MAX_CHUNK_SIZE: usize = 1 << 30;

/// The key that marks a chunked array (`'__msgpack_chunked_array__'`).
const CHUNKED: &str = "__msgpack_chunked_array__";

/// Reads a Flax checkpoint (`flax.serialization.to_bytes(variables)`) into [`Variables`],
/// keeping the file's key order.
///
/// Errors ([`Error::Format`], naming the variable's path where there is one): malformed or
/// truncated msgpack, a top level that is not a map, non-string or duplicate keys, values other
/// than arrays and dicts, unsupported dtypes, and shapes that do not match the stored bytes.
/// Sizes are checked before anything is allocated, so a hostile file cannot make it abort.
///
/// ```
/// use nnjit::io::flax;
/// use nnjit::nn::{self, Module};
///
/// let vars = nn::Dense::new(3).init(nn::PRNGKey(0), &ndarray::array![1.0f32, 2.0])?;
/// let bytes = flax::to_bytes(&vars)?; // = flax.serialization.to_bytes(variables)
/// let back = flax::from_bytes(&bytes)?;
/// assert!(back.bits_eq(&vars));
/// assert_eq!(back.get("params/kernel").unwrap().shape(), &[2, 3]);
/// assert!(flax::from_bytes(&bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn from_bytes(bytes: &[u8]) -> Result<Variables> {
    crate::io::check_input_size(WHAT, bytes)?;
    let value = msgpack::decode(bytes).map_err(rename)?;
    match value {
        Value::Map(entries) => {
            if entries.iter().any(|(k, _)| k.as_str() == Some(CHUNKED)) {
                return Err(Error::format(WHAT, "the top level is a chunked array, not a dict of collections"));
            }
            Ok(Variables::from_dict(dict_from(entries, "")?))
        }
        other => Err(Error::format(WHAT, format!("the top level is {}, not a map of collections", a(&other)))),
    }
}

/// Writes [`Variables`] as Flax does (`flax.serialization.to_bytes(variables)`): the same bytes
/// as Flax for the same tree of float32 arrays, keys in insertion order.
///
/// `flax.serialization.from_bytes(target, bytes)` and `msgpack_restore(bytes)` read the result.
///
/// ```
/// use nnjit::io::flax;
/// use nnjit::Variables;
///
/// let mut vars = Variables::new();
/// vars.insert("params/w", ndarray::arr0(2.0f32).into_dyn())?; // a scalar
/// let bytes = flax::to_bytes(&vars)?;
/// // {"params": {"w": ExtType(1, packb(((), "float32", b"\0\0\0@")))}}
/// assert_eq!(bytes, b"\x81\xa6params\x81\xa1w\xd8\x01\x93\x90\xa7float32\xc4\x04\0\0\0@");
/// assert!(flax::from_bytes(&bytes)?.bits_eq(&vars));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn to_bytes(vars: &Variables) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_dict(&mut out, vars.as_dict(), 0, MAX_CHUNK_SIZE / 4)?;
    Ok(out)
}

/// Errors of the msgpack layer, reported as errors of the checkpoint.
fn rename(e: Error) -> Error {
    match e {
        Error::Format { message, .. } => Error::format(WHAT, message),
        e => e,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// "a map", "an int", ... (the value's msgpack kind, for messages).
fn a(v: &Value<'_>) -> String {
    let kind = v.kind();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {kind}")
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

fn dict_from(entries: Vec<(Value<'_>, Value<'_>)>, path: &str) -> Result<Dict> {
    let mut seen = HashSet::new();
    if let Some(dup) = entries.iter().filter_map(|(k, _)| k.as_str()).find(|k| !seen.insert(*k)) {
        return Err(Error::format(WHAT, format!("{}: duplicate key", join(path, dup))));
    }
    let mut dict = Dict::new();
    for (k, v) in entries {
        let key = match k {
            Value::Str(s) => s.into_owned(),
            other => return Err(Error::format(WHAT, format!("{}: a key is {}, not a string", at(path), a(&other)))),
        };
        let p = join(path, &key);
        let node = match v {
            Value::Map(entries) if entries.iter().any(|(k, _)| k.as_str() == Some(CHUNKED)) => {
                Node::Leaf(Leaf::new(unchunk(entries, &p)?))
            }
            Value::Map(entries) => Node::Dict(dict_from(entries, &p)?),
            Value::Ext(code, payload) => Node::Leaf(Leaf::new(ext_array(code, &payload, &p)?)),
            other => {
                return Err(Error::format(
                    WHAT,
                    format!("{p}: {} is not supported (nnjit variables hold only float arrays and dicts)", a(&other)),
                ))
            }
        };
        dict.insert(key, node);
    }
    Ok(dict)
}

fn ext_array(code: i8, payload: &[u8], path: &str) -> Result<ArrayD<f32>> {
    match code {
        EXT_NDARRAY | EXT_NPSCALAR => {}
        EXT_NATIVE_COMPLEX => {
            return Err(Error::format(WHAT, format!("{path}: complex numbers are not supported")));
        }
        _ => return Err(Error::format(WHAT, format!("{path}: unknown msgpack ext type {code}"))),
    }
    let value = msgpack::decode(payload).map_err(|e| match e {
        Error::Format { message, .. } => Error::format(WHAT, format!("{path}: array payload: {message}")),
        e => e,
    })?;
    let bad = |msg: String| Error::format(WHAT, format!("{path}: {msg}"));
    let Value::Array(items) = value else {
        return Err(bad(format!("the array payload is {}, not [shape, dtype, bytes]", a(&value))));
    };
    let [shape, dtype, data] = <[Value<'_>; 3]>::try_from(items)
        .map_err(|items| bad(format!("array payload has {} items, not 3 (shape, dtype, bytes)", items.len())))?;
    let Value::Array(dims) = shape else {
        return Err(bad(format!("the shape is {}, not an array of ints", a(&shape))));
    };
    let mut shape = Vec::new();
    for d in &dims {
        let n = d.as_u64().and_then(|n| usize::try_from(n).ok());
        let n = n.ok_or_else(|| bad(format!("shape dimension {d:?} is not a non-negative integer")))?;
        try_push(WHAT, &mut shape, n)?;
    }
    // `_ndarray_from_bytes` unpacks with raw=True: the dtype name may be str or bin.
    let name: Cow<'_, [u8]> = match dtype {
        Value::Str(s) => Cow::Owned(s.as_bytes().to_vec()),
        Value::Bin(b) => b,
        other => return Err(bad(format!("the dtype is {}, not a name", a(&other)))),
    };
    let dtype = match &*name {
        b"float32" => Dtype::F32,
        b"float64" => Dtype::F64,
        b"float16" => Dtype::F16,
        b"bfloat16" => Dtype::BF16,
        other => {
            return Err(bad(format!(
                "dtype {:?} is not supported (float32, float64, float16 and bfloat16 are)",
                String::from_utf8_lossy(other)
            )))
        }
    };
    let data: &[u8] = match &data {
        Value::Bin(b) => b,
        Value::Str(s) => s.as_bytes(),
        other => return Err(bad(format!("the array bytes are {}, not bin", a(other)))),
    };
    decode_array(WHAT, path, dtype, &shape, data)
}

/// `_unchunk`: `{"shape": {"0": d0, ...}, "chunks": {"0": array, ...}}` → one array.
fn unchunk(entries: Vec<(Value<'_>, Value<'_>)>, path: &str) -> Result<ArrayD<f32>> {
    let bad = |msg: String| Error::format(WHAT, format!("{path}: chunked array: {msg}"));
    let mut shape = None;
    let mut chunks = None;
    for (k, v) in entries {
        match (k.as_str(), v) {
            (Some("shape"), Value::Map(m)) => shape = Some(m),
            (Some("chunks"), Value::Map(m)) => chunks = Some(m),
            (Some(k @ ("shape" | "chunks")), v) => return Err(bad(format!("\"{k}\" is {}, not a map", a(&v)))),
            _ => {}
        }
    }
    let shape = shape.ok_or_else(|| bad("no \"shape\"".into()))?;
    let chunks = chunks.ok_or_else(|| bad("no \"chunks\"".into()))?;
    // `_dict_to_tuple`: keys "0" .. "n-1", in any order.
    let dims = indexed(&shape, "shape", &bad)?;
    let mut dim_values = Vec::new();
    for d in dims {
        let n = d.as_u64().and_then(|n| usize::try_from(n).ok());
        try_push(WHAT, &mut dim_values, n.ok_or_else(|| bad(format!("shape dimension {d:?} is not a size")))?)?;
    }
    let n = crate::alloc::checked_len(path, &dim_values)?;
    let mut flat: Vec<f32> = Vec::new();
    for (i, c) in indexed(&chunks, "chunks", &bad)?.into_iter().enumerate() {
        let Value::Ext(code, payload) = c else {
            return Err(bad(format!("chunk {i} is {}, not an array", a(c))));
        };
        let chunk = ext_array(*code, payload, &format!("{path}/chunks/{i}"))?;
        if flat.len().checked_add(chunk.len()).is_none_or(|total| total > n) {
            return Err(bad(format!("the chunks hold more than the {n} elements of shape {dim_values:?}")));
        }
        flat.try_reserve(chunk.len())
            .map_err(|_| Error::Allocation { what: path.to_string(), bytes: chunk.len() * 4 })?;
        flat.extend(chunk.iter());
    }
    if flat.len() != n {
        return Err(bad(format!("the chunks hold {} elements, shape {dim_values:?} needs {n}", flat.len())));
    }
    ArrayD::from_shape_vec(dim_values, flat).map_err(|e| bad(e.to_string()))
}

/// The values of a `{"0": .., "1": .., ...}` map, in index order.
fn indexed<'v, 'a>(
    map: &'v [(Value<'a>, Value<'a>)],
    name: &str,
    bad: &dyn Fn(String) -> Error,
) -> Result<Vec<&'v Value<'a>>> {
    let mut out: Vec<Option<&Value<'a>>> = Vec::new();
    out.try_reserve_exact(map.len()).map_err(|_| Error::Allocation { what: name.into(), bytes: map.len() })?;
    out.resize(map.len(), None);
    for (k, v) in map {
        // Exactly `str(i)`: digits, no sign, no leading zero.
        let canonical = |s: &&str| s.bytes().all(|b| b.is_ascii_digit()) && (*s == "0" || !s.starts_with('0'));
        let i = k.as_str().filter(canonical).and_then(|s| s.parse::<usize>().ok()).filter(|&i| i < map.len());
        let slot = i.and_then(|i| out.get_mut(i)).filter(|s| s.is_none());
        match slot {
            Some(s) => *s = Some(v),
            None => return Err(bad(format!("\"{name}\" must have the keys \"0\" .. \"{}\"", map.len().max(1) - 1))),
        }
    }
    Ok(out.into_iter().flatten().collect())
}

fn write_dict(out: &mut Vec<u8>, dict: &Dict, depth: usize, chunk_elems: usize) -> Result<()> {
    if depth > msgpack::MAX_DEPTH {
        return Err(Error::format(
            WHAT,
            format!("cannot write dicts nested deeper than {} levels", msgpack::MAX_DEPTH),
        ));
    }
    msgpack::write_map_len(out, dict.len()).map_err(rename)?;
    for (k, node) in dict.iter() {
        msgpack::write_str(out, k).map_err(rename)?;
        match node {
            Node::Dict(d) => write_dict(out, d, depth + 1, chunk_elems)?,
            Node::Leaf(l) => write_leaf(out, l.array(), chunk_elems)?,
        }
    }
    Ok(())
}

/// An array leaf; arrays of more than `chunk_elems` elements in Flax's chunked form.
fn write_leaf(out: &mut Vec<u8>, a: &ArrayD<f32>, chunk_elems: usize) -> Result<()> {
    if a.len() <= chunk_elems {
        return write_ndarray(out, a.shape(), a.view());
    }
    // _chunk: {'__msgpack_chunked_array__': True, 'shape': {'0': d0, ...}, 'chunks': {'0': ..}}
    msgpack::write_map_len(out, 3).map_err(rename)?;
    msgpack::write_str(out, CHUNKED).map_err(rename)?;
    out.push(0xc3);
    msgpack::write_str(out, "shape").map_err(rename)?;
    msgpack::write_map_len(out, a.ndim()).map_err(rename)?;
    for (i, &d) in a.shape().iter().enumerate() {
        msgpack::write_str(out, &i.to_string()).map_err(rename)?;
        msgpack::write_uint(out, d as u64);
    }
    msgpack::write_str(out, "chunks").map_err(rename)?;
    let owned: Vec<f32>;
    let flat = match a.as_slice() {
        Some(s) => s,
        None => {
            owned = a.iter().copied().collect();
            &owned
        }
    };
    msgpack::write_map_len(out, flat.len().div_ceil(chunk_elems)).map_err(rename)?;
    for (i, chunk) in flat.chunks(chunk_elems).enumerate() {
        msgpack::write_str(out, &i.to_string()).map_err(rename)?;
        write_ndarray(out, &[chunk.len()], ndarray::ArrayView1::from(chunk).into_dyn())?;
    }
    Ok(())
}

/// `ExtType(1, packb((shape, "float32", bytes), use_bin_type=True))`.
fn write_ndarray(out: &mut Vec<u8>, shape: &[usize], a: ndarray::ArrayViewD<'_, f32>) -> Result<()> {
    let data_len =
        a.len().checked_mul(4).ok_or_else(|| Error::SizeOverflow { what: WHAT.into(), shape: shape.to_vec() })?;
    let mut head = vec![0x93];
    msgpack::write_array_len(&mut head, shape.len()).map_err(rename)?;
    for &d in shape {
        msgpack::write_uint(&mut head, d as u64);
    }
    msgpack::write_str(&mut head, "float32").map_err(rename)?;
    msgpack::write_bin_header(&mut head, data_len).map_err(rename)?;
    let payload = head.len().checked_add(data_len).ok_or_else(|| Error::format(WHAT, "array too large"))?;
    msgpack::write_ext_header(out, EXT_NDARRAY, payload).map_err(rename)?;
    out.extend_from_slice(&head);
    write_f32_le(WHAT, a, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn chunked_arrays_round_trip_like_flax() {
        let mut v = Variables::new();
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 5]), (0..10).map(|i| i as f32).collect()).unwrap();
        v.insert("params/big", a.clone()).unwrap();
        v.insert("params/small", ArrayD::from_elem(IxDyn(&[2]), 1.0)).unwrap();
        let mut out = Vec::new();
        write_dict(&mut out, v.as_dict(), 0, 4).unwrap();
        // {"params": {"big": {"__msgpack_chunked_array__": True, "shape": {"0": 2, "1": 5},
        //  "chunks": {"0": <4>, "1": <4>, "2": <2>}}, "small": <2>}}
        let head = b"\x81\xa6params\x82\xa3big\x83\xb9__msgpack_chunked_array__\xc3\xa5shape\x82\xa10\x02\xa11\x05\xa6chunks\x83\xa10";
        assert_eq!(&out[..head.len()], head);
        let back = from_bytes(&out).unwrap();
        assert!(back.bits_eq(&v));
        assert_eq!(back.get("params/big").unwrap(), &a);
        // Unchanged below the threshold: no chunking.
        let plain = to_bytes(&v).unwrap();
        assert!(!plain.windows(CHUNKED.len()).any(|w| w == CHUNKED.as_bytes()));
        assert!(from_bytes(&plain).unwrap().bits_eq(&v));
        // Chunks that do not add up are errors.
        let mut short = Vec::new();
        write_dict(&mut short, v.as_dict(), 0, 4).unwrap();
        let pos = short.windows(3).position(|w| w == b"\xa11\x05").unwrap();
        short[pos + 2] = 0x06; // shape (2, 6): 12 elements, chunks hold 10
        assert!(from_bytes(&short).unwrap_err().to_string().contains("chunks hold 10"));
    }

    #[test]
    fn chunk_indices_are_exactly_python_str_of_ints() {
        let mut payload = Vec::new();
        write_ndarray(&mut payload, &[2], ndarray::arr1(&[1.0f32, 2.0]).into_dyn().view()).unwrap();
        let ext = msgpack::decode(&payload).unwrap();
        let file = |index: &'static str| {
            let chunked = Value::Map(vec![
                (Value::from(CHUNKED), Value::Bool(true)),
                (Value::from("shape"), Value::Map(vec![(Value::from("0"), Value::UInt(2))])),
                (Value::from("chunks"), Value::Map(vec![(Value::from(index), ext.clone())])),
            ]);
            let tree = Value::Map(vec![(Value::from("params"), Value::Map(vec![(Value::from("x"), chunked)]))]);
            msgpack::encode(&tree).unwrap()
        };
        assert_eq!(from_bytes(&file("0")).unwrap().get("params/x").unwrap().as_slice().unwrap(), &[1.0, 2.0]);
        for bad in ["00", "+0", "1", "", "x"] {
            assert!(from_bytes(&file(bad)).unwrap_err().to_string().contains("keys \"0\""), "{bad}");
        }
    }

    #[test]
    fn dtypes_and_ext_codes() {
        let pack = |code: i8, shape: &[u8], dtype: &str, data: &[u8]| {
            let mut p = vec![0x93, 0x90 | shape.len() as u8];
            p.extend_from_slice(shape);
            msgpack::write_str(&mut p, dtype).unwrap();
            msgpack::write_bin(&mut p, data).unwrap();
            let mut out = b"\x81\xa6params\x81\xa1x".to_vec();
            msgpack::write_ext_header(&mut out, code, p.len()).unwrap();
            out.extend_from_slice(&p);
            out
        };
        let get = |b: &[u8]| from_bytes(b).map(|v| v.get("params/x").unwrap().clone());
        let f64s: Vec<u8> = [0.1f64, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(get(&pack(1, &[2], "float64", &f64s)).unwrap().as_slice().unwrap(), &[0.1f32, -2.0]);
        let f16s = [0x00, 0x3c, 0x00, 0xc0]; // 1.0, -2.0
        assert_eq!(get(&pack(1, &[2], "float16", &f16s)).unwrap().as_slice().unwrap(), &[1.0f32, -2.0]);
        let bf16s = [0x80, 0x3f]; // 1.0
        assert_eq!(get(&pack(1, &[1, 1], "bfloat16", &bf16s)).unwrap().shape(), &[1, 1]);
        let scalar = get(&pack(3, &[], "float32", &1.5f32.to_le_bytes())).unwrap();
        assert_eq!((scalar.shape(), scalar[[]]), (&[] as &[usize], 1.5));
        let e = get(&pack(1, &[1], "int32", &[0; 4])).unwrap_err().to_string();
        assert!(e.contains("params/x") && e.contains("int32"), "{e}");
        assert!(get(&pack(2, &[1], "float32", &[0; 4])).unwrap_err().to_string().contains("complex"));
        assert!(get(&pack(9, &[1], "float32", &[0; 4])).is_err());
        assert!(get(&pack(1, &[2], "float32", &[0; 4])).unwrap_err().to_string().contains("needs 8 bytes"));
    }
}
