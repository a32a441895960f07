//! A small JSON reader for nested arrays of numbers (with Python's `NaN`, `Infinity`,
//! `-Infinity`), and number formatting that round-trips float32 exactly.

use std::fmt::Write as _;

/// A nested array of numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// An array.
    List(Vec<Value>),
}

/// Nesting deeper than this is rejected (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("arrays nested too deeply"));
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::List(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(_) => self.number(),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(self.s[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z' | b'A'..=b'Z')
        {
            self.i += 1;
        }
        let tok = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid text"))?;
        let v = match tok {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ if tok.bytes().all(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                && !tok.is_empty() =>
            {
                let v = tok.parse::<f64>().map_err(|_| format!("invalid number \"{tok}\""))?;
                // `7E7777777` parses to inf: a finite literal out of range is a typing mistake.
                if v.is_infinite() {
                    return Err(format!(
                        "number \"{tok}\" at byte {start} is outside the float32 range (about ±3.4e38)"
                    ));
                }
                v
            }
            _ => return Err(format!("expected a number, found \"{}\"", if tok.is_empty() { "?" } else { tok })),
        };
        Ok(Value::Num(v))
    }
}

/// Parses one JSON value made of arrays and numbers.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut r = Reader { s: text.as_bytes(), i: 0 };
    let v = r.value(0)?;
    r.ws();
    if r.i != r.s.len() {
        return Err(r.err("trailing characters"));
    }
    Ok(v)
}

/// `v` as float32: a finite number beyond float32's range (`1e39`) is an error naming the
/// element, as `where_` writes it, rather than an infinity; NaN and explicit infinities stay.
///
/// ```
/// use nnjit_suite::json::to_f32;
/// assert_eq!(to_f32(0.5, || "0".into()), Ok(0.5));
/// assert_eq!(to_f32(f64::INFINITY, || "0".into()), Ok(f32::INFINITY));
/// assert_eq!(to_f32(1e39, || "[0][2]".into()).unwrap_err(), "element [0][2] (1e39) is outside the float32 range (about ±3.4e38)");
/// ```
pub fn to_f32(v: f64, where_: impl FnOnce() -> String) -> Result<f32, String> {
    let x = v as f32;
    if x.is_infinite() && v.is_finite() {
        return Err(format!("element {} ({v:e}) is outside the float32 range (about ±3.4e38)", where_()));
    }
    Ok(x)
}

/// A 1-D or 2-D array of numbers as `(shape, row-major f32 values)`; ragged or empty input is
/// an error.
pub fn parse_matrix(text: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
    match parse(text)? {
        Value::Num(_) => Err("expected an array, e.g. [1, 2, 3] or [[1, 2], [3, 4]]".into()),
        Value::List(items) if items.is_empty() => Err("the input array is empty".into()),
        Value::List(items) => {
            if items.iter().all(|v| matches!(v, Value::Num(_))) {
                let mut xs = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    if let Value::Num(n) = v {
                        xs.push(to_f32(*n, || format!("{i}"))?);
                    }
                }
                return Ok((vec![xs.len()], xs));
            }
            let mut width = None;
            let mut xs = Vec::new();
            for (r, row) in items.iter().enumerate() {
                let Value::List(row) = row else {
                    return Err(format!("row {r} is a number; mix of numbers and arrays"));
                };
                if row.is_empty() {
                    return Err(format!("row {r} is empty"));
                }
                if *width.get_or_insert(row.len()) != row.len() {
                    return Err(format!(
                        "ragged input: row {r} has {} values, row 0 has {}",
                        row.len(),
                        width.unwrap_or(0)
                    ));
                }
                for (c, v) in row.iter().enumerate() {
                    match v {
                        Value::Num(n) => xs.push(to_f32(*n, || format!("[{r}][{c}]"))?),
                        Value::List(_) => return Err("only 1-D or 2-D arrays are accepted".into()),
                    }
                }
            }
            Ok((vec![items.len(), width.unwrap_or(0)], xs))
        }
    }
}

/// One float32 as JSON text that parses back to the same bits (the exact double value; NaN and
/// infinities as Python's json writes them).
#[must_use]
pub fn float(v: f32) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        let s = format!("{}", f64::from(v));
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// A JSON array of float32 values.
#[must_use]
pub fn floats<'a>(vs: impl IntoIterator<Item = &'a f32>) -> String {
    let mut s = String::from("[");
    for (i, v) in vs.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&float(*v));
    }
    s.push(']');
    s
}

/// A JSON array of integers.
#[must_use]
pub fn ints(vs: &[usize]) -> String {
    let mut s = String::from("[");
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{v}");
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vectors_matrices_and_rejects_bad_input() {
        assert_eq!(parse_matrix("[1,2,3]").unwrap(), (vec![3], vec![1.0, 2.0, 3.0]));
        assert_eq!(parse_matrix(" [[1, 2], [3,4e0]] ").unwrap(), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
        let (_, v) = parse_matrix("[NaN, Infinity, -Infinity, -0.0]").unwrap();
        assert!(v[0].is_nan() && v[1] == f32::INFINITY && v[2] == f32::NEG_INFINITY);
        assert_eq!(v[3].to_bits(), (-0.0f32).to_bits());
        for bad in ["", "[]", "[[1],[2,3]]", "[1,[2]]", "[[[1]]]", "[1,]", "[1 2]", "[x]", "3", "[1]]", "[[]]", "[--1]"]
        {
            assert!(parse_matrix(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
    }

    /// Found by the cli_args fuzz target (crash-3804d2ab...): a literal beyond f64's range
    /// (`7E7777777`) parsed to inf before the float32 range check could see it.
    #[test]
    fn literals_beyond_f64_are_errors_not_infinities() {
        let crash = "[[1577777,777,7E7777777,77777777777,77777777,777777777,77777777777,77777777.777777,777,3]\x0c]";
        assert!(parse_matrix(crash).is_err_and(|e| e.contains("7E7777777") && !e.contains('\n')));
        for bad in ["[1e309]", "[-1e400]", "[[1, 2], [3, 1e999]]"] {
            assert!(parse_matrix(bad).is_err_and(|e| e.contains("outside the float32 range")), "{bad}");
        }
        assert_eq!(parse_matrix("[1e-400]").unwrap().1, [0.0]); // underflow is a value, not a typo
    }

    #[test]
    fn floats_round_trip() {
        for v in [0.1f32, -1.2027218, 3.0, -0.0, f32::MIN_POSITIVE, f32::MAX, 1e-45, 16777217.0] {
            let s = float(v);
            let back = s.parse::<f64>().unwrap() as f32;
            assert_eq!(back.to_bits(), v.to_bits(), "{s}");
        }
        assert_eq!(float(f32::NAN), "NaN");
        assert_eq!(floats(&[1.0, 2.5]), "[1.0, 2.5]");
    }
}
