//! The one error type of nnjit.
//!
//! Every failure reachable from the public API is an [`Error`] value; messages name the module
//! path, the variable and the shapes involved, in the spirit of Flax's `ScopeParamShapeError`,
//! `ScopeParamNotFoundError` and `InvalidRngError`.
//!
//! ```
//! use nnjit::nn::{self, Module};
//! let err = nn::Dense::new(0).init(nn::PRNGKey(0), &[1.0f32, 2.0]).unwrap_err();
//! assert!(matches!(err, nnjit::Error::InvalidArgument { .. })); // features = 0
//! ```

use std::fmt;

/// Shorthand for `Result<T, nnjit::Error>`.
///
/// ```
/// fn features(n: usize) -> nnjit::Result<usize> {
///     if n == 0 {
///         return Err(nnjit::Error::invalid("/Dense_0", "features must be positive"));
///     }
///     Ok(n)
/// }
/// assert_eq!(features(4), Ok(4));
/// assert!(features(0).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in nnjit.
///
/// ```
/// use nnjit::Error;
/// let e = Error::MissingRng { stream: "dropout".into(), path: "/Dropout_0".into() };
/// assert!(e.to_string().contains("dropout"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A variable exists but its shape is not the one the module asks for
    /// (Flax: `ScopeParamShapeError`).
    VariableShape {
        /// Collection of the variable (`params`, `batch_stats`, ...).
        collection: String,
        /// Full path of the variable, e.g. `/Dense_0/kernel`.
        path: String,
        /// Shape the module expects.
        expected: Vec<usize>,
        /// Shape found in the variables.
        found: Vec<usize>,
    },
    /// A variable the module needs is not in the variables given to `apply`
    /// (Flax: `ScopeParamNotFoundError` / `ScopeCollectionNotFound`).
    MissingVariable {
        /// Collection searched.
        collection: String,
        /// Full path of the missing variable.
        path: String,
    },
    /// Variables were given that no module used (only reported where asked for, e.g. strict loading).
    UnusedVariable {
        /// Collection of the variable.
        collection: String,
        /// Full path of the unused variable.
        path: String,
    },
    /// A module tried to write a variable of a collection that is not mutable in this call
    /// (Flax: `ModifyScopeVariableError`).
    ImmutableCollection {
        /// Collection written.
        collection: String,
        /// Path of the variable.
        path: String,
    },
    /// A module asked for a random stream that was not provided (Flax: `InvalidRngError`).
    MissingRng {
        /// Name of the stream, e.g. `dropout`.
        stream: String,
        /// Module path that asked for it.
        path: String,
    },
    /// The input does not have the shape the module (or its parameters) requires.
    InputShape {
        /// Module path.
        path: String,
        /// What was expected, in words (e.g. `last axis of length 3`).
        expected: String,
        /// The shape received.
        found: Vec<usize>,
    },
    /// A module attribute or call argument is invalid (e.g. `features = 0`).
    InvalidArgument {
        /// Module path (empty outside modules).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An element count or byte size does not fit in `usize`.
    SizeOverflow {
        /// What was being sized.
        what: String,
        /// The shape that overflowed.
        shape: Vec<usize>,
    },
    /// Memory for a buffer could not be reserved.
    Allocation {
        /// What was being allocated.
        what: String,
        /// Bytes requested.
        bytes: usize,
    },
    /// Data in a file or string could not be decoded (checkpoints, JSON, ...).
    Format {
        /// What was being read.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A lifted module's body read the values of a traced tensor (JAX's
    /// `ConcretizationTypeError`): a compiled program runs without calling the body again, so
    /// values cannot steer Rust code.
    TracedValue {
        /// Module path.
        path: String,
        /// What read the values (`to_array`, `item`, ...).
        operation: String,
    },
}

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    ///
    /// ```
    /// let e = nnjit::Error::invalid("/Dense_0", "features must be positive");
    /// assert!(matches!(&e, nnjit::Error::InvalidArgument { path, .. } if path == "/Dense_0"));
    /// assert!(e.to_string().contains("features must be positive"));
    /// ```
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { path: path.into(), message: message.into() }
    }

    /// Builds an [`Error::Format`].
    ///
    /// ```
    /// let e = nnjit::Error::format("checkpoint", "truncated msgpack");
    /// assert!(matches!(&e, nnjit::Error::Format { what, .. } if what == "checkpoint"));
    /// assert!(e.to_string().contains("truncated msgpack"));
    /// ```
    pub fn format(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Format { what: what.into(), message: message.into() }
    }
}

fn shape(s: &[usize]) -> String {
    let inner: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    if s.len() == 1 {
        format!("({},)", inner[0])
    } else {
        format!("({})", inner.join(", "))
    }
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::VariableShape { collection, path, expected, found } => write!(
                f,
                "initializer expected to generate shape {} but got shape {} instead for \
                 variable \"{}\" in collection \"{collection}\" \
                 (ScopeParamShapeError)",
                shape(expected),
                shape(found),
                at(path)
            ),
            Error::MissingVariable { collection, path } => write!(
                f,
                "could not find variable \"{}\" in collection \"{collection}\" \
                 (ScopeParamNotFoundError)",
                at(path)
            ),
            Error::UnusedVariable { collection, path } => {
                write!(f, "variable \"{}\" in collection \"{collection}\" was not used by the module", at(path))
            }
            Error::ImmutableCollection { collection, path } => write!(
                f,
                "cannot update variable \"{}\" in collection \"{collection}\": the collection \
                 is not mutable in this call (ModifyScopeVariableError)",
                at(path)
            ),
            Error::MissingRng { stream, path } => write!(
                f,
                "module \"{}\" needs PRNG for \"{stream}\" but no such stream was given \
                 (InvalidRngError)",
                at(path)
            ),
            Error::InputShape { path, expected, found } => {
                write!(f, "module \"{}\" expected an input with {expected} but got shape {}", at(path), shape(found))
            }
            Error::InvalidArgument { path, message } => {
                if path.is_empty() {
                    write!(f, "invalid argument: {message}")
                } else {
                    write!(f, "invalid argument in module \"{path}\": {message}")
                }
            }
            Error::SizeOverflow { what, shape: s } => {
                write!(f, "size of {what} with shape {} overflows usize", shape(s))
            }
            Error::Allocation { what, bytes } => {
                write!(f, "could not allocate {bytes} bytes for {what}")
            }
            Error::Format { what, message } => write!(f, "cannot read {what}: {message}"),
            Error::TracedValue { path, operation } => write!(
                f,
                "module \"{}\" read the values of a traced tensor (`{operation}`) while its lifted \
                 program was being compiled: a compiled module runs without calling your code \
                 again, so values cannot steer Rust code. Branch on shapes or module fields \
                 instead, compute with tensor ops (`where`, `maximum`, ...), or run host code \
                 inside the program with `Tensor::host_callback` (ConcretizationTypeError)",
                at(path)
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_path_and_shapes() {
        let e = Error::VariableShape {
            collection: "params".into(),
            path: "/Dense_0/kernel".into(),
            expected: vec![3, 4],
            found: vec![2, 4],
        };
        let m = e.to_string();
        assert!(m.contains("/Dense_0/kernel") && m.contains("(3, 4)") && m.contains("(2, 4)"), "{m}");
        let e = Error::InputShape { path: "".into(), expected: "rank >= 1".into(), found: vec![7] };
        assert!(e.to_string().contains("(7,)"));
    }

    #[test]
    fn is_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }
}
