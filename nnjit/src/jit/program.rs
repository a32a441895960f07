//! A compiled program: what one trace of a lifted module's body becomes.
//!
//! Straight-line steps over buffers planned once (reused by liveness), parameters bound per
//! variables version (Dense kernels packed once per parameter version), Dense + bias + relu
//! fused into the kernel's epilogue and elementwise chains fused into their producer's buffer,
//! each element keeping its own operation order, so results equal the eager ones bit for bit.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result};
use crate::jit::cache::PackStore;
use crate::kernel::parallel::{apply_threads, num_threads};
use crate::kernel::{Activation, PackedDense};
use crate::scope::{Name, Scope};
use crate::tensor::op::{binary_in_place, Binary, Data, DataMut, Op, Unary};
use crate::tensor::trace::{Builder, RngRead, Source, VarRead, VarWrite};
use crate::tensor::{DType, Meta, Shared, Value};
use crate::variables::Leaf;

/// Where a step reads a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Input(usize),
    Var(usize),
    Rng(usize),
    Const(usize),
    Slot(usize),
    Out(usize),
}

/// An elementwise op fused after a step's head, applied in place.
#[derive(Clone, Debug)]
enum Tail {
    Unary(Unary),
    /// `acc ∘ other` (or `other ∘ acc` when `acc_left` is false).
    Binary {
        op: Binary,
        other: Loc,
        other_shape: Vec<usize>,
        acc_left: bool,
    },
}

#[derive(Clone, Debug)]
struct Step {
    head: Op,
    ins: Vec<Loc>,
    in_shapes: Vec<Vec<usize>>,
    tail: Vec<Tail>,
    out: Loc,
    meta: Meta,
    /// A Dense head whose kernel (and bias) are variables: run on packed weights.
    pack: Option<(usize, Option<usize>)>,
    path: Arc<str>,
}

/// A buffer of one dtype.
#[derive(Debug)]
pub(crate) enum Buf {
    F32(Vec<f32>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    Bool(Vec<bool>),
}

impl Buf {
    fn new(meta: &Meta) -> Result<Buf> {
        let n = crate::fallible::checked_len("program buffer", &meta.shape)?;
        Ok(match meta.dtype {
            DType::F32 => Buf::F32(crate::fallible::try_zeroed("program buffer", n)?),
            DType::I32 => Buf::I32(crate::tensor::api::try_vec("program buffer", n, 0)?),
            DType::U32 => Buf::U32(crate::tensor::api::try_vec("program buffer", n, 0)?),
            DType::Bool => Buf::Bool(crate::tensor::api::try_vec("program buffer", n, false)?),
        })
    }

    fn data(&self) -> Data<'_> {
        match self {
            Buf::F32(v) => Data::F32(v),
            Buf::I32(v) => Data::I32(v),
            Buf::U32(v) => Data::U32(v),
            Buf::Bool(v) => Data::Bool(v),
        }
    }

    fn data_mut(&mut self, len: usize) -> DataMut<'_> {
        match self {
            Buf::F32(v) => DataMut::F32(&mut v[..len]),
            Buf::I32(v) => DataMut::I32(&mut v[..len]),
            Buf::U32(v) => DataMut::U32(&mut v[..len]),
            Buf::Bool(v) => DataMut::Bool(&mut v[..len]),
        }
    }

    fn into_value(self, shape: &[usize]) -> Result<Value> {
        Ok(match self {
            Buf::F32(v) => Value::F32(Shared::from_vec(shape, v)?),
            Buf::I32(v) => Value::I32(Shared::from_vec(shape, v)?),
            Buf::U32(v) => Value::U32(Shared::from_vec(shape, v)?),
            Buf::Bool(v) => Value::Bool(Shared::from_vec(shape, v)?),
        })
    }
}

fn copy_data(d: Data<'_>, meta: &Meta) -> Result<Buf> {
    let mut b = Buf::new(meta)?;
    match (&mut b, d) {
        (Buf::F32(y), Data::F32(x)) => y.copy_from_slice(x),
        (Buf::I32(y), Data::I32(x)) => y.copy_from_slice(x),
        (Buf::U32(y), Data::U32(x)) => y.copy_from_slice(x),
        (Buf::Bool(y), Data::Bool(x)) => y.copy_from_slice(x),
        _ => return Err(Error::invalid("", "internal: output dtype mismatch")),
    }
    Ok(b)
}

/// Parameters bound for one variables version at one scope path.
struct Binding {
    generation: u64,
    path: Vec<Name>,
    leaves: Vec<Shared<f32>>,
    packs: Vec<Option<Arc<PackedDense>>>,
}

/// The scratch of one running call: planned buffers and recent bindings. A program keeps a
/// pool of them, so concurrent calls never share one and a repeated call allocates nothing.
#[derive(Default)]
struct Arena {
    slots: Vec<Buf>,
    outs: Vec<Option<Buf>>,
    keys: Vec<[u32; 2]>,
    bindings: Vec<Binding>,
}

/// How many (variables version, path) bindings an arena keeps: identical lifted children at
/// one shape share a program and must not evict each other.
const BINDINGS: usize = 32;

/// A compiled program (see the module docs). `Display` prints it, one step per line, like
/// `jax.jit(f).lower(x).as_text()`.
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(4);
/// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
/// let vars = m.init(nn::PRNGKey(0), &x)?;
/// let program = m.lower(&vars, &x)?;
/// assert_eq!(program.num_steps(), 1); // one fused dense+bias
/// assert!(program.to_string().contains("dense+bias"));
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct Program {
    name: String,
    inputs: Vec<Meta>,
    vars: Vec<VarRead>,
    rngs: Vec<RngRead>,
    consts: Vec<Value>,
    steps: Vec<Step>,
    outputs: Vec<(Loc, Meta)>,
    writes: Vec<(VarWrite, Loc, Meta)>,
    slots: Vec<Meta>,
    arenas: Mutex<Vec<Arena>>,
    graph_nodes: usize,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Program({}, {} steps)", self.name, self.steps.len())
    }
}

/// What a trace produced, ready to compile.
pub(crate) struct Traced {
    pub(crate) builder: Builder,
    pub(crate) outputs: Vec<usize>,
}

impl Program {
    /// Compiles a trace: dead code removed, elementwise ops fused into their producers,
    /// buffers planned by liveness.
    pub(crate) fn compile(name: String, traced: Traced) -> Result<Program> {
        let Traced { builder, outputs } = traced;
        let nodes = &builder.nodes;
        let n = nodes.len();
        // Uses and liveness (outputs and writes are uses too).
        let mut uses = vec![0usize; n];
        let mut pinned = vec![false; n];
        for node in nodes {
            for &i in &node.inputs {
                uses[i] += 1;
            }
        }
        for &o in &outputs {
            uses[o] += 1;
            pinned[o] = true;
        }
        for w in &builder.writes {
            uses[w.node] += 1;
            pinned[w.node] = true;
            if nodes[w.node].meta.dtype != DType::F32 {
                return Err(Error::invalid(nodes[w.node].path.to_string(), "variables hold f32 values only"));
            }
        }
        let mut alive = vec![false; n];
        let mut stack: Vec<usize> = outputs.iter().copied().chain(builder.writes.iter().map(|w| w.node)).collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut alive[i], true) {
                stack.extend(nodes[i].inputs.iter().copied());
            }
        }
        // Locations of the sources, and fused groups of ops.
        let mut loc: Vec<Option<Loc>> = vec![None; n];
        let mut consts = Vec::new();
        let mut inputs = Vec::new();
        struct Group {
            head: Op,
            ins: Vec<usize>,
            tail: Vec<(Tail, Option<usize>)>,
            last: usize,
            meta: Meta,
            path: Arc<str>,
            nodes: Vec<usize>,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        for (i, node) in nodes.iter().enumerate() {
            match &node.source {
                Source::Input(k) => {
                    if inputs.len() <= *k {
                        inputs.resize(k + 1, Meta::new(DType::F32, vec![]));
                    }
                    inputs[*k] = node.meta.clone();
                    loc[i] = Some(Loc::Input(*k));
                }
                _ if !alive[i] => {}
                Source::Var(k) => loc[i] = Some(Loc::Var(*k)),
                Source::Rng(k) => loc[i] = Some(Loc::Rng(*k)),
                Source::Const(v) => {
                    consts.push(v.clone());
                    loc[i] = Some(Loc::Const(consts.len() - 1));
                }
                Source::Op(op) => {
                    // Fuse into a producer whose value only this op reads.
                    let fusable = |p: usize| {
                        group_of[p].is_some_and(|g: usize| groups[g].last == p)
                            && uses[p] == 1
                            && !pinned[p]
                            && nodes[p].meta == node.meta
                            && node.meta.dtype == DType::F32
                    };
                    let target = match op {
                        Op::Unary(_) => node.inputs.first().copied().filter(|&p| fusable(p)),
                        Op::Binary(_) => node.inputs.iter().copied().find(|&p| fusable(p)),
                        _ => None,
                    };
                    if let Some(p) = target {
                        let g = group_of[p].unwrap_or(0);
                        let grp = &mut groups[g];
                        match op {
                            Op::Unary(Unary::Relu)
                                if grp.tail.is_empty()
                                    && matches!(grp.head, Op::Linear { act: Activation::Identity, .. }) =>
                            {
                                if let Op::Linear { act, .. } = &mut grp.head {
                                    *act = Activation::Relu;
                                }
                            }
                            Op::Unary(u) => grp.tail.push((Tail::Unary(*u), None)),
                            Op::Binary(b) => {
                                let acc_left = node.inputs[0] == p;
                                let other = if acc_left { node.inputs[1] } else { node.inputs[0] };
                                grp.tail.push((
                                    Tail::Binary {
                                        op: *b,
                                        other: Loc::Input(usize::MAX),
                                        other_shape: nodes[other].meta.shape.clone(),
                                        acc_left,
                                    },
                                    Some(other),
                                ));
                            }
                            _ => {}
                        }
                        grp.last = i;
                        grp.nodes.push(i);
                        group_of[i] = Some(g);
                    } else {
                        groups.push(Group {
                            head: op.clone(),
                            ins: node.inputs.clone(),
                            tail: Vec::new(),
                            last: i,
                            meta: node.meta.clone(),
                            path: Arc::clone(&node.path),
                            nodes: vec![i],
                        });
                        group_of[i] = Some(groups.len() - 1);
                    }
                }
            }
        }
        // Schedule: each group runs where its last op was.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&g| groups[g].last);
        let position: Vec<usize> = {
            let mut p = vec![0; groups.len()];
            for (at, &g) in order.iter().enumerate() {
                p[g] = at;
            }
            p
        };
        // Last read of each group's value, in schedule positions.
        let end = order.len();
        let mut last_read = vec![0usize; groups.len()];
        let value_group = |node: usize| group_of[node].filter(|&g| groups[g].last == node);
        for (g, grp) in groups.iter().enumerate() {
            let at = position[g];
            for &i in grp.ins.iter().chain(grp.tail.iter().filter_map(|(_, o)| o.as_ref())) {
                if let Some(src) = value_group(i) {
                    last_read[src] = last_read[src].max(at);
                }
            }
        }
        for w in &builder.writes {
            if let Some(g) = value_group(w.node) {
                last_read[g] = end;
            }
        }
        // Outputs: the first output naming a group gets that group's fresh buffer.
        let mut out_of_group: Vec<Option<usize>> = vec![None; groups.len()];
        for (k, &o) in outputs.iter().enumerate() {
            if let Some(g) = value_group(o) {
                if out_of_group[g].is_none() {
                    out_of_group[g] = Some(k);
                }
            }
        }
        // Buffer plan: a slot is free again once its last reader has run.
        let mut slots: Vec<Meta> = Vec::new();
        let mut busy_until: Vec<usize> = Vec::new();
        let mut group_loc = vec![Loc::Slot(0); groups.len()];
        for (at, &g) in order.iter().enumerate() {
            if let Some(k) = out_of_group[g] {
                group_loc[g] = Loc::Out(k);
                continue;
            }
            let meta = &groups[g].meta;
            let len = meta.len();
            let free = (0..slots.len()).find(|&s| busy_until[s] < at && slots[s].dtype == meta.dtype);
            let s = match free {
                Some(s) => {
                    if slots[s].len() < len {
                        slots[s] = Meta::new(meta.dtype, vec![len]);
                    }
                    s
                }
                None => {
                    slots.push(Meta::new(meta.dtype, vec![len]));
                    busy_until.push(0);
                    slots.len() - 1
                }
            };
            busy_until[s] = last_read[g].max(at);
            group_loc[g] = Loc::Slot(s);
        }
        let loc_of = |node: usize| -> Result<Loc> {
            match (loc[node], value_group(node)) {
                (Some(l), _) => Ok(l),
                (None, Some(g)) => Ok(group_loc[g]),
                _ => Err(Error::invalid("", format!("internal: node %{node} has no value"))),
            }
        };
        let mut steps = Vec::with_capacity(order.len());
        for &g in &order {
            let grp = &groups[g];
            let ins: Vec<Loc> = grp.ins.iter().map(|&i| loc_of(i)).collect::<Result<_>>()?;
            let in_shapes = grp.ins.iter().map(|&i| nodes[i].meta.shape.clone()).collect();
            let mut tail = Vec::with_capacity(grp.tail.len());
            for (t, other) in &grp.tail {
                tail.push(match (t, other) {
                    (Tail::Binary { op, other_shape, acc_left, .. }, Some(o)) => Tail::Binary {
                        op: *op,
                        other: loc_of(*o)?,
                        other_shape: other_shape.clone(),
                        acc_left: *acc_left,
                    },
                    (t, _) => t.clone(),
                });
            }
            let pack = match (&grp.head, ins.as_slice()) {
                (Op::Linear { bias: false, .. }, [_, Loc::Var(k)]) => Some((*k, None)),
                (Op::Linear { bias: true, .. }, [_, Loc::Var(k), Loc::Var(b)]) => Some((*k, Some(*b))),
                _ => None,
            };
            steps.push(Step {
                head: grp.head.clone(),
                ins,
                in_shapes,
                tail,
                out: group_loc[g],
                meta: grp.meta.clone(),
                pack,
                path: Arc::clone(&grp.path),
            });
        }
        let outputs = outputs.iter().map(|&o| Ok((loc_of(o)?, nodes[o].meta.clone()))).collect::<Result<_>>()?;
        let writes = builder
            .writes
            .iter()
            .map(|w| Ok((w.clone(), loc_of(w.node)?, nodes[w.node].meta.clone())))
            .collect::<Result<_>>()?;
        Ok(Program {
            name,
            inputs,
            vars: builder.vars,
            rngs: builder.rngs,
            consts,
            steps,
            outputs,
            writes,
            slots,
            arenas: Mutex::new(Vec::new()),
            graph_nodes: n,
        })
    }

    /// Steps after fusion (each a kernel call or a fused elementwise pass).
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(m.lower(&vars, &[1.0f32])?.num_steps(), 1);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// Ops the trace recorded, before fusion and dead-code removal.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert!(m.lower(&vars, &[1.0f32])?.num_traced_nodes() >= 4); // x, kernel, bias, dense
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn num_traced_nodes(&self) -> usize {
        self.graph_nodes
    }

    /// Planned intermediate buffers (reused by liveness; outputs are not among them).
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert_eq!(m.lower(&vars, &[1.0f32])?.num_buffers(), 0); // the output is the only buffer
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn num_buffers(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn input_metas(&self) -> &[Meta] {
        &self.inputs
    }

    pub(crate) fn output_metas(&self) -> impl Iterator<Item = &Meta> {
        self.outputs.iter().map(|(_, m)| m)
    }

    /// Runs the program in `scope` on `inputs` (each contiguous, of the traced shapes). Each
    /// output is handed to `sink` in order; `ext` (if given) receives output 0 in place.
    pub(crate) fn run(
        &self,
        scope: &mut Scope<'_, '_>,
        packs: &PackStore,
        inputs: &[(Data<'_>, &[usize])],
        mut ext: Option<&mut [f32]>,
        sink: &mut dyn FnMut(usize, Buf, &Meta) -> Result<()>,
    ) -> Result<()> {
        if inputs.len() != self.inputs.len()
            || inputs.iter().zip(&self.inputs).any(|((_, s), m)| *s != m.shape.as_slice())
        {
            return Err(Error::invalid(scope.path(), "internal: program inputs do not match the trace"));
        }
        let mut arena = self.arenas.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        let r = self.run_in(&mut arena, scope, packs, inputs, &mut ext, sink);
        self.arenas.lock().unwrap_or_else(|e| e.into_inner()).push(arena);
        r
    }

    fn run_in(
        &self,
        arena: &mut Arena,
        scope: &mut Scope<'_, '_>,
        packs: &PackStore,
        inputs: &[(Data<'_>, &[usize])],
        ext: &mut Option<&mut [f32]>,
        sink: &mut dyn FnMut(usize, Buf, &Meta) -> Result<()>,
    ) -> Result<()> {
        if arena.slots.len() != self.slots.len() {
            arena.slots = self.slots.iter().map(Buf::new).collect::<Result<_>>()?;
        }
        if let Some(out) = ext.as_deref() {
            if self.outputs.first().map(|(_, m)| m.len()) != Some(out.len()) {
                return Err(Error::InputShape {
                    path: scope.path(),
                    expected: format!(
                        "an output buffer of {} elements",
                        self.outputs.first().map_or(0, |(_, m)| m.len())
                    ),
                    found: vec![out.len()],
                });
            }
        }
        // RNG keys first: counters advance exactly as the eager body advanced them.
        arena.keys.clear();
        for r in &self.rngs {
            let k: [u32; 2] = scope.next_key_below(&r.rel, &r.stream)?.into();
            arena.keys.push(k);
        }
        let bi = self.bind(arena, scope, packs)?;
        arena.outs.clear();
        arena.outs.resize_with(self.outputs.len(), || None);
        let threads = num_threads();
        for (index, step) in self.steps.iter().enumerate() {
            let external = matches!(step.out, Loc::Out(0)) && ext.is_some();
            let mut out = match step.out {
                Loc::Slot(s) => std::mem::replace(&mut arena.slots[s], Buf::F32(Vec::new())),
                Loc::Out(_) if external => Buf::F32(Vec::new()),
                Loc::Out(_) => Buf::new(&step.meta)?,
                _ => return Err(Error::invalid("", "internal: step writes an input")),
            };
            let len = step.meta.len();
            let res = {
                let binding = &arena.bindings[bi];
                match ext.as_deref_mut() {
                    Some(e) if external => {
                        let view = Views { program: self, arena, binding, inputs, ext: None };
                        view.exec(index, step, &mut DataMut::F32(e), threads)
                    }
                    e => {
                        let view = Views { program: self, arena, binding, inputs, ext: e.map(|e| &*e) };
                        view.exec(index, step, &mut out.data_mut(len), threads)
                    }
                }
            };
            match step.out {
                Loc::Slot(s) => arena.slots[s] = out,
                Loc::Out(k) if !external => arena.outs[k] = Some(out),
                _ => {}
            }
            res.map_err(|e| with_path(e, &step.path))?;
        }
        // Variable writes (mutable collections), then outputs.
        for (w, l, meta) in &self.writes {
            let view = Views { program: self, arena, binding: &arena.bindings[bi], inputs, ext: ext.as_deref() };
            let Data::F32(d) = view.data_len(*l, meta.len()) else {
                return Err(Error::invalid("", "internal: non-f32 variable write"));
            };
            let a = ArrayD::from_shape_vec(IxDyn(&meta.shape), d.to_vec())
                .map_err(|e| Error::invalid("", e.to_string()))?;
            scope.write_leaf_below(&w.collection, &w.rel, &w.name, Leaf::new(a));
        }
        for (k, (l, meta)) in self.outputs.iter().enumerate() {
            if k == 0 && ext.is_some() {
                if *l != Loc::Out(0) {
                    let view = Views { program: self, arena, binding: &arena.bindings[bi], inputs, ext: None };
                    let Data::F32(d) = view.data_len(*l, meta.len()) else {
                        return Err(Error::invalid("", "apply_into needs an f32 output"));
                    };
                    if let Some(e) = ext.as_deref_mut() {
                        e.copy_from_slice(d);
                    }
                }
                continue;
            }
            let buf = match (*l, arena.outs.get_mut(k).and_then(Option::take)) {
                (Loc::Out(j), Some(buf)) if j == k => buf,
                _ => {
                    let view =
                        Views { program: self, arena, binding: &arena.bindings[bi], inputs, ext: ext.as_deref() };
                    copy_data(view.data_len(*l, meta.len()), meta)?
                }
            };
            sink(k, buf, meta)?;
        }
        Ok(())
    }

    /// The binding of this scope's variables (cached per variables version and path).
    fn bind(&self, arena: &mut Arena, scope: &Scope<'_, '_>, packs: &PackStore) -> Result<usize> {
        let generation = scope.frame().input.map_or(0, |v| v.generation());
        let cacheable = generation != 0 && scope.frame().out.is_empty();
        if cacheable {
            if let Some(i) = arena.bindings.iter().position(|b| b.generation == generation && scope.node.is(&b.path)) {
                return Ok(i);
            }
        }
        let mut leaves = Vec::with_capacity(self.vars.len());
        let mut versions = Vec::with_capacity(self.vars.len());
        for v in &self.vars {
            let full = || {
                let mut p = scope.path();
                for s in &v.rel {
                    p.push('/');
                    p.push_str(s);
                }
                format!("{p}/{}", v.name)
            };
            let leaf = scope
                .read_leaf_below(&v.collection, &v.rel, &v.name)
                .ok_or_else(|| Error::MissingVariable { collection: v.collection.clone(), path: full() })?;
            if leaf.array().shape() != v.shape.as_slice() {
                return Err(Error::VariableShape {
                    collection: v.collection.clone(),
                    path: full(),
                    expected: v.shape.clone(),
                    found: leaf.array().shape().to_vec(),
                });
            }
            versions.push(leaf.version());
            leaves.push(Shared::new(Arc::clone(leaf.shared())));
        }
        let mut packed = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            packed.push(match step.pack {
                Some((k, b)) => {
                    let w = leaves[k].slice();
                    let bias = b.map(|b| leaves[b].slice());
                    let (d, f) = (self.vars[k].shape[0], self.vars[k].shape[1]);
                    Some(packs.get(versions[k], b.map(|b| versions[b]), w, bias, d, f)?)
                }
                None => None,
            });
        }
        let binding = Binding { generation, path: scope.node.names(), leaves, packs: packed };
        if !cacheable {
            arena.bindings.retain(|b| b.generation != 0);
            arena.bindings.push(Binding { generation: 0, ..binding });
            return Ok(arena.bindings.len() - 1);
        }
        if arena.bindings.len() >= BINDINGS {
            arena.bindings.remove(0); // the oldest
        }
        arena.bindings.push(binding);
        Ok(arena.bindings.len() - 1)
    }
}

fn with_path(e: Error, path: &str) -> Error {
    match e {
        Error::InvalidArgument { path: p, message } if p.is_empty() => {
            Error::InvalidArgument { path: path.into(), message }
        }
        e => e,
    }
}

/// Read access to every value a step may read.
struct Views<'a, 'i> {
    program: &'a Program,
    arena: &'a Arena,
    binding: &'a Binding,
    inputs: &'a [(Data<'i>, &'i [usize])],
    ext: Option<&'a [f32]>,
}

impl<'a> Views<'a, '_> {
    /// The first `len` elements at `l` (planned slots may be larger than the value they hold).
    fn data_len(&self, l: Loc, len: usize) -> Data<'a> {
        match self.data(l) {
            Data::F32(v) => Data::F32(&v[..len.min(v.len())]),
            Data::I32(v) => Data::I32(&v[..len.min(v.len())]),
            Data::U32(v) => Data::U32(&v[..len.min(v.len())]),
            Data::Bool(v) => Data::Bool(&v[..len.min(v.len())]),
        }
    }

    fn data(&self, l: Loc) -> Data<'a> {
        match l {
            Loc::Input(i) => self.inputs.get(i).map_or(Data::F32(&[]), |d| d.0),
            Loc::Var(i) => Data::F32(self.binding.leaves[i].slice()),
            Loc::Rng(i) => Data::U32(&self.arena.keys[i]),
            Loc::Const(i) => self.program.consts[i].data(),
            Loc::Slot(s) => self.arena.slots[s].data(),
            Loc::Out(0) if self.ext.is_some() => Data::F32(self.ext.unwrap_or(&[])),
            Loc::Out(k) => self.arena.outs[k].as_ref().map_or(Data::F32(&[]), Buf::data),
        }
    }

    fn exec(&self, index: usize, step: &Step, out: &mut DataMut<'_>, threads: usize) -> Result<()> {
        let packed = self.binding.packs.get(index).and_then(Option::as_deref);
        if let (Op::Linear { act, .. }, Some(p), DataMut::F32(y)) = (&step.head, packed, &mut *out) {
            // Packed weights: only `x` is read.
            let Data::F32(x) = self.data_len(step.ins[0], step.in_shapes[0].iter().product()) else {
                return Err(Error::invalid("", "internal: dense input"));
            };
            let rows = if p.d() == 0 { 0 } else { x.len() / p.d() };
            apply_threads(p, x, rows, y, *act, threads)?;
            return self.tails(step, out);
        }
        // Input data on the stack for the usual ≤ 4 inputs (no allocation per call).
        let empty: (Data<'_>, &[usize]) = (Data::F32(&[]), &[]);
        let mut small = [empty; 4];
        let big: Vec<(Data<'_>, &[usize])>;
        let ins: &[(Data<'_>, &[usize])] = if step.ins.len() <= 4 {
            for (k, (&l, s)) in step.ins.iter().zip(&step.in_shapes).enumerate() {
                small[k] = (self.data_len(l, s.iter().product()), s.as_slice());
            }
            &small[..step.ins.len()]
        } else {
            big = step
                .ins
                .iter()
                .zip(&step.in_shapes)
                .map(|(&l, s)| (self.data_len(l, s.iter().product()), s.as_slice()))
                .collect();
            &big
        };
        step.head.eval(ins, reborrow(out), &step.meta.shape)?;
        self.tails(step, out)
    }

    /// The fused elementwise ops after a step's head, in place.
    fn tails(&self, step: &Step, out: &mut DataMut<'_>) -> Result<()> {
        if step.tail.is_empty() {
            return Ok(());
        }
        let DataMut::F32(y) = out else { return Err(Error::invalid("", "internal: fused non-f32")) };
        for t in &step.tail {
            match t {
                Tail::Unary(u) => crate::tensor::op::unary_in_place(*u, y),
                Tail::Binary { op, other, other_shape, acc_left } => {
                    let Data::F32(o) = self.data_len(*other, other_shape.iter().product()) else {
                        return Err(Error::invalid("", "internal: fused operand"));
                    };
                    binary_in_place(*op, y, &step.meta.shape, o, other_shape, *acc_left);
                }
            }
        }
        Ok(())
    }
}

fn reborrow<'b>(d: &'b mut DataMut<'_>) -> DataMut<'b> {
    match d {
        DataMut::F32(v) => DataMut::F32(v),
        DataMut::I32(v) => DataMut::I32(v),
        DataMut::U32(v) => DataMut::U32(v),
        DataMut::Bool(v) => DataMut::Bool(v),
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |l: Loc| match l {
            Loc::Input(i) => format!("%x{i}"),
            Loc::Var(i) => format!("%v{i}"),
            Loc::Rng(i) => format!("%key{i}"),
            Loc::Const(i) => format!("%c{i}"),
            Loc::Slot(s) => format!("%b{s}"),
            Loc::Out(k) => format!("%out{k}"),
        };
        let ins: Vec<String> = self.inputs.iter().enumerate().map(|(i, m)| format!("%x{i}: {m}")).collect();
        writeln!(f, "program {}({}) {{", self.name, ins.join(", "))?;
        for (i, v) in self.vars.iter().enumerate() {
            let mut p = v.collection.clone();
            for s in &v.rel {
                p.push('/');
                p.push_str(s);
            }
            writeln!(f, "  %v{i} = variable {p}/{} : {}", v.name, Meta::new(DType::F32, v.shape.clone()))?;
        }
        for (i, r) in self.rngs.iter().enumerate() {
            writeln!(f, "  %key{i} = make_rng \"{}\" at /{} : u32[2]", r.stream, r.rel.join("/"))?;
        }
        for (i, c) in self.consts.iter().enumerate() {
            writeln!(f, "  %c{i} = constant : {}", c.meta())?;
        }
        for s in &self.steps {
            let args: Vec<String> = s.ins.iter().map(|&l| name(l)).collect();
            let mut line = format!("  {} = {}({})", name(s.out), s.head.name(), args.join(", "));
            for t in &s.tail {
                match t {
                    Tail::Unary(u) => {
                        let _ = write!(line, " · {}", Op::Unary(*u).name());
                    }
                    Tail::Binary { op, other, acc_left, .. } => {
                        let o = name(*other);
                        let b = format!("{op:?}").to_lowercase();
                        let _ =
                            if *acc_left { write!(line, " · {b}(_, {o})") } else { write!(line, " · {b}({o}, _)") };
                    }
                }
            }
            let packed = if s.pack.is_some() { " packed" } else { "" };
            writeln!(f, "{line} : {}{packed}   # {}", s.meta, if s.path.is_empty() { "/" } else { &s.path })?;
        }
        for (w, l, _) in &self.writes {
            let mut p = w.collection.clone();
            for s in &w.rel {
                p.push('/');
                p.push_str(s);
            }
            writeln!(f, "  write {p}/{} = {}", w.name, name(*l))?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|(l, _)| name(*l)).collect();
        writeln!(f, "  return {}", outs.join(", "))?;
        f.write_str("}")
    }
}

impl Buf {
    /// The buffer as an f32 array of `shape` (what `apply` returns).
    pub(crate) fn into_f32_array(self, shape: &[usize]) -> Result<ArrayD<f32>> {
        match self {
            // Static ranks 1 and 2 build their arrays with less shape arithmetic than IxDyn.
            Buf::F32(v) => crate::tensor::array_from_vec(shape, v),
            _ => Err(Error::invalid("", "the output is not an f32 tensor")),
        }
    }

    /// The buffer as a tensor value.
    pub(crate) fn into_tensor_value(self, shape: &[usize]) -> Result<Value> {
        self.into_value(shape)
    }
}
