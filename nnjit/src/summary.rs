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
    if s.len() == 1 {
        format!("({},)", d[0])
    } else {
        format!("({})", d.join(", "))
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
        let mut segs: Vec<&str> = path.split('/').collect();
        let name = segs.pop().unwrap_or_default().to_string();
        let collection = segs.remove(0).to_string();
        let owner = segs.join("/");
        if let Some(row) = rows.iter_mut().find(|r| r.path == owner) {
            row.variables.push((collection, name, leaf.array().shape().to_vec()));
        }
    }
    let mut totals: Vec<(String, usize)> = Vec::new();
    for (path, leaf) in vars.leaves() {
        let collection = path.split('/').next().unwrap_or_default().to_string();
        match totals.iter_mut().find(|(c, _)| *c == collection) {
            Some((_, n)) => *n += leaf.array().len(),
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
                .map(|(c, n, s)| format!("{c}/{n} {} {}", shape(s), s.iter().product::<usize>()))
                .collect();
            let path = if r.path.is_empty() { "/".to_string() } else { r.path.clone() };
            table.push([path, r.module.clone(), shape(&r.input), shape(&r.output), vars.join(", ")]);
        }
        let widths: Vec<usize> = (0..5).map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0)).collect();
        for (i, row) in table.iter().enumerate() {
            let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:w$}")).collect();
            writeln!(f, "{}", line.join(" | ").trim_end())?;
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                writeln!(f, "{}", rule.join("-+-"))?;
            }
        }
        let totals: Vec<String> = self.totals.iter().map(|(c, n)| format!("{c}: {n} ({} bytes)", n * 4)).collect();
        write!(f, "total {}", if totals.is_empty() { "no variables".to_string() } else { totals.join(", ") })
    }
}
