//! Parsing and validation: attribute arguments and the item, into a small model.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, ExprLit, Ident, Item, ItemStruct, Lit, LitStr, Meta, Token};

/// The attribute's arguments.
#[derive(Default)]
pub struct Args {
    /// `name = JitFoo`: the generated type's name.
    pub name: Option<Ident>,
    /// `variables = ["params", ...]`: collections that cross the boundary.
    pub variables: Option<Vec<LitStr>>,
    /// `rngs = ["dropout", ...]`: RNG streams that cross the boundary.
    pub rngs: Option<Vec<LitStr>>,
    /// `flax_jit`: reproduce Flax's `nn.jit` (forked RNGs, jitted init numerics).
    pub flax_jit: bool,
}

const KNOWN: &str = "expected one of `name = Ident`, `variables = [\"...\"]`, `rngs = [\"...\"]`, `flax_jit`";

/// Every error found, combined into one `syn::Error` so that all are reported at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error.
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// Adds the error of `r`, if any, and returns its value.
    pub fn ok<T>(&mut self, r: syn::Result<T>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    /// The combined error, if any was pushed.
    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

fn string_list(expr: &Expr) -> syn::Result<Vec<LitStr>> {
    let Expr::Array(ExprArray { elems, .. }) = expr else {
        return Err(syn::Error::new(expr.span(), "expected a list of strings, e.g. [\"params\"]"));
    };
    elems
        .iter()
        .map(|e| match e {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) if !s.value().is_empty() => Ok(s.clone()),
            other => Err(syn::Error::new(other.span(), "expected a non-empty string literal")),
        })
        .collect()
}

/// Parses `name = X, variables = [..], rngs = [..]`, pushing every problem to `errors`; what
/// parsed is returned even then (the twin's name, for the stub emitted on an error).
pub fn args(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut out = Args::default();
    let Some(metas) = errors.ok(Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)) else {
        return out;
    };
    for meta in metas {
        if let Meta::Path(p) = &meta {
            if p.is_ident("flax_jit") {
                if out.flax_jit {
                    errors.push(syn::Error::new(p.span(), "duplicate argument `flax_jit`"));
                }
                out.flax_jit = true;
                continue;
            }
        }
        let Meta::NameValue(nv) = &meta else {
            errors.push(syn::Error::new(meta.span(), format!("unknown argument: {KNOWN}")));
            continue;
        };
        let key = nv.path.get_ident().map(Ident::to_string).unwrap_or_default();
        let dup = |what: &str| syn::Error::new(nv.path.span(), format!("duplicate argument `{what}`"));
        match key.as_str() {
            "name" => {
                if out.name.is_some() {
                    errors.push(dup("name"));
                    continue;
                }
                match &nv.value {
                    Expr::Path(p) if p.path.get_ident().is_some() => {
                        out.name = p.path.get_ident().cloned();
                    }
                    other => errors.push(syn::Error::new(other.span(), "expected a type name, e.g. `name = FastMlp`")),
                }
            }
            "variables" | "rngs" => {
                let slot = if key == "variables" { &mut out.variables } else { &mut out.rngs };
                if slot.is_some() {
                    errors.push(dup(&key));
                    continue;
                }
                if let Some(list) = errors.ok(string_list(&nv.value)) {
                    *slot = Some(list);
                }
            }
            _ => errors
                .push(syn::Error::new(nv.path.span(), format!("unknown argument `{}`: {KNOWN}", path_text(&nv.path)))),
        }
    }
    out
}

fn path_text(p: &syn::Path) -> String {
    p.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

/// The item the attribute was placed on, if it is a struct (named, tuple or unit).
pub fn module_struct(item: &Item) -> syn::Result<&ItemStruct> {
    let (span, what): (Span, &str) = match item {
        Item::Struct(s) => {
            if let Some(span) =
                s.attrs.iter().filter(|a| a.path().is_ident("repr")).find_map(|a| repr_word(a, "packed"))
            {
                return Err(syn::Error::new(span, "#[nn::jit] does not support #[repr(packed)] module structs"));
            }
            if let syn::Fields::Unnamed(fields) = &s.fields {
                if let Some(cfg) = fields.unnamed.iter().flat_map(cfg_attrs).next() {
                    return Err(syn::Error::new_spanned(
                        cfg,
                        "#[nn::jit] supports #[cfg] on the fields of a struct with named fields, not of a tuple \
                         struct (the twin's conversions would need each field's position after cfg-stripping); \
                         name the fields",
                    ));
                }
            }
            if let Some(lt) = s.generics.lifetimes().next() {
                return Err(syn::Error::new(
                    lt.lifetime.span(),
                    format!(
                        "#[nn::jit] needs a 'static module struct (the compilation cache keeps its fields), \
                         so it cannot have the lifetime parameter `{}`; own the borrowed data instead \
                         (e.g. `String` for `&str`)",
                        lt.lifetime
                    ),
                ));
            }
            return Ok(s);
        }
        Item::Enum(e) => (e.enum_token.span, "an enum"),
        Item::Union(u) => (u.union_token.span, "a union"),
        Item::Fn(f) => (f.sig.fn_token.span, "a function; Flax's nn.jit of a function is jax.jit"),
        Item::Const(c) => (c.const_token.span, "a value (a const); lift the module type instead"),
        Item::Static(s) => (s.static_token.span, "a value (a static); lift the module type instead"),
        Item::Impl(i) => (i.impl_token.span, "an impl block; put it on the module struct"),
        Item::Type(t) => (t.type_token.span, "a type alias; put it on the module struct"),
        other => (other.span(), "this item"),
    };
    Err(syn::Error::new(span, format!("#[nn::jit] applies to a module struct, not to {what}")))
}

/// The `#[cfg(...)]` attributes of a field: every generated use of the field carries them, so
/// a field that is configured away is absent there too.
pub fn cfg_attrs(field: &syn::Field) -> impl Iterator<Item = &syn::Attribute> {
    field.attrs.iter().filter(|a| a.path().is_ident("cfg"))
}

fn repr_has(attr: &syn::Attribute, word: &str) -> bool {
    repr_word(attr, word).is_some()
}

/// The span of `word` inside `#[repr(...)]`, if present.
fn repr_word(attr: &syn::Attribute, word: &str) -> Option<Span> {
    let mut found = None;
    let _ = attr.parse_nested_meta(|m| {
        if m.path.is_ident(word) {
            found = Some(m.path.span());
        }
        if m.input.peek(syn::token::Paren) {
            let _content;
            syn::parenthesized!(_content in m.input);
        }
        Ok(())
    });
    found
}

/// Whether the struct already has a layout `#[repr]` that makes two identical field lists
/// lay out identically (`C` or `transparent`).
pub fn has_stable_repr(s: &ItemStruct) -> bool {
    s.attrs.iter().filter(|a| a.path().is_ident("repr")).any(|a| repr_has(a, "C") || repr_has(a, "transparent"))
}
