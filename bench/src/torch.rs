//! PyTorch as a contender, in a Python child process (`bench/python/torch_mlp.py`) that times
//! its own forwards on request, so a Rust bench can interleave it with nnjit round by round.
//! Eager PyTorch on CPU, as a user serving a model would run it; only its output and its
//! timings cross the pipe.

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A running `torch_mlp.py`.
pub struct Torch {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Where parameters and input go to the child, and its output comes back (+ `.out`).
    path: PathBuf,
}

impl Torch {
    /// Starts `python` (an interpreter with `torch` and `numpy`) on the script.
    ///
    /// # Errors
    /// The interpreter cannot be started, or it fails to import PyTorch.
    pub fn spawn(python: &str) -> io::Result<Torch> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/torch_mlp.py");
        let mut child = Command::new(python).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("no pipes to the Python child"));
        };
        let path = std::env::temp_dir().join(format!("nnjit-torch-{}.f32", std::process::id()));
        Ok(Torch { child, stdin, stdout: BufReader::new(stdout), path })
    }

    /// Sends one command and reads its one reply line (an `error: …` reply is an error).
    fn ask(&mut self, command: &str) -> io::Result<String> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other(format!("the Python child ended at `{command}`")));
        }
        let line = line.trim().to_string();
        match line.strip_prefix("error: ") {
            Some(e) => Err(io::Error::other(format!("`{command}`: {e}"))),
            None => Ok(line),
        }
    }

    /// PyTorch's version and ATen's parallel backend.
    ///
    /// # Errors
    /// The child does not answer.
    pub fn version(&mut self) -> io::Result<String> {
        self.ask("version")
    }

    /// Builds the MLP `Linear → ReLU → … → Linear` from `layers` (kernel `(in, out)` row-major
    /// and bias, per layer) on the input `x` (`n × d`); returns its output (`n ×` the last
    /// width), to be checked against ours.
    ///
    /// # Errors
    /// Writing or reading the exchange files, or the child's reply.
    pub fn load(&mut self, layers: &[(Vec<f32>, Vec<f32>)], x: &[f32], n: usize, d: usize) -> io::Result<Vec<f32>> {
        let mut bytes = Vec::new();
        let mut widths = String::new();
        for (kernel, bias) in layers {
            bytes.extend(kernel.iter().chain(bias).flat_map(|v| v.to_le_bytes()));
            widths.push_str(&format!(" {}", bias.len()));
        }
        bytes.extend(x.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&self.path, bytes)?;
        self.ask(&format!("load {} {n} {d}{widths}", self.path.display()))?;
        let out = std::fs::read(self.path.with_extension("f32.out"))?;
        Ok(out.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// `torch.set_num_threads(threads)`.
    ///
    /// # Errors
    /// The child's reply.
    pub fn set_threads(&mut self, threads: usize) -> io::Result<()> {
        self.ask(&format!("threads {threads}")).map(drop)
    }

    /// Forwards in a sample of about `sample` (as [`crate::probe::calibrate`]).
    ///
    /// # Errors
    /// The child's reply.
    pub fn calibrate(&mut self, sample: Duration) -> io::Result<u64> {
        let reply = self.ask(&format!("calibrate {}", sample.as_nanos()))?;
        reply.parse().map_err(|e| io::Error::other(format!("calibrate: {reply:?}: {e}")))
    }

    /// Nanoseconds per forward over `iters` timed forwards (as [`crate::probe::sample_ns`]).
    ///
    /// # Errors
    /// The child's reply.
    pub fn sample_ns(&mut self, iters: u64) -> io::Result<f64> {
        let reply = self.ask(&format!("time {iters}"))?;
        let ns: f64 = reply.parse().map_err(|e| io::Error::other(format!("time: {reply:?}: {e}")))?;
        Ok(ns / iters.max(1) as f64)
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit").and_then(|()| self.stdin.flush());
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(self.path.with_extension("f32.out"));
    }
}
