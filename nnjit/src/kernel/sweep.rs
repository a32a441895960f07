//! The order of a large layer's column tiles: alternating from one call to the next.
//!
//! A model applied over and over at a small batch reads all its weights once a call. When they
//! outgrow the core's last private cache (an L2 of 2 MiB holds most, not all, of the
//! 784→512→512→10 MLP's 2.6 MB), reading them in the same order every call evicts each line
//! just before it is needed again (the LRU worst case): every call streams everything from
//! the shared cache or memory. Reading each layer's column tiles backwards on every other call
//! starts each layer where the previous call left it, on the lines the cache still holds.
//! Measured on a 2-core Intel Xeon VM (AVX-512, 2 MiB L2): that MLP at batch 1 went from
//! 73 µs to 52 µs a forward. Each output is one tile's own FMA chain whatever the order,
//! so the results do not change by a bit.
//!
//! The cache being reused is the core's own, so the direction is kept per thread, in a small
//! table of the large layers the thread ran last: a call writes nothing another thread reads
//! (no cache line of a shared layer bounces between cores). A thread that cycles through more
//! large layers than the table holds only loses the alternation (each layer finds no entry
//! and reads forwards), never the bits.

use std::cell::Cell;

/// Weights (floats) from which a layer alternates its order: 256 KB, past every L1 and a
/// good share of a typical L2. Smaller layers keep one order and pay one test.
const SWEEP_MIN_WEIGHTS: usize = 1 << 16;

/// Large layers a thread keeps a direction for (more than a model's large layers, usually).
const SLOTS: usize = 8;

/// A thread's directions: per slot, the address of a large layer's weights, its low bit set
/// when that layer's next pass goes backwards (64-byte aligned weights have it clear); 0 is
/// an empty slot. And the slot the next new layer takes (round robin).
struct Table {
    slots: [Cell<usize>; SLOTS],
    victim: Cell<usize>,
}

thread_local! {
    static TABLE: Table = const { Table { slots: [const { Cell::new(0) }; SLOTS], victim: Cell::new(0) } };
}

/// Whether a layer with `weights` floats of weights alternates its order.
#[inline]
pub(crate) fn alternates(weights: usize) -> bool {
    weights >= SWEEP_MIN_WEIGHTS
}

/// The direction of this thread's pass over the layer whose weights start at `id` (64-byte
/// aligned, non-null): `true` = last column tile first. Alternates from one call to the next
/// on each thread; the first pass (or one after the layer left the table) goes forwards.
#[inline]
pub(crate) fn next_backwards(id: usize) -> bool {
    debug_assert!(id != 0 && id.is_multiple_of(2));
    TABLE.with(|t| {
        if let Some(slot) = t.slots.iter().find(|s| s.get() & !1 == id) {
            let back = slot.get() & 1 == 1;
            slot.set(id | usize::from(!back));
            return back;
        }
        let v = t.victim.get();
        t.slots[v].set(id | 1);
        t.victim.set((v + 1) % SLOTS);
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` on a new thread: a table no other test has touched.
    fn fresh(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn each_layer_alternates_on_each_thread() {
        fresh(each_layer_alternates);
    }

    fn each_layer_alternates() {
        let (a, b) = (0x7f00_0000_1040usize, 0x7f00_0040_2040usize);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push((next_backwards(a), next_backwards(b)));
        }
        assert_eq!(seen, [(false, false), (true, true), (false, false)]);
        // Another thread starts forwards and does not move this one's directions.
        fresh(move || assert_eq!([next_backwards(a), next_backwards(a)], [false, true]));
        assert!(next_backwards(a));
        assert!(alternates(1 << 16) && !alternates((1 << 16) - 1));
    }

    #[test]
    fn more_layers_than_slots_read_forwards() {
        fresh(|| {
            let ids: Vec<usize> = (1..=SLOTS + 1).map(|i| i * 4096 + 64).collect();
            for _ in 0..3 {
                assert!(ids.iter().all(|&id| !next_backwards(id)));
            }
            // As many as the table holds alternate.
            for pass in 0..3 {
                assert!(ids[..SLOTS].iter().all(|&id| next_backwards(id) == (pass % 2 == 1)), "pass {pass}");
            }
        });
    }
}
