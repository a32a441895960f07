//! The `flax_parity` example's logic: run every case of a `golden_modules_public.json`-format
//! file through nnjit (plain and lifted) and emit the results with the golden file's key names.
//! It compares nothing itself.

use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{Module, Mutable, PRNGKey, Rngs, Tensor};
use nnjit::variables::{Dict, Node};
use nnjit::Variables;
use serde_json::{json, Map, Value};

use crate::models::{JitMlp, JitMlpBnDrop, Mlp, MlpBnDrop};

fn field<'a>(case: &'a Value, key: &str) -> Result<&'a Value, String> {
    case.get(key).ok_or_else(|| format!("case has no \"{key}\""))
}

fn int(case: &Value, key: &str) -> Result<i64, String> {
    field(case, key)?.as_i64().ok_or_else(|| format!("\"{key}\" is not an int64"))
}

fn usize_of(case: &Value, key: &str) -> Result<usize, String> {
    field(case, key)?.as_u64().and_then(|v| usize::try_from(v).ok()).ok_or_else(|| format!("\"{key}\" is not a size"))
}

fn floats(v: &Value, what: &str) -> Result<Vec<f32>, String> {
    v.as_array()
        .ok_or_else(|| format!("\"{what}\" is not an array"))?
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let f = n.as_f64().ok_or_else(|| format!("\"{what}\" holds a non-number"))?;
            crate::json::to_f32(f, || format!("{i} of \"{what}\""))
        })
        .collect()
}

/// One output value: a JSON number, or for NaN and ±inf (which JSON numbers cannot hold) the
/// string `"NaN"`, `"Infinity"` or `"-Infinity"`, which [`to_text`] writes bare, as Python's
/// `json` module does.
fn num(v: f32) -> Value {
    if v.is_finite() {
        json!(f64::from(v))
    } else {
        Value::String(crate::json::float(v))
    }
}

/// The document as Python's `json.dumps` writes it: numbers as serde_json writes them, and the
/// non-finite values of the output arrays (`"NaN"`, `"Infinity"`, `"-Infinity"` strings in an
/// array, see [`run_case`]) as the bare tokens `NaN`, `Infinity` and `-Infinity`.
///
/// ```
/// let doc = serde_json::json!({"output": [1.5, "NaN", "-Infinity"], "output_shape": [3]});
/// let text = nnjit_suite::parity::to_text(&doc);
/// assert_eq!(text, r#"{"output":[1.5,NaN,-Infinity],"output_shape":[3]}"#);
/// ```
#[must_use]
pub fn to_text(doc: &Value) -> String {
    let mut out = String::new();
    write_value(doc, false, &mut out);
    out
}

fn write_value(v: &Value, in_array: bool, out: &mut String) {
    match v {
        Value::String(s) if in_array && matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, true, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_value(item, false, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The input array of a case (`x`, `x_shape`).
pub fn input(case: &Value) -> Result<ArrayD<f32>, String> {
    let shape: Vec<usize> = field(case, "x_shape")?
        .as_array()
        .ok_or("\"x_shape\" is not an array")?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()).ok_or("bad \"x_shape\""))
        .collect::<Result<_, _>>()?;
    let xs = floats(field(case, "x")?, "x")?;
    ArrayD::from_shape_vec(IxDyn(&shape), xs).map_err(|e| format!("x does not fit x_shape: {e}"))
}

/// A variables tree as the golden files write it: nested objects of flat lists.
pub fn tree(vars: &Variables) -> Value {
    dict(vars.as_dict())
}

fn dict(d: &Dict) -> Value {
    let mut m = Map::new();
    for (k, n) in d.iter() {
        let v = match n {
            Node::Leaf(l) => Value::Array(l.array().iter().map(|v| num(*v)).collect()),
            Node::Dict(d) => dict(d),
        };
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

fn flat(a: &ArrayD<f32>) -> Value {
    Value::Array(a.iter().map(|v| num(*v)).collect())
}

fn mlp_side<M: Module<Input = Tensor, Output = Tensor>>(
    model: &M,
    case: &Value,
    x: &ArrayD<f32>,
) -> Result<Value, String> {
    let seed = int(case, "seed")?;
    let vars = model.init(PRNGKey(seed), x).map_err(|e| e.to_string())?;
    let y = model.apply(&vars, x).map_err(|e| e.to_string())?;
    Ok(json!({"variables": tree(&vars), "output": flat(&y), "output_shape": y.shape()}))
}

fn bn_side<M: Module<Input = Tensor, Output = Tensor>>(
    eval: &M,
    train: &M,
    case: &Value,
    x: &ArrayD<f32>,
) -> Result<Value, String> {
    let rngs = field(case, "init_rngs")?;
    let init_rngs = Rngs::new(PRNGKey(int(rngs, "params")?)).with("dropout", PRNGKey(int(rngs, "dropout")?));
    let vars = eval.init(init_rngs, x).map_err(|e| e.to_string())?;
    let y_eval = eval.apply(&vars, x).map_err(|e| e.to_string())?;
    let drop = Rngs::none().with("dropout", PRNGKey(int(case, "apply_dropout_seed")?));
    let (y_train, upd) = train.apply_with(&vars, x, drop, Mutable::only(["batch_stats"])).map_err(|e| e.to_string())?;
    let stats = upd.collection("batch_stats").map_or(json!({}), dict);
    Ok(json!({
        "variables": tree(&vars),
        "output_eval": flat(&y_eval),
        "output_train": flat(&y_train),
        "output_shape": y_train.shape(),
        "updated_batch_stats": stats,
    }))
}

/// Runs one case: `{"plain": {...}, "lifted": {...}}`. Output values are numbers, except NaN
/// and ±inf, which are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` ([`to_text`] writes
/// them as Python's `json` does).
pub fn run_case(case: &Value) -> Result<Value, String> {
    let x = input(case)?;
    let model = field(case, "model")?.as_str().ok_or("\"model\" is not a string")?;
    let hidden = usize_of(case, "hidden")?;
    let out = usize_of(case, "out")?;
    match model {
        "Mlp" => {
            let m = Mlp { hidden, out };
            Ok(json!({"plain": mlp_side(&m, case, &x)?, "lifted": mlp_side(&JitMlp::from(m), case, &x)?}))
        }
        "MlpBnDrop" => {
            let rate = field(case, "rate")?.as_f64().ok_or("\"rate\" is not a number")?;
            let eval = MlpBnDrop { hidden, out, rate, train: false };
            let train = MlpBnDrop { train: true, ..eval.clone() };
            Ok(json!({
                "plain": bn_side(&eval, &train, case, &x)?,
                "lifted": bn_side(&JitMlpBnDrop::from(eval), &JitMlpBnDrop::from(train), case, &x)?,
            }))
        }
        other => Err(format!("unknown model \"{other}\" (expected Mlp or MlpBnDrop)")),
    }
}

/// Runs every case of a golden-format document: `{"cases": [...]}` in case order.
pub fn run_file(text: &str) -> Result<Value, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let cases = doc.get("cases").and_then(Value::as_array).ok_or("the file has no \"cases\" array")?;
    let out = cases
        .iter()
        .enumerate()
        .map(|(i, c)| run_case(c).map_err(|e| format!("case {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "cases": out }))
}
