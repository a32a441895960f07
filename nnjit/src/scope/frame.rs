//! The state one `init`/`apply` call shares between its scopes ([`Frame`]), whether it
//! creates or reads variables ([`Mode`]), and the trace of a lifted body ([`Tracer`]).

use std::sync::Arc;

use crate::init::Numerics;
use crate::tensor::{Graph, Tensor};
use crate::variables::Variables;

use super::{CallHook, Mutable, Rngs};

/// Whether a call creates variables (`init`) or reads them (`apply`).
///
/// ```
/// use nnjit::nn::{self, Module, Scope, Tensor};
/// use nnjit::scope::Mode;
///
/// struct Probe;
/// impl Module for Probe {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let mode = if s.is_initializing() { Mode::Init } else { Mode::Apply };
///         Ok(x.sum(&[], false) + if mode == Mode::Init { 1.0 } else { 0.0 })
///     }
/// }
/// let (y, vars) = Probe.init_with_output(nn::PRNGKey(0), &[0.0f32])?;
/// assert_eq!(y[0], 1.0); // init runs in Mode::Init
/// assert_eq!(Probe.apply(&vars, &[0.0f32])?[0], 0.0); // apply in Mode::Apply
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Variables are created by their initializers.
    Init,
    /// Variables are read from the given tree.
    Apply,
}

/// The trace of a lifted module's body: its tensors are nodes of `graph`.
pub(crate) struct Tracer {
    pub(crate) graph: Arc<Graph>,
    /// Depth of the lifted module's scope: variable and RNG paths are kept relative to it.
    pub(crate) base_depth: usize,
    /// Variables written while tracing, read back by later reads of the same call.
    pub(super) written: Vec<(String, Vec<String>, String, Tensor)>,
}

impl Tracer {
    pub(crate) fn new(graph: Arc<Graph>, base_depth: usize) -> Self {
        Tracer { graph, base_depth, written: Vec::new() }
    }
}

/// The state one `init`/`apply` call shares between all its scopes.
pub(crate) struct Frame<'v> {
    pub(crate) mode: Mode,
    pub(crate) input: Option<&'v Variables>,
    pub(crate) out: Variables,
    pub(crate) mutable: Mutable,
    pub(crate) rngs: Rngs,
    pub(super) counters: Vec<(String, String, u32)>,
    /// How initializers compute: eagerly, or as under Flax's `nn.jit` (set inside a lift
    /// with `flax_jit`).
    pub(crate) numerics: Numerics,
    /// Scopes created so far (each scope's id; a [`Child`](super::Child) checks it is called in its own).
    pub(super) scopes: u64,
    /// Collections visible inside a lift that filters them.
    pub(crate) visible: Option<&'static [&'static str]>,
    /// Set while a lifted module's body is traced.
    pub(crate) tracer: Option<Tracer>,
    /// Observer of module calls.
    pub(crate) hook: Option<&'v mut dyn CallHook>,
}

impl<'v> Frame<'v> {
    pub(crate) fn new(mode: Mode, input: Option<&'v Variables>, rngs: Rngs, mutable: Mutable) -> Self {
        Frame {
            mode,
            input,
            out: Variables::untracked(),
            mutable,
            rngs,
            counters: Vec::new(),
            numerics: Numerics::Eager,
            scopes: 0,
            visible: None,
            tracer: None,
            hook: None,
        }
    }

    /// The RNG counters (saved and restored around a trace, which must not advance them).
    pub(crate) fn take_counters(&mut self) -> Vec<(String, String, u32)> {
        self.counters.clone()
    }

    pub(crate) fn restore_counters(&mut self, c: Vec<(String, String, u32)>) {
        self.counters = c;
    }
}
