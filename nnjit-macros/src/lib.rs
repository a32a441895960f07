//! `#[nn::jit]`: the attribute behind nnjit's lift. Use it through `nnjit::nn::jit`.
//!
//! The macro parses the item into a small model (`parse.rs`), validates it, and emits the
//! lifted twin (`expand.rs`); every mistake is a `syn::Error` spanned at the user's code. On a
//! mistake the original item is emitted too, with the twin's name as an alias of it
//! (`use Mlp as JitMlp;`), so one mistake gives one message and code using the twin is not
//! reported again.

use proc_macro::TokenStream;

mod expand;
mod parse;

/// Lifts a module struct: keeps it and generates `Jit{Name}`, a new module type with the same
/// fields whose apply runs through parameters packed once per input shape.
///
/// The struct gets `#[repr(C)]` (unless it has `#[repr(C)]` or `#[repr(transparent)]`): the
/// twin has the same fields with the same layout, so that `Lifted::original` views a twin as
/// the original in place. `#[cfg]` works on the fields of structs with named fields.
///
/// Use it as `#[nnjit::nn::jit]` (re-exported there); the documentation of `nnjit::nn::jit` has
/// the arguments and runnable examples (a proc-macro crate cannot run doctests that use its own
/// macros).
#[proc_macro_attribute]
pub fn jit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::jit(args.into(), item.into()).into()
}
