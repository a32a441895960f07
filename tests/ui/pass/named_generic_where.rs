//! Structs with generics, defaults, where-clauses, docs and derives lift, keep their fields
//! and visibility, and behave like the original.
use nnjit::nn::{self, Lifted, Module, Scope, Tensor};

/// A Dense under a given name, with a generic tag.
#[nn::jit]
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged<T: Clone + std::fmt::Debug = ()>
where
    T: PartialEq + Send + Sync + 'static,
{
    /// Output features.
    pub features: usize,
    pub(crate) label: String,
    tag: T,
}

impl<T: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static> Module for Tagged<T> {
    type Input = Tensor;
    type Output = Tensor;

    fn call(&self, s: &mut Scope<'_, '_>, x: Tensor) -> nnjit::Result<Tensor> {
        s.call_named(&self.label, &nn::Dense::new(self.features), x)
    }
}

fn main() {
    let m = JitTagged { features: 2, label: "proj".to_string(), tag: 7u8 };
    let x = [1.0f32, 2.0];
    let vars = m.init(nn::PRNGKey(0), &x).unwrap();
    assert!(vars.get("params/proj/kernel").is_some());
    let plain: Tagged<u8> = m.clone().into();
    assert_eq!(plain.apply(&vars, &x).unwrap(), m.apply(&vars, &x).unwrap());
    assert_eq!(m.original().tag, 7);
    assert_eq!(m.cache_size(), 1);
    // The default type parameter works too.
    let unit: JitTagged = JitTagged { features: 2, label: "proj".to_string(), tag: () };
    assert_eq!(unit.apply(&vars, &x).unwrap(), plain.apply(&vars, &x).unwrap());
}
