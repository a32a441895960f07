//! Helpers shared by several integration test binaries (`mod common;` in each).

pub mod counting_alloc;
