//! Checkpoint I/O against real Flax and Python safetensors output (`tests/data/checkpoints/`,
//! made by `gen_ckpt.py` / `gen_st.py`): every leaf bit for bit, the same model outputs, the
//! same bytes written back, Rust→Rust round trips, and hostile inputs that must be errors,
//! never panics.

use nnjit::io::{flax, safetensors};
use nnjit::ndarray::{ArrayD, IxDyn};
use nnjit::nn::{self, Module};
use nnjit::{Error, Variables};
use nnjit_suite::models::{JitMlp, Mlp, MlpBnDrop};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/checkpoints/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The variables of `{name}.json` (`{"variables": {...flat lists...}, "variable_shapes": {...}}`).
fn json_variables(name: &str) -> Variables {
    let doc: Value = serde_json::from_slice(&fixture(name)).expect("fixture JSON");
    fn walk(vals: &Value, shapes: &Value, path: &str, out: &mut Variables) {
        match (vals, shapes) {
            (Value::Object(v), Value::Object(s)) => {
                assert_eq!(v.len(), s.len(), "{path}");
                for (k, child) in v {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}/{k}") };
                    walk(child, &s[k], &p, out);
                }
            }
            (Value::Array(v), Value::Array(s)) => {
                let shape: Vec<usize> = s.iter().map(|d| d.as_u64().unwrap() as usize).collect();
                let data: Vec<f32> = v
                    .iter()
                    .map(|x| {
                        let f = x.as_f64().unwrap();
                        let g = f as f32;
                        // The numbers are exact float32 values; serde_json's default (not
                        // correctly rounded) parser may land one f64 ulp away, which rounds to
                        // the same float32.
                        assert!((f64::from(g) - f).abs() <= f.abs() * 1e-15, "{path}: {f} is not a float32");
                        g
                    })
                    .collect();
                out.insert(path, ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()).unwrap();
            }
            _ => panic!("{path}: unexpected JSON"),
        }
    }
    let mut out = Variables::new();
    walk(&doc["variables"], &doc["variable_shapes"], "", &mut out);
    out
}

/// Same paths, shapes and bits (the order may differ: JSON objects are sorted).
fn assert_same_leaves(ours: &Variables, want: &Variables) {
    let mut a: Vec<String> = ours.leaves().into_iter().map(|(p, _)| p).collect();
    let mut b: Vec<String> = want.leaves().into_iter().map(|(p, _)| p).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for (path, leaf) in want.leaves() {
        let got = ours.get(&path).unwrap();
        assert_eq!(got.shape(), leaf.array().shape(), "{path}");
        for (i, (x, y)) in got.iter().zip(leaf.array().iter()).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "{path}[{i}]: {x} vs {y}");
        }
    }
    assert!(ours.bits_eq(want));
}

/// `np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5)`: computed in float64, then rounded.
fn x() -> ArrayD<f32> {
    let step = 2.0f64 / 14.0;
    let mut v: Vec<f32> = (0..15).map(|i| (f64::from(i) * step + -1.0) as f32).collect();
    v[14] = 1.0;
    ArrayD::from_shape_vec(IxDyn(&[3, 5]), v).unwrap()
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn flax_fixtures_load_bit_for_bit() {
    for (name, n_leaves) in [("mlp", 4), ("mlp_bn_drop", 8)] {
        let vars = flax::from_bytes(&fixture(&format!("{name}.msgpack"))).unwrap();
        let want = json_variables(&format!("{name}.msgpack.json"));
        assert_eq!(vars.leaves().len(), n_leaves, "{name}");
        assert_same_leaves(&vars, &want);
    }
    // The file keeps Flax's insertion order (init order: kernel before bias, params first).
    let vars = Variables::from_flax_bytes(&fixture("mlp_bn_drop.msgpack")).unwrap();
    let paths: Vec<String> = vars.leaves().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "params/Dense_0/kernel",
            "params/Dense_0/bias",
            "params/BatchNorm_0/scale",
            "params/BatchNorm_0/bias",
            "params/Dense_1/kernel",
            "params/Dense_1/bias",
            "batch_stats/BatchNorm_0/mean",
            "batch_stats/BatchNorm_0/var",
        ]
    );
    assert_eq!(vars.get("params/Dense_0/kernel").unwrap().shape(), &[5, 6]);
    assert_eq!(vars.get("params/Dense_1/kernel").unwrap().shape(), &[6, 2]);
}

#[test]
fn loaded_variables_apply_like_the_json_variables() {
    let x = x();
    let loaded = flax::from_bytes(&fixture("mlp.msgpack")).unwrap();
    let want = json_variables("mlp.msgpack.json");
    let model = Mlp { hidden: 7, out: 3 };
    let y = model.apply(&loaded, &x).unwrap();
    assert_eq!(y.shape(), &[3, 3]);
    assert_eq!(bits(&y), bits(&model.apply(&want, &x).unwrap()));
    assert_eq!(bits(&y), bits(&JitMlp { hidden: 7, out: 3 }.apply(&loaded, &x).unwrap()));

    let loaded = flax::from_bytes(&fixture("mlp_bn_drop.msgpack")).unwrap();
    let want = json_variables("mlp_bn_drop.msgpack.json");
    let model = MlpBnDrop { hidden: 6, out: 2, rate: 0.5, train: false };
    let y = model.apply(&loaded, &x).unwrap();
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(bits(&y), bits(&model.apply(&want, &x).unwrap()));

    let st = safetensors::load(&fixture("mlp.safetensors")).unwrap();
    let y = Mlp { hidden: 7, out: 3 }.apply(&st, &x).unwrap();
    assert_eq!(bits(&y), bits(&Mlp { hidden: 7, out: 3 }.apply(&json_variables("mlp.msgpack.json"), &x).unwrap()));
}

#[test]
fn flax_writes_the_fixture_bytes_back() {
    for name in ["mlp.msgpack", "mlp_bn_drop.msgpack"] {
        let bytes = fixture(name);
        let vars = Variables::from_flax_bytes(&bytes).unwrap();
        assert_eq!(vars.to_flax_bytes().unwrap(), bytes, "{name}");
    }
}

#[test]
fn nnjit_init_serializes_to_the_flax_fixture() {
    // nnjit's init is Flax's bit for bit, so its checkpoint is Flax's byte for byte.
    let vars = Mlp { hidden: 7, out: 3 }.init(nn::PRNGKey(3), x()).unwrap();
    assert_eq!(flax::to_bytes(&vars).unwrap(), fixture("mlp.msgpack"));
    assert_eq!(safetensors::save(&vars).unwrap(), fixture("mlp.safetensors"));
    let rngs = nn::Rngs::new(nn::PRNGKey(4)).with("dropout", nn::PRNGKey(5));
    let vars = MlpBnDrop { hidden: 6, out: 2, rate: 0.5, train: false }.init(rngs, x()).unwrap();
    assert_eq!(flax::to_bytes(&vars).unwrap(), fixture("mlp_bn_drop.msgpack"));
}

/// Variables exercising every length format, key kind, special float and layout.
fn varied() -> Variables {
    let mut v = Variables::new();
    let ramp = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap()
    };
    v.insert("params/Dense_0/kernel", ramp(&[3, 4])).unwrap();
    v.insert("params/Dense_0/bias", ramp(&[4])).unwrap();
    v.insert("params/scalar", ArrayD::from_elem(IxDyn(&[]), -1.25)).unwrap();
    v.insert("params/empty", ArrayD::zeros(IxDyn(&[0, 5]))).unwrap();
    v.insert("params/medium", ramp(&[100])).unwrap(); // bin 16, ext 16
    v.insert("params/big", ramp(&[130, 130])).unwrap(); // bin 32, ext 32
    v.insert("params/wide_shape", ramp(&[1, 200, 1, 300])).unwrap(); // uint 8 / uint 16 dims
    v.insert("params/transposed", ramp(&[3, 7]).reversed_axes()).unwrap(); // not C-contiguous
    let special = [
        f32::NAN,
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffa0_0001),
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        f32::MAX,
        f32::MIN_POSITIVE,
    ];
    v.insert("batch_stats/BatchNorm_0/mean", ArrayD::from_shape_vec(IxDyn(&[10]), special.to_vec()).unwrap()).unwrap();
    for i in (0..40).rev() {
        v.insert(&format!("params/many/k{i}"), ArrayD::from_elem(IxDyn(&[1]), i as f32)).unwrap();
    }
    v.insert(&format!("params/{}", "long_key_".repeat(5)), ramp(&[2])).unwrap(); // str 8
    v.insert(&format!("params/{}", "k".repeat(300)), ramp(&[2])).unwrap(); // str 16
    v.insert("intermediates/ключ é \"quoted\" \\ \n tab\t", ramp(&[2])).unwrap();
    v
}

#[test]
fn flax_rust_round_trip() {
    let v = varied();
    let bytes = flax::to_bytes(&v).unwrap();
    let back = flax::from_bytes(&bytes).unwrap();
    assert!(back.bits_eq(&v));
    let order = |v: &Variables| v.leaves().into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    assert_eq!(order(&back), order(&v));
    assert_eq!(back.get("params/transposed").unwrap(), v.get("params/transposed").unwrap());
    assert_eq!(flax::to_bytes(&back).unwrap(), bytes);
    // Empty trees and empty collections survive too.
    assert_eq!(flax::to_bytes(&Variables::new()).unwrap(), [0x80]);
    let mut d = nnjit::variables::Dict::new();
    d.insert("params", nnjit::variables::Node::Dict(nnjit::variables::Dict::new()));
    let empty = Variables::from_dict(d);
    let back = flax::from_bytes(&flax::to_bytes(&empty).unwrap()).unwrap();
    assert_eq!(back.collection_names().collect::<Vec<_>>(), ["params"]);
}

#[test]
fn safetensors_rust_round_trip() {
    let v = varied();
    let bytes = safetensors::save(&v).unwrap();
    let back = safetensors::load(&bytes).unwrap();
    assert!(back.bits_eq(&v));
    assert_eq!(safetensors::save(&back).unwrap(), bytes);
    check_spec(&bytes);
    let meta = vec![("format".to_string(), "flax".to_string()), ("note".to_string(), "é\"\n".to_string())];
    let bytes = safetensors::save_with_metadata(&v, &meta).unwrap();
    check_spec(&bytes);
    let (back, m) = safetensors::load_with_metadata(&bytes).unwrap();
    assert!(back.bits_eq(&v));
    assert_eq!(m, meta);

    let dir = std::env::temp_dir().join(format!("nnjit-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v.safetensors");
    safetensors::save_file(&v, &path).unwrap();
    assert!(safetensors::load_file(&path).unwrap().bits_eq(&v));
    std::fs::remove_dir_all(&dir).unwrap();
    let e = safetensors::load_file(dir.join("missing.safetensors")).unwrap_err();
    assert!(e.to_string().contains("missing.safetensors"), "{e}");
    // Issue 14.8: the std::io::Error is kept (its kind, and as `source()`), not flattened.
    assert!(matches!(&e, nnjit::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{e:?}");
    let source = std::error::Error::source(&e).expect("the io error is the source");
    assert_eq!(source.downcast_ref::<std::io::Error>().map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound));
    let e = safetensors::save_file(&v, dir.join("no/such/dir/v.safetensors")).unwrap_err();
    assert!(matches!(&e, nnjit::Error::Io { action, .. } if action == "write"), "{e:?}");
}

/// The format's rules, checked independently with serde_json: 8-byte aligned header of JSON
/// starting with '{' and padded with spaces, names sorted, offsets tiling the buffer.
fn check_spec(bytes: &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.starts_with('{'));
    let trimmed = header.trim_end_matches(' ');
    assert!(trimmed.ends_with('}') && header.len() - trimmed.len() < 8);
    let json: serde_json::Map<String, Value> = serde_json::from_str(header).unwrap();
    // serde_json's map is sorted, so read the names in file order from the text.
    let mut names = Vec::new();
    for k in json.keys() {
        let quoted = serde_json::to_string(k).unwrap();
        names.push((header.find(&format!("{quoted}:")).unwrap(), k.clone()));
    }
    names.sort();
    let in_file: Vec<&String> = names.iter().map(|(_, k)| k).filter(|k| *k != "__metadata__").collect();
    let mut sorted = in_file.clone();
    sorted.sort();
    assert_eq!(in_file, sorted, "names are written sorted");
    let mut offset = 0u64;
    for k in in_file {
        let t = &json[k.as_str()];
        assert_eq!(t["dtype"], "F32");
        let count: u64 = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).product();
        let o = t["data_offsets"].as_array().unwrap();
        assert_eq!(o[0].as_u64().unwrap(), offset, "{k}");
        offset += count * 4;
        assert_eq!(o[1].as_u64().unwrap(), offset, "{k}");
    }
    assert_eq!(8 + n as u64 + offset, bytes.len() as u64);
}

#[test]
fn safetensors_fixture_reads_and_writes_back_byte_for_byte() {
    let bytes = fixture("mlp.safetensors");
    check_spec(&bytes);
    let vars = Variables::from_safetensors(&bytes).unwrap();
    assert_same_leaves(&vars, &json_variables("mlp.msgpack.json"));
    assert_eq!(vars.to_safetensors().unwrap(), bytes);
    // The same variables from the Flax checkpoint (kernel-before-bias order) write the same file.
    let from_flax = flax::from_bytes(&fixture("mlp.msgpack")).unwrap();
    assert!(from_flax.bits_eq(&vars));
    assert_eq!(safetensors::save(&from_flax).unwrap(), bytes);
}

type Loader = fn(&[u8]) -> nnjit::Result<Variables>;

fn never_panics(name: &str, bytes: &[u8], load: Loader) {
    // Every proper prefix is incomplete: an error.
    for len in 0..bytes.len() {
        assert!(load(&bytes[..len]).is_err(), "{name} truncated to {len} bytes loaded");
    }
    // Flipped bytes: an error or some variables, never a panic.
    let mut errors = 0;
    for i in 0..bytes.len() {
        for mask in [0xff, 0x01, 0x80, 0x40] {
            let mut b = bytes.to_vec();
            b[i] ^= mask;
            errors += usize::from(load(&b).is_err());
        }
    }
    assert!(errors > 0, "{name}");
    // Appended garbage is an error.
    let mut b = bytes.to_vec();
    b.push(0);
    assert!(load(&b).is_err(), "{name} with a trailing byte loaded");
}

#[test]
fn flax_hostile_inputs_are_errors() {
    never_panics("mlp.msgpack", &fixture("mlp.msgpack"), flax::from_bytes);
    never_panics("mlp_bn_drop.msgpack", &fixture("mlp_bn_drop.msgpack"), flax::from_bytes);

    // {"params": {"x": ExtType(1, payload)}}
    let with_payload = |payload: &[u8]| {
        let mut b = b"\x81\xa6params\x81\xa1x".to_vec();
        let ext = nnjit::io::msgpack::Value::Ext(flax::EXT_NDARRAY, payload.into());
        b.extend_from_slice(&nnjit::io::msgpack::encode(&ext).unwrap());
        b
    };
    let format_err = |b: &[u8]| match flax::from_bytes(b) {
        Err(e @ (Error::Format { .. } | Error::SizeOverflow { .. })) => e.to_string(),
        other => panic!("{other:?}"),
    };
    // A 10^12-element array stored in 4 bytes.
    let e = format_err(&with_payload(b"\x93\x91\xcf\x00\x00\x00\xe8\xd4\xa5\x10\x00\xa7float32\xc4\x04\0\0\0\0"));
    assert!(e.contains("params/x") && e.contains("4000000000000"), "{e}");
    // Dimensions whose product overflows.
    let e = format_err(&with_payload(
        b"\x93\x93\xcf\0\0\0\x01\0\0\0\0\xcf\0\0\0\x01\0\0\0\0\xcf\0\0\0\x01\0\0\0\0\xa7float32\xc4\0",
    ));
    assert!(e.contains("params/x"), "{e}");
    // Negative dimension, wrong arity, wrong types, unsupported dtypes.
    for payload in [
        &b"\x93\x91\xff\xa7float32\xc4\0"[..],
        b"\x92\x91\x01\xa7float32",
        b"\x94\x91\x01\xa7float32\xc4\x04\0\0\0\0\xc0",
        b"\x93\x01\xa7float32\xc4\x04\0\0\0\0",
        b"\x93\x91\x01\x01\xc4\x04\0\0\0\0",
        b"\x93\x91\x01\xa7float32\x01",
        b"\x93\x91\x01\xa5int32\xc4\x04\0\0\0\0",
        b"\x93\x91\x01\xa9complex64\xc4\x08\0\0\0\0\0\0\0\0",
        b"\xc0",
        b"",
    ] {
        format_err(&with_payload(payload));
    }
    // Huge declared lengths (bin 32, ext 32, array 32, map 32, str 32) with little data.
    for b in [
        &b"\x81\xa6params\xc9\xff\xff\xff\xff\x01\x93"[..],
        b"\x81\xa6params\xdf\xff\xff\xff\xff",
        b"\x81\xa6params\xdd\xff\xff\xff\xff\xc0",
        b"\x81\xdb\xff\xff\xff\xff",
        b"\xdf\x7f\xff\xff\xff\xa1a\x80",
    ] {
        format_err(b);
    }
    assert!(format_err(&with_payload(b"\x93\x91\x01\xa7float32\xc6\xff\xff\xff\xff\0")).contains("truncated"));
    // Deep nesting: {"a": {"a": ...}} a hundred thousand levels down.
    let mut deep = b"\x81\xa1a".repeat(100_000);
    deep.push(0x80);
    assert!(format_err(&deep).contains("nesting"));
    // Values that are not variables, keys that are not strings, duplicate keys, a bare array.
    for (b, what) in [
        (&b"\x81\xa4step\x05"[..], "step"),
        (b"\x81\xa6params\x81\xa1x\xcb\x3f\xf0\0\0\0\0\0\0", "params/x"),
        (b"\x81\xa6params\x81\xa1x\x91\x80", "array"),
        (b"\x81\x01\x80", "not a string"),
        (b"\x82\xa1a\x80\xa1a\x80", "duplicate"),
        (b"\x90", "top level"),
        (b"\xc0", "top level"),
        (b"\xc1", "0xc1"),
        (b"\x81\xa2\xff\xfe\x80", "UTF-8"),
    ] {
        let e = format_err(b);
        assert!(e.contains(what), "{what}: {e}");
    }
}

#[test]
fn safetensors_hostile_inputs_are_errors() {
    never_panics("mlp.safetensors", &fixture("mlp.safetensors"), safetensors::load);
    let file = |header: &str, data: &[u8]| {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    };
    let err = |header: &str, data: &[u8]| match safetensors::load(&file(header, data)) {
        Err(e @ (Error::Format { .. } | Error::SizeOverflow { .. })) => e.to_string(),
        other => panic!("{header}: {other:?}"),
    };
    // A 10^12-element tensor claimed over 4 bytes, and its offsets claiming a huge buffer.
    err(r#"{"a/b":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4]}}"#, &[0; 4]);
    err(r#"{"a/b":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4000000000000]}}"#, &[0; 4]);
    err(r#"{"a/b":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,0]}}"#, &[]);
    // Header size beyond the file, beyond the limit, and u64::MAX.
    for n in [1000u64, 200_000_000, u64::MAX] {
        let mut f = n.to_le_bytes().to_vec();
        f.extend_from_slice(b"{}      ");
        assert!(safetensors::load(&f).is_err());
    }
    // Deep JSON nesting in an ignored field: skipped without recursion (serde_json, as the
    // reference reads it), so no stack overflow; the tensor's missing fields are the error.
    let deep = format!(r#"{{"a/b":{{"x":{}{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert!(err(&deep, &[]).contains("missing field `dtype`"));
    let deep = format!(r#"{{"a/b":{{"x":{}0{}}}}}"#, r#"{"k":"#.repeat(100_000), "}".repeat(100_000));
    assert!(err(&deep, &[]).contains("missing field `dtype`"));
    let unclosed = format!(r#"{{"a/b":{{"x":{}"#, r#"{"k":"#.repeat(100_000));
    assert!(err(&unclosed, &[]).contains("invalid header JSON"));
    // A name nested too deeply for a tree.
    let deep_name = "a/".repeat(10_000) + "b";
    let e = err(&format!(r#"{{"{deep_name}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}}}"#), &[]);
    assert!(e.contains("segments"), "{e}");
    // Not JSON at all, or not an object of tensors.
    for h in ["{", "{}x", "{\"a\"}", "{\"a\":[]}", "{\"a\":{}}", "{'a':1}", "{\"a\":{\"dtype\":1}}", "{,}"] {
        err(h, &[]);
    }
}

#[test]
fn unsupported_content_names_the_variable() {
    let mut b = b"\x81\xa6params\x81\xa4step".to_vec();
    b.push(0x07);
    let e = Variables::from_flax_bytes(&b).unwrap_err().to_string();
    assert!(e.contains("params/step") && e.contains("int"), "{e}");
    let mut v = Variables::new();
    v.insert("params/w", ArrayD::zeros(IxDyn(&[2]))).unwrap();
    let bytes = v.to_safetensors().unwrap();
    let text = String::from_utf8_lossy(&bytes).replace("F32", "I32");
    let e = Variables::from_safetensors(text.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("params/w") && e.contains("I32"), "{e}");
}

#[test]
fn random_mutations_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let inputs: [(Vec<u8>, Loader); 4] = [
        (fixture("mlp.msgpack"), flax::from_bytes),
        (fixture("mlp_bn_drop.msgpack"), flax::from_bytes),
        (flax::to_bytes(&varied()).unwrap(), flax::from_bytes),
        (fixture("mlp.safetensors"), safetensors::load),
    ];
    for (bytes, load) in inputs {
        let mut ok = 0;
        for _ in 0..800 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..5) {
                let i = rng.random_range(0..b.len());
                match rng.random_range(0..4) {
                    0 => b[i] = rng.random(),
                    1 => b.insert(i, rng.random()),
                    2 => drop(b.remove(i)),
                    _ => b[i] = [0x00, 0x7f, 0x80, 0xc1, 0xdf, 0xff][rng.random_range(0..6)],
                }
            }
            if let Ok(v) = load(&b) {
                ok += 1;
                // Whatever loads can be written again.
                flax::to_bytes(&v).unwrap();
                let _ = safetensors::save(&v);
            }
        }
        assert!(ok < 800);
    }
}
