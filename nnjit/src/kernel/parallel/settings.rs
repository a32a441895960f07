//! How many threads the module applies may use: `nn::Dense`, the lifted types and
//! [`JitDense`](crate::nn::JitDense)'s entries pass it to the output-splitting drivers of
//! [`parallel`](super). The default is one (the calling thread): set
//! `NNJIT_NUM_THREADS` (read once, on first use) or call [`set_num_threads`] for more.
//!
//! One by default, unlike XLA on CPU, because a library should not put work on other cores
//! behind its caller's back (a server may run one model per core), and because a threaded
//! call allocates the pool's bookkeeping (a few hundred bytes), while the lifted entries
//! allocate nothing per call on one thread.
//!
//! Threads never change results: splits cut the outputs (rows, or column panels), never a
//! contraction, so every output keeps its one FMA chain. Small problems stay on the calling
//! thread whatever the setting (see [`choose_split`](super::choose_split)).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The setting; 0 until first read or set.
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Threads (the calling one included) a module apply may use for one Dense layer.
///
/// On first use: `NNJIT_NUM_THREADS` if it is set to a positive integer (`NNJIT_NUM_THREADS=0`
/// or `all` means every core), otherwise 1.
///
/// ```
/// use nnjit::kernel::parallel::{num_threads, set_num_threads};
/// set_num_threads(1); // this process: every module apply on the calling thread
/// assert_eq!(num_threads(), 1);
/// ```
#[inline]
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            // A concurrent `set_num_threads` wins over the default.
            match NUM_THREADS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => n,
                Err(set) => set,
            }
        }
        n => n,
    }
}

/// Sets [`num_threads`] for the whole process; 0 means every core. Results do not depend
/// on it, only speed does.
///
/// ```
/// use nnjit::kernel::parallel::{num_threads, set_num_threads};
/// set_num_threads(0);
/// assert_eq!(num_threads(), std::thread::available_parallelism().map_or(1, |n| n.get()));
/// ```
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(if n == 0 { cores() } else { n }, Ordering::Relaxed);
}

/// The machine's available parallelism (at least 1).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `NNJIT_NUM_THREADS`, else 1.
fn default_threads() -> usize {
    parse_setting(std::env::var("NNJIT_NUM_THREADS").ok().as_deref(), cores).unwrap_or(1)
}

/// A positive integer; `0` or `all` for every core (`cores()`); `None` when unset or not a
/// number (the default applies).
fn parse_setting(value: Option<&str>, cores: impl FnOnce() -> usize) -> Option<usize> {
    match value?.trim() {
        "all" | "0" => Some(cores().max(1)),
        v => v.parse::<usize>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_setting;

    #[test]
    fn environment_setting() {
        let cores = || 6;
        assert_eq!(parse_setting(Some("4"), cores), Some(4));
        assert_eq!(parse_setting(Some(" 2 "), cores), Some(2));
        assert_eq!(parse_setting(Some("0"), cores), Some(6));
        assert_eq!(parse_setting(Some("all"), cores), Some(6));
        assert_eq!(parse_setting(Some(""), cores), None);
        assert_eq!(parse_setting(Some("-1"), cores), None);
        assert_eq!(parse_setting(None, cores), None);
    }
}
