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
use std::sync::Arc;

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
    /// A file could not be opened, read or written. The operating system's error is kept: its
    /// [`kind`](std::io::Error::kind) through [`IoError`], and the error itself as
    /// [`source()`](std::error::Error::source).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let err = nnjit::io::read_file("/no/such/checkpoint.msgpack", 1 << 20).unwrap_err();
    /// let nnjit::Error::Io { path, action, source } = &err else { panic!("{err:?}") };
    /// assert_eq!((path.as_str(), action.as_str()), ("/no/such/checkpoint.msgpack", "open"));
    /// assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    /// assert!(err.source().unwrap().downcast_ref::<std::io::Error>().is_some());
    /// ```
    Io {
        /// The file.
        path: String,
        /// What was being done: `open`, `read` or `write`.
        action: String,
        /// The operating system's error.
        source: IoError,
    },
    /// A module tried to create a submodule or variable under a name that is already in use in
    /// its scope (Flax: `NameInUseError`). `Display` is Flax's text; the fields name both
    /// modules and the path.
    ///
    /// ```
    /// use nnjit::nn::{self, Module, Scope, Tensor};
    ///
    /// struct Collide;
    /// impl Module for Collide {
    ///     type Input = Tensor;
    ///     type Output = Tensor;
    ///     fn call(&self, s: &mut Scope, x: Tensor) -> nnjit::Result<Tensor> {
    ///         let h = s.call_named("a", &nn::Dense::new(3), x)?;
    ///         s.call_named("a", &nn::Dense::new(3), h) // nn.Dense(3, name="a") twice
    ///     }
    /// }
    /// let err = Collide.init(nn::PRNGKey(0), &[1.0f32]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "Could not create submodule \"a\" in Module Collide: Name in use. \
    ///      (https://flax.readthedocs.io/en/latest/api_reference/flax.errors.html#flax.errors.NameInUseError)"
    /// );
    /// let nnjit::Error::NameInUse { kind, name, module, path, existing, requested } = &err else { panic!() };
    /// assert_eq!((*kind, name.as_str(), *module, path.as_str()), (nnjit::error::NameKind::Submodule, "a", "Collide", ""));
    /// assert_eq!((*existing, *requested), ("Dense", "Dense")); // both modules' types
    /// ```
    NameInUse {
        /// What was being created.
        kind: NameKind,
        /// The name asked for.
        name: String,
        /// Type name of the module whose scope holds both (Flax's class name).
        module: &'static str,
        /// Path of that module (`""` at the top, `/Block_0`, ...).
        path: String,
        /// Type name of the submodule holding the name already (`Dense`); empty when a
        /// variable holds it.
        existing: &'static str,
        /// Type name of the module that asked for the name (`Dense`); empty for a variable.
        requested: &'static str,
    },
    /// An input is larger than the limit for its kind (see [`crate::io::MAX_INPUT_BYTES`]);
    /// nothing beyond the limit was read.
    ///
    /// ```
    /// let err = nnjit::io::read_file("/dev/zero", 1024).unwrap_err();
    /// assert!(matches!(err, nnjit::Error::InputTooLarge { limit: 1024, .. }), "{err:?}");
    /// ```
    InputTooLarge {
        /// What was being read (a file name, `Flax msgpack checkpoint`, ...).
        what: String,
        /// The limit, in bytes.
        limit: u64,
    },
}

/// What [`Error::NameInUse`] was creating (Flax's text names it).
///
/// ```
/// assert_eq!(nnjit::error::NameKind::Param.to_string(), "param");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A child module (`submodule`).
    Submodule,
    /// A parameter (`param`).
    Param,
    /// A variable of another collection (`variable`).
    Variable,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Submodule => "submodule",
            NameKind::Param => "param",
            NameKind::Variable => "variable",
        })
    }
}

/// A shared [`std::io::Error`], so that [`Error`] stays `Clone` and comparable.
///
/// It dereferences to the `std::io::Error`; two `IoError`s are equal when their kinds and
/// messages are.
///
/// ```
/// let e = nnjit::error::IoError::from(std::io::Error::from(std::io::ErrorKind::NotFound));
/// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
/// assert_eq!(e.clone(), e);
/// ```
#[derive(Clone, Debug)]
pub struct IoError(Arc<std::io::Error>);

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError(Arc::new(e))
    }
}

impl std::ops::Deref for IoError {
    type Target = std::io::Error;
    fn deref(&self) -> &std::io::Error {
        &self.0
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
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

    /// Builds an [`Error::Io`] for `action` (`open`, `read`, `write`) on `path`.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let os = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    /// let e = nnjit::Error::io("model.msgpack", "write", os);
    /// assert_eq!(e.to_string(), "cannot write model.msgpack: permission denied");
    /// assert!(e.source().is_some());
    /// ```
    pub fn io(path: impl AsRef<std::path::Path>, action: &str, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), action: action.to_string(), source: source.into() }
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
            Error::NameInUse { kind, name, module, .. } => write!(
                f,
                "Could not create {kind} \"{name}\" in Module {module}: Name in use. \
                 (https://flax.readthedocs.io/en/latest/api_reference/flax.errors.html#flax.errors.NameInUseError)"
            ),
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
            Error::Io { path, action, source } => write!(f, "cannot {action} {path}: {source}"),
            Error::InputTooLarge { what, limit } => {
                write!(f, "{what} is larger than the limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Error {
    /// The operating system's error of an [`Error::Io`]; `None` for every other variant.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(&*source.0),
            _ => None,
        }
    }
}

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
