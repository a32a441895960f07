//! No allocation per call on the lifted path, and bounded peak memory on the plain path: a
//! counting global allocator checks the bound, const-generic and donated-buffer entries once
//! they are prepared, and the bytes the plain and lifted applies hold at their peak.

mod common;

use nnjit::nn::{self, Lifted, Module, Tensor};

use common::counting_alloc::{allocations, peak_extra, serial};

#[test]
fn lifted_entries_do_not_allocate_per_call() {
    let _serial = serial();
    let m = nn::JitDense::new(64);
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.1).collect();
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let mut out = vec![0.0f32; 64];

    let bound = m.bind(&vars, &x).unwrap();
    bound.apply_into(&x, &mut out).unwrap();
    assert_eq!(allocations(|| bound.apply_into(&x, &mut out).unwrap()), 0, "Bound::apply_into");

    let fixed = m.bind_fixed::<32, 64>(&vars).unwrap();
    let xa: [f32; 32] = x.clone().try_into().unwrap();
    let mut y = [0.0f32; 64];
    assert_eq!(allocations(|| y = fixed.apply(&xa).unwrap()), 0, "Fixed::apply");
    assert_eq!(y.to_vec(), out);

    m.apply_into(&vars, &x, &mut out).unwrap(); // the first call for this shape prepares it
    for _ in 0..3 {
        assert_eq!(allocations(|| m.apply_into(&vars, &x, &mut out).unwrap()), 0, "JitDense::apply_into");
    }
    assert_eq!(y.to_vec(), out);
    // The allocating front door allocates the output and little else.
    let n = allocations(|| drop(m.apply(&vars, &x).unwrap()));
    assert!(n <= 2, "JitDense::apply made {n} allocations");
}

/// Peak memory of an apply: the plain path holds its output and a few bookkeeping bytes (it
/// reads the parameters in place, unpacked) when given a `Tensor`; an array given to the plain
/// path is copied into a tensor first (`Feed`), one input more. The lifted path reads an array
/// in place and adds its packed parameters on the first call for a shape (and a small output's
/// template), and only the output after that. Strided inputs add one copy.
#[test]
fn peak_memory_is_inputs_params_output_and_packing() {
    let _serial = serial();
    const SLACK: usize = 4096; // shapes, strides, scope bookkeeping
    for (n, d, f) in [(1, 3, 4), (64, 512, 512), (8, 1024, 1024), (3, 2048, 96)] {
        let x = nnjit::ndarray::Array2::from_shape_fn((n, d), |(i, j)| ((i * 7 + j) % 13) as f32 * 0.1 - 0.6);
        let vars = nn::Dense::new(f).init(nn::PRNGKey(0), &x).unwrap();
        let out_bytes = n * f * 4;
        let in_bytes = n * d * 4;
        let xt = Tensor::from(x.clone());
        let plain = peak_extra(|| drop(nn::Dense::new(f).apply(&vars, &xt).unwrap())).0;
        assert!(plain <= out_bytes + SLACK, "{n}x{d}x{f}: plain apply peaked at {plain} B, output {out_bytes} B");
        let plain_array = peak_extra(|| drop(nn::Dense::new(f).apply(&vars, &x).unwrap())).0;
        assert!(
            plain_array <= in_bytes + out_bytes + SLACK,
            "{n}x{d}x{f}: plain apply of an array peaked at {plain_array} B, input {in_bytes} B, output {out_bytes} B"
        );

        let lifted = nn::JitDense::new(f);
        let packed_bytes = (d + 1) * f.next_multiple_of(16) * 4 + 2 * 64; // padded panels + bias, aligned
                                                                          // The first call also keeps a zeroed output of a small shape (≤ 1,024 floats), which
                                                                          // later calls clone.
        let template_bytes = if n * f <= 1024 { out_bytes } else { 0 };
        let first = peak_extra(|| drop(lifted.apply(&vars, &x).unwrap())).0;
        assert!(
            first <= out_bytes + template_bytes + packed_bytes + SLACK,
            "{n}x{d}x{f}: first lifted apply peaked at {first} B (output {out_bytes} B, packing {packed_bytes} B)"
        );
        let again = peak_extra(|| drop(lifted.apply(&vars, &x).unwrap())).0;
        assert!(again <= out_bytes + SLACK, "{n}x{d}x{f}: lifted apply peaked at {again} B, output {out_bytes} B");

        let strided = x.t().to_owned(); // (d, n) in standard layout; its transpose is a strided (n, d)
        let view = strided.t();
        let copy = peak_extra(|| drop(nn::Dense::new(f).apply(&vars, view).unwrap())).0;
        assert!(copy <= in_bytes + out_bytes + SLACK, "{n}x{d}x{f}: strided apply peaked at {copy} B");
    }
}
