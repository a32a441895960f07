//! RNG streams: [`Rngs`] (Flax's `rngs={...}`), and the scope's `make_rng` and `fork_rngs`,
//! which derive keys exactly as Flax does.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::random::static_suffix::{fold_in_static, SuffixPart};
use crate::random::Key;
use crate::tensor::trace::{RngForkRead, RngRead, Source};
use crate::tensor::{DType, Meta, Tensor};

use super::Scope;

/// Named RNG streams for `init`/`apply` (Flax's `rngs={'params': key, 'dropout': key}`).
///
/// ```
/// use nnjit::nn;
/// let rngs = nn::Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1));
/// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(1)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rngs {
    streams: Vec<(String, Key)>,
}

impl Rngs {
    /// Only a `params` stream (what Flax makes of `init(key, x)`).
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::new(nn::PRNGKey(0)); // init(PRNGKey(0), x) means rngs={'params': PRNGKey(0)}
    /// assert_eq!(rngs.get("params"), Some(nn::PRNGKey(0)));
    /// assert_eq!(rngs, nn::PRNGKey(0).into());
    /// ```
    #[must_use]
    pub fn new(params: Key) -> Self {
        Rngs::none().with("params", params)
    }

    /// No streams at all (what `apply` uses by default).
    ///
    /// ```
    /// use nnjit::nn::Rngs;
    /// assert_eq!(Rngs::none().names().count(), 0);
    /// assert_eq!(Rngs::none().get("params"), None);
    /// ```
    #[must_use]
    pub fn none() -> Self {
        Rngs::default()
    }

    /// Adds (or replaces) the stream `name`.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::new(nn::PRNGKey(0)).with("dropout", nn::PRNGKey(1)).with("dropout", nn::PRNGKey(2));
    /// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(2))); // replaced, not duplicated
    /// assert_eq!(rngs.names().collect::<Vec<_>>(), ["params", "dropout"]);
    /// ```
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, key: Key) -> Self {
        let name = name.into();
        match self.streams.iter_mut().find(|(n, _)| *n == name) {
            Some(s) => s.1 = key,
            None => self.streams.push((name, key)),
        }
        self
    }

    /// The root key of stream `name`.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// assert_eq!(rngs.get("dropout"), Some(nn::PRNGKey(1)));
    /// assert_eq!(rngs.get("noise"), None);
    /// ```
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Key> {
        self.streams.iter().find(|(n, _)| n == name).map(|(_, k)| *k)
    }

    /// Stream names, in order.
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// assert_eq!(rngs.names().collect::<Vec<_>>(), ["params", "dropout"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(|(n, _)| n.as_str())
    }

    /// Keeps only the streams `keep` says yes to (used by lifts that filter RNG streams).
    ///
    /// ```
    /// use nnjit::nn::{self, Rngs};
    /// let rngs = Rngs::from([("params", nn::PRNGKey(0)), ("dropout", nn::PRNGKey(1))]);
    /// let only_dropout = rngs.filtered(|name| name == "dropout"); // like nn.jit(rngs=['dropout'])
    /// assert_eq!(only_dropout.names().collect::<Vec<_>>(), ["dropout"]);
    /// ```
    #[must_use]
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> Self {
        Rngs { streams: self.streams.iter().filter(|(n, _)| keep(n)).cloned().collect() }
    }
}

impl From<Key> for Rngs {
    fn from(key: Key) -> Self {
        Rngs::new(key)
    }
}

impl<S: Into<String>, const N: usize> From<[(S, Key); N]> for Rngs {
    fn from(streams: [(S, Key); N]) -> Self {
        streams.into_iter().fold(Rngs::none(), |r, (n, k)| r.with(n, k))
    }
}

/// RNG bases replaced by a fork (Flax's `fork_rngs`, used by `nn.jit`'s derivation).
#[derive(Clone, Debug)]
pub(super) struct RngFork {
    pub(super) keys: Vec<(String, Key)>,
    pub(super) depth: usize,
    /// A fork made while traced: its index in the graph's forks. Its keys are drawn each time
    /// the program runs (`keys` is empty here); the reads below it name it.
    pub(super) traced: Option<usize>,
}

impl Scope<'_, '_> {
    /// A fresh key from stream `stream` (Flax's `make_rng`): the scope's counter for the stream
    /// goes up by one and the key is `fold_in_static(root, path ++ [counter])`. A missing stream
    /// falls back to `params` as in Flax; if that is missing too, [`Error::MissingRng`].
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    /// use nnjit::random::static_suffix::{fold_in_static, SuffixPart::Index};
    ///
    /// struct Keys;
    /// impl Module for Keys {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let root = nn::PRNGKey(0);
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(root, &[Index(1)])); // Dense's kernel key
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(root, &[Index(2)])); // the counter went up
    ///         assert!(s.make_rng("params")?.to_key()?.words() != [0, 0]);
    ///         Ok(x)
    ///     }
    /// }
    /// Keys.init(nn::PRNGKey(0), &[1.0f32])?;
    /// assert!(Keys.apply(&nnjit::Variables::new(), &[1.0f32]).is_err()); // no stream at all: MissingRng
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn make_rng(&mut self, stream: &str) -> Result<Tensor> {
        if self.frame.tracer.is_some() {
            let stream = self.resolve_stream(stream)?;
            let rel = self.rel_segments();
            let graph = self
                .frame
                .tracer
                .as_ref()
                .map(|t| Arc::clone(&t.graph))
                .ok_or_else(|| Error::invalid("", "internal"))?;
            let fork = self.fork.as_ref().and_then(|f| f.traced);
            let index = {
                let mut b = graph.lock();
                b.rngs.push(RngRead { stream: stream.to_string(), rel, fork });
                b.rngs.len() - 1
            };
            return Ok(graph.push(Source::Rng(index), Vec::new(), Meta::new(DType::U32, vec![2])));
        }
        Ok(Tensor::from_key(self.next_key(stream)?))
    }

    /// The stream `make_rng(stream)` draws from: itself, else `params` (Flax's fallback).
    pub(super) fn resolve_stream<'s>(&self, stream: &'s str) -> Result<&'s str> {
        if self.has_rng(stream) {
            Ok(stream)
        } else if self.has_rng("params") {
            Ok("params")
        } else {
            Err(Error::MissingRng { stream: stream.into(), path: self.path() })
        }
    }

    /// `make_rng` as a key, in the scope `rel` below this one (what a compiled program does for
    /// each RNG request, so counters advance exactly as in an eager call), from the bases of
    /// `fork` (a fork the program replayed) where given, else of this scope.
    fn next_key_under(&mut self, rel: &[String], stream: &str, fork: Option<&RngFork>) -> Result<Key> {
        let stream = self.resolve_stream(stream)?;
        let fork = fork.or(self.fork.as_deref());
        if fork.is_some_and(|f| f.traced.is_some()) {
            // A traced fork has no keys: only the program that replays it can draw below it.
            return Err(Error::invalid(self.path(), "internal: an eager key drawn under a traced RNG fork"));
        }
        let (base, from) = match fork.and_then(|f| f.keys.iter().find(|(n, _)| n == stream).map(|(_, k)| (*k, f.depth)))
        {
            Some(b) => b,
            None => (
                self.frame
                    .rngs
                    .get(stream)
                    .ok_or_else(|| Error::MissingRng { stream: stream.into(), path: self.path() })?,
                0,
            ),
        };
        let mut segs = self.node.segments();
        segs.extend(rel.iter().cloned());
        let path = if segs.is_empty() { String::new() } else { format!("/{}", segs.join("/")) };
        let counters = &mut self.frame.counters;
        let pos = match counters.iter().position(|(p, s, _)| *p == path && s == stream) {
            Some(i) => i,
            None => {
                counters.push((path, stream.to_string(), 0));
                counters.len() - 1
            }
        };
        counters[pos].2 += 1;
        let count = counters[pos].2;
        let mut parts: Vec<SuffixPart> = segs[from.min(segs.len())..].iter().map(|s| SuffixPart::Name(s)).collect();
        parts.push(SuffixPart::Index(u64::from(count)));
        Ok(fold_in_static(base, &parts))
    }

    /// `make_rng` as a key (eager only).
    pub(super) fn next_key(&mut self, stream: &str) -> Result<Key> {
        self.next_key_under(&[], stream, None)
    }

    /// Flax's `fork_rngs` as `nn.jit` does it: every stream draws one key here, which becomes the
    /// stream's new base for this scope and its children (counters keep running). In a body
    /// being traced (a lifted module's apply), the fork is a step of the compiled program: every
    /// run draws it from the streams of that call, exactly as the eager call would.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    /// use nnjit::random::static_suffix::{fold_in_static, SuffixPart::Index};
    ///
    /// struct Forked;
    /// impl Module for Forked {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         s.fork_rngs()?; // draws key #1 of every stream as the new base
    ///         let base = fold_in_static(nn::PRNGKey(0), &[Index(1)]);
    ///         assert_eq!(s.make_rng("params")?.to_key()?, fold_in_static(base, &[Index(2)])); // nn.jit's kernel key
    ///         Ok(x)
    ///     }
    /// }
    /// Forked.init(nn::PRNGKey(0), &[1.0f32])?;
    /// # Ok::<(), nnjit::Error>(())
    /// ```
    pub fn fork_rngs(&mut self) -> Result<()> {
        let names: Vec<String> = self.frame.rngs.names().map(str::to_string).collect();
        if let Some(graph) = self.frame.tracer.as_ref().map(|t| Arc::clone(&t.graph)) {
            // Traced: the fork becomes a step of the program, replayed from the streams given
            // to every run (see `replay_rngs`); nothing is drawn now.
            let rel = self.rel_segments();
            let parent = self.fork.as_ref().and_then(|f| f.traced);
            let index = {
                let mut b = graph.lock();
                let before = b.rngs.len();
                b.forks.push(RngForkRead { streams: names, rel, parent, before });
                b.forks.len() - 1
            };
            self.fork = Some(Arc::new(RngFork { keys: Vec::new(), depth: self.node.depth(), traced: Some(index) }));
            return Ok(());
        }
        let mut keys = Vec::with_capacity(names.len());
        for n in names {
            let k = self.next_key(&n)?;
            keys.push((n, k));
        }
        self.fork = Some(Arc::new(RngFork { keys, depth: self.node.depth(), traced: None }));
        Ok(())
    }

    /// The keys of a compiled program's RNG reads, in order, into `keys` (what the eager body
    /// drew, counters included): each fork the program traced is replayed at its place among
    /// the reads, drawing its keys from the streams of this call, and the reads below it draw
    /// from those keys. Without forks nothing is allocated.
    pub(crate) fn replay_rngs(
        &mut self,
        reads: &[RngRead],
        forks: &[RngForkRead],
        keys: &mut Vec<[u32; 2]>,
    ) -> Result<()> {
        keys.clear();
        if forks.is_empty() {
            for r in reads {
                keys.push(self.next_key_under(&r.rel, &r.stream, None)?.into());
            }
            return Ok(());
        }
        let mut drawn: Vec<RngFork> = Vec::with_capacity(forks.len());
        let mut pending = forks.iter().peekable();
        for (i, r) in reads.iter().enumerate() {
            while let Some(f) = pending.next_if(|f| f.before <= i) {
                let fork = self.replay_fork(f, &drawn)?;
                drawn.push(fork);
            }
            let fork = fork_at(&drawn, r.fork)?;
            keys.push(self.next_key_under(&r.rel, &r.stream, fork)?.into());
        }
        // Forks after the last read still advance their counters, as the eager body did.
        for f in pending {
            let fork = self.replay_fork(f, &drawn)?;
            drawn.push(fork);
        }
        Ok(())
    }

    /// One traced fork, drawn now (the forks before it are in `drawn`).
    fn replay_fork(&mut self, f: &RngForkRead, drawn: &[RngFork]) -> Result<RngFork> {
        let parent = fork_at(drawn, f.parent)?;
        let mut keys = Vec::with_capacity(f.streams.len());
        for stream in &f.streams {
            keys.push((stream.clone(), self.next_key_under(&f.rel, stream, parent)?));
        }
        Ok(RngFork { keys, depth: self.node.depth() + f.rel.len(), traced: None })
    }
}

/// Fork `index` of those a program replayed so far (`None`: the scope's own bases).
fn fork_at(drawn: &[RngFork], index: Option<usize>) -> Result<Option<&RngFork>> {
    index
        .map(|j| drawn.get(j).ok_or_else(|| Error::invalid("", "internal: an RNG read names a fork not replayed yet")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Rngs;
    use crate::jit::{Program, Traced};
    use crate::nn::{self, Module, Scope};
    use crate::scope::{Frame, Mode, Mutable, Tracer};
    use crate::tensor::trace::Source;
    use crate::tensor::{DType, Graph, Meta, Repr, Tensor};

    /// `nn.jit(Dropout(0.5))`, Flax's way.
    #[crate::nn::jit(flax_jit)]
    #[derive(Debug, Clone, PartialEq)]
    struct Drop;

    impl Module for Drop {
        type Input = Tensor;
        type Output = Tensor;
        fn call(&self, s: &mut Scope, x: Tensor) -> crate::Result<Tensor> {
            s.call(&nn::Dropout::new(0.5), x)
        }
    }

    /// `nn.jit` of two `nn.jit(Drop)` children.
    #[crate::nn::jit(flax_jit)]
    #[derive(Debug, Clone, PartialEq)]
    struct Twice;

    impl Module for Twice {
        type Input = Tensor;
        type Output = Tensor;
        fn call(&self, s: &mut Scope, x: Tensor) -> crate::Result<Tensor> {
            let h = s.call(&JitDrop, x)?;
            s.call(&JitDrop, h)
        }
    }

    #[test]
    fn a_traced_fork_is_a_step_of_the_program() -> crate::Result<()> {
        let vars = crate::Variables::new();
        let rngs = Rngs::none().with("dropout", nn::PRNGKey(1)).with("params", nn::PRNGKey(2));
        let mut frame = Frame::new(Mode::Apply, Some(&vars), rngs, Mutable::Nothing);
        let graph = Arc::new(Graph::default());
        frame.tracer = Some(Tracer::new(Arc::clone(&graph), 0));
        let mut scope = Scope::root(&mut frame);
        let x = graph.push(Source::Input(0), Vec::new(), Meta::new(DType::F32, vec![4]));
        let y = scope.call(&JitTwice, x)?;
        drop(scope);
        let Repr::Traced(t) = &y.repr else { panic!("a traced output") };
        let outputs = vec![t.node];
        let builder = graph.into_builder();
        // Nothing was drawn while tracing: the counters are untouched.
        assert!(frame.counters.is_empty());
        let text = Program::compile("test".into(), Traced { builder, outputs })?.to_string();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("fork") || l.contains("make_rng")).collect();
        assert_eq!(
            lines,
            [
                "  %fork0 = fork_rngs [dropout, params] at /JitTwice_0",
                "  %fork1 = fork_rngs [dropout, params] at /JitTwice_0/JitDrop_0 from %fork0",
                "  %key0 = make_rng \"dropout\" at /JitTwice_0/JitDrop_0/Dropout_0 : u32[2] from %fork1",
                "  %fork2 = fork_rngs [dropout, params] at /JitTwice_0/JitDrop_1 from %fork0",
                "  %key1 = make_rng \"dropout\" at /JitTwice_0/JitDrop_1/Dropout_0 : u32[2] from %fork2",
            ],
            "{text}"
        );
        Ok(())
    }
}
