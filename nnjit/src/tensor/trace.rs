//! The graph a lifted module's body builds while traced: its tensors are [`Traced`] nodes.

use std::sync::{Arc, Mutex, MutexGuard};

use super::op::Op;
use super::{Meta, Tensor, Value};
use crate::error::Error;

/// Where a node's value comes from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// Input `i` of the call.
    Input(usize),
    /// Variable read `i` (see [`Builder::vars`]): read from the variables given at run time.
    Var(usize),
    /// RNG key request `i` (see [`Builder::rngs`]): derived from the streams given at run time.
    Rng(usize),
    /// A value fixed at trace time from fields and shapes only (never from inputs or variables).
    Const(Value),
    /// A primitive op of other nodes.
    Op(Op),
}

/// One node of the graph.
#[derive(Clone, Debug)]
pub(crate) struct GNode {
    pub(crate) source: Source,
    pub(crate) inputs: Vec<usize>,
    pub(crate) meta: Meta,
    /// The module path that made it (`/Dense_0`), for `lower()` and errors.
    pub(crate) path: Arc<str>,
}

/// A variable the program reads: `collection` at `rel` (path segments below the lifted
/// module's scope) and `name`, of `shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VarRead {
    pub(crate) collection: String,
    pub(crate) rel: Vec<String>,
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
}

/// An RNG key the program derives: `make_rng(stream)` in the scope at `rel`, from the bases of
/// fork `fork` (an index into [`Builder::forks`]) where the read ran under a fork traced in this
/// graph, else from the bases of the scope the program runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RngRead {
    pub(crate) stream: String,
    pub(crate) rel: Vec<String>,
    pub(crate) fork: Option<usize>,
}

/// A fork of the RNG streams the program replays (Flax's `fork_rngs`, done by a `flax_jit` lift
/// traced inside another lift's body): every stream of `streams` draws one key in the scope at
/// `rel`, from the bases of fork `parent` (else of the scope the program runs in), and the keys
/// become the bases of the reads and forks below that name this fork. It runs after the first
/// `before` reads of [`Builder::rngs`], so the counters advance in the eager order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RngForkRead {
    pub(crate) streams: Vec<String>,
    pub(crate) rel: Vec<String>,
    pub(crate) parent: Option<usize>,
    pub(crate) before: usize,
}

/// What `has_variable` answered while traced, at `collection`/`rel`/`name`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VarGuard {
    pub(crate) collection: String,
    pub(crate) rel: Vec<String>,
    pub(crate) name: String,
    pub(crate) present: bool,
}

/// A variable the program writes (a mutable collection's update).
#[derive(Clone, Debug)]
pub(crate) struct VarWrite {
    pub(crate) collection: String,
    pub(crate) rel: Vec<String>,
    pub(crate) name: String,
    pub(crate) node: usize,
}

/// The graph under construction.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    /// `has_variable` answers the body branched on: the program is valid only where they hold.
    pub(crate) guards: Vec<VarGuard>,
    pub(crate) nodes: Vec<GNode>,
    pub(crate) vars: Vec<VarRead>,
    pub(crate) rngs: Vec<RngRead>,
    /// RNG forks, in trace order (see [`RngForkRead`]).
    pub(crate) forks: Vec<RngForkRead>,
    pub(crate) writes: Vec<VarWrite>,
    /// The module path of the code running now (errors name it).
    pub(crate) path: Arc<str>,
}

/// A graph being traced, shared by its tensors.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    inner: Mutex<Builder>,
}

impl Graph {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Builder> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a node and returns it as a tensor.
    pub(crate) fn push(self: &Arc<Self>, source: Source, inputs: Vec<usize>, meta: Meta) -> Tensor {
        let node = {
            let mut b = self.lock();
            let path = Arc::clone(&b.path);
            b.nodes.push(GNode { source, inputs, meta: meta.clone(), path });
            b.nodes.len() - 1
        };
        Tensor { repr: super::Repr::Traced(Box::new(Traced { node, meta, graph: Arc::clone(self) })) }
    }

    pub(crate) fn into_builder(self: Arc<Self>) -> Builder {
        match Arc::try_unwrap(self) {
            Ok(g) => g.inner.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => std::mem::take(&mut *shared.lock()),
        }
    }
}

/// A tensor that is a node of a graph being traced.
#[derive(Clone, Debug)]
pub(crate) struct Traced {
    pub(crate) node: usize,
    pub(crate) meta: Meta,
    pub(crate) graph: Arc<Graph>,
}

impl Traced {
    /// The error for reading this tensor's values while traced.
    pub(crate) fn read_error(&self, op: &'static str) -> Error {
        let path = self.graph.lock().path.to_string();
        Error::TracedValue { path, operation: op.to_string() }
    }
}
