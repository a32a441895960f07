//! A persistent pool of worker threads for [`parallel`](super): started once, woken
//! per call, so a split costs a wake-up (microseconds) instead of a thread start (~27 µs here).
//!
//! [`run`] hands out task indices `0..tasks` from one shared counter. The calling thread takes
//! tasks too, so every call completes even if no worker is free (or none could be started),
//! and a `run` nested inside a task cannot deadlock. `run` returns only after every task it
//! handed out has finished, which is what lets tasks borrow from the caller's stack.
//!
//! Kept over a rayon pool because it is faster at every shape the threads bench
//! (`bench/src/bin/threads.rs`) runs, on two threads. Measured on the 2-core AVX2 development
//! VM (shared, load average ~6), `apply_threads(.., 2)` with this pool against the same splits
//! run by rayon 1.12 — (a) a `rayon::ThreadPool` of one worker plus the caller
//! (`in_place_scope`, the caller taking tasks as here), (b) a pool of two workers and
//! `install(|| (0..tasks).into_par_iter().for_each(..))` — contenders interleaved, median of
//! 21–61 rounds, five passes; the better rayon variant's time over ours (> 1: ours faster):
//! `32×256×256` 1.31–1.92, `64×512×512` 1.03–1.42, `256×784×128` 1.06–1.28 (0.61 in one
//! disturbed pass), `1×1024×1024` 1.14–1.38, `8×1024×1024` 1.07–1.30, and below the bench's
//! shapes `12×256×256` 1.82–2.20, `1×512×512` 1.47–2.63; only `128×1024×1024` (8 ms a call,
//! compute-bound) ties, 0.79–1.00 within the noise. Rayon's wake-up (a sleeping worker is
//! woken through its sleep module; the caller of `install` blocks on a latch) costs tens of
//! microseconds here, where this pool's spinning hand-over costs a few.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A task body, as the workers see it (lifetime erased, see [`run`]).
type Work = *const (dyn Fn(usize) + Sync + 'static);

/// One call of [`run`]: its tasks and how far they got.
struct Batch {
    work: Work,
    tasks: usize,
    /// Next task index to hand out (may run past `tasks`: then there is nothing left).
    next: AtomicUsize,
    /// Tasks finished (also when they panicked).
    done: AtomicUsize,
    /// The first panic of a task, passed on to the caller.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    finished: Condvar,
}

// SAFETY: `work` points to a `dyn Fn(usize) + Sync` (safe to call from any thread through a
// shared reference); it is dereferenced only for a claimed task index, and `run` does not
// return (so the closure stays alive) until every claimed task is done. All other fields are
// Send + Sync.
unsafe impl Send for Batch {}
// SAFETY: as above.
unsafe impl Sync for Batch {}

impl Batch {
    /// Takes and runs tasks until none is left.
    fn help(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            if i >= self.tasks {
                return;
            }
            // SAFETY: `i < tasks` was claimed just now, so the `run` that owns this batch is
            // still waiting for `done == tasks` and the closure behind `work` is alive.
            let work = unsafe { &*self.work };
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(i))) {
                self.panic.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(payload);
            }
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.tasks {
                // Taking the lock orders this notify after the caller's check-then-wait.
                let _guard = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
                self.finished.notify_all();
            }
        }
    }

    fn complete(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.tasks
    }
}

struct Pool {
    queue: Mutex<VecDeque<Arc<Batch>>>,
    wake: Condvar,
}

/// Worker threads started (set once, when the pool starts).
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// How long an idle worker keeps checking for work before it sleeps, and how long a caller
/// spins before it waits: back-to-back calls then hand over without a futex wake-up.
const SPIN: Duration = Duration::from_micros(50);

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool =
            Box::leak(Box::new(Pool { queue: Mutex::new(VecDeque::new()), wake: Condvar::new() }));
        let want = thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).min(63);
        // A thread that cannot be started is simply not there: callers do its share.
        let started = (0..want)
            .filter(|i| thread::Builder::new().name(format!("nnjit-{i}")).spawn(move || worker(pool)).is_ok())
            .count();
        WORKERS.store(started, Ordering::Release);
        pool
    })
}

fn worker(pool: &'static Pool) {
    loop {
        let batch = {
            let mut queue = pool.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let spin_until = Instant::now() + SPIN;
            loop {
                if let Some(b) = queue.pop_front() {
                    break b;
                }
                if Instant::now() < spin_until {
                    drop(queue);
                    std::hint::spin_loop();
                    thread::yield_now();
                    queue = pool.queue.lock().unwrap_or_else(PoisonError::into_inner);
                } else {
                    queue = pool.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
                }
            }
        };
        batch.help();
    }
}

/// Worker threads of the pool (started on first use: the available cores minus the caller).
pub(crate) fn workers() -> usize {
    pool();
    WORKERS.load(Ordering::Acquire)
}

/// Runs `work(i)` for every `i` in `0..tasks`, on the calling thread and up to `helpers` pool
/// workers, and returns when all are done. A panic in a task is passed on to the caller
/// (after every task has finished).
pub(crate) fn run(tasks: usize, helpers: usize, work: &(dyn Fn(usize) + Sync)) {
    if tasks == 0 {
        return;
    }
    let pool = pool();
    let helpers = helpers.min(WORKERS.load(Ordering::Acquire)).min(tasks - 1);
    // SAFETY: only the lifetime is erased (same fat pointer). The batch may outlive this call
    // (a worker can hold it), but `work` is dereferenced only for claimed tasks, and this
    // function returns only after all of them are done (see `Batch::help`).
    let work: Work = unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Work>(work) };
    let batch = Arc::new(Batch {
        work,
        tasks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panic: Mutex::new(None),
        finished: Condvar::new(),
    });
    if helpers > 0 {
        let mut queue = pool.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.extend((0..helpers).map(|_| Arc::clone(&batch)));
        drop(queue);
        for _ in 0..helpers {
            pool.wake.notify_one();
        }
    }
    batch.help();
    // Every task is claimed now; wait for those still running on workers.
    let spin_until = Instant::now() + SPIN;
    while !batch.complete() && Instant::now() < spin_until {
        std::hint::spin_loop();
    }
    let mut panic = batch.panic.lock().unwrap_or_else(PoisonError::into_inner);
    while !batch.complete() {
        panic = batch.finished.wait(panic).unwrap_or_else(PoisonError::into_inner);
    }
    if let Some(payload) = panic.take() {
        drop(panic);
        resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for tasks in [0, 1, 2, 3, 17, 100] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            run(tasks, 8, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{tasks} tasks");
        }
    }

    #[test]
    fn concurrent_and_nested_calls_complete() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        run(3, 2, &|_| {
                            run(2, 2, &|_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            })
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 50 * 3 * 2);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_survives() {
        let ran = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            run(6, 2, &|i| {
                ran.fetch_add(1, Ordering::Relaxed);
                assert!(i != 3, "task 3 fails");
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.load(Ordering::Relaxed), 6); // the other tasks still ran
        let after = AtomicUsize::new(0);
        run(5, 2, &|_| {
            after.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(after.load(Ordering::Relaxed), 5);
    }
}
