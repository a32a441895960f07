//! Bound entries (Flax's `module.bind(variables)`, compiled): a lifted module's program bound
//! once to one set of variables at one input signature, run on caller buffers with no
//! allocation per call ([`Bound`]), or with const-generic widths, arrays in and out
//! ([`Fixed`]).
//!
//! Both are `Send + Sync` and take `&self`: each call runs on scratch buffers kept per thread
//! (for the last few bound programs it ran; no lock, threads never share one), or the caller
//! passes its own
//! ([`Bound::workspace`], [`Bound::run`]). The parameters are a snapshot: the bound entry holds
//! the arrays it was bound to (shared, not copied) and packs them once; bind again for new
//! values. A program that is a chain of Dense layers (an MLP) runs its kernels directly, on
//! two buffers on the stack (small intermediates) or of the calling thread.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::jit::cache::PackStore;
use crate::jit::lift::Lifted;
use crate::jit::program::{Binding, Call, ChainLayers, Program, Scratch};
use crate::kernel::parallel::num_threads;
#[cfg(target_arch = "x86_64")]
use crate::kernel::InlineDense;
use crate::kernel::{Activation, FixedDense, PackedDense};
use crate::module::Args;
use crate::scope::Scope;
use crate::tensor::op::Data;
use crate::tensor::{DType, Meta};

/// The scratch buffers of one running call of a bound entry (see [`Bound::workspace`]).
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(2);
/// let x = [1.0f32, 2.0, 3.0];
/// let bound = m.bind(&m.init(nn::PRNGKey(0), &x)?, &x)?;
/// let mut ws = bound.workspace(); // one per thread
/// let mut y = [0.0f32; 2];
/// bound.run(&mut ws, &[&x], &mut [&mut y])?;
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Default)]
pub struct Workspace {
    scratch: Scratch,
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspace").finish_non_exhaustive()
    }
}

/// A program bound to its parameters: what [`Bound`] and [`Fixed`] run.
struct Core {
    program: Arc<Program>,
    binding: Binding,
    /// The program is a chain (an MLP, a Dense): it runs after two length checks.
    direct: Option<Direct>,
    /// Element counts of the inputs and outputs, `None` where one is not f32.
    in_lens: Option<Vec<usize>>,
    out_lens: Option<Vec<usize>>,
}

impl Core {
    fn new(program: Arc<Program>, scope: &Scope<'_, '_>, packs: &PackStore) -> Result<Core> {
        if !program.is_pure_inference() {
            return Err(Error::invalid(
                scope.path(),
                "a bound entry runs an inference program, one that reads no RNG stream and writes no \
                 collection; this module does (Dropout in train mode, BatchNorm updating batch_stats, \
                 put_variable): use apply_with",
            ));
        }
        let binding = program.binding(scope, packs)?;
        let direct = Direct::new(&program, &binding);
        let lens = |metas: &mut dyn Iterator<Item = &Meta>| {
            metas.map(|m| (m.dtype == DType::F32).then(|| m.len())).collect::<Option<Vec<usize>>>()
        };
        let in_lens = lens(&mut program.input_metas().iter());
        let out_lens = lens(&mut program.output_metas());
        Ok(Core { program, binding, direct, in_lens, out_lens })
    }

    /// Checks f32 inputs against the program (an `InputShape` error naming the expected sizes).
    fn check_inputs(&self, inputs: &[&[f32]]) -> Result<()> {
        if !same_lens(self.in_lens.as_deref(), inputs.iter().map(|x| x.len()), inputs.len()) {
            return Err(Error::InputShape {
                path: String::new(),
                expected: describe("f32 inputs", self.program.input_metas().iter()),
                found: inputs.iter().map(|x| x.len()).collect(),
            });
        }
        Ok(())
    }

    fn check_outputs(&self, outputs: &[&mut [f32]]) -> Result<()> {
        if !same_lens(self.out_lens.as_deref(), outputs.iter().map(|y| y.len()), outputs.len()) {
            return Err(Error::InputShape {
                path: String::new(),
                expected: describe("f32 output buffers", self.program.output_metas()),
                found: outputs.iter().map(|y| y.len()).collect(),
            });
        }
        Ok(())
    }

    /// Runs on checked f32 buffers: a chain directly (in line, into every entry), any other
    /// program through its scratch.
    #[inline]
    fn run(&self, ws: Option<&mut Scratch>, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) -> Result<()> {
        if let (Some(d), [x], [y]) = (&self.direct, inputs, &mut *outputs) {
            if d.fits(x, y) {
                return d.run(&self.program, &self.binding, x, y);
            }
        }
        self.exec(ws, inputs, outputs)
    }

    /// [`run`](Core::run) of a program that is not a chain, out of line.
    #[inline(never)]
    fn exec(&self, ws: Option<&mut Scratch>, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) -> Result<()> {
        let shapes = self.program.input_metas();
        let data = |k: usize| (Data::F32(inputs[k]), shapes[k].shape.as_slice());
        let mut small;
        let big: Vec<(Data<'_>, &[usize])>;
        let data: &[(Data<'_>, &[usize])] = if inputs.len() <= 2 {
            small = [(Data::F32(&[]), &[][..]); 2];
            for (k, s) in small.iter_mut().enumerate().take(inputs.len()) {
                *s = data(k);
            }
            &small[..inputs.len()]
        } else {
            big = (0..inputs.len()).map(data).collect();
            &big
        };
        match ws {
            Some(ws) => self.program.exec(ws, Call::new(&self.binding, data), outputs),
            None => with_scratch(&self.program, |scratch| {
                self.program.exec(scratch, Call::new(&self.binding, data), outputs)
            }),
        }
    }
}

/// How many programs' scratch buffers each thread keeps for the bound entries it ran last.
const SCRATCH_PER_THREAD: usize = 4;

thread_local! {
    /// Per thread: the scratch of the bound programs it ran last (most recent last).
    static SCRATCH: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch for `program` (no lock: each thread has its own). A
/// re-entrant call (a host callback running a bound entry) gets a fresh one.
pub(crate) fn with_scratch<R>(program: &Program, f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut kept) => {
            let i = match kept.iter().rposition(|s| s.planned_for(program)) {
                Some(i) => i,
                None => {
                    if kept.len() >= SCRATCH_PER_THREAD {
                        kept.remove(0); // the least recent
                    }
                    kept.push(Scratch::default());
                    kept.len() - 1
                }
            };
            f(&mut kept[i])
        }
        Err(_) => f(&mut Scratch::default()),
    })
}

/// How a bound chain program (an MLP, a Dense) runs with the fewest dependent loads: its input
/// and output element counts and its layers' packed weights themselves (one thread then reads
/// neither the program nor the binding: a bound 3 → 4 Dense 13–16 → 8–10 ns).
pub(crate) struct Direct {
    n: usize,
    m: usize,
    layers: ChainLayers,
}

impl Direct {
    /// `None` where the program is not a chain.
    pub(crate) fn new(program: &Program, binding: &Binding) -> Option<Direct> {
        match (program.chain_layers(binding), program.input_metas(), program.output_metas().next()) {
            (Some(layers), [x], Some(y)) => Some(Direct { n: x.len(), m: y.len(), layers }),
            _ => None,
        }
    }

    /// Whether `x` and `y` have the program's input and output lengths (else the caller's
    /// checked path says what it expected).
    #[inline]
    pub(crate) fn fits(&self, x: &[f32], y: &[f32]) -> bool {
        x.len() == self.n && y.len() == self.m
    }

    /// The one layer of a single-Dense program.
    pub(crate) fn single(&self) -> Option<(&Arc<PackedDense>, Activation)> {
        self.layers.single()
    }

    /// Runs `program` (the one this was made for) from `x` into `y`, which [`fits`](Direct::fits).
    /// The result goes straight to the caller's return slot: an `Option` around it would be
    /// copied on every call (an error value is 104 bytes). Always inlined, as the kernel call
    /// of a lone Dense in it is: a bound 3 → 4 Dense is ~40 instructions, a call adds 30.
    #[inline(always)]
    pub(crate) fn run(&self, program: &Program, binding: &Binding, x: &[f32], y: &mut [f32]) -> Result<()> {
        if num_threads() == 1 {
            return self.layers.run(x, y);
        }
        program.run_chain(binding, x, y)
    }
}

/// Runs `program` bound to `binding` on one f32 input of `shape` into one output buffer, on
/// this thread's scratch (a chain program's exec runs its layers without one).
pub(crate) fn run_one(program: &Program, binding: &Binding, x: &[f32], shape: &[usize], y: &mut [f32]) -> Result<()> {
    with_scratch(program, |s| program.exec(s, Call::new(binding, &[(Data::F32(x), shape)]), &mut [y]))
}

/// Whether the buffers' lengths are the expected f32 element counts.
fn same_lens(expected: Option<&[usize]>, found: impl Iterator<Item = usize>, count: usize) -> bool {
    expected.is_some_and(|n| n.len() == count && n.iter().copied().eq(found))
}

fn describe<'m>(what: &str, metas: impl Iterator<Item = &'m Meta>) -> String {
    let list: Vec<String> = metas.map(|m| format!("{m} ({} elements)", m.len())).collect();
    format!("{what} [{}]", list.join(", "))
}

/// A lifted module's compiled program bound to one set of variables at one input signature
/// (shapes, dtypes and static arguments): see [`Lifted::bind`] and the [`jit` module docs](crate::jit).
///
/// ```
/// use nnjit::nn::{self, Lifted, Module, Scope, Tensor};
///
/// #[nn::jit]
/// #[derive(Debug, Clone, PartialEq)]
/// struct Mlp { hidden: usize, out: usize }
///
/// impl Module for Mlp {
///     type Input = Tensor;
///     type Output = Tensor;
///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
///         let h = nn::relu(s.call(&nn::Dense::new(self.hidden), x)?);
///         s.call(&nn::Dense::new(self.out), h)
///     }
/// }
///
/// let m = JitMlp { hidden: 8, out: 2 };
/// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
/// let vars = m.init(nn::PRNGKey(0), &x)?;
/// let bound = m.bind(&vars, &x)?; // compiled, parameters packed once
/// let mut y = [0.0f32; 2];
/// bound.apply_into(&[1.0, 2.0, 3.0], &mut y)?; // caller buffers, no allocation
/// assert_eq!(y.to_vec(), m.apply(&vars, &x)?.into_raw_vec_and_offset().0); // bit for bit
/// assert!(bound.apply_into(&[1.0, 2.0], &mut y).is_err()); // bound to 3 inputs
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct Bound<L: Lifted> {
    core: Core,
    input: L::Input,
    output: L::Output,
    _lift: PhantomData<fn() -> L>,
}

impl<L: Lifted> fmt::Debug for Bound<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound").field("program", &self.core.program).finish_non_exhaustive()
    }
}

impl<L: Lifted> Bound<L> {
    pub(crate) fn new(
        program: Arc<Program>,
        scope: &Scope<'_, '_>,
        packs: &PackStore,
        input: L::Input,
        output: L::Output,
    ) -> Result<Self> {
        let input = input.map_tensors(&mut |_| crate::tensor::Tensor::scalar(0.0));
        Ok(Bound { core: Core::new(program, scope, packs)?, input, output, _lift: PhantomData })
    }

    /// The compiled program this entry runs (`Display` prints it).
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = [1.0f32, 2.0, 3.0];
    /// let bound = m.bind(&m.init(nn::PRNGKey(0), &x)?, &x)?;
    /// assert_eq!(bound.program().num_steps(), 1);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn program(&self) -> &Program {
        &self.core.program
    }

    /// The input shapes this entry was bound to, in order.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0]];
    /// let bound = m.bind(&m.init(nn::PRNGKey(0), &x)?, &x)?;
    /// assert_eq!(bound.input_shapes(), [&[1usize, 3][..]]);
    /// assert_eq!(bound.output_shapes(), [&[1usize, 2][..]]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn input_shapes(&self) -> Vec<&[usize]> {
        self.core.program.input_metas().iter().map(|m| m.shape.as_slice()).collect()
    }

    /// The output shapes, in order.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = [1.0f32, 2.0, 3.0];
    /// let bound = m.bind(&m.init(nn::PRNGKey(0), &x)?, &x)?;
    /// assert_eq!(bound.output_shapes(), [&[2usize][..]]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn output_shapes(&self) -> Vec<&[usize]> {
        self.core.program.output_metas().map(|m| m.shape.as_slice()).collect()
    }

    /// A scratch workspace for [`run`](Bound::run): one per thread that calls it.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = [1.0f32, 2.0, 3.0];
    /// let bound = m.bind(&m.init(nn::PRNGKey(0), &x)?, &x)?;
    /// std::thread::scope(|t| {
    ///     for _ in 0..2 {
    ///         t.spawn(|| {
    ///             let mut ws = bound.workspace();
    ///             let mut y = [0.0f32; 2];
    ///             bound.run(&mut ws, &[&x], &mut [&mut y]).map(|()| y)
    ///         });
    ///     }
    /// });
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[must_use]
    pub fn workspace(&self) -> Workspace {
        Workspace::default()
    }

    /// Runs on caller buffers with the caller's workspace: each input a contiguous f32 slice of
    /// its bound shape's length, each output buffer likewise. No allocation once `ws` has run
    /// this entry; an `InputShape` error names the expected sizes.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = [1.0f32, 2.0, 3.0];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let bound = m.bind(&vars, &x)?;
    /// let (mut ws, mut y) = (bound.workspace(), [0.0f32; 2]);
    /// bound.run(&mut ws, &[&x], &mut [&mut y])?;
    /// assert_eq!(y.to_vec(), m.apply(&vars, &x)?.into_raw_vec_and_offset().0);
    /// assert!(bound.run(&mut ws, &[&x[..2]], &mut [&mut y]).is_err());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn run(&self, ws: &mut Workspace, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) -> Result<()> {
        self.core.check_inputs(inputs)?;
        self.core.check_outputs(outputs)?;
        self.core.run(Some(&mut ws.scratch), inputs, outputs)
    }

    /// One input into one output buffer (Flax's `donate_argnums`), on this thread's scratch
    /// buffers: no allocation per call, callable from several threads at once.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(4);
    /// let x = [1.0f32, 2.0, 3.0];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let bound = m.bind(&vars, &x)?;
    /// let mut out = [0.0f32; 4];
    /// bound.apply_into(&x, &mut out)?;
    /// assert_eq!(out.map(f32::to_bits), [0x4042D553, 0xBEA66F6C, 0x3FACE59C, 0x402D8518]);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline]
    pub fn apply_into(&self, x: &[f32], out: &mut [f32]) -> Result<()> {
        // A chain (an MLP, a Dense): two length checks and the kernels.
        if let Some(d) = self.core.direct.as_ref().filter(|d| d.fits(x, out)) {
            return d.run(&self.core.program, &self.core.binding, x, out);
        }
        let inputs = [x];
        let mut outputs = [out];
        self.core.check_inputs(&inputs)?;
        self.core.check_outputs(&outputs)?;
        self.core.run(None, &inputs, &mut outputs)
    }

    /// The module's apply on the bound parameters: `x` must have the bound shapes and static
    /// arguments; returns what [`Module::apply`](crate::module::Module::apply) returns.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(4);
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let bound = m.bind(&vars, &x)?;
    /// assert_eq!(bound.apply(&x)?, m.apply(&vars, &x)?);
    /// assert!(bound.apply(&[1.0f32, 2.0, 3.0]).is_err()); // bound to (2, 3)
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn apply(&self, x: impl crate::module::Feed<L::Input>) -> Result<<L::Output as Args>::Host> {
        let x = x.feed()?;
        let metas = self.core.program.input_metas();
        let mut values = Vec::new();
        let mut failed = Ok(());
        x.for_each_tensor(&mut |t| match t.value("bound apply") {
            Ok(v) => values.push(v),
            Err(e) => failed = Err(e),
        });
        failed?;
        if !x.statics_eq(&self.input)
            || values.len() != metas.len()
            || values.iter().zip(metas).any(|(v, m)| v.shape() != m.shape.as_slice() || v.dtype() != m.dtype)
        {
            return Err(Error::InputShape {
                path: String::new(),
                expected: describe("the bound inputs", metas.iter()) + " and static arguments",
                found: values.iter().flat_map(|v| v.shape().to_vec()).collect(),
            });
        }
        let data: Vec<(Data<'_>, &[usize])> = values.iter().map(|v| (v.data(), v.shape())).collect();
        let mut arrays: Vec<ArrayD<f32>> = Vec::new();
        let (program, binding) = (&self.core.program, &self.core.binding);
        with_scratch(program, |scratch| {
            let call = Call::new(binding, &data);
            program.exec(scratch, call, &mut [])?;
            program.collect(scratch, call, &mut [], &mut |_, buf, meta| {
                arrays.push(buf.into_f32_array(&meta.shape)?);
                Ok(())
            })
        })?;
        self.output.host_from_arrays(&mut arrays.into_iter())
    }

    /// The const-generic entry of this binding: one f32 input of `B` rows of `D`, one f32 output
    /// of `B` rows of `F`, arrays in and out (see [`Fixed`]). An error if the bound shapes are
    /// not those.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(4);
    /// let x = ndarray::array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let fixed = m.bind(&vars, &x)?.into_fixed::<3, 4, 2>()?;
    /// let y: [[f32; 4]; 2] = fixed.apply_batch(&[[1.0, 2.0, 3.0], [0.0; 3]])?;
    /// assert_eq!(y.as_flattened(), m.apply(&vars, &x)?.as_slice().unwrap());
    /// assert!(m.bind(&vars, &x)?.into_fixed::<3, 4, 1>().is_err()); // bound to 2 rows
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn into_fixed<const D: usize, const F: usize, const B: usize>(self) -> Result<Fixed<D, F, B>> {
        Fixed::new(self.core)
    }
}

/// A bound entry whose widths are const generics: `B` rows (default 1) of `D` inputs in, `B`
/// rows of `F` outputs out, arrays on the stack, dims checked once when bound
/// ([`Lifted::bind_fixed`], [`Bound::into_fixed`]) and by the array types at every call. A
/// program that is one Dense layer runs on a kernel monomorphised for `D` and `F` (fully
/// unrolled by rustc for small layers); any other program runs its compiled steps.
///
/// ```
/// use nnjit::nn::{self, Lifted, Module};
/// let m = nn::JitDense::new(4);
/// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0, 3.0])?;
/// let fixed = m.bind_fixed::<3, 4>(&vars)?;
/// let y: [f32; 4] = fixed.apply(&[1.0, 2.0, 3.0])?;
/// assert_eq!(y.map(f32::to_bits), [0x4042D553, 0xBEA66F6C, 0x3FACE59C, 0x402D8518]);
/// assert!(m.bind_fixed::<2, 4>(&vars).is_err()); // the kernel is (3, 4)
/// # Ok::<(), nnjit::Error>(())
/// ```
pub struct Fixed<const D: usize, const F: usize, const B: usize = 1> {
    core: Core,
    /// A program that is one Dense: its kernel and activation, never replaced (`inline`
    /// points into it).
    dense: Option<(FixedDense<D, F>, Activation)>,
    /// `dense`'s inline kernel, where it has one (identity, or relu after it): tested first,
    /// each alone.
    #[cfg(target_arch = "x86_64")]
    inline: Option<InlineDense<D, F, false>>,
    #[cfg(target_arch = "x86_64")]
    inline_relu: Option<InlineDense<D, F, true>>,
}

impl<const D: usize, const F: usize, const B: usize> fmt::Debug for Fixed<D, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixed")
            .field("d", &D)
            .field("f", &F)
            .field("b", &B)
            .field("program", &self.core.program)
            .finish_non_exhaustive()
    }
}

impl<const D: usize, const F: usize, const B: usize> Fixed<D, F, B> {
    fn new(core: Core) -> Result<Self> {
        let fits = |what: &str, m: Option<&Meta>, w: usize| -> Result<()> {
            let ok = m.is_some_and(|m| {
                m.dtype == DType::F32
                    && m.shape.last().copied().unwrap_or(1) == w
                    && m.len() == B * w
                    && (B == 1 || m.shape.len() >= 2)
            });
            if ok {
                return Ok(());
            }
            Err(Error::InputShape {
                path: String::new(),
                expected: format!("one f32 {what} of {B} row(s) of {w} (a const-generic entry <{D}, {F}, {B}>)"),
                found: m.map_or_else(Vec::new, |m| m.shape.clone()),
            })
        };
        let inputs = core.program.input_metas();
        let outputs: Vec<&Meta> = core.program.output_metas().collect();
        fits("input", inputs.first().filter(|_| inputs.len() == 1), D)?;
        fits("output", outputs.first().copied().filter(|_| outputs.len() == 1), F)?;
        let dense = match core.direct.as_ref().and_then(Direct::single) {
            Some((p, act)) => {
                let (w, bias) = core.program.single_dense_params(&core.binding);
                Some((FixedDense::new(p.isa(), w, bias)?, act))
            }
            None => None,
        };
        #[cfg(target_arch = "x86_64")]
        let (inline, inline_relu) = match &dense {
            Some((k, Activation::Relu)) => (None, k.inline_dense()),
            Some((k, _)) => (k.inline_dense(), None),
            None => (None, None),
        };
        Ok(Fixed {
            core,
            dense,
            #[cfg(target_arch = "x86_64")]
            inline,
            #[cfg(target_arch = "x86_64")]
            inline_relu,
        })
    }

    /// `B` rows in, `B` rows out.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let x = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
    /// let vars = m.init(nn::PRNGKey(0), &x)?;
    /// let fixed = m.bind(&vars, &x)?.into_fixed::<2, 2, 2>()?;
    /// let y = fixed.apply_batch(&[[1.0, 2.0], [3.0, 4.0]])?;
    /// assert_eq!(y.as_flattened(), m.apply(&vars, &x)?.as_slice().unwrap());
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn apply_batch(&self, x: &[[f32; D]; B]) -> Result<[[f32; F]; B]> {
        let mut y = [[0.0f32; F]; B];
        if let Some((k, act)) = &self.dense {
            for (xr, yr) in x.iter().zip(y.iter_mut()) {
                *yr = k.apply_act(xr, *act);
            }
            return Ok(y);
        }
        self.core.run(None, &[x.as_flattened()], &mut [y.as_flattened_mut()])?;
        Ok(y)
    }
}

impl<const D: usize, const F: usize> Fixed<D, F, 1> {
    /// One row in, one row out.
    ///
    /// ```
    /// use nnjit::nn::{self, Lifted, Module};
    /// let m = nn::JitDense::new(2);
    /// let vars = m.init(nn::PRNGKey(0), &[1.0f32, 2.0])?;
    /// let fixed = m.bind_fixed::<2, 2>(&vars)?;
    /// assert_eq!(fixed.apply(&[1.0, 2.0])?.to_vec(), m.apply(&vars, &[1.0f32, 2.0])?.into_raw_vec_and_offset().0);
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    #[inline(always)] // a few instructions on the Dense path; callers inline it in their loops
    pub fn apply(&self, x: &[f32; D]) -> Result<[f32; F]> {
        let mut y = std::mem::MaybeUninit::<[f32; F]>::uninit();
        // SAFETY (both): `k` came from `self.dense`, which `self` owns and never replaces; `y`
        // has room for F floats, all of which the kernel writes.
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = self.inline {
            return Ok(unsafe {
                k.write(x, y.as_mut_ptr().cast());
                y.assume_init()
            });
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = self.inline_relu {
            return Ok(unsafe {
                k.write(x, y.as_mut_ptr().cast());
                y.assume_init()
            });
        }
        match &self.dense {
            // SAFETY: `y` has room for F floats, which the kernel writes.
            Some((k, act)) => unsafe { k.write_act(x, y.as_mut_ptr().cast(), *act) },
            None => self.apply_program(x, y.write([0.0; F]))?,
        }
        // SAFETY: both arms wrote all F floats (the program's output was zeroed first).
        Ok(unsafe { y.assume_init() })
    }

    /// [`apply`](Fixed::apply) of a program that is not one Dense, out of line: the Dense path
    /// stays a few instructions the caller inlines, laid out first (`cold`: a hint for the
    /// caller's layout only; a bound 32→64→64→10 runs here in 2,581 instructions, its kernels
    /// alone in 2,503).
    #[cold]
    #[inline(never)]
    fn apply_program(&self, x: &[f32; D], y: &mut [f32; F]) -> Result<()> {
        self.core.run(None, &[x], &mut [y])
    }
}

/// What `Lifted::bind` and `Lifted::bind_fixed` do, given the entry of the bound signature.
pub(crate) fn bind<L: Lifted>(
    program: Arc<Program>,
    scope: &Scope<'_, '_>,
    input: L::Input,
    output: L::Output,
) -> Result<Bound<L>> {
    Bound::new(program, scope, &L::jit_cache().packs, input, output)
}
