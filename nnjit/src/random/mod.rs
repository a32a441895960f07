//! Random numbers (being written).
