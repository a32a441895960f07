//! Structs with generics, lifetimes, where-clauses, docs and derives lift, keep their fields
//! and visibility, and behave like the original.
use nnjit::ndarray::{ArrayD, ArrayViewD};
use nnjit::nn::{self, Lifted, Module, Scope};

/// A Dense with a borrowed name prefix and a generic tag.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<'a, T: Clone + std::fmt::Debug = ()>
where
    T: PartialEq,
{
    /// Output features.
    pub features: usize,
    pub(crate) label: &'a str,
    tag: T,
}

impl<T: Clone + std::fmt::Debug + PartialEq> Module for Tagged<'_, T> {
    fn call(&self, s: &mut Scope<'_, '_>, x: ArrayViewD<'_, f32>) -> nnjit::Result<ArrayD<f32>> {
        s.call_named(self.label, &nn::Dense::new(self.features), x)
    }
}

fn main() {
    let m = JitTagged { features: 2, label: "proj", tag: 7u8 };
    let x = [1.0f32, 2.0];
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    assert!(vars.get("params/proj/kernel").is_some());
    let plain: Tagged<'_, u8> = m.clone().into();
    assert_eq!(plain.apply(&vars, &x).unwrap(), m.apply(&vars, &x).unwrap());
    assert_eq!(m.original().tag, 7);
    assert_eq!(m.cache_size(), 1);
}
