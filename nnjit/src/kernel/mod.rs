//! Dense kernels (being written).
