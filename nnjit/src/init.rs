//! Initializers (being written).
