//! aim-policy's tests: one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compile;
mod decisions;
mod fixtures;
mod slicing;
