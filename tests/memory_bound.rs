//! The loaders' memory bound (issue 14, item 5): loading any checkpoint of `n` bytes, valid or
//! not, allocates at most `MEMORY_PER_INPUT_BYTE · n + MEMORY_OVERHEAD` bytes at its peak
//! (`nnjit::io`'s documented bound), measured with a counting global allocator on hostile files.

use std::time::{Duration, Instant};

use nnjit::io::{flax, safetensors, MEMORY_OVERHEAD, MEMORY_PER_INPUT_BYTE};

mod common;
use common::counting_alloc::{peak_extra, serial};

/// Loads `bytes` with `load`, checks the peak against the bound and the time against `secs`,
/// and returns the peak (for the report printed with `--nocapture`).
fn check<T: std::fmt::Debug>(name: &str, bytes: &[u8], load: impl FnOnce(&[u8]) -> nnjit::Result<T>) -> usize {
    let bound = MEMORY_PER_INPUT_BYTE * bytes.len() + MEMORY_OVERHEAD;
    let start = Instant::now();
    let (peak, r) = peak_extra(|| load(bytes).map(|_| ()));
    let took = start.elapsed();
    println!(
        "{name}: {} bytes, peak {} bytes ({:.1}x the file), {:.2} s, {}",
        bytes.len(),
        peak,
        peak as f64 / bytes.len() as f64,
        took.as_secs_f64(),
        match &r {
            Ok(()) => "loaded".to_string(),
            Err(e) => format!("error: {}", e.to_string().chars().take(150).collect::<String>()),
        }
    );
    // NNJIT_MEMORY_REPORT=1 prints every measurement instead of stopping at the first excess.
    let report_only = std::env::var_os("NNJIT_MEMORY_REPORT").is_some();
    assert!(report_only || peak <= bound, "{name}: peak {peak} bytes > bound {bound} for {} bytes", bytes.len());
    assert!(took < Duration::from_secs(60), "{name}: {took:?}");
    peak
}

// --- msgpack writing helpers -----------------------------------------------------------------

fn map_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x80 | n as u8);
    } else if n < 1 << 16 {
        out.push(0xde);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn array_header(out: &mut Vec<u8>, n: usize) {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n < 1 << 16 {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32);
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Flax's ext-1 array of shape `[]`, float32.
fn scalar(out: &mut Vec<u8>) {
    let payload = b"\x93\x90\xa7float32\xc4\x04\0\0\x80?";
    out.extend_from_slice(&[0xc7, payload.len() as u8, 1]);
    out.extend_from_slice(payload);
}

/// Flax's ext-1 array of shape `[0]`, float32 (no data).
fn empty_array(out: &mut Vec<u8>) {
    let payload = b"\x93\x91\x00\xa7float32\xc4\x00";
    out.extend_from_slice(&[0xc7, payload.len() as u8, 1]);
    out.extend_from_slice(payload);
}

/// Keys `0`, `1`, ... as short strings (base 62).
fn key(mut i: usize) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut s = String::new();
    loop {
        s.push(D[i % 62] as char);
        i /= 62;
        if i == 0 {
            return s;
        }
    }
}

fn flat_map(n: usize, value: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    map_header(&mut out, 1);
    str(&mut out, "params");
    map_header(&mut out, n);
    for i in 0..n {
        str(&mut out, &key(i));
        value(&mut out);
    }
    out
}

#[test]
fn flax_loader_stays_within_the_bound_on_hostile_files() {
    let _serial = serial();
    // ~990 KB of 120-deep nested arrays, under a dict and at the top level.
    let mut nested = Vec::new();
    for _ in 0..8_000 {
        nested.extend(std::iter::repeat_n(0x91u8, 120));
        nested.push(0xc0);
    }
    let mut under_dict = Vec::new();
    map_header(&mut under_dict, 1);
    str(&mut under_dict, "params");
    array_header(&mut under_dict, 8_000);
    under_dict.extend_from_slice(&nested);
    check("msgpack: 8,000 arrays 120 deep under a dict", &under_dict, flax::from_bytes);
    let mut top = Vec::new();
    array_header(&mut top, 8_000);
    top.extend_from_slice(&nested);
    check("msgpack: 8,000 arrays 120 deep at the top", &top, flax::from_bytes);
    // The same inside one array's payload (the shape).
    let mut payload = vec![0x93];
    payload.extend_from_slice(&top);
    payload.extend_from_slice(b"\xa7float32\xc4\x00");
    let mut in_ext = Vec::new();
    map_header(&mut in_ext, 1);
    str(&mut in_ext, "w");
    in_ext.push(0xc9);
    in_ext.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    in_ext.push(1);
    in_ext.extend_from_slice(&payload);
    check("msgpack: nested arrays as an array's shape", &in_ext, flax::from_bytes);

    // 10^6 keys: empty dicts, scalars, empty arrays, and ints (not variables).
    check("msgpack: 10^6 empty dicts", &flat_map(1_000_000, |o| o.push(0x80)), flax::from_bytes);
    check("msgpack: 10^6 scalar arrays", &flat_map(1_000_000, scalar), flax::from_bytes);
    check("msgpack: 10^6 empty arrays", &flat_map(1_000_000, empty_array), flax::from_bytes);
    check("msgpack: 10^6 ints", &flat_map(1_000_000, |o| o.push(0x01)), flax::from_bytes);

    // Dicts 64 deep, 2 wide at every level (2^k dicts at depth k): 3-byte entries.
    fn tree(out: &mut Vec<u8>, depth: usize, budget: &mut usize) {
        if depth == 0 || *budget == 0 {
            out.push(0x80);
            return;
        }
        *budget -= 1;
        map_header(out, 2);
        for k in ["a", "b"] {
            str(out, k);
            tree(out, depth - 1, budget);
        }
    }
    let mut deep = Vec::new();
    tree(&mut deep, 20, &mut 1_000_000);
    check("msgpack: a binary tree of 2^20 dicts", &deep, flax::from_bytes);

    // 200,000 empty dicts under 126 levels of single-key dicts: every level looks for the
    // chunked-array key among its keys (skipping the values), so the scans cost time, not memory.
    let mut chain = Vec::new();
    for _ in 0..126 {
        map_header(&mut chain, 1);
        str(&mut chain, "a");
    }
    map_header(&mut chain, 200_000);
    for i in 0..200_000 {
        str(&mut chain, &key(i));
        chain.push(0x80);
    }
    check("msgpack: 200,000 empty dicts 126 levels down", &chain, flax::from_bytes);

    // A chunked array claiming many chunks, and a map that claims 2^32 - 1 entries.
    let mut chunked = Vec::new();
    map_header(&mut chunked, 1);
    str(&mut chunked, "w");
    map_header(&mut chunked, 3);
    str(&mut chunked, "__msgpack_chunked_array__");
    chunked.push(0xc3);
    str(&mut chunked, "shape");
    map_header(&mut chunked, 1);
    str(&mut chunked, "0");
    chunked.extend_from_slice(&[0xce, 0, 0x0f, 0x42, 0x40]); // 10^6
    str(&mut chunked, "chunks");
    map_header(&mut chunked, 200_000);
    for i in 0..200_000 {
        str(&mut chunked, &i.to_string());
        scalar(&mut chunked);
    }
    check("msgpack: a chunked array of 200,000 chunks", &chunked, flax::from_bytes);
    let mut liar = Vec::new();
    map_header(&mut liar, 1);
    str(&mut liar, "params");
    liar.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff]);
    liar.extend(std::iter::repeat_n(0x80, 1 << 20));
    check("msgpack: a map claiming 2^32 - 1 entries", &liar, flax::from_bytes);

    // One valid array of rank 3,000,000 (every dim 1): 3 MB of shape.
    let rank = 3_000_000;
    let mut payload = vec![0x93];
    array_header(&mut payload, rank);
    payload.extend(std::iter::repeat_n(0x01, rank));
    payload.extend_from_slice(b"\xa7float32\xc4\x04\0\0\x80?");
    let mut high_rank = Vec::new();
    map_header(&mut high_rank, 1);
    str(&mut high_rank, "w");
    high_rank.push(0xc9);
    high_rank.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    high_rank.push(1);
    high_rank.extend_from_slice(&payload);
    check("msgpack: an array of rank 3,000,000", &high_rank, flax::from_bytes);
}

/// Real checkpoints (many arrays of data) load, at about the size of their data.
#[test]
fn real_checkpoints_load_at_about_their_size() {
    let _serial = serial();
    let mut vars = nnjit::Variables::new();
    for i in 0..200 {
        let a = nnjit::ndarray::ArrayD::from_shape_fn(vec![50, 100], |ix| (ix[0] * 100 + ix[1] + i) as f32);
        vars.insert(&format!("params/Dense_{i}/kernel"), a).unwrap();
        vars.insert(&format!("params/Dense_{i}/bias"), nnjit::ndarray::ArrayD::zeros(vec![100])).unwrap();
    }
    for (name, bytes) in [("msgpack", vars.to_flax_bytes().unwrap()), ("safetensors", vars.to_safetensors().unwrap())] {
        let load = |b: &[u8]| if name == "msgpack" { flax::from_bytes(b) } else { safetensors::load(b) };
        let peak = check(&format!("{name}: 400 arrays, 4 MB"), &bytes, |b| load(b).map(|v| assert!(v.bits_eq(&vars))));
        assert!(peak < 2 * bytes.len(), "{name}: {peak}");
    }
}

fn safetensors_file(names: impl Iterator<Item = String>) -> Vec<u8> {
    let mut header = String::from("{");
    for (i, name) in names.enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!("\"{name}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out
}

#[test]
fn safetensors_loader_stays_within_the_bound_on_hostile_files() {
    let _serial = serial();
    let flat = safetensors_file((0..1_000_000).map(key));
    check("safetensors: 10^6 empty tensors", &flat, safetensors::load);
    // Every name 64 segments deep, no shared prefix: 63 dicts per tensor.
    let deep = safetensors_file((0..20_000).map(|i| format!("{}{}", key(i), "/a".repeat(63))));
    check("safetensors: 20,000 names 64 segments deep", &deep, safetensors::load);
    // 300,000 metadata entries, and a tensor of rank 1,000,000.
    let entries: Vec<String> = (0..300_000).map(|i| format!("\"{}\":\"\"", key(i))).collect();
    let header = format!("{{\"__metadata__\":{{{}}}}}", entries.join(","));
    let mut meta = (header.len() as u64).to_le_bytes().to_vec();
    meta.extend_from_slice(header.as_bytes());
    check("safetensors: 300,000 metadata entries", &meta, safetensors::load);
    let ones = vec!["1"; 1_000_000].join(",");
    let header = format!("{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{ones}],\"data_offsets\":[0,4]}}}}");
    let mut high_rank = (header.len() as u64).to_le_bytes().to_vec();
    high_rank.extend_from_slice(header.as_bytes());
    high_rank.extend_from_slice(&1f32.to_le_bytes());
    check("safetensors: a tensor of rank 1,000,000", &high_rank, safetensors::load);
    let dup = safetensors_file((0..100_000).map(|_| "x".to_string()));
    check("safetensors: 100,000 duplicate names", &dup, safetensors::load);
}
