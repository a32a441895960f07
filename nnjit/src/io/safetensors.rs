//! safetensors files, with `/`-joined tensor names (`params/Dense_0/kernel`).
//!
//! The format: a little-endian `u64` header size `N`, `N` bytes of UTF-8 JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}` with an
//! optional `"__metadata__": {str: str}`), then the data buffer, the tensors' little-endian,
//! C-order bytes at `data_offsets` relative to the buffer's start.
//!
//! [`load`] enforces the format's rules, as the reference implementation does: a header of at
//! most [`MAX_HEADER_SIZE`] bytes that starts with `{` and is valid UTF-8 JSON (trailing spaces
//! allowed), no duplicate keys, offsets that tile the buffer exactly (sorted by offset each
//! tensor starts where the previous ended, no gaps, no overlaps, the last ends at the end of
//! the file) and sizes that match shape × dtype (computed with overflow checks). Element types
//! `F32`, `F16`, `BF16` (exact) and `F64` (rounded to `f32`) are read; any other is an error.
//!
//! [`save`] writes what Python's `safetensors.numpy.save_file` writes for the same float32
//! arrays, byte for byte: tensors sorted by name, compact JSON, the header padded with spaces to
//! a multiple of 8 bytes.
//!
//! Names map to paths: `params/Dense_0/kernel` is the leaf `kernel` of the dict `Dense_0` of the
//! collection `params`; the tree keeps the header's order. A name without `/` is a top-level
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
use std::path::Path;

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

/// Deepest JSON nesting accepted in the header (serde_json's default recursion limit), and most
/// `/`-separated segments in a tensor name.
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
    if !header.starts_with('{') {
        return Err(fail("the header does not start with '{'".into()));
    }
    let mut budget = Budget::new(WHAT, bytes.len());
    let (infos, metadata) = parse_header(header, &mut budget)?;

    // The offsets must tile the data buffer: sorted by offsets, each tensor starts where the
    // previous one ended, and the last ends at the end of the file.
    // `order` (8 bytes a tensor) and, below, the set of names (at most 2.3 slots of 17 bytes).
    budget.charge(infos.len().saturating_mul(8 + 48))?;
    let mut order: Vec<usize> = (0..infos.len()).collect();
    order.sort_by_key(|&i| (infos[i].begin, infos[i].end));
    let mut start = 0usize;
    for &i in &order {
        let t = &infos[i];
        if t.begin != start || t.end < t.begin {
            return Err(fail(format!(
                "tensor \"{}\": data_offsets [{}, {}] do not start where the previous tensor ends ({start}): \
                 the tensors must cover the buffer without gaps or overlaps",
                t.name, t.begin, t.end
            )));
        }
        let count = crate::alloc::checked_len(&t.name, &t.shape)?;
        let nbytes = count
            .checked_mul(t.dtype.size())
            .ok_or_else(|| Error::SizeOverflow { what: t.name.clone(), shape: t.shape.clone() })?;
        if t.end - t.begin != nbytes {
            return Err(fail(format!(
                "tensor \"{}\": shape {:?} of {:?} needs {nbytes} bytes but data_offsets [{}, {}] span {}",
                t.name,
                t.shape,
                t.dtype,
                t.begin,
                t.end,
                t.end - t.begin
            )));
        }
        start = t.end;
    }
    if start != data.len() {
        return Err(fail(format!(
            "the tensors cover {start} bytes but the data buffer has {} (no holes or trailing bytes allowed)",
            data.len()
        )));
    }

    // Names must make a tree: non-empty segments, bounded depth, and no name that is also the
    // dict of another (`a/b` and `a/b/c`). Checked up front, in linear time.
    let names: HashSet<&str> = infos.iter().map(|t| t.name.as_str()).collect();
    for t in &infos {
        let fail = |m: String| Error::format(WHAT, format!("tensor \"{}\": {m}", t.name));
        if t.name.split('/').any(str::is_empty) {
            return Err(fail("the name has an empty path segment".into()));
        }
        if t.name.split('/').count() > MAX_DEPTH {
            return Err(fail(format!("the name has more than {MAX_DEPTH} path segments")));
        }
        if let Some(prefix) = t.name.match_indices('/').map(|(i, _)| &t.name[..i]).find(|p| names.contains(p)) {
            return Err(fail(format!("\"{prefix}\" is both an array and a dict")));
        }
    }
    let mut root = Dict::new();
    for t in &infos {
        // The offsets were checked above to tile `data`.
        let bytes = data.get(t.begin..t.end).ok_or_else(|| fail(format!("tensor \"{}\": bad offsets", t.name)))?;
        let len = crate::alloc::checked_len(&t.name, &t.shape)?;
        budget.charge(leaf_cost(t.shape.len(), len))?;
        let array = decode_array(WHAT, &t.name, t.dtype, &t.shape, bytes)?;
        insert(&mut root, &t.name, array, &mut budget)?;
    }
    Ok((Variables::from_dict(root), metadata))
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

    let mut header = String::from("{");
    if !metadata.is_empty() {
        let mut keys: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid("", format!("safetensors metadata key \"{}\" is given twice", w[0])));
        }
        header.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            json_string(&mut header, k);
            header.push(':');
            json_string(&mut header, v);
        }
        header.push('}');
    }
    let mut offset = 0usize;
    for (i, (name, leaf)) in leaves.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            header.push(',');
        }
        let a = leaf.array();
        let nbytes = a
            .len()
            .checked_mul(4)
            .ok_or_else(|| Error::SizeOverflow { what: name.clone(), shape: a.shape().to_vec() })?;
        let end = offset
            .checked_add(nbytes)
            .ok_or_else(|| Error::SizeOverflow { what: "safetensors data".into(), shape: a.shape().to_vec() })?;
        json_string(&mut header, name);
        header.push_str(":{\"dtype\":\"F32\",\"shape\":[");
        for (j, d) in a.shape().iter().enumerate() {
            if j > 0 {
                header.push(',');
            }
            header.push_str(&d.to_string());
        }
        header.push_str(&format!("],\"data_offsets\":[{offset},{end}]}}"));
        offset = end;
    }
    header.push('}');
    // Pad with spaces to a multiple of 8, so the data starts aligned.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
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
    out.extend_from_slice(header.as_bytes());
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

/// serde_json's string escaping (what the Python library writes).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ----------------------------------------------------------------------------------------------
// The header: a pull parser that reads exactly the JSON it needs and skips (but validates)
// the rest, so memory stays proportional to the tensors described.
// ----------------------------------------------------------------------------------------------

struct Info {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

type Metadata = Vec<(String, String)>;

fn parse_header(header: &str, budget: &mut Budget) -> Result<(Vec<Info>, Metadata)> {
    let mut p = Parser { s: header.as_bytes(), i: 0 };
    let mut infos: Vec<Info> = Vec::new();
    let mut metadata: Option<Metadata> = None;
    p.object(0, &mut |p, key| {
        if key == METADATA {
            if metadata.is_some() {
                return Err(p.err("duplicate key \"__metadata__\""));
            }
            metadata = Some(p.metadata(budget)?);
        } else {
            let info = p.info(key)?;
            // The entry in `infos` (a growing vector: 3×), its name and dims, and the name's
            // slot in the duplicate check below.
            let cost = 3 * std::mem::size_of::<Info>()
                + 2 * info.name.capacity()
                + 3 * std::mem::size_of::<usize>() * info.shape.capacity()
                + 2 * std::mem::size_of::<&str>();
            budget.charge(cost)?;
            try_push(WHAT, &mut infos, info)?;
        }
        Ok(())
    })?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("unexpected characters after the header's JSON object"));
    }
    let mut names: Vec<&str> = infos.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::format(WHAT, format!("duplicate tensor name \"{}\"", w[0])));
    }
    Ok((infos, metadata.unwrap_or_default()))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

type Field<'f, 'a> = &'f mut dyn FnMut(&mut Parser<'a>, String) -> Result<()>;

impl<'a> Parser<'a> {
    fn err(&self, m: &str) -> Error {
        Error::format(WHAT, format!("invalid header JSON: {m} (at header byte {})", self.i))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Result<()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    /// `{ "key": value, ... }`, calling `field` with each key to consume its value.
    fn object(&mut self, depth: usize, field: Field<'_, 'a>) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    /// `[ value, ... ]`, calling `item` to consume each value.
    fn array(&mut self, depth: usize, item: &mut dyn FnMut(&mut Parser<'a>) -> Result<()>) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn string(&mut self) -> Result<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The header is a valid &str and the run stops at ASCII bytes: a char boundary.
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid UTF-8"))?);
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let e = self.s.get(self.i).copied();
                    self.i += 1;
                    match e {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.err("lone leading surrogate in \\u escape"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.err("invalid trailing surrogate in \\u escape"));
                                }
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.ok_or_else(|| self.err("lone trailing surrogate in \\u escape"))?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = match self.s.get(self.i..self.i + 4) {
            Some(h) if h.iter().all(u8::is_ascii_hexdigit) => h,
            _ => return Err(self.err("invalid \\u escape")),
        };
        let v = h.iter().fold(0u32, |acc, &c| acc * 16 + (c as char).to_digit(16).unwrap_or(0));
        self.i += 4;
        Ok(v)
    }

    /// A JSON number that is a non-negative integer fitting `usize` (what serde accepts for a
    /// `usize`); anything else is an error.
    fn size(&mut self) -> Result<usize> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.s.get(self.i).copied() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| self.err("integer too large"))?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 {
            return Err(self.err("expected a non-negative integer"));
        }
        if digits > 1 && self.s[start] == b'0' {
            return Err(self.err("leading zeros are not allowed in JSON numbers"));
        }
        if let Some(b'.' | b'e' | b'E') = self.s.get(self.i) {
            return Err(self.err("expected an integer, found a fraction or exponent"));
        }
        usize::try_from(n).map_err(|_| self.err("integer too large"))
    }

    /// Validates and skips any JSON value.
    fn skip(&mut self, depth: usize) -> Result<()> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1, &mut |p, _| p.skip(depth + 1)),
            Some(b'[') => self.array(depth + 1, &mut |p| p.skip(depth + 1)),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<()> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Any JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<()> {
        let digits = |p: &mut Self| {
            let start = p.i;
            while p.s.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - start
        };
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let start = self.i;
        match digits(self) {
            0 => return Err(self.err("invalid number")),
            n if n > 1 && self.s[start] == b'0' => return Err(self.err("leading zeros are not allowed")),
            _ => {}
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    /// `"__metadata__"`: null or an object of strings.
    fn metadata(&mut self, budget: &mut Budget) -> Result<Metadata> {
        let mut out: Metadata = Vec::new();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            return Ok(out);
        }
        self.object(1, &mut |p, key| {
            if p.peek() != Some(b'"') {
                return Err(p.err(&format!("__metadata__ value of \"{key}\" is not a string")));
            }
            let value = p.string()?;
            // The entry in a growing vector (3×), its strings, and its slot in the key check.
            budget.charge(
                3 * std::mem::size_of::<(String, String)>()
                    + 2 * (key.capacity() + value.capacity())
                    + 2 * std::mem::size_of::<&str>(),
            )?;
            try_push(WHAT, &mut out, (key, value))
        })?;
        let mut keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::format(WHAT, format!("duplicate __metadata__ key \"{}\"", w[0])));
        }
        Ok(out)
    }

    /// `{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}` (other fields are skipped).
    fn info(&mut self, name: String) -> Result<Info> {
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        self.object(1, &mut |p, field| {
            let dup = match field.as_str() {
                "dtype" => dtype.is_some(),
                "shape" => shape.is_some(),
                "data_offsets" => offsets.is_some(),
                _ => return p.skip(1),
            };
            if dup {
                return Err(p.err(&format!("tensor \"{name}\": duplicate field \"{field}\"")));
            }
            match field.as_str() {
                "dtype" => {
                    if p.peek() != Some(b'"') {
                        return Err(p.err(&format!("tensor \"{name}\": dtype is not a string")));
                    }
                    let d = p.string()?;
                    dtype = Some(match d.as_str() {
                        "F32" => Dtype::F32,
                        "F64" => Dtype::F64,
                        "F16" => Dtype::F16,
                        "BF16" => Dtype::BF16,
                        _ => {
                            return Err(Error::format(
                                WHAT,
                                format!(
                                    "tensor \"{name}\": dtype \"{d}\" is not supported (F32, F64, F16 and BF16 are)"
                                ),
                            ))
                        }
                    });
                }
                "shape" => {
                    let mut dims = Vec::new();
                    p.array(2, &mut |p| {
                        let d = p.size()?;
                        try_push(WHAT, &mut dims, d)
                    })?;
                    shape = Some(dims);
                }
                _ => {
                    let mut o = Vec::new();
                    p.array(2, &mut |p| {
                        let d = p.size()?;
                        if o.len() == 2 {
                            return Err(p.err(&format!("tensor \"{name}\": data_offsets has more than 2 items")));
                        }
                        o.push(d);
                        Ok(())
                    })?;
                    match o[..] {
                        [b, e] => offsets = Some((b, e)),
                        _ => return Err(p.err(&format!("tensor \"{name}\": data_offsets must be [begin, end]"))),
                    }
                }
            }
            Ok(())
        })?;
        let missing = |f: &str| Error::format(WHAT, format!("tensor \"{name}\": missing field \"{f}\""));
        let dtype = dtype.ok_or_else(|| missing("dtype"))?;
        let shape = shape.ok_or_else(|| missing("shape"))?;
        let (begin, end) = offsets.ok_or_else(|| missing("data_offsets"))?;
        Ok(Info { name, dtype, shape, begin, end })
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
    fn json_escapes_match_serde_json() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é");
        assert_eq!(s, "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}é\"");
        let mut p = Parser { s: s.as_bytes(), i: 0 };
        assert_eq!(p.string().unwrap(), "a\"b\\c/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é");
        let mut p = Parser { s: br#""\ud83d\ude00\u00e9\/""#, i: 0 };
        assert_eq!(p.string().unwrap(), "😀é/");
        for bad in [r#""\ud83d""#, r#""\ude00""#, r#""\x""#, "\"a\u{1}\"", r#""abc"#, r#""\u12"#, r#""\u+123""#] {
            assert!(Parser { s: bad.as_bytes(), i: 0 }.string().is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_of_the_format() {
        let f4 = 1.0f32.to_le_bytes();
        let ok = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(load(&file(ok, &f4)).is_ok());
        // Whitespace and unknown fields are fine, as with serde_json.
        let ok2 = " {\"a/b\" : {\"x\": [1, {\"y\": null}, -2.5e3], \"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  ";
        assert!(err(ok2, &f4).contains("start with '{'"));
        assert!(load(&file(&ok2[1..], &f4)).is_ok());
        assert!(err(ok, &[0; 8]).contains("cover 4 bytes"));
        assert!(err(ok, &[0; 2]).contains("cover 4 bytes"));
        let gap = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        assert!(err(gap, &[0; 8]).contains("gaps"));
        let overlap = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(overlap, &[0; 8]).contains("gaps or overlaps"));
        let size = r#"{"a/b":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(err(size, &f4).contains("needs 8 bytes"));
        let dup = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
        assert!(err(dup, &f4).contains("duplicate"));
        let dupf = r#"{"a/b":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(dupf, &f4).contains("duplicate field"));
        let int = r#"{"a/b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(int, &f4).contains("\"I32\" is not supported"));
        let missing = r#"{"a/b":{"dtype":"F32","data_offsets":[0,4]}}"#;
        assert!(err(missing, &f4).contains("missing field \"shape\""));
        let neg = r#"{"a/b":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
        assert!(err(neg, &f4).contains("non-negative"));
        let float = r#"{"a/b":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#;
        assert!(err(float, &f4).contains("fraction"));
        let three = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}"#;
        assert!(err(three, &f4).contains("more than 2"));
        let huge = r#"{"a/b":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4]}}"#;
        assert!(err(huge, &f4).contains("needs 4000000000000 bytes"));
        let overflow = r#"{"a/b":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#;
        assert!(matches!(load(&file(overflow, &f4)), Err(Error::SizeOverflow { .. })));
        let big = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#;
        assert!(err(big, &f4).contains("too large"));
        let meta = r#"{"__metadata__":{"k":1},"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(meta, &f4).contains("not a string"));
        let empty_seg = r#"{"a//b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(err(empty_seg, &f4).contains("empty path segment"));
        let conflict = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a/b/c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#;
        assert!(err(conflict, &f4).contains("an array and a dict"));
        let trailing = r#"{"a/b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}x"#;
        assert!(err(trailing, &f4).contains("after the header"));
        let deep = format!("{{\"a\":{{\"x\":{}0{}}}}}", "[".repeat(200), "]".repeat(200));
        assert!(err(&deep, &[]).contains("too deep"));
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
