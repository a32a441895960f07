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
use crate::variables::{Variables, MAX_ALIGN};

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

fn shape(s: &[usize]) -> String {
    let d: Vec<String> = s.iter().map(|v| v.to_string()).collect();
    match d.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", d.join(", ")),
    }
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
    Ok(Summary { rows, totals })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = ["path", "module", "inputs", "outputs", "variables"];
        let mut table: Vec<[String; 5]> = vec![header.map(String::from)];
        for r in &self.rows {
            let vars: Vec<String> = r
                .variables
                .iter()
                .map(|(c, n, s)| format!("{c}/{n} {} {}", shape(s), s.iter().fold(1usize, |a, &d| a.saturating_mul(d))))
                .collect();
            let path = if r.path.is_empty() { "/".to_string() } else { r.path.clone() };
            table.push([path, r.module.clone(), shape(&r.input), shape(&r.output), vars.join(", ")]);
        }
        // Columns align up to MAX_ALIGN characters; a longer cell overflows its column (`{:w$}`
        // panics for widths above 65,535, and one huge cell must not pad every row).
        let mut widths = [0usize; 5];
        for row in &table {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count().min(MAX_ALIGN));
            }
        }
        for (i, row) in table.iter().enumerate() {
            let mut line = String::new();
            for (c, (cell, &w)) in row.iter().zip(&widths).enumerate() {
                if c > 0 {
                    line.push_str(" | ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
            }
            writeln!(f, "{}", line.trim_end())?;
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                writeln!(f, "{}", rule.join("-+-"))?;
            }
        }
        let totals: Vec<String> =
            self.totals.iter().map(|(c, n)| format!("{c}: {n} ({} bytes)", n.saturating_mul(4))).collect();
        write!(f, "total {}", if totals.is_empty() { "no variables".to_string() } else { totals.join(", ") })
    }
}
