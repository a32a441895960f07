//! [`Mutable`]: which collections a call may write (Flax's `mutable=`).

/// Which collections a call may write (Flax's `mutable=`).
///
/// ```
/// use nnjit::nn::{self, Module, Mutable, Rngs};
/// let x = ndarray::array![[1.0f32], [3.0]];
/// let bn = nn::BatchNorm::new();
/// let vars = bn.init(nn::PRNGKey(0), &x)?;
/// // Training-mode BatchNorm must write batch_stats: mutable=['batch_stats'].
/// let (_, updates) = bn.apply_with(&vars, &x, Rngs::none(), Mutable::only(["batch_stats"]))?;
/// assert_eq!(updates.collection_names().collect::<Vec<_>>(), ["batch_stats"]);
/// assert!(bn.apply_with(&vars, &x, Rngs::none(), Mutable::Nothing).is_err());
/// # Ok::<(), nnjit::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mutable {
    /// None (`mutable=False`, the default of `apply`).
    #[default]
    Nothing,
    /// All collections (`mutable=True`, what `init` uses).
    All,
    /// These collections (`mutable=['batch_stats']`).
    Only(Vec<String>),
}

impl Mutable {
    /// Whether `collection` may be written.
    ///
    /// ```
    /// use nnjit::nn::Mutable;
    /// assert!(Mutable::All.allows("params"));
    /// assert!(!Mutable::Nothing.allows("batch_stats"));
    /// assert!(Mutable::only(["batch_stats"]).allows("batch_stats"));
    /// assert!(!Mutable::only(["batch_stats"]).allows("params"));
    /// ```
    #[must_use]
    pub fn allows(&self, collection: &str) -> bool {
        match self {
            Mutable::Nothing => false,
            Mutable::All => true,
            Mutable::Only(c) => c.iter().any(|c| c == collection),
        }
    }

    /// `Mutable::Only` of the given names.
    ///
    /// ```
    /// use nnjit::nn::Mutable;
    /// assert_eq!(Mutable::only(["batch_stats", "cache"]), Mutable::Only(vec!["batch_stats".into(), "cache".into()]));
    /// ```
    #[must_use]
    pub fn only<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Mutable::Only(names.into_iter().map(Into::into).collect())
    }
}
