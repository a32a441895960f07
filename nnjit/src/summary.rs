//! `tabulate`: Flax's `Module.tabulate`, one row per module path with input/output shapes and
//! the variables each module owns, plus totals.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let table = nn::Dense::new(4).tabulate(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0, 3.0]])?;
//! let text = table.to_string();
//! assert!(text.contains("Dense"));
//! assert_eq!(table.total("params"), 3 * 4 + 4);
//! # Ok::<(), nnjit::Error>(())
//! ```

use std::fmt;

use crate::error::Result;
use crate::module::Module;
use crate::scope::{CallHook, Frame, Mode, Mutable, Rngs};
use crate::variables::Variables;

/// One module call seen while tabulating.
///
/// ```
/// use nnjit::nn::{self, Module};
/// let table = nn::Dense::new(4).tabulate(nn::PRNGKey(0), &ndarray::array![[1.0f32, 2.0, 3.0]])?;
/// let row = &table.rows()[0];
/// assert_eq!((row.path.as_str(), row.module.as_str()), ("", "Dense")); // the top module
/// assert_eq!((row.input.clone(), row.output.clone()), (vec![1, 3], vec![1, 4]));
/// assert!(row.variables.contains(&("params".to_string(), "kernel".to_string(), vec![3, 4])));
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Module path (`""` for the top module, `Dense_0`, `Block_1/Dense_0`, ...).
    pub path: String,
    /// Module type name (`Dense`).
    pub module: String,
    /// Input shape.
    pub input: Vec<usize>,
    /// Output shape (empty until the call returns; stays empty if it failed).
    pub output: Vec<usize>,
    /// Variables owned directly by this module: (collection, name, shape).
    pub variables: Vec<(String, String, Vec<usize>)>,
}

/// What [`Module::tabulate`] returns; `Display` prints it as a table.
///
/// ```
/// use nnjit::nn::{self, Module};
/// let table = nn::Dense::new(4).tabulate(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
/// assert_eq!(table.rows()[0].module, "Dense");
/// assert_eq!(table.total("params"), 16);
/// println!("{table}");
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    rows: Vec<Row>,
    totals: Vec<(String, usize)>,
}

impl Summary {
    /// One row per module call, in call order.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Mlp;
    /// impl Module for Mlp {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = s.call(&nn::Dense::new(8), x)?;
    ///         s.call(&nn::Dense::new(2), nn::relu(h))
    ///     }
    /// }
    /// let table = Mlp.tabulate(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// let paths: Vec<&str> = table.rows().iter().map(|r| r.path.as_str()).collect();
    /// assert_eq!(paths, ["", "Dense_0", "Dense_1"]); // call order, as in Flax's table
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Total number of elements of collection `collection` (0 if absent).
    ///
    /// ```
    /// use nnjit::nn::{self, Module};
    /// let x = ndarray::array![[1.0f32, 2.0]];
    /// let table = nn::BatchNorm::new().tabulate(nn::PRNGKey(0), &x)?;
    /// assert_eq!(table.total("params"), 4); // scale, bias
    /// assert_eq!(table.total("batch_stats"), 4); // mean, var
    /// assert_eq!(table.total("cache"), 0); // absent
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn total(&self, collection: &str) -> usize {
        self.totals.iter().find(|(c, _)| c == collection).map_or(0, |(_, n)| *n)
    }
}

/// A call being recorded (the scope pushes one per module call while tabulating).
/// Records one row per module call (the scope's call hook).
#[derive(Default)]
struct Recorder {
    rows: Vec<Row>,
}

impl CallHook for Recorder {
    fn enter(&mut self, path: &str, module: &'static str, input: &[usize]) -> usize {
        // A shared module is listed once, with its first call (as Flax's table does).
        if self.rows.iter().any(|r| r.path == path) {
            return usize::MAX;
        }
        // A lifted module is shown as its original class (Flax: path `JitBlock_0`, module `Block`).
        let mut module = module;
        while let Some(original) = crate::jit::original_type_name(module) {
            module = original;
        }
        self.rows.push(Row {
            path: path.to_string(),
            module: module.to_string(),
            input: input.to_vec(),
            output: Vec::new(),
            variables: Vec::new(),
        });
        self.rows.len() - 1
    }

    fn exit(&mut self, token: usize, output: &[usize]) {
        if let Some(r) = self.rows.get_mut(token) {
            r.output = output.to_vec();
        }
    }
}

/// `float32[2,3]`, Flax's rendering of an array.
fn array_repr(s: &[usize]) -> String {
    let d: Vec<String> = s.iter().map(|v| v.to_string()).collect();
    format!("float32[{}]", d.join(","))
}

/// `1,234` (Python's `f"{n:,}"`).
fn thousands(int_part: &str) -> String {
    let mut out = String::new();
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Flax's `_bytes_repr`: `64 B`, `1.5 KB`, `2.0 MB`, `1.1 GB`.
fn bytes_repr(bytes: usize) -> String {
    // Precision: the value is shown with one decimal, as Python's `f"{x:,.1f}"`.
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    let (value, unit) = if b > 1e9 {
        (b / 1e9, "GB")
    } else if b > 1e6 {
        (b / 1e6, "MB")
    } else if b > 1e3 {
        (b / 1e3, "KB")
    } else {
        return format!("{} B", thousands(&bytes.to_string()));
    };
    let text = format!("{value:.1}");
    let (int_part, frac) = text.split_once('.').unwrap_or((&text, "0"));
    format!("{}.{frac} {unit}", thousands(int_part))
}

/// Flax's `_size_and_bytes_repr` for float32 variables: `16 (64 B)`, or nothing for 0.
fn size_repr(size: usize) -> String {
    if size == 0 {
        String::new()
    } else {
        format!("{} ({})", thousands(&size.to_string()), bytes_repr(size.saturating_mul(4)))
    }
}

/// `text` centered in `width` columns, as rich aligns a title or caption.
fn centered(text: &str, width: usize) -> String {
    let excess = width.saturating_sub(text.chars().count());
    let left = excess / 2;
    format!("{}{text}{}", " ".repeat(left), " ".repeat(excess - left))
}

pub(crate) fn tabulate<M: Module + ?Sized>(m: &M, rngs: Rngs, x: M::Input) -> Result<Summary> {
    let mut recorder = Recorder::default();
    let vars: Variables = {
        let mut frame = Frame::new(Mode::Init, None, rngs, Mutable::All);
        frame.hook = Some(&mut recorder);
        crate::module::run(m, &mut frame, x)?;
        std::mem::take(&mut frame.out)
    };
    let mut rows = recorder.rows;
    for (path, leaf) in vars.leaves() {
        // `collection/owner.../name`; every leaf of an init lies under a collection.
        let Some((collection, rest)) = path.split_once('/') else { continue };
        let (owner, name) = rest.rsplit_once('/').unwrap_or(("", rest));
        let (collection, name) = (collection.to_string(), name.to_string());
        if let Some(row) = rows.iter_mut().find(|r| r.path == owner) {
            row.variables.push((collection, name, leaf.array().shape().to_vec()));
        }
    }
    let mut totals: Vec<(String, usize)> = Vec::new();
    for (path, leaf) in vars.leaves() {
        let collection = path.split('/').next().unwrap_or_default().to_string();
        match totals.iter_mut().find(|(c, _)| *c == collection) {
            Some((_, n)) => *n = n.saturating_add(leaf.array().len()),
            None => totals.push((collection, leaf.array().len())),
        }
    }
    // Flax's column order: `params` first, then the other collections by name.
    totals.sort_by(|(a, _), (b, _)| (a != "params", a).cmp(&(b != "params", b)));
    Ok(Summary { rows, totals })
}

/// One line of box characters: `left`, `fill` over each column (plus padding), `mid`, `right`.
fn rule(widths: &[usize], [left, fill, mid, right]: [char; 4]) -> String {
    let mut line = String::new();
    line.push(left);
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            line.push(mid);
        }
        line.extend(std::iter::repeat_n(fill, w + 2));
    }
    line.push(right);
    line
}

/// A table row of multi-line cells (`right` marks right-aligned columns).
fn cells(out: &mut Vec<String>, widths: &[usize], row: &[Vec<String>], edge: char, right: &[bool]) {
    let height = row.iter().map(Vec::len).max().unwrap_or(1).max(1);
    for k in 0..height {
        let mut line = String::new();
        line.push(edge);
        for (c, (cell, w)) in row.iter().zip(widths).enumerate() {
            if c > 0 {
                line.push(edge);
            }
            let text = cell.get(k).map_or("", String::as_str);
            let pad = " ".repeat(w.saturating_sub(text.chars().count()));
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&format!(" {pad}{text} "));
            } else {
                line.push_str(&format!(" {text}{pad} "));
            }
        }
        line.push(edge);
        out.push(line);
    }
}

impl fmt::Display for Summary {
    /// The table as Flax's `Module.tabulate` prints it without colours
    /// (`console_kwargs={'force_terminal': False, 'no_color': True}`): title, one row per
    /// module, a column per collection with each module's variables and subtotal, the totals
    /// and the `Total Parameters` caption.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let collections: Vec<&str> = self.totals.iter().map(|(c, _)| c.as_str()).collect();
        let mut header: Vec<Vec<String>> =
            ["path", "module", "inputs", "outputs"].iter().map(|h| vec![h.to_string()]).collect();
        header.extend(collections.iter().map(|c| vec![(*c).to_string()]));
        let mut body: Vec<Vec<Vec<String>>> = Vec::new();
        for r in &self.rows {
            let mut row = vec![
                vec![r.path.clone()],
                vec![r.module.clone()],
                vec![array_repr(&r.input)],
                vec![array_repr(&r.output)],
            ];
            for c in &collections {
                let mut vars: Vec<&(String, String, Vec<usize>)> =
                    r.variables.iter().filter(|(vc, _, _)| vc == c).collect();
                vars.sort_by(|a, b| a.1.cmp(&b.1));
                let mut cell: Vec<String> = vars.iter().map(|(_, n, s)| format!("{n}: {}", array_repr(s))).collect();
                let size = vars
                    .iter()
                    .fold(0usize, |a, (_, _, s)| a.saturating_add(s.iter().fold(1usize, |p, &d| p.saturating_mul(d))));
                if size > 0 {
                    cell.push(String::new());
                    cell.push(size_repr(size));
                }
                row.push(cell);
            }
            body.push(row);
        }
        let mut footer: Vec<Vec<String>> =
            vec![vec![String::new()], vec![String::new()], vec![String::new()], vec!["Total".to_string()]];
        footer.extend(self.totals.iter().map(|(_, n)| vec![size_repr(*n)]));
        let mut widths = vec![0usize; header.len()];
        for row in std::iter::once(&header).chain(&body).chain(std::iter::once(&footer)) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = cell.iter().map(|l| l.chars().count()).fold(*w, usize::max);
            }
        }
        let width = widths.iter().sum::<usize>() + 3 * widths.len() + 1;
        let mut lines = vec![rule(&widths, ['┏', '━', '┳', '┓'])];
        cells(&mut lines, &widths, &header, '┃', &[]);
        lines.push(rule(&widths, ['┡', '━', '╇', '┩']));
        let right = [false, false, false, true];
        for (i, row) in body.iter().enumerate() {
            if i > 0 {
                lines.push(rule(&widths, ['├', '─', '┼', '┤']));
            }
            cells(&mut lines, &widths, row, '│', &[]);
        }
        lines.push(rule(&widths, ['├', '─', '┼', '┤']));
        cells(&mut lines, &widths, &footer, '│', &right);
        lines.push(rule(&widths, ['└', '─', '┴', '┘']));
        let title = format!("{} Summary", self.rows.first().map_or("", |r| r.module.as_str()));
        let total: usize = self.totals.iter().fold(0usize, |a, (_, n)| a.saturating_add(*n));
        writeln!(f)?;
        writeln!(f, "{}", centered(&title, width))?;
        for l in &lines {
            writeln!(f, "{l}")?;
        }
        writeln!(f, "{}", " ".repeat(width))?;
        writeln!(f, "{}", centered(&format!("Total Parameters: {}", size_repr(total)), width))?;
        writeln!(f)
    }
}
