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

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::fallible::checked_len;
use crate::io::msgpack::{self, Head, Reader};
use crate::io::{decode_array, entry_cost, leaf_cost, try_push, write_f32_le, Budget, Dtype};
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
    let mut budget = Budget::new(WHAT, bytes.len());
    let mut r = Reader::new(bytes);
    let root = match r.head().map_err(rename)? {
        Head::Map(n) => match read_dict(&mut r, n, None, 0, &mut budget).map_err(|f| f.error)? {
            Found::Dict(d) => d,
            Found::ChunkedKey => {
                return Err(Error::format(WHAT, "the top level is a chunked array, not a dict of collections"))
            }
        },
        other => return Err(Error::format(WHAT, format!("the top level is {}, not a map of collections", a(&other)))),
    };
    r.finish().map_err(rename)?;
    Ok(Variables::from_dict(root))
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

/// "a map", "an int", ... (the item's msgpack kind, for messages).
fn a(v: &Head<'_>) -> String {
    let kind = v.kind();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {kind}")
}

/// Where a value sits: its key and its parent's place, joined with `/` only when an error
/// names it (so that reading allocates no path per level).
struct Place<'p> {
    parent: Option<&'p Place<'p>>,
    key: &'p str,
}

fn path_of(place: Option<&Place<'_>>) -> String {
    let mut keys = Vec::new();
    let mut p = place;
    while let Some(node) = p {
        keys.push(node.key);
        p = node.parent;
    }
    keys.reverse();
    if keys.is_empty() {
        "the top level".to_string()
    } else {
        keys.join("/")
    }
}

/// Whether the map whose `n` entries follow has the chunked-array key (anywhere among its
/// keys, as Flax's `_unchunk_array_leaves_in_place` accepts); the reader is left where it was.
/// This skips the map's values, so it runs only where a map is known to be suspect (see
/// [`read_map`]), keeping loading linear in the input.
fn has_chunked_key(r: &mut Reader<'_>, n: usize) -> Result<bool> {
    let start = r.pos();
    let mut found = false;
    for _ in 0..n {
        if r.head().map_err(rename)? == Head::Str(CHUNKED) {
            found = true;
            break;
        }
        r.skip().map_err(rename)?;
    }
    r.seek(start);
    Ok(found)
}

/// An error, and the depth of the map where it arose.
struct Fail {
    error: Error,
    depth: usize,
}

impl Fail {
    fn at(depth: usize) -> impl Fn(Error) -> Fail {
        move |error| Fail { error, depth }
    }
}

/// What reading a map as a dict found.
enum Found {
    Dict(Dict),
    /// The chunked-array key, after other keys: the map is to be read again as an array.
    ChunkedKey,
}

/// Reads a map of `n` entries at `depth`: a chunked array if it has the chunked-array key
/// (Flax writes it first: checked at once), else a dict. A map whose marker comes after its
/// fields is read again as an array when the key is met, or when reading it as a dict fails at
/// its own level or its children's (a `true` or a shape of ints are not variables); the scan
/// for the key runs once per failure, so loading stays linear in the input.
fn read_map(
    r: &mut Reader<'_>,
    n: usize,
    place: &Place<'_>,
    depth: usize,
    budget: &mut Budget,
) -> std::result::Result<Node, Fail> {
    let start = r.pos();
    let first_is_marker = n > 0 && r.head().map_err(rename).map_err(Fail::at(depth))? == Head::Str(CHUNKED);
    r.seek(start);
    let saved = budget.left();
    let chunked = first_is_marker
        || match read_dict(r, n, Some(place), depth, budget) {
            Ok(Found::Dict(d)) => return Ok(Node::Dict(d)),
            Ok(Found::ChunkedKey) => true,
            Err(fail) if fail.depth <= depth + 1 => {
                r.seek(start);
                if !has_chunked_key(r, n).map_err(Fail::at(depth))? {
                    return Err(fail);
                }
                true
            }
            Err(fail) => return Err(fail),
        };
    debug_assert!(chunked);
    // What the attempt as a dict allocated was dropped.
    budget.restore(saved);
    r.seek(start);
    unchunk(r, n, place, budget).map(|a| Node::Leaf(Leaf::new(a))).map_err(Fail::at(depth))
}

/// Reads the `n` entries of a map into a dict, charging each entry and array to `budget`.
fn read_dict(
    r: &mut Reader<'_>,
    n: usize,
    place: Option<&Place<'_>>,
    depth: usize,
    budget: &mut Budget,
) -> std::result::Result<Found, Fail> {
    let fail = Fail::at(depth);
    if depth >= msgpack::MAX_DEPTH {
        return Err(fail(Error::format(
            WHAT,
            format!("{}: nesting deeper than {} levels of dicts", path_of(place), msgpack::MAX_DEPTH),
        )));
    }
    let mut dict = Dict::new();
    for _ in 0..n {
        let key = match r.head().map_err(rename).map_err(&fail)? {
            Head::Str(CHUNKED) => return Ok(Found::ChunkedKey),
            Head::Str(s) => s,
            other => {
                let message = format!("{}: a key is {}, not a string", path_of(place), a(&other));
                return Err(fail(Error::format(WHAT, message)));
            }
        };
        let here = Place { parent: place, key };
        if dict.get(key).is_some() {
            return Err(fail(Error::format(WHAT, format!("{}: duplicate key", path_of(Some(&here))))));
        }
        budget.charge(entry_cost(key.len())).map_err(&fail)?;
        let node = match r.head().map_err(rename).map_err(&fail)? {
            Head::Map(m) => read_map(r, m, &here, depth + 1, budget)?,
            Head::Ext(code, payload) => Node::Leaf(Leaf::new(ext_array(code, payload, &here, budget).map_err(&fail)?)),
            other => {
                return Err(fail(Error::format(
                    WHAT,
                    format!(
                        "{}: {} is not supported (nnjit variables hold only float arrays and dicts)",
                        path_of(Some(&here)),
                        a(&other)
                    ),
                )))
            }
        };
        dict.insert(key, node);
    }
    Ok(Found::Dict(dict))
}

/// Decodes an ext value of Flax's (`[shape, dtype, bytes]`), charging the array to `budget`.
fn ext_array(code: i8, payload: &[u8], place: &Place<'_>, budget: &mut Budget) -> Result<ArrayD<f32>> {
    let path = || path_of(Some(place));
    match code {
        EXT_NDARRAY | EXT_NPSCALAR => {}
        EXT_NATIVE_COMPLEX => {
            return Err(Error::format(WHAT, format!("{}: complex numbers are not supported", path())));
        }
        _ => return Err(Error::format(WHAT, format!("{}: unknown msgpack ext type {code}", path()))),
    }
    let bad = |msg: String| Error::format(WHAT, format!("{}: {msg}", path()));
    let payload_err = |e: Error| match e {
        Error::Format { message, .. } => bad(format!("array payload: {message}")),
        e => e,
    };
    let mut r = Reader::new(payload);
    match r.head().map_err(payload_err)? {
        Head::Array(3) => {}
        Head::Array(n) => return Err(bad(format!("array payload has {n} items, not 3 (shape, dtype, bytes)"))),
        other => return Err(bad(format!("the array payload is {}, not [shape, dtype, bytes]", a(&other)))),
    }
    let rank = match r.head().map_err(payload_err)? {
        Head::Array(rank) => rank,
        other => return Err(bad(format!("the shape is {}, not an array of ints", a(&other)))),
    };
    // The shape, read into an exact vector (refunded once the array is built; the array's own
    // dims and strides are charged with the leaf below).
    let shape_bytes = rank.saturating_mul(std::mem::size_of::<usize>());
    budget.charge(shape_bytes)?;
    let mut shape = Vec::new();
    shape.try_reserve_exact(rank).map_err(|_| Error::Allocation { what: path(), bytes: shape_bytes })?;
    for _ in 0..rank {
        let d = r.head().map_err(payload_err)?;
        let n = d.as_u64().and_then(|n| usize::try_from(n).ok());
        let n = n.ok_or_else(|| bad(format!("shape dimension {} is not a non-negative integer", describe(&d))))?;
        try_push(WHAT, &mut shape, n)?;
    }
    // `_ndarray_from_bytes` unpacks with raw=True: the dtype name may be str or bin.
    let name: &[u8] = match r.head().map_err(payload_err)? {
        Head::Str(s) => s.as_bytes(),
        Head::Bin(b) => b,
        other => return Err(bad(format!("the dtype is {}, not a name", a(&other)))),
    };
    let dtype = match name {
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
    let data: &[u8] = match r.head().map_err(payload_err)? {
        Head::Bin(b) => b,
        Head::Str(s) => s.as_bytes(),
        other => return Err(bad(format!("the array bytes are {}, not bin", a(&other)))),
    };
    r.finish().map_err(payload_err)?;
    let len = checked_len(&path(), &shape)?;
    if len.checked_mul(dtype.size()) == Some(data.len()) {
        // Otherwise `decode_array` reports the mismatch, allocating nothing.
        budget.charge(leaf_cost(rank, len))?;
    }
    let array = decode_array(WHAT, &path(), dtype, &shape, data);
    drop(shape);
    budget.refund(shape_bytes);
    array
}

/// A shape dimension as it appeared, for messages (without printing nested containers).
fn describe(h: &Head<'_>) -> String {
    match h {
        Head::Int(n) => n.to_string(),
        Head::UInt(n) => n.to_string(),
        Head::F32(x) => format!("{x:?}"),
        Head::F64(x) => format!("{x:?}"),
        Head::Str(s) => format!("{:?}", s.chars().take(40).collect::<String>()),
        other => a(other),
    }
}

/// `_unchunk`: the `n` entries of `{"__msgpack_chunked_array__": .., "shape": {"0": d0, ...},
/// "chunks": {"0": array, ...}}` → one array.
fn unchunk(r: &mut Reader<'_>, n: usize, place: &Place<'_>, budget: &mut Budget) -> Result<ArrayD<f32>> {
    let path = || path_of(Some(place));
    let bad = |msg: String| Error::format(WHAT, format!("{}: chunked array: {msg}", path()));
    let mut dims: Option<Vec<usize>> = None;
    let mut chunks: Option<Vec<(i8, &[u8])>> = None;
    for _ in 0..n {
        let key = r.head().map_err(rename)?;
        match key {
            Head::Str(k @ ("shape" | "chunks")) => match r.head().map_err(rename)? {
                Head::Map(m) => {
                    // Both are read into vectors of m slots (`indexed`'s two, then the dims or
                    // the chunks, growing): charged, kept until the array is built.
                    let slot = 2 * std::mem::size_of::<Option<Head<'_>>>() + 3 * std::mem::size_of::<(i8, &[u8])>();
                    budget.charge(m.saturating_mul(slot))?;
                    let items = indexed(r, m, k, &bad)?;
                    if k == "shape" {
                        let mut d = Vec::new();
                        for h in items {
                            let v = h.as_u64().and_then(|v| usize::try_from(v).ok());
                            try_push(
                                WHAT,
                                &mut d,
                                v.ok_or_else(|| bad(format!("shape dimension {} is not a size", describe(&h))))?,
                            )?;
                        }
                        dims = Some(d);
                    } else {
                        let mut c = Vec::new();
                        for (i, h) in items.into_iter().enumerate() {
                            let Head::Ext(code, payload) = h else {
                                return Err(bad(format!("chunk {i} is {}, not an array", a(&h))));
                            };
                            try_push(WHAT, &mut c, (code, payload))?;
                        }
                        chunks = Some(c);
                    }
                }
                other => return Err(bad(format!("\"{k}\" is {}, not a map", a(&other)))),
            },
            _ => r.skip().map_err(rename)?,
        }
    }
    let dims = dims.ok_or_else(|| bad("no \"shape\"".into()))?;
    let chunks = chunks.ok_or_else(|| bad("no \"chunks\"".into()))?;
    let total = checked_len(&path(), &dims)?;
    budget.charge(leaf_cost(dims.len(), 0))?;
    let mut flat: Vec<f32> = Vec::new();
    for (i, (code, payload)) in chunks.into_iter().enumerate() {
        let key = format!("chunks/{i}");
        let chunk_place = Place { parent: Some(place), key: &key };
        // Each chunk is a temporary: charged while it lives (by `ext_array`), refunded once copied.
        let chunk = ext_array(code, payload, &chunk_place, budget)?;
        let chunk_cost = leaf_cost(chunk.ndim(), chunk.len());
        if flat.len().checked_add(chunk.len()).is_none_or(|t| t > total) {
            return Err(bad(format!("the chunks hold more than the {total} elements of shape {dims:?}")));
        }
        // `flat` grows with the chunks read (never with the claimed shape): at most twice its
        // elements, three times while it moves.
        budget.charge(chunk.len().saturating_mul(12))?;
        flat.try_reserve(chunk.len())
            .map_err(|_| Error::Allocation { what: path(), bytes: total.saturating_mul(4) })?;
        flat.extend(chunk.iter());
        drop(chunk);
        budget.refund(chunk_cost);
    }
    if flat.len() != total {
        return Err(bad(format!("the chunks hold {} elements, shape {dims:?} needs {total}", flat.len())));
    }
    ArrayD::from_shape_vec(dims, flat).map_err(|e| bad(e.to_string()))
}

/// The items of a `{"0": .., "1": .., ...}` map of `m` entries, in index order: keys exactly
/// `str(i)` for i in 0..m, in any order (`_dict_to_tuple`). Containers among the items are
/// errors (they are never dims or chunks).
fn indexed<'a>(r: &mut Reader<'a>, m: usize, name: &str, bad: &dyn Fn(String) -> Error) -> Result<Vec<Head<'a>>> {
    let mut out: Vec<Option<Head<'a>>> = Vec::new();
    out.try_reserve_exact(m).map_err(|_| Error::Allocation { what: name.into(), bytes: m })?;
    out.resize(m, None);
    for _ in 0..m {
        let k = r.head().map_err(rename)?;
        let v = r.head().map_err(rename)?;
        if let Head::Array(_) | Head::Map(_) = v {
            return Err(bad(format!("\"{name}\" holds {}, not a number or an array", a(&v))));
        }
        // Exactly `str(i)`: digits, no sign, no leading zero.
        let canonical = |s: &&str| s.bytes().all(|b| b.is_ascii_digit()) && (*s == "0" || !s.starts_with('0'));
        let key = match k {
            Head::Str(s) => Some(s),
            _ => None,
        };
        let i = key.filter(canonical).and_then(|s| s.parse::<usize>().ok()).filter(|&i| i < m);
        let slot = i.and_then(|i| out.get_mut(i)).filter(|s| s.is_none());
        match slot {
            Some(s) => *s = Some(v),
            None => return Err(bad(format!("\"{name}\" must have the keys \"0\" .. \"{}\"", m.max(1) - 1))),
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
    msgpack::write_bin_len(&mut head, data_len).map_err(rename)?;
    let payload = head.len().checked_add(data_len).ok_or_else(|| Error::format(WHAT, "array too large"))?;
    msgpack::write_ext_len(out, EXT_NDARRAY, payload).map_err(rename)?;
    out.extend_from_slice(&head);
    write_f32_le(WHAT, a, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgpack::Value;
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

    /// Flax writes the marker first, but `msgpack_restore` finds it anywhere among the keys;
    /// so does `from_bytes` (read as a dict first, then again as an array).
    #[test]
    fn chunk_marker_anywhere_among_the_keys() {
        let mut payload = Vec::new();
        write_ndarray(&mut payload, &[2], ndarray::arr1(&[1.0f32, 2.0]).into_dyn().view()).unwrap();
        let ext = msgpack::decode(&payload).unwrap();
        let marker = (Value::from(CHUNKED), Value::Bool(true));
        let shape = (Value::from("shape"), Value::Map(vec![(Value::from("0"), Value::UInt(2))]));
        let chunks = (Value::from("chunks"), Value::Map(vec![(Value::from("0"), ext)]));
        let extra = (Value::from("note"), Value::Array(vec![Value::Nil]));
        let orders = [
            vec![marker.clone(), shape.clone(), chunks.clone()],
            vec![shape.clone(), marker.clone(), chunks.clone()],
            vec![chunks.clone(), shape.clone(), marker.clone()],
            vec![shape.clone(), chunks.clone(), extra.clone(), marker.clone()],
        ];
        for entries in orders {
            let tree = Value::Map(vec![(
                Value::from("params"),
                Value::Map(vec![(Value::from("x"), Value::Map(entries)), (Value::from("y"), Value::Map(vec![]))]),
            )]);
            let v = from_bytes(&msgpack::encode(&tree).unwrap()).unwrap();
            assert_eq!(v.get("params/x").unwrap().as_slice().unwrap(), &[1.0, 2.0]);
            assert!(v.as_dict().dict("params").unwrap().dict("y").is_some());
        }
        // Without the marker, the same map is a dict with unsupported values.
        let tree = Value::Map(vec![(Value::from("x"), Value::Map(vec![shape, chunks]))]);
        assert!(from_bytes(&msgpack::encode(&tree).unwrap()).unwrap_err().to_string().contains("x/shape/0"));
    }

    #[test]
    fn dtypes_and_ext_codes() {
        let pack = |code: i8, shape: &[u8], dtype: &str, data: &[u8]| {
            let mut p = vec![0x93, 0x90 | shape.len() as u8];
            p.extend_from_slice(shape);
            msgpack::write_str(&mut p, dtype).unwrap();
            msgpack::write_bin_len(&mut p, data.len()).unwrap();
            p.extend_from_slice(data);
            let mut out = b"\x81\xa6params\x81\xa1x".to_vec();
            msgpack::write_ext_len(&mut out, code, p.len()).unwrap();
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
