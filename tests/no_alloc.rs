//! No allocation per call on the lifted path: a counting global allocator checks the bound,
//! const-generic and donated-buffer entries once they are prepared.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nnjit::nn::{self, Module};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's (a valid, non-zero-size layout).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System.alloc` with this layout (above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
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
fn lifted_entries_do_not_allocate_per_call() {
    // One test function: the counter is global, so nothing else may run concurrently.
    let m = nn::JitDense::new(64);
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.1).collect();
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    let mut out = vec![0.0f32; 64];

    let bound = m.bind(&vars).unwrap();
    assert_eq!(allocations(|| bound.apply_into(&x, &mut out).unwrap()), 0, "BoundDense::apply_into");

    let fixed = m.bind_fixed::<32, 64>(&vars).unwrap();
    let xa: [f32; 32] = x.clone().try_into().unwrap();
    let mut y = [0.0f32; 64];
    assert_eq!(allocations(|| y = fixed.apply(&xa)), 0, "FixedDense::apply");
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
