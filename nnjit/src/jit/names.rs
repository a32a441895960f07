//! Flax's class names of lifted modules: `nn.jit(Block)` is the class `JitBlock`, so an unnamed
//! lifted child is `JitBlock_0` (and `nn.jit(nn.jit(Block))` is `JitJitBlock`).
//!
//! A lifted type's [`Module::type_name`](crate::nn::Module::type_name) is `"Jit"` + the
//! original's type name. Names are `&'static str` (the scope counts automatic names per type
//! name without allocating), so each distinct name is interned once for the process.

use std::sync::Mutex;

/// Interned pairs (lifted name, original name), one per distinct original name.
static NAMES: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());

thread_local! {
    /// Per thread: the last (original, lifted) pair looked up (a model calls one lifted type
    /// over and over).
    static LAST: std::cell::Cell<Option<(&'static str, &'static str)>> = const { std::cell::Cell::new(None) };
}

/// `"Jit"` + `original`, interned: the type name of the lift of a module whose type name is
/// `original` (what `#[nn::jit]`'s twin reports).
///
/// ```
/// use nnjit::nn::{self, Module};
/// assert_eq!(nnjit::jit::lifted_type_name("Block"), "JitBlock");
/// assert_eq!(nnjit::jit::lifted_type_name("JitBlock"), "JitJitBlock"); // nn.jit(nn.jit(Block))
/// assert_eq!(nn::JitDense::new(2).type_name(), "JitDense"); // nn.jit(nn.Dense).__name__
/// ```
pub fn lifted_type_name(original: &'static str) -> &'static str {
    if let Some((o, l)) = LAST.with(std::cell::Cell::get) {
        if std::ptr::eq(o, original) || o == original {
            return l;
        }
    }
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let lifted = match names.iter().find(|(_, o)| *o == original) {
        Some((l, _)) => *l,
        None => {
            // One leak per distinct lifted type name in the program: bounded by its types.
            let l: &'static str = Box::leak(format!("Jit{original}").into_boxed_str());
            names.push((l, original));
            l
        }
    };
    drop(names);
    LAST.with(|c| c.set(Some((original, lifted))));
    lifted
}

/// The original's type name if `name` was made by [`lifted_type_name`] (`JitBlock` → `Block`);
/// Flax's `tabulate` shows a lifted child's module as the original class.
pub(crate) fn original_type_name(name: &str) -> Option<&'static str> {
    let names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    names.iter().find(|(l, _)| *l == name).map(|(_, o)| *o)
}
