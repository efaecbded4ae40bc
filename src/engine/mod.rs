//! The upload engine: pure Rust, no browser APIs, no clock or RNG reads.
