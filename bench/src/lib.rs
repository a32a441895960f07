//! Benchmark support for nnjit.
