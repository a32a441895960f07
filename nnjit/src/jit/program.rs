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
use crate::kernel::parallel::{apply_threads, num_threads, split_rows, MIN_MACS_PER_THREAD};
use crate::kernel::{Activation, PackedDense};
use crate::scope::{Name, Scope};
use crate::tensor::op::{binary_in_place, Binary, Data, DataMut, Op, Unary};
use crate::tensor::trace::{Builder, RngForkRead, RngRead, Source, VarGuard, VarRead, VarWrite};
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
    /// Element counts of `in_shapes`.
    in_lens: Vec<usize>,
    tail: Vec<Tail>,
    out: Loc,
    meta: Meta,
    /// A Dense head whose kernel (and bias) are variables: run on packed weights.
    pack: Option<(usize, Option<usize>)>,
    /// Rows of a packed Dense step (its input's element count over the kernel's input width).
    rows: usize,
    path: Arc<str>,
}

/// The fewest rows per thread for which a chain program splits by rows through every layer.
const ROW_CHAIN_ROWS: usize = 64;

/// One layer of a [`Chain`]: a packed Dense of `d` inputs and `f` outputs per row.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Link {
    d: usize,
    f: usize,
    act: Activation,
}

/// A program that is a straight line of packed Dense layers (an MLP) from its one input to its
/// one output, every layer on the same rows: it runs as a tight loop of kernel calls on two
/// buffers (on the stack when small, else the calling thread's), no slot plan, nothing to
/// dispatch.
#[derive(Clone, Debug, PartialEq)]
struct Chain {
    links: Vec<Link>,
    rows: usize,
    /// Multiply-adds per row through every layer (whether a row split pays).
    macs_per_row: usize,
    /// The widest intermediate row (the two buffers hold that many floats per row).
    widest: usize,
}

thread_local! {
    /// The intermediate buffers of the chains this thread runs (two, reused from call to call).
    static PING_PONG: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl Chain {
    /// `Some` for steps that are packed Dense layers (bias and relu in their epilogues, nothing
    /// else fused) each reading the previous one's buffer, from input 0 to output 0.
    fn of(steps: &[Step], inputs: &[Meta], outputs: &[(Loc, Meta)]) -> Option<Chain> {
        let ([_], [(Loc::Out(0), _)], [first, ..]) = (inputs, outputs, steps) else { return None };
        let rows = first.rows;
        let mut src = Loc::Input(0);
        let mut links = Vec::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            let last = i + 1 == steps.len();
            let linear = s.pack.is_some()
                && s.tail.is_empty()
                && s.meta.dtype == DType::F32
                && s.rows == rows
                && rows > 0
                && s.ins.first() == Some(&src)
                && (if last { s.out == Loc::Out(0) } else { matches!(s.out, Loc::Slot(_)) });
            let act = match s.head {
                Op::Linear { act, .. } if linear => act,
                _ => return None,
            };
            links.push(Link { d: s.in_lens[0] / rows, f: s.meta.len() / rows, act });
            src = s.out;
        }
        let macs_per_row = links.iter().map(|l| l.d.saturating_mul(l.f)).fold(0usize, usize::saturating_add);
        let widest = links[..links.len() - 1].iter().map(|l| l.f).max().unwrap_or(0);
        Some(Chain { links, rows, macs_per_row, widest })
    }
}

/// Runs `f` on this thread's two intermediate buffers, each `n` floats (a re-entrant call gets
/// fresh ones).
#[inline]
fn with_buffers<R>(n: usize, f: impl for<'a> FnOnce(&'a mut [f32], &'a mut [f32]) -> Result<R>) -> Result<R> {
    #[cold]
    fn grow(v: &mut Vec<f32>, n: usize) -> Result<()> {
        if v.len() >= n {
            return Ok(());
        }
        v.try_reserve_exact(n - v.len())
            .map_err(|_| Error::Allocation { what: "chain buffer".into(), bytes: n.saturating_mul(4) })?;
        v.resize(n, 0.0);
        Ok(())
    }
    PING_PONG.with(|c| match c.try_borrow_mut() {
        Ok(mut kept) => {
            let (a, b) = &mut *kept;
            if a.len() < n || b.len() < n {
                grow(a, n)?;
                grow(b, n)?;
            }
            f(&mut a[..n], &mut b[..n])
        }
        Err(_) => {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            grow(&mut a, n)?;
            grow(&mut b, n)?;
            f(&mut a, &mut b)
        }
    })
}

/// Layers in turn from `x` into `y` for `rows` rows, the intermediates (at most `widest`
/// floats a row) in this thread's two buffers; `apply` runs one layer on exact-length slices.
#[inline]
fn through_layers<'p>(
    mut layers: impl ExactSizeIterator<Item = Result<(&'p PackedDense, Activation)>>,
    rows: usize,
    widest: usize,
    x: &[f32],
    y: &mut [f32],
    apply: impl Fn(&PackedDense, &[f32], &mut [f32], Activation) -> Result<()>,
) -> Result<()> {
    let internal = || Error::invalid("", "internal: a chain without layers");
    if layers.len() == 1 {
        let (p, act) = layers.next().ok_or_else(internal)??;
        return apply(p, x, y, act);
    }
    let last = layers.len().saturating_sub(1);
    with_buffers(rows.saturating_mul(widest), |mut src, mut dst| {
        for (i, layer) in layers.enumerate() {
            let (p, act) = layer?;
            let input: &[f32] = if i == 0 { x } else { &src[..rows * p.d()] };
            if i == last {
                return apply(p, input, y, act);
            }
            apply(p, input, &mut dst[..rows * p.f()], act)?;
            std::mem::swap(&mut src, &mut dst);
        }
        Err(internal())
    })
}

/// A chain program's layers bound to their packed weights: what one thread runs for a bound
/// MLP, without reading the program or the binding again. Invariant (checked by
/// [`ChainLayers::new`]): each layer reads `d` floats a row where the previous one writes `f`,
/// every intermediate width is at most `widest`, and there are layers.
#[derive(Debug)]
pub(crate) struct ChainLayers {
    layers: Box<[(Arc<PackedDense>, Activation)]>,
    rows: usize,
    widest: usize,
}

/// Intermediate floats a chain keeps in two buffers on the stack (4 KiB each): a batch-1 or
/// small-batch MLP then touches no thread-local buffer and no borrow flag.
const STACK_FLOATS: usize = 1024;

impl ChainLayers {
    /// `None` unless the layers connect (each one's `d` the previous one's `f`) within `widest`.
    fn new(layers: Box<[(Arc<PackedDense>, Activation)]>, rows: usize, widest: usize) -> Option<ChainLayers> {
        let (last, inner) = layers.split_last()?;
        let connected = layers.windows(2).all(|w| w[0].0.f() == w[1].0.d());
        let fits = inner.iter().all(|(p, _)| p.f() <= widest);
        (connected && fits && rows.checked_mul(widest.max(last.0.f())).is_some()).then_some(ChainLayers {
            layers,
            rows,
            widest,
        })
    }

    /// The layers on one thread from `x` into `y` (of the program's input and output lengths).
    #[inline(always)]
    pub(crate) fn run(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        match &*self.layers {
            // A lifted Dense: the kernel itself, inlined into the caller (a bound 3 → 4 Dense
            // takes 5.5 ns; through the call below, 16).
            [(p, act)] => p.apply(x, self.rows, y, *act),
            _ => self.run_layers(x, y),
        }
    }

    /// [`run`](ChainLayers::run) for two layers or more: the ends checked once, the layers'
    /// kernels called on the chain's own intermediates without checks of their own.
    #[inline(never)]
    fn run_layers(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        let (first, last) = (&self.layers[0].0, &self.layers[self.layers.len() - 1].0);
        if Some(x.len()) != self.rows.checked_mul(first.d()) || Some(y.len()) != self.rows.checked_mul(last.f()) {
            return Err(Error::invalid(
                "",
                format!(
                    "internal: a chain of {} rows given {} input and {} output floats",
                    self.rows,
                    x.len(),
                    y.len()
                ),
            ));
        }
        let n = self.rows * self.widest; // no overflow: checked in `new`
        if n <= STACK_FLOATS {
            let mut a = [std::mem::MaybeUninit::<f32>::uninit(); STACK_FLOATS];
            let mut b = [std::mem::MaybeUninit::<f32>::uninit(); STACK_FLOATS];
            // SAFETY: `x` and `y` have the chain's input and output lengths (checked above);
            // `a` and `b` are two distinct locals of `n` ≥ rows × any intermediate width floats
            // (the invariant of `ChainLayers`), written before they are read.
            unsafe { self.run_raw(x.as_ptr(), y.as_mut_ptr(), a.as_mut_ptr().cast(), b.as_mut_ptr().cast()) };
            return Ok(());
        }
        with_buffers(n, |a, b| {
            // SAFETY: as above, with this thread's two buffers of `n` floats each.
            unsafe { self.run_raw(x.as_ptr(), y.as_mut_ptr(), a.as_mut_ptr(), b.as_mut_ptr()) };
            Ok(())
        })
    }

    /// Every layer in turn: from `x` through `a` and `b` alternately into `y`.
    ///
    /// # Safety
    /// `x` valid for `rows × d` reads of the first layer's `d`, `y` for `rows × f` writes of
    /// the last layer's `f`, `a` and `b` for `rows × widest` writes each; none of them overlap.
    #[inline(always)]
    unsafe fn run_raw(&self, x: *const f32, y: *mut f32, a: *mut f32, b: *mut f32) {
        let rows = self.rows;
        let relu = |act: &Activation| *act == Activation::Relu;
        // SAFETY (every call): each layer reads the `rows × d` floats the previous one wrote
        // (its `f` is this one's `d`, the invariant of `ChainLayers`) into a buffer it does not
        // read, per the caller's contract. Two and three layers (the usual MLPs) are written
        // out: the loop costs a few instructions a layer more.
        unsafe {
            match &*self.layers {
                [(p0, a0), (p1, a1)] => {
                    p0.run(x, rows, a, relu(a0));
                    p1.run(a, rows, y, relu(a1));
                }
                [(p0, a0), (p1, a1), (p2, a2)] => {
                    p0.run(x, rows, a, relu(a0));
                    p1.run(a, rows, b, relu(a1));
                    p2.run(b, rows, y, relu(a2));
                }
                layers => {
                    let (mut src, mut dst, mut spare) = (x, a, b);
                    let last = layers.len() - 1;
                    for (i, (p, act)) in layers.iter().enumerate() {
                        if i == last {
                            p.run(src, rows, y, relu(act));
                        } else {
                            p.run(src, rows, dst, relu(act));
                            src = dst;
                            std::mem::swap(&mut dst, &mut spare);
                        }
                    }
                }
            }
        }
    }

    /// The one layer of a single-Dense chain: its packed weights and activation.
    pub(crate) fn single(&self) -> Option<(&Arc<PackedDense>, Activation)> {
        match &*self.layers {
            [(p, act)] => Some((p, *act)),
            _ => None,
        }
    }
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
pub(crate) struct Binding {
    generation: u64,
    path: Vec<Name>,
    leaves: Vec<Shared<f32>>,
    packs: Vec<Option<Arc<PackedDense>>>,
}

/// The buffers of one running call: the planned intermediate slots and the outputs that are
/// not written into caller buffers. Reused from call to call, so a repeated call allocates
/// nothing but the outputs it hands out.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The [`Program::id`] the slots are planned for (0: none yet).
    planned: u64,
    slots: Vec<Buf>,
    outs: Vec<Option<Buf>>,
}

impl Scratch {
    /// Whether the slots are planned for `program`.
    pub(crate) fn planned_for(&self, program: &Program) -> bool {
        self.planned == program.id
    }
}

/// The scratch of one running call and its recent bindings. A program keeps a pool of them,
/// so concurrent calls never share one and a repeated call allocates nothing.
#[derive(Default)]
struct Arena {
    scratch: Scratch,
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
    /// `has_variable` answers the trace depended on.
    guards: Vec<VarGuard>,
    /// Unique among the programs of this process (scratch buffers know whose plan they hold).
    id: u64,
    name: String,
    inputs: Vec<Meta>,
    vars: Vec<VarRead>,
    rngs: Vec<RngRead>,
    /// RNG forks the program replays before the reads that need them.
    forks: Vec<RngForkRead>,
    consts: Vec<Value>,
    steps: Vec<Step>,
    outputs: Vec<(Loc, Meta)>,
    writes: Vec<(VarWrite, Loc, Meta)>,
    slots: Vec<Meta>,
    arenas: Mutex<Vec<Arena>>,
    graph_nodes: usize,
    /// The program is an MLP: see [`Chain`].
    chain: Option<Chain>,
    /// Every output is its own step's buffer (nothing to copy into caller buffers at the end).
    own_outputs: bool,
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
            let in_shapes: Vec<Vec<usize>> = grp.ins.iter().map(|&i| nodes[i].meta.shape.clone()).collect();
            let in_lens: Vec<usize> = in_shapes.iter().map(|s| s.iter().product()).collect();
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
            let rows = match pack {
                Some((k, _)) => in_lens[0] / builder.vars[k].shape[0].max(1),
                None => 0,
            };
            steps.push(Step {
                rows,
                head: grp.head.clone(),
                ins,
                in_shapes,
                in_lens,
                tail,
                out: group_loc[g],
                meta: grp.meta.clone(),
                pack,
                path: Arc::clone(&grp.path),
            });
        }
        let outputs: Vec<(Loc, Meta)> =
            outputs.iter().map(|&o| Ok((loc_of(o)?, nodes[o].meta.clone()))).collect::<Result<_>>()?;
        let writes = builder
            .writes
            .iter()
            .map(|w| Ok((w.clone(), loc_of(w.node)?, nodes[w.node].meta.clone())))
            .collect::<Result<_>>()?;
        let chain = Chain::of(&steps, &inputs, &outputs);
        let own_outputs = outputs.iter().enumerate().all(|(k, (l, _))| *l == Loc::Out(k));
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Program {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            guards: builder.guards,
            name,
            inputs,
            vars: builder.vars,
            rngs: builder.rngs,
            forks: builder.forks,
            consts,
            steps,
            outputs,
            writes,
            slots,
            arenas: Mutex::new(Vec::new()),
            graph_nodes: n,
            chain,
            own_outputs,
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

    /// Runs the program in `scope` on `inputs` (each contiguous, of the traced shapes). Output
    /// `k` is written into `ext[k]` where `ext` has one (f32, of the output's length); every
    /// other output is handed to `sink` in order.
    pub(crate) fn run(
        &self,
        scope: &mut Scope<'_, '_>,
        packs: &PackStore,
        inputs: &[(Data<'_>, &[usize])],
        ext: &mut [&mut [f32]],
        sink: &mut dyn FnMut(usize, Buf, &Meta) -> Result<()>,
    ) -> Result<()> {
        self.check_io(inputs, ext).map_err(|e| with_path(e, &scope.path()))?;
        let mut arena = self.arenas.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        let mut run = |arena: &mut Arena| -> Result<()> {
            // RNG keys first: counters advance exactly as the eager body advanced them.
            scope.replay_rngs(&self.rngs, &self.forks, &mut arena.keys)?;
            let bi = self.bind(arena, scope, packs)?;
            let binding = &arena.bindings[bi];
            let call = Call { binding, keys: &arena.keys, inputs };
            self.exec(&mut arena.scratch, call, ext)?;
            // Variable writes (mutable collections), then outputs.
            let view = Views { program: self, scratch: &arena.scratch, call, ext };
            for (w, l, meta) in &self.writes {
                let Data::F32(d) = view.data_len(*l, meta.len()) else {
                    return Err(Error::invalid("", "internal: non-f32 variable write"));
                };
                let a = ArrayD::from_shape_vec(IxDyn(&meta.shape), d.to_vec())
                    .map_err(|e| Error::invalid("", e.to_string()))?;
                scope.write_leaf_below(&w.collection, &w.rel, &w.name, Leaf::new(a));
            }
            self.collect(&mut arena.scratch, call, ext, sink)
        };
        let r = run(&mut arena);
        self.arenas.lock().unwrap_or_else(|e| e.into_inner()).push(arena);
        r
    }

    /// Checks the inputs against the trace and the caller's output buffers against the outputs.
    pub(crate) fn check_io(&self, inputs: &[(Data<'_>, &[usize])], ext: &[&mut [f32]]) -> Result<()> {
        if inputs.len() != self.inputs.len()
            || inputs
                .iter()
                .zip(&self.inputs)
                .any(|((d, s), m)| *s != m.shape.as_slice() || d.dtype() != m.dtype || d.len() != m.len())
        {
            return Err(Error::invalid("", "internal: program inputs do not match the trace"));
        }
        for (k, e) in ext.iter().enumerate() {
            match self.outputs.get(k) {
                Some((_, m)) if m.dtype == DType::F32 && m.len() == e.len() => {}
                m => {
                    return Err(Error::InputShape {
                        path: String::new(),
                        expected: match m {
                            Some((_, m)) => format!("output {k} in a buffer of {} f32 elements ({m})", m.len()),
                            None => format!("at most {} output buffers", self.outputs.len()),
                        },
                        found: vec![e.len()],
                    })
                }
            }
        }
        Ok(())
    }

    /// Plans `scratch`'s slots for this program (a scratch planned for another program, a
    /// workspace passed around, is replanned).
    pub(crate) fn plan(&self, scratch: &mut Scratch) -> Result<()> {
        if scratch.planned != self.id {
            scratch.slots = self.slots.iter().map(Buf::new).collect::<Result<_>>()?;
            scratch.planned = self.id;
        }
        Ok(())
    }

    /// Hands every output not written into `ext` to `sink`, in order: a step's own buffer
    /// moves out of `scratch`, any other value (an input, a variable, a shared buffer) is copied.
    pub(crate) fn collect(
        &self,
        scratch: &mut Scratch,
        call: Call<'_, '_>,
        ext: &mut [&mut [f32]],
        sink: &mut dyn FnMut(usize, Buf, &Meta) -> Result<()>,
    ) -> Result<()> {
        for (k, (l, meta)) in self.outputs.iter().enumerate().skip(ext.len()) {
            let buf = match (*l, scratch.outs.get_mut(k).and_then(Option::take)) {
                (Loc::Out(j), Some(buf)) if j == k => buf,
                _ => {
                    let view = Views { program: self, scratch, call, ext };
                    copy_data(view.data_len(*l, meta.len()), meta)?
                }
            };
            sink(k, buf, meta)?;
        }
        Ok(())
    }

    /// Runs the steps: intermediates in `scratch`'s planned slots, output `k` into `ext[k]`
    /// where `ext` has one, else into a fresh buffer left in `scratch`. Outputs that are not a
    /// step's own buffer (an input, a variable, another output) are copied into `ext` at the end.
    pub(crate) fn exec(&self, scratch: &mut Scratch, call: Call<'_, '_>, ext: &mut [&mut [f32]]) -> Result<()> {
        let binding = call.binding;
        if let (Some(_), [(Data::F32(x), _)]) = (&self.chain, call.inputs) {
            if let [y] = ext {
                return self.run_chain(binding, x, y);
            }
            let mut y = crate::fallible::try_zeroed("program output", self.outputs[0].1.len())?;
            self.run_chain(binding, x, &mut y)?;
            scratch.outs.clear();
            scratch.outs.push(Some(Buf::F32(y)));
            return Ok(());
        }
        self.plan(scratch)?;
        if ext.len() < self.outputs.len() {
            scratch.outs.clear();
            scratch.outs.resize_with(self.outputs.len(), || None);
        }
        let threads = num_threads();
        for (index, step) in self.steps.iter().enumerate() {
            let len = step.meta.len();
            let res = match step.out {
                Loc::Out(k) if k < ext.len() => {
                    let e = std::mem::take(&mut ext[k]);
                    let view = Views { program: self, scratch, call, ext };
                    let r = view.exec(index, step, &mut DataMut::F32(&mut e[..len]), threads);
                    ext[k] = e;
                    r
                }
                Loc::Slot(s) => {
                    let mut out = std::mem::replace(&mut scratch.slots[s], Buf::F32(Vec::new()));
                    let view = Views { program: self, scratch, call, ext };
                    let r = view.exec(index, step, &mut out.data_mut(len), threads);
                    scratch.slots[s] = out;
                    r
                }
                Loc::Out(k) => {
                    let mut out = Buf::new(&step.meta)?;
                    let view = Views { program: self, scratch, call, ext };
                    let r = view.exec(index, step, &mut out.data_mut(len), threads);
                    scratch.outs[k] = Some(out);
                    r
                }
                _ => return Err(Error::invalid("", "internal: step writes an input")),
            };
            res.map_err(|e| with_path(e, &step.path))?;
        }
        self.copy_shared_outputs(scratch, call, ext)
    }

    /// Readies this thread to run the program without allocating: a chain's two buffers, any
    /// other program's scratch.
    pub(crate) fn prepare(&self) -> Result<()> {
        match &self.chain {
            Some(chain) => with_buffers(chain.rows.saturating_mul(chain.widest), |_, _| Ok(())),
            None => crate::jit::bound::with_scratch(self, |s| self.plan(s)),
        }
    }

    /// Runs a [`Chain`] program from `x` into `y` (its one input and output): the layers in
    /// turn on this thread's two buffers. With several threads, a chain of many rows splits by
    /// rows through every layer, any other splits each layer.
    pub(crate) fn run_chain(&self, binding: &Binding, x: &[f32], y: &mut [f32]) -> Result<()> {
        let Some(chain) = &self.chain else { return Err(Error::invalid("", "internal: not a chain program")) };
        let threads = num_threads();
        if let ([first, .., last], true) = (chain.links.as_slice(), threads >= 2) {
            // Each thread of a row split reads every layer's weights: worth it from 64 rows a
            // thread (2 threads here, 784→512→512→10: 1.76–1.81× at batch 1024, where per-layer
            // splits gave 1.61–1.78×; at batch 64 per-layer column splits won, 1.30–1.47×
            // against 1.23–1.39×, each thread reading half the weights).
            let rows = chain.rows;
            let t =
                threads.min(rows / ROW_CHAIN_ROWS).min(rows.saturating_mul(chain.macs_per_row) / MIN_MACS_PER_THREAD);
            if t >= 2 {
                return split_rows(x, rows, first.d, y, last.f, t, &|xb, r, yb| {
                    chain_rows(chain, &binding.packs, xb, r, yb, 1)
                });
            }
        }
        chain_rows(chain, &binding.packs, x, chain.rows, y, threads)
    }

    /// Outputs written into `ext` that are not their own step's buffer, copied at the end.
    fn copy_shared_outputs(&self, scratch: &Scratch, call: Call<'_, '_>, ext: &mut [&mut [f32]]) -> Result<()> {
        if self.own_outputs {
            return Ok(());
        }
        for k in 0..ext.len() {
            let (l, meta) = &self.outputs[k];
            if *l != Loc::Out(k) {
                let e = std::mem::take(&mut ext[k]);
                let view = Views { program: self, scratch, call, ext };
                let Data::F32(d) = view.data_len(*l, meta.len()) else {
                    return Err(Error::invalid("", "a caller buffer needs an f32 output"));
                };
                e.copy_from_slice(d);
                ext[k] = e;
            }
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
        let binding = self.binding(scope, packs)?;
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

    /// Reads, checks and packs the variables this program reads, as `scope` sees them.
    pub(crate) fn binding(&self, scope: &Scope<'_, '_>, packs: &PackStore) -> Result<Binding> {
        let generation = scope.frame().input.map_or(0, |v| v.generation());
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
        Ok(Binding { generation, path: scope.node.names(), leaves, packs: packed })
    }

    /// The kernel and bias of a program that is one Dense layer (a one-layer chain), unpacked.
    pub(crate) fn single_dense_params<'b>(&self, binding: &'b Binding) -> (&'b [f32], Option<&'b [f32]>) {
        match self.steps.first().and_then(|s| s.pack) {
            Some((k, b)) => (binding.leaves[k].slice(), b.map(|b| binding.leaves[b].slice())),
            None => (&[], None),
        }
    }

    /// Whether every `has_variable` answer the trace depended on holds for `scope`'s variables
    /// (a program traced without `batch_stats` is not the program for variables that have them).
    pub(crate) fn guards_hold(&self, scope: &Scope<'_, '_>) -> bool {
        self.guards.iter().all(|g| scope.read_leaf_below(&g.collection, &g.rel, &g.name).is_some() == g.present)
    }

    /// Whether the program reads RNG streams or writes variables (what a bound entry, which
    /// has neither, cannot run).
    pub(crate) fn is_pure_inference(&self) -> bool {
        self.rngs.is_empty() && self.forks.is_empty() && self.writes.is_empty()
    }

    /// A chain program's layers bound to `binding`'s packed weights (`None` for other programs).
    pub(crate) fn chain_layers(&self, binding: &Binding) -> Option<ChainLayers> {
        let chain = self.chain.as_ref()?;
        let layers = chain.links.iter().zip(&binding.packs).map(|(l, p)| Some((Arc::clone(p.as_ref()?), l.act)));
        let layers: Box<[_]> = layers.collect::<Option<_>>()?;
        if layers.len() != chain.links.len() {
            return None;
        }
        ChainLayers::new(layers, chain.rows, chain.widest)
    }
}

/// Every layer of `chain` for `rows` rows of `x` into `y` (each layer split over `threads`),
/// the intermediates in this thread's two buffers (reused from call to call).
fn chain_rows(
    chain: &Chain,
    packs: &[Option<Arc<PackedDense>>],
    x: &[f32],
    rows: usize,
    y: &mut [f32],
    threads: usize,
) -> Result<()> {
    let internal = || Error::invalid("", "internal: a chain layer without packed weights");
    let layers = chain.links.iter().zip(packs).map(|(link, p)| Ok((p.as_deref().ok_or_else(internal)?, link.act)));
    through_layers(layers, rows, chain.widest, x, y, |p, x, y, act| {
        if threads <= 1 {
            p.apply(x, rows, y, act)
        } else {
            apply_threads(p, x, rows, y, act, threads)
        }
    })
}

fn with_path(e: Error, path: &str) -> Error {
    match e {
        Error::InvalidArgument { path: p, message } if p.is_empty() => {
            Error::InvalidArgument { path: path.into(), message }
        }
        e => e,
    }
}

/// What one run of a program reads besides its buffers: the bound parameters, the RNG keys
/// drawn for it and the inputs.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a, 'i> {
    pub(crate) binding: &'a Binding,
    pub(crate) keys: &'a [[u32; 2]],
    pub(crate) inputs: &'a [(Data<'i>, &'i [usize])],
}

impl<'a, 'i> Call<'a, 'i> {
    /// A run of an inference program (no RNG keys).
    pub(crate) fn new(binding: &'a Binding, inputs: &'a [(Data<'i>, &'i [usize])]) -> Self {
        Call { binding, keys: &[], inputs }
    }
}

/// Read access to every value a step may read.
struct Views<'a, 'i> {
    program: &'a Program,
    scratch: &'a Scratch,
    call: Call<'a, 'i>,
    /// Outputs written into caller buffers (the one being written is an empty slice).
    ext: &'a [&'a mut [f32]],
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
            Loc::Input(i) => self.call.inputs.get(i).map_or(Data::F32(&[]), |d| d.0),
            Loc::Var(i) => Data::F32(self.call.binding.leaves[i].slice()),
            Loc::Rng(i) => Data::U32(&self.call.keys[i]),
            Loc::Const(i) => self.program.consts[i].data(),
            Loc::Slot(s) => self.scratch.slots[s].data(),
            Loc::Out(k) if k < self.ext.len() => Data::F32(&self.ext[k][..]),
            Loc::Out(k) => self.scratch.outs[k].as_ref().map_or(Data::F32(&[]), Buf::data),
        }
    }

    fn exec(&self, index: usize, step: &Step, out: &mut DataMut<'_>, threads: usize) -> Result<()> {
        let packed = self.call.binding.packs.get(index).and_then(Option::as_deref);
        if let (Op::Linear { act, .. }, Some(p), DataMut::F32(y)) = (&step.head, packed, &mut *out) {
            // Packed weights: only `x` is read.
            let Data::F32(x) = self.data_len(step.ins[0], step.in_lens[0]) else {
                return Err(Error::invalid("", "internal: dense input"));
            };
            apply_threads(p, x, step.rows, y, *act, threads)?;
            return self.tails(step, out);
        }
        // Input data on the stack for the usual ≤ 4 inputs (no allocation per call).
        let empty: (Data<'_>, &[usize]) = (Data::F32(&[]), &[]);
        let mut small = [empty; 4];
        let big: Vec<(Data<'_>, &[usize])>;
        let ins: &[(Data<'_>, &[usize])] = if step.ins.len() <= 4 {
            for (k, ((&l, s), &n)) in step.ins.iter().zip(&step.in_shapes).zip(&step.in_lens).enumerate() {
                small[k] = (self.data_len(l, n), s.as_slice());
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
    #[inline]
    fn tails(&self, step: &Step, out: &mut DataMut<'_>) -> Result<()> {
        if step.tail.is_empty() {
            return Ok(());
        }
        self.tails_slow(step, out)
    }

    fn tails_slow(&self, step: &Step, out: &mut DataMut<'_>) -> Result<()> {
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

/// One line of a program's listing for RNG fork `j`.
fn write_fork(f: &mut fmt::Formatter<'_>, j: usize, k: &RngForkRead) -> fmt::Result {
    write!(f, "  %fork{j} = fork_rngs [{}] at /{}", k.streams.join(", "), k.rel.join("/"))?;
    match k.parent {
        Some(p) => writeln!(f, " from %fork{p}"),
        None => writeln!(f),
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
        let mut forks = self.forks.iter().enumerate().peekable();
        for (i, r) in self.rngs.iter().enumerate() {
            while let Some((j, k)) = forks.next_if(|(_, k)| k.before <= i) {
                write_fork(f, j, k)?;
            }
            write!(f, "  %key{i} = make_rng \"{}\" at /{} : u32[2]", r.stream, r.rel.join("/"))?;
            match r.fork {
                Some(j) => writeln!(f, " from %fork{j}")?,
                None => writeln!(f)?,
            }
        }
        for (j, k) in forks {
            write_fork(f, j, k)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{ChainLayers, STACK_FLOATS};
    use crate::kernel::{best_isa, Activation, PackedDense};

    fn layer(d: usize, f: usize, seed: usize) -> Arc<PackedDense> {
        let w: Vec<f32> = (0..d * f).map(|i| ((i * 7 + seed) % 11) as f32 * 0.05 - 0.25).collect();
        let b: Vec<f32> = (0..f).map(|i| (i % 3) as f32 * 0.1 - 0.1).collect();
        Arc::new(PackedDense::new(best_isa(), &w, Some(&b), d, f).unwrap())
    }

    /// Chains of 2 to 5 layers, with intermediates on the stack and in the thread's buffers,
    /// give the bits of their layers applied one by one; layers that do not connect, or ends
    /// of other lengths, are refused.
    #[test]
    fn chains_equal_their_layers_one_by_one() {
        for widths in [&[3usize, 8, 2][..], &[5, 16, 16, 4], &[4, 9, 33, 7, 3], &[2, 40, 1, 6, 6, 2]] {
            for rows in [1usize, 3, 40] {
                let layers: Vec<(Arc<PackedDense>, Activation)> = widths
                    .windows(2)
                    .enumerate()
                    .map(|(i, w)| {
                        let act = if i + 2 < widths.len() { Activation::Relu } else { Activation::Identity };
                        (layer(w[0], w[1], i), act)
                    })
                    .collect();
                let widest = widths[1..widths.len() - 1].iter().copied().max().unwrap();
                let x: Vec<f32> = (0..rows * widths[0]).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
                let mut want = x.clone();
                for (p, act) in &layers {
                    let mut next = vec![0.0f32; rows * p.f()];
                    p.apply(&want, rows, &mut next, *act).unwrap();
                    want = next;
                }
                let chain = ChainLayers::new(layers.clone().into(), rows, widest).unwrap();
                let mut y = vec![f32::NAN; want.len()];
                chain.run(&x, &mut y).unwrap();
                let what = format!("{widths:?}, {rows} rows ({} intermediate floats)", rows * widest);
                assert_eq!(
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{what}"
                );
                assert!(chain.run(&x[1..], &mut y).is_err() && chain.run(&x, &mut y[1..]).is_err(), "{what}");
            }
        }
        // 1 and 3 rows keep their intermediates on the stack; 40 rows of 40 do not.
        const { assert!(3 * 40 <= STACK_FLOATS && 40 * 40 > STACK_FLOATS) };
        let unconnected = vec![(layer(3, 4, 0), Activation::Relu), (layer(5, 2, 1), Activation::Identity)];
        assert!(ChainLayers::new(unconnected.into(), 1, 4).is_none());
        let too_wide = vec![(layer(3, 8, 0), Activation::Relu), (layer(8, 2, 1), Activation::Identity)];
        assert!(ChainLayers::new(too_wide.into(), 1, 4).is_none());
        assert!(ChainLayers::new(Vec::new().into(), 1, 4).is_none());
    }
}
