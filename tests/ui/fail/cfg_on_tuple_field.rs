use nnjit::nn;

// `#[cfg]` on a tuple struct's field is reported at the attribute, once: `JitPair` is still
// defined (as an alias of `Pair`), so its use below is not an error of its own.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Pair(pub usize, #[cfg(any())] pub usize, pub usize);

fn main() {
    let _ = JitPair(1, 2);
}
