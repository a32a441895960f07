//! safetensors files, with `/`-joined tensor names (`params/Dense_0/kernel`).
//!
//! The format: a little-endian `u64` header size `N`, `N` bytes of UTF-8 JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}` with an
//! optional `"__metadata__": {str: str}`), then the data buffer, the tensors' little-endian,
//! C-order bytes at `data_offsets` relative to the buffer's start.
//!
//! Built on the reference implementation, the [`safetensors`] crate (which
//! Python's `safetensors` wraps): its header types ([`TensorInfo`], [`Dtype`](SafeDtype)) read
//! and written with `serde_json`, and its validation ([`Metadata::new`]). [`load`] enforces the
//! format's rules as the reference does: a header of at most [`MAX_HEADER_SIZE`] bytes of valid
//! UTF-8 JSON, offsets that tile the buffer exactly (sorted by offset each tensor starts where
//! the previous ended, no gaps, no overlaps, the last ends at the end of the file) and sizes
//! that match shape × dtype (computed with overflow checks); nnjit adds that names and
//! `__metadata__` keys are unique (the reference keeps the last of a repeated key). Element types
//! `F32`, `F16`, `BF16` (exact) and `F64` (rounded to `f32`) are read; any other is an error.
//!
//! The header is read by a streaming visitor (each tensor's entry charged to the loaders' memory
//! budget as it is read), not through the reference's `SafeTensors::deserialize`, whose
//! `#[serde(flatten)]` buffers the whole header as a tree of serde values first: several times
//! the header's size, beyond the loaders' memory bound on a header-only file.
//!
//! [`save`] writes what Python's `safetensors.numpy.save_file` writes for the same float32
//! arrays, byte for byte: tensors sorted by name, compact JSON (serde_json's, as the reference),
//! the header padded with spaces to a multiple of 8 bytes.
//!
//! Names map to paths: `params/Dense_0/kernel` is the leaf `kernel` of the dict `Dense_0` of the
//! collection `params`; the tree follows the tensors' order in the data buffer (the header's
//! order in the files safetensors writes). A name without `/` is a top-level
//! leaf (as [`Variables::from_dict`] allows). Empty dicts have no tensors, so they are not saved.
//!
//! ```
//! use nnjit::io::safetensors;
//! use nnjit::Variables;
//!
//! let mut vars = Variables::new();
//! vars.insert("params/Dense_0/kernel", ndarray::ArrayD::zeros(vec![3, 4]))?;
//! let bytes = safetensors::save(&vars)?;
//! let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
//! assert_eq!(header_len % 8, 0); // padded with spaces, like safetensors.numpy.save_file
//! assert!(std::str::from_utf8(&bytes[8..8 + header_len]).unwrap().contains("\"params/Dense_0/kernel\""));
//! assert!(safetensors::load(&bytes)?.bits_eq(&vars));
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use ::safetensors::tensor::{Metadata, TensorInfo};
use ::safetensors::{Dtype as SafeDtype, SafeTensorError};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::error::{Error, Result};
use crate::io::{decode_array, entry_cost, leaf_cost, try_push, write_f32_le, Budget, Dtype};
use crate::variables::{Dict, Leaf, Node, Variables};

const WHAT: &str = "safetensors data";

/// The largest header accepted (and written): 100 MB, the reference implementation's limit.
///
/// ```
/// use nnjit::io::safetensors::{load, MAX_HEADER_SIZE};
///
/// // A header size above the limit is rejected before anything is read or allocated.
/// let mut bytes = (MAX_HEADER_SIZE as u64 + 1).to_le_bytes().to_vec();
/// bytes.extend_from_slice(b"{}");
/// assert!(load(&bytes).is_err());
/// ```
pub const MAX_HEADER_SIZE: usize = 100_000_000;

/// Most `/`-separated segments in a tensor name, and deepest dicts written.
const MAX_DEPTH: usize = 128;

const METADATA: &str = "__metadata__";

/// Reads a safetensors file's bytes into [`Variables`] (the `__metadata__` strings, if any, are
/// checked and dropped; see [`load_with_metadata`]).
///
/// Errors ([`Error::Format`], naming the tensor where there is one): any violation of the
/// format's rules (see the [module docs](self)), an unsupported dtype, a name with an empty
/// segment (`params//kernel`), a name that is both an array and a dict (`a/b` and `a/b/c`).
///
/// ```
/// use nnjit::io::safetensors;
/// use nnjit::nn::{self, Module};
///
/// let vars = nn::Dense::new(3).init(nn::PRNGKey(0), &ndarray::array![1.0f32, 2.0])?;
/// let bytes = safetensors::save(&vars)?; // header: {"params/bias":{...},"params/kernel":{...}}
/// let back = safetensors::load(&bytes)?;
/// assert!(back.bits_eq(&vars));
/// assert!(safetensors::load(&bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn load(bytes: &[u8]) -> Result<Variables> {
    load_with_metadata(bytes).map(|(v, _)| v)
}

/// [`load`], also returning the header's `__metadata__` strings in file order (empty if absent).
///
/// ```
/// use nnjit::io::safetensors;
/// let header = br#"{"__metadata__":{"format":"flax"},"params/b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#;
/// let mut file = (header.len() as u64).to_le_bytes().to_vec();
/// file.extend_from_slice(header);
/// file.extend_from_slice(&2.5f32.to_le_bytes());
/// let (vars, meta) = safetensors::load_with_metadata(&file)?;
/// assert_eq!(vars.get("params/b").unwrap()[[]], 2.5);
/// assert_eq!(meta, [("format".to_string(), "flax".to_string())]);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn load_with_metadata(bytes: &[u8]) -> Result<(Variables, Vec<(String, String)>)> {
    crate::io::check_input_size(WHAT, bytes)?;
    let fail = |m: String| Error::format(WHAT, m);
    let Some((size, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(fail(format!("{} bytes is too short for the 8-byte header size", bytes.len())));
    };
    let n = u64::from_le_bytes(*size);
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_HEADER_SIZE)
        .ok_or_else(|| fail(format!("the header size {n} is larger than the limit of {MAX_HEADER_SIZE} bytes")))?;
    if n > rest.len() {
        return Err(fail(format!("the header size {n} is larger than the {} bytes after it", rest.len())));
    }
    let (header, data) = rest.split_at(n);
    let header = std::str::from_utf8(header).map_err(|e| fail(format!("the header is not valid UTF-8: {e}")))?;
    let mut budget = Budget::new(WHAT, bytes.len());
    let Header { tensors, metadata } = read_header(header, &mut budget)?;

    // The reference's validation: sorted by offsets, the tensors tile the data buffer and
    // every size matches shape × dtype. `Metadata::new` takes its own copy of the sorted list
    // (names and infos, indexed by name; dropped once checked), so that the tree is built from
    // the list in offset order without looking every tensor up again. Charged first, with the
    // list of names sorted for the duplicate check.
    let names_len: usize = tensors.iter().map(|(name, _)| name.len()).sum();
    let dims: usize = tensors.iter().map(|(_, info)| info.shape.len()).sum();
    let per_tensor = 2 * std::mem::size_of::<(String, TensorInfo)>()
        + 4 * (std::mem::size_of::<(String, usize)>() + 1)
        + std::mem::size_of::<&str>()
        + std::mem::size_of::<(&str, Dtype)>();
    budget.charge(
        tensors
            .len()
            .saturating_mul(per_tensor)
            .saturating_add(names_len)
            .saturating_add(dims.saturating_mul(std::mem::size_of::<usize>())),
    )?;
    let mut names: Vec<&str> = tensors.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(fail(format!("duplicate tensor name \"{}\"", w[0])));
    }
    drop(names);
    let mut tensors = tensors;
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let meta = Metadata::new(None, tensors.clone()).map_err(reference_error)?;
    let covered = meta.data_len();
    drop(meta);
    if covered != data.len() {
        return Err(fail(format!(
            "the tensors cover {covered} bytes but the data buffer has {} (no holes or trailing bytes allowed)",
            data.len()
        )));
    }
    let infos: Vec<(&str, &TensorInfo, Dtype)> = tensors
        .iter()
        .map(|(name, info)| Ok((name.as_str(), info, dtype(name, info.dtype)?)))
        .collect::<Result<_>>()?;

    // Names must make a tree: non-empty segments, bounded depth, and no name that is also the
    // dict of another (`a/b` and `a/b/c`). Checked up front, in linear time.
    let names: HashSet<&str> = infos.iter().map(|&(name, ..)| name).collect();
    for &(name, ..) in &infos {
        let fail = |m: String| Error::format(WHAT, format!("tensor \"{name}\": {m}"));
        if name.split('/').any(str::is_empty) {
            return Err(fail("the name has an empty path segment".into()));
        }
        if name.split('/').count() > MAX_DEPTH {
            return Err(fail(format!("the name has more than {MAX_DEPTH} path segments")));
        }
        if let Some(prefix) = name.match_indices('/').map(|(i, _)| &name[..i]).find(|p| names.contains(p)) {
            return Err(fail(format!("\"{prefix}\" is both an array and a dict")));
        }
    }
    let mut root = Dict::new();
    for &(name, info, dtype) in &infos {
        let (begin, end) = info.data_offsets;
        // `Metadata::new` checked that the offsets tile `data`.
        let bytes = data.get(begin..end).ok_or_else(|| fail(format!("tensor \"{name}\": bad offsets")))?;
        let len = crate::fallible::checked_len(name, &info.shape)?;
        budget.charge(leaf_cost(info.shape.len(), len))?;
        let array = decode_array(WHAT, name, dtype, &info.shape, bytes)?;
        insert(&mut root, name, array, &mut budget)?;
    }
    Ok((Variables::from_dict(root), metadata))
}

/// The element types nnjit reads, or an error naming the tensor and its dtype.
fn dtype(name: &str, d: SafeDtype) -> Result<Dtype> {
    Ok(match d {
        SafeDtype::F32 => Dtype::F32,
        SafeDtype::F64 => Dtype::F64,
        SafeDtype::F16 => Dtype::F16,
        SafeDtype::BF16 => Dtype::BF16,
        other => {
            return Err(Error::format(
                WHAT,
                format!("tensor \"{name}\": dtype \"{other}\" is not supported (F32, F64, F16 and BF16 are)"),
            ))
        }
    })
}

/// A violation of the format found by the reference's validation.
fn reference_error(e: SafeTensorError) -> Error {
    let message = match &e {
        SafeTensorError::InvalidOffset(name) => format!(
            "tensor \"{name}\": its data_offsets do not start where the previous tensor ends: the tensors must \
             cover the buffer without gaps or overlaps"
        ),
        SafeTensorError::TensorInvalidInfo => format!("a tensor's data_offsets do not span its shape × dtype ({e})"),
        _ => e.to_string(),
    };
    Error::format(WHAT, message)
}

/// Reads a safetensors file (see [`load`]) of at most [`MAX_INPUT_BYTES`](crate::io::MAX_INPUT_BYTES)
/// bytes. Failures to open or read it are [`Error::Io`], with the path and the `std::io::Error`.
///
/// ```no_run
/// let vars = nnjit::io::safetensors::load_file("model.safetensors")?;
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn load_file(path: impl AsRef<Path>) -> Result<Variables> {
    let path = path.as_ref();
    let bytes = crate::io::read_file(path, crate::io::MAX_INPUT_BYTES)?;
    load(&bytes).map_err(|e| match e {
        Error::Format { message, .. } => Error::format(format!("safetensors file {}", path.display()), message),
        e => e,
    })
}

/// Writes [`Variables`] as a safetensors file's bytes, named by `/`-joined paths, exactly as
/// Python's `safetensors.numpy.save_file` writes the same float32 arrays.
///
/// Errors: a dict key that is empty or contains `/` (the name would not read back as the same
/// path), a top-level leaf named `__metadata__`, dicts nested deeper than 128 levels, or a
/// header larger than [`MAX_HEADER_SIZE`].
///
/// ```
/// use nnjit::io::safetensors;
/// use nnjit::Variables;
///
/// let mut vars = Variables::new();
/// vars.insert("params/w", ndarray::arr1(&[1.0f32, 2.0]).into_dyn())?;
/// let bytes = safetensors::save(&vars)?;
/// let header = br#"{"params/w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
/// assert_eq!(bytes[..8], 64u64.to_le_bytes());        // 61 bytes, padded to 64
/// assert_eq!(&bytes[8..8 + header.len()], header);
/// assert_eq!(&bytes[8 + header.len()..72], b"   ");
/// assert!(safetensors::load(&bytes)?.bits_eq(&vars));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn save(vars: &Variables) -> Result<Vec<u8>> {
    save_with_metadata(vars, &[])
}

/// [`save`] with `__metadata__` strings (written first in the header, in the given order; the
/// keys must be distinct).
///
/// ```
/// use nnjit::io::safetensors;
/// let vars = nnjit::Variables::new();
/// let meta = [("format".to_string(), "flax".to_string())];
/// let bytes = safetensors::save_with_metadata(&vars, &meta)?;
/// assert_eq!(&bytes[8..], br#"{"__metadata__":{"format":"flax"}}      "#);
/// assert_eq!(safetensors::load_with_metadata(&bytes)?.1, meta);
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn save_with_metadata(vars: &Variables, metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let mut leaves = Vec::new();
    collect(vars.as_dict(), &mut String::new(), 0, &mut leaves)?;
    // The reference writer sorts by dtype (all F32 here), then by name (bytewise).
    leaves.sort_by(|a, b| a.0.cmp(&b.0));
    let mut keys: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid("", format!("safetensors metadata key \"{}\" is given twice", w[0])));
    }

    let mut tensors = Vec::with_capacity(leaves.len());
    let mut offset = 0usize;
    for (name, leaf) in &leaves {
        let a = leaf.array();
        let end = a
            .len()
            .checked_mul(4)
            .and_then(|n| offset.checked_add(n))
            .ok_or_else(|| Error::SizeOverflow { what: name.clone(), shape: a.shape().to_vec() })?;
        tensors.push((
            name.as_str(),
            TensorInfo { dtype: SafeDtype::F32, shape: a.shape().to_vec(), data_offsets: (offset, end) },
        ));
        offset = end;
    }
    let mut header = serde_json::to_vec(&HeaderOut { metadata, tensors: &tensors })
        .map_err(|e| Error::invalid("", format!("cannot write the safetensors header: {e}")))?;
    // Padded with spaces to a multiple of 8, so the data starts aligned (as the reference does).
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() > MAX_HEADER_SIZE {
        return Err(Error::invalid(
            "",
            format!("the safetensors header would be {} bytes, over the limit of {MAX_HEADER_SIZE}", header.len()),
        ));
    }
    let total = 8usize.saturating_add(header.len()).saturating_add(offset);
    let mut out = Vec::new();
    out.try_reserve_exact(total).map_err(|_| Error::Allocation { what: WHAT.into(), bytes: total })?;
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, leaf) in &leaves {
        write_f32_le(WHAT, leaf.array().view(), &mut out)?;
    }
    Ok(out)
}

/// Writes a safetensors file (see [`save`]); a failure to write is [`Error::Io`].
///
/// ```no_run
/// # let vars = nnjit::Variables::new();
/// nnjit::io::safetensors::save_file(&vars, "model.safetensors")?;
/// # Ok::<(), nnjit::Error>(())
/// ```
pub fn save_file(vars: &Variables, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = save(vars)?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, "write", e))
}

/// Every leaf with its `/`-joined name; keys must be non-empty and free of `/`.
fn collect<'v>(dict: &'v Dict, prefix: &mut String, depth: usize, out: &mut Vec<(String, &'v Leaf)>) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(Error::invalid("", format!("variables nested deeper than {MAX_DEPTH} levels at \"{prefix}\"")));
    }
    for (k, node) in dict.iter() {
        if k.is_empty() || k.contains('/') {
            return Err(Error::invalid(
                "",
                format!("key \"{k}\" under \"{prefix}\" cannot be a safetensors name segment (empty or contains '/')"),
            ));
        }
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(k);
        match node {
            Node::Leaf(l) => {
                if prefix == METADATA {
                    return Err(Error::invalid(
                        "",
                        "a top-level array cannot be named \"__metadata__\" in safetensors",
                    ));
                }
                out.push((prefix.clone(), l));
            }
            Node::Dict(d) => collect(d, prefix, depth + 1, out)?,
        }
        prefix.truncate(len);
    }
    Ok(())
}

/// Inserts `array` at the `/`-separated `name`, creating dicts (names were checked to form a
/// tree), charging every entry it creates to `budget`.
fn insert(root: &mut Dict, name: &str, array: ndarray::ArrayD<f32>, budget: &mut Budget) -> Result<()> {
    let (dirs, last) = name.rsplit_once('/').unwrap_or(("", name));
    let mut dict = root;
    for seg in dirs.split('/').filter(|s| !s.is_empty()) {
        if dict.get(seg).is_none() {
            budget.charge(entry_cost(seg.len()))?;
        }
        dict = dict.dict_mut_or_insert(seg);
    }
    budget.charge(entry_cost(last.len()))?;
    dict.insert(last, Node::Leaf(Leaf::new(array)));
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// The header, read and written with serde_json in the reference's types.
// ----------------------------------------------------------------------------------------------

/// The header as written: `__metadata__` first (in the given order), then the tensors.
struct HeaderOut<'a> {
    metadata: &'a [(String, String)],
    tensors: &'a [(&'a str, TensorInfo)],
}

impl Serialize for HeaderOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        struct Strings<'a>(&'a [(String, String)]);
        impl Serialize for Strings<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let has_meta = !self.metadata.is_empty();
        let mut map = serializer.serialize_map(Some(self.tensors.len() + usize::from(has_meta)))?;
        if has_meta {
            map.serialize_entry(METADATA, &Strings(self.metadata))?;
        }
        for (name, info) in self.tensors {
            map.serialize_entry(name, info)?;
        }
        map.end()
    }
}

/// The header as read: the tensors in header order, and the `__metadata__` strings.
struct Header {
    tensors: Vec<(String, TensorInfo)>,
    metadata: Vec<(String, String)>,
}

/// Parses the header JSON (serde_json, the reference's types), charging every entry to `budget`
/// as it is read.
fn read_header(header: &str, budget: &mut Budget) -> Result<Header> {
    let mut over_budget = None;
    let mut de = serde_json::Deserializer::from_str(header);
    let parsed = HeaderSeed { budget, over_budget: &mut over_budget }.deserialize(&mut de).and_then(|h| {
        de.end()?;
        Ok(h)
    });
    match (parsed, over_budget) {
        (_, Some(e)) => Err(e),
        (Ok(h), None) => Ok(h),
        (Err(e), None) => Err(Error::format(WHAT, format!("invalid header JSON: {e}"))),
    }
}

/// Reads the top-level map; a budget error is kept in `over_budget` (serde's errors are text).
struct HeaderSeed<'b> {
    budget: &'b mut Budget,
    over_budget: &'b mut Option<Error>,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = Header;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Header, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl HeaderSeed<'_> {
    fn charge<E: de::Error>(&mut self, bytes: usize) -> std::result::Result<(), E> {
        let charged = self.budget.charge(bytes);
        self.keep(charged)
    }

    fn push<T, E: de::Error>(&mut self, v: &mut Vec<T>, item: T) -> std::result::Result<(), E> {
        let pushed = try_push(WHAT, v, item);
        self.keep(pushed)
    }

    /// An allocation error as serde's error, the error itself kept for [`read_header`].
    fn keep<E: de::Error>(&mut self, r: Result<()>) -> std::result::Result<(), E> {
        r.map_err(|e| {
            let message = e.to_string();
            *self.over_budget = Some(e);
            E::custom(message)
        })
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a safetensors header (an object of tensors)")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> std::result::Result<Header, A::Error> {
        let mut tensors = Vec::new();
        let mut metadata = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == METADATA {
                if metadata.is_some() {
                    return Err(de::Error::duplicate_field(METADATA));
                }
                let seed = MetadataSeed { header: &mut self };
                metadata = Some(map.next_value_seed(seed)?);
            } else {
                let info: TensorInfo = map.next_value()?;
                // The entry in a growing vector (3×), its name and dims.
                self.charge(
                    3 * std::mem::size_of::<(String, TensorInfo)>()
                        + 2 * key.capacity()
                        + 3 * std::mem::size_of::<usize>() * info.shape.capacity(),
                )?;
                self.push(&mut tensors, (key, info))?;
            }
        }
        Ok(Header { tensors, metadata: metadata.unwrap_or_default() })
    }
}

/// `"__metadata__"`: null or an object of strings, kept in file order; keys must be unique.
struct MetadataSeed<'h, 'b> {
    header: &'h mut HeaderSeed<'b>,
}

impl<'de> DeserializeSeed<'de> for MetadataSeed<'_, '_> {
    type Value = Vec<(String, String)>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed<'_, '_> {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or an object of strings")
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut out: Vec<(String, String)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, String>()? {
            // The entry in a growing vector (3×), its strings, and its slot in the key check.
            self.header.charge(
                3 * std::mem::size_of::<(String, String)>()
                    + 2 * (key.capacity() + value.capacity())
                    + 2 * std::mem::size_of::<&str>(),
            )?;
            self.header.push(&mut out, (key, value))?;
        }
        let mut keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(de::Error::custom(format_args!("duplicate __metadata__ key \"{}\"", w[0])));
        }
        drop(keys);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    fn err(header: &str, data: &[u8]) -> String {
        load(&file(header, data)).unwrap_err().to_string()
    }

    #[test]
    fn names_escape_as_serde_json_does() {
        let mut vars = Variables::new();
        let name = "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é";
        vars.insert(&format!("p/{name}"), ndarray::ArrayD::zeros(vec![0])).unwrap();
        let bytes = save(&vars).unwrap();
        let header = std::str::from_utf8(&bytes[8..]).unwrap();
        assert!(header.starts_with("{\"p/a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}é\":"), "{header}");
        assert!(load(&bytes).unwrap().bits_eq(&vars));
        let escaped = r#"{"p/\ud83d\ude00\u00e9\/x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#;
        assert!(load(&file(escaped, &[])).unwrap().get("p/😀é/x").is_some());
        for bad in [r#"\ud83d""#, r#"\x""#, "a\u{1}\"", r#"\u12""#] {
            let header = format!(r#"{{"p/{bad}:{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}}}"#);
            assert!(err(&header, &[]).contains("invalid header JSON"), "{bad}");
        }
    }

    #[test]
    fn rules_of_the_format() {
        let f4 = 1.0f32.to_le_bytes();
        let ok = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(load(&file(ok, &f4)).is_ok());
        // Whitespace and unknown fields are fine, as with the reference (serde_json).
        let ok2 = " {\"a/b\" : {\"x\": [1, {\"y\": null}, -2.5e3], \"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  ";
        assert!(load(&file(ok2, &f4)).is_ok());
        assert!(err(ok, &[0; 8]).contains("cover 4 bytes"));
        assert!(err(ok, &[0; 2]).contains("cover 4 bytes"));
        let gap = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        assert!(err(gap, &[0; 8]).contains("gaps"));
        let overlap = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(overlap, &[0; 8]).contains("gaps or overlaps"));
        let size = r#"{"a/b":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(err(size, &f4).contains("shape × dtype"));
        let dup = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
        assert!(err(dup, &f4).contains("duplicate tensor name"));
        let dupf = r#"{"a/b":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(dupf, &f4).contains("duplicate field"));
        let int = r#"{"a/b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(int, &f4).contains("\"I32\" is not supported"));
        let unknown = r#"{"a/b":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(unknown, &f4).contains("F31"));
        let missing = r#"{"a/b":{"dtype":"F32","data_offsets":[0,4]}}"#;
        assert!(err(missing, &f4).contains("missing field `shape`"));
        let neg = r#"{"a/b":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
        assert!(err(neg, &f4).contains("-1"));
        let float = r#"{"a/b":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#;
        assert!(err(float, &f4).contains("floating point"));
        let three = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}"#;
        assert!(err(three, &f4).contains("invalid header JSON"));
        let huge = r#"{"a/b":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4]}}"#;
        assert!(err(huge, &f4).contains("shape × dtype"));
        let overflow = r#"{"a/b":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#;
        assert!(err(overflow, &f4).contains("overflow"));
        let big = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#;
        assert!(err(big, &f4).contains("invalid header JSON"));
        let meta = r#"{"__metadata__":{"k":1},"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(meta, &f4).contains("expected a string"));
        let meta2 = r#"{"__metadata__":{"k":"1","k":"2"},"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(meta2, &f4).contains("duplicate __metadata__ key"));
        let meta_null = r#"{"__metadata__":null,"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(load_with_metadata(&file(meta_null, &f4)).unwrap().1.is_empty());
        let empty_seg = r#"{"a//b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(empty_seg, &f4).contains("empty path segment"));
        let conflict = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/b/c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
        assert!(err(conflict, &f4).contains("an array and a dict"));
        let trailing = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}x"#;
        assert!(err(trailing, &f4).contains("trailing characters"));
        // Deep nesting in an ignored field: skipped without recursion (serde_json), so the
        // error is the missing dtype, not a stack overflow.
        let deep = format!("{{\"a\":{{\"x\":{}0{}}}}}", "[".repeat(200_000), "]".repeat(200_000));
        assert!(err(&deep, &[]).contains("missing field `dtype`"));
        assert!(load(&[1, 2, 3]).is_err());
        let mut huge_n = u64::MAX.to_le_bytes().to_vec();
        huge_n.extend_from_slice(b"{}");
        assert!(load(&huge_n).unwrap_err().to_string().contains("limit"));
        let mut bad_utf8 = 2u64.to_le_bytes().to_vec();
        bad_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(load(&bad_utf8).unwrap_err().to_string().contains("UTF-8"));
        // Zero-size and rank-0 tensors are valid.
        let zero = r#"{"p/e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"p/s":{"dtype":"F16","shape":[],"data_offsets":[0,2]}}"#;
        let v = load(&file(zero, &[0x00, 0x3c])).unwrap();
        assert_eq!(v.get("p/e").unwrap().shape(), &[0, 3]);
        assert_eq!(v.get("p/s").unwrap()[[]], 1.0);
        // The tree follows the data's order, whatever the header's.
        let swapped = r#"{"p/a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"p/z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let v = load(&file(swapped, &[0; 8])).unwrap();
        let keys: Vec<&str> = v.as_dict().dict("p").unwrap().iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn save_rejects_unrepresentable_keys() {
        let mut d = Dict::new();
        let mut inner = Dict::new();
        inner.insert("a/b", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1])))));
        d.insert("params", Node::Dict(inner));
        assert!(save(&Variables::from_dict(d)).unwrap_err().to_string().contains("a/b"));
        let mut d = Dict::new();
        d.insert(METADATA, Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1])))));
        assert!(save(&Variables::from_dict(d)).is_err());
        let mut d = Dict::new();
        d.insert("", Node::Leaf(Leaf::new(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1])))));
        assert!(save(&Variables::from_dict(d)).is_err());
        let dup = [("k".to_string(), "1".to_string()), ("k".to_string(), "2".to_string())];
        assert!(save_with_metadata(&Variables::new(), &dup).is_err());
    }
}
