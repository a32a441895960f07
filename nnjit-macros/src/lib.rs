//! `#[nn::jit]`: the attribute behind nnjit's lift. Use it through `nnjit::nn::jit`.
//!
//! The macro parses the item into a small model (`parse.rs`), validates it, and emits the
//! lifted twin (`expand.rs`); every mistake is a `syn::Error` spanned at the user's code, and the
//! original item is always emitted too, so one mistake gives one message.

use proc_macro::TokenStream;

mod expand;
mod parse;

/// Lifts a module struct: keeps it and generates `Jit{Name}`, a new module type with the same
/// fields whose apply runs through parameters packed once per input shape. See `nnjit::nn::jit`.
#[proc_macro_attribute]
pub fn jit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::jit(args.into(), item.into()).into()
}
