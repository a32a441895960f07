//! Reading the golden JSON files of `tests/data/flax_lift/` (`mod golden_json;` in each test
//! binary that does): float arrays as `{"shape", "values", "bits"}`, variable trees as nested
//! objects of them.

// Each test binary uses part of the helpers.
#![allow(dead_code)]

use ndarray::ArrayD;
use nnjit::Variables;
use serde_json::Value;

/// A `"0x3f800000"` bit pattern.
pub fn hex(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16).expect("hex")
}

/// A golden float32 array, from its bits.
pub fn array(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let values: Vec<f32> = v["bits"].as_array().expect("bits").iter().map(|b| f32::from_bits(hex(b))).collect();
    ArrayD::from_shape_vec(shape, values).expect("golden array")
}

/// A golden variable tree (`{collection: {module: {name: array}}}`) as `Variables`.
pub fn variables(tree: &Value) -> Variables {
    fn walk(v: &Value, path: String, out: &mut Variables) {
        if v.get("bits").is_some() {
            out.insert(&path, array(v)).expect("insert");
            return;
        }
        for (k, child) in v.as_object().expect("dict") {
            let p = if path.is_empty() { k.clone() } else { format!("{path}/{k}") };
            walk(child, p, out);
        }
    }
    let mut out = Variables::new();
    walk(tree, String::new(), &mut out);
    out
}

/// Same paths, same bits.
pub fn assert_vars(what: &str, got: &Variables, want: &Variables) {
    let paths = |v: &Variables| {
        let mut p: Vec<String> = v.leaves().into_iter().map(|(p, _)| p).collect();
        p.sort();
        p
    };
    assert_eq!(paths(got), paths(want), "{what}: variable paths");
    for (p, leaf) in want.leaves() {
        let g = got.get(&p).unwrap_or_else(|| panic!("{what}: missing {p}"));
        assert_eq!(g.shape(), leaf.array().shape(), "{what}: shape of {p}");
        let n = g.iter().zip(leaf.array()).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(n, 0, "{what}: {n} of {} elements of {p} differ", leaf.array().len());
    }
}

/// Outputs within the usual tolerance (float32 ops in another order may differ in the last bits).
pub fn assert_close(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "{what}: element {i}: got {g}, want {w}");
    }
}
