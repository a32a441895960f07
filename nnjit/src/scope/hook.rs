//! The one hook of the scope ([`CallHook`], how `tabulate` records its rows) and the place
//! every module call goes through ([`Scope::run_module`]).

use std::sync::Arc;

use crate::error::Result;
use crate::module::{Args, Module};

use super::Scope;

/// Observes module calls (`tabulate` records its rows through it): the one hook of the scope.
pub(crate) trait CallHook {
    /// A module starts at `path`; returns a token for [`CallHook::exit`].
    fn enter(&mut self, path: &str, module: &'static str, input: &[usize]) -> usize;
    /// The module of `token` returned an output of shape `output`.
    fn exit(&mut self, token: usize, output: &[usize]);
}

impl Scope<'_, '_> {
    /// Runs `module` in this scope: the hook sees the call, a trace attributes its ops to this
    /// path, and a failed output tensor becomes the error.
    pub(crate) fn run_module<M: Module + ?Sized>(&mut self, module: &M, x: M::Input) -> Result<M::Output> {
        if self.frame.hook.is_none() && self.frame.tracer.is_none() {
            // The common case: no observer, no trace (inputs were checked when fed).
            let y = module.call(self, x)?;
            y.check_tensors()?;
            return Ok(y);
        }
        let mut failed = Ok(());
        x.for_each_tensor(&mut |t| {
            if failed.is_ok() {
                failed = t.check();
            }
        });
        failed?;
        let saved_path = self.frame.tracer.as_ref().map(|t| {
            let path: Arc<str> = Arc::from(self.path());
            std::mem::replace(&mut t.graph.lock().path, path)
        });
        let hook_path = if self.frame.hook.is_some() { self.path() } else { String::new() };
        let token = match self.frame.hook.as_deref_mut() {
            Some(h) => {
                let mut first: &[usize] = &[];
                let mut found = false;
                x.for_each_tensor(&mut |t| {
                    if !found {
                        first = t.shape();
                        found = true;
                    }
                });
                Some(h.enter(hook_path.trim_start_matches('/'), module.type_name(), first))
            }
            None => None,
        };
        let y = module.call(self, x);
        if let (Some(p), Some(t)) = (saved_path, self.frame.tracer.as_ref()) {
            t.graph.lock().path = p;
        }
        let y = y?;
        let mut failed = Ok(());
        let mut first: Option<Vec<usize>> = None;
        y.for_each_tensor(&mut |t| {
            if failed.is_ok() {
                failed = t.check();
            }
            if first.is_none() {
                first = Some(t.shape().to_vec());
            }
        });
        failed?;
        if let (Some(token), Some(h)) = (token, self.frame.hook.as_deref_mut()) {
            h.exit(token, first.as_deref().unwrap_or(&[]));
        }
        Ok(y)
    }
}
