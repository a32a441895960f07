//! Flax's composite modules (`golden_modules_public.json`, from `gen_modules.py`): `Mlp` and
//! `MlpBnDrop`. Init variables bit-identical; eval/train outputs and updated `batch_stats`
//! within 1e-6 + 1e-5·|value| (XLA's batched reductions sum in other orders); the lifted models
//! equal the plain ones bit for bit.

use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("data/golden_modules_public.json")).expect("golden JSON")
}

/// Compares two trees of flat number lists; `tol` = None means float32 bits must match.
fn compare(path: &str, ours: &Value, want: &Value, tol: Option<(f64, f64)>, worst: &mut f64) -> Result<(), String> {
    match (ours, want) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            let mut ka_sorted = ka.clone();
            ka_sorted.sort();
            kb.sort();
            if ka_sorted != kb {
                return Err(format!("{path}: keys {ka:?} vs {kb:?}"));
            }
            for k in b.keys() {
                compare(&format!("{path}/{k}"), &a[k], &b[k], tol, worst)?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: {} values vs {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let (x, y) = (x.as_f64().unwrap() as f32, y.as_f64().unwrap() as f32);
                match tol {
                    None if x.to_bits() != y.to_bits() => return Err(format!("{path}[{i}]: {x} vs {y} (bits)")),
                    Some((abs, rel)) => {
                        let err = (f64::from(x) - f64::from(y)).abs();
                        let bound = abs + rel * f64::from(y).abs();
                        *worst = worst.max(err / bound);
                        if err > bound {
                            return Err(format!("{path}[{i}]: {x} vs {y} (|Δ| = {err:e} > {bound:e})"));
                        }
                    }
                    None => {}
                }
            }
            Ok(())
        }
        _ => Err(format!("{path}: structure differs")),
    }
}

#[test]
fn composite_modules_match_flax() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    let tol = Some((1e-6, 1e-5));
    let mut worst = 0.0f64;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let got = nnjit_suite::parity::run_case(case).unwrap_or_else(|e| panic!("case {i}: {e}"));
        let (plain, lifted) = (&got["plain"], &got["lifted"]);
        let mut check = |what: &str, r: Result<(), String>| {
            if let Err(e) = r {
                failures.push(format!("case {i} ({}): {what}: {e}", case["model"]));
            }
        };
        check("variables", compare("", &plain["variables"], &case["variables"], None, &mut worst));
        let outputs: &[&str] = if case["model"] == "Mlp" { &["output"] } else { &["output_eval", "output_train"] };
        for key in outputs {
            check(key, compare(key, &plain[*key], &case[*key], tol, &mut worst));
        }
        if case["model"] == "MlpBnDrop" {
            check(
                "batch_stats",
                compare("", &plain["updated_batch_stats"], &case["updated_batch_stats"], tol, &mut worst),
            );
        }
        assert_eq!(plain["output_shape"], case["output_shape"], "case {i}");
        // Lifted == plain, exactly (same JSON, every float printed exactly).
        assert_eq!(plain, lifted, "case {i}: lifted differs from plain");
    }
    eprintln!("worst error / tolerance over all outputs: {worst:.3}");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
