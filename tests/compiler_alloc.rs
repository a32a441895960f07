//! A repeated lifted apply allocates only its output (a counting global allocator; this file is
//! its own test binary so no other test allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nnjit::nn::{self, Lifted, Module};
use nnjit_suite::models::{JitMlp, JitMlpBnDrop, Mlp, MlpBnDrop};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    f();
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn repeated_lifted_applies_allocate_only_their_output() {
    let x = ndarray::Array2::<f32>::from_shape_fn((4, 32), |(i, j)| (i * 32 + j) as f32 * 0.01 - 0.5);
    let m = JitMlp { hidden: 64, out: 10 };
    let vars = Mlp { hidden: 64, out: 10 }.init(nn::PRNGKey(0), &x).unwrap();
    let first = m.apply(&vars, &x).unwrap(); // traces, compiles, packs
    for _ in 0..3 {
        let mut y = None;
        let n = allocations(|| y = Some(m.apply(&vars, &x).unwrap()));
        assert_eq!(y.unwrap(), first);
        assert_eq!(n, 1, "one allocation: the output buffer");
    }
    // Buffer donation: nothing at all.
    let mut out = vec![0.0f32; 40];
    m.apply_into(&vars, &x, &mut out).unwrap();
    assert_eq!(allocations(|| m.apply_into(&vars, &x, &mut out).unwrap()), 0);
    assert_eq!(out, first.into_raw_vec_and_offset().0);
    // A model with BatchNorm and Dropout in eval mode (intermediate buffers planned once).
    let bn = JitMlpBnDrop { hidden: 16, out: 3, rate: 0.2, train: false };
    let v = MlpBnDrop { hidden: 16, out: 3, rate: 0.2, train: false }.init(nn::PRNGKey(1), &x).unwrap();
    bn.apply(&v, &x).unwrap();
    assert_eq!(allocations(|| drop(bn.apply(&v, &x).unwrap())), 1);
    assert!(JitMlpBnDrop::jit_cache().size() >= 1);
    // The bound entries of a whole model: nothing at all once their workspace has run.
    let bound = m.bind(&vars, &x).unwrap();
    let xs = x.as_slice().unwrap();
    bound.apply_into(xs, &mut out).unwrap();
    assert_eq!(allocations(|| bound.apply_into(xs, &mut out).unwrap()), 0, "Bound::apply_into");
    let mut ws = bound.workspace();
    bound.run(&mut ws, &[xs], &mut [&mut out]).unwrap();
    assert_eq!(allocations(|| bound.run(&mut ws, &[xs], &mut [&mut out]).unwrap()), 0, "Bound::run");
    let x1 = [0.25f32; 32];
    let fixed = m.bind_fixed::<32, 10>(&vars).unwrap();
    fixed.apply(&x1).unwrap();
    let mut y = [0.0f32; 10];
    assert_eq!(allocations(|| y = fixed.apply(&x1).unwrap()), 0, "Fixed::apply");
    assert_eq!(y.to_vec(), m.apply(&vars, x1).unwrap().into_raw_vec_and_offset().0);
}
