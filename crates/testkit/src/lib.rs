#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
//! Test helpers shared by the crates' integration tests: a fresh store on SQLite (a temp
//! file) or PostgreSQL (a fresh schema in `AIM_TEST_DATABASE_URL`), and a server on port 0.
//!
//! # Layout
//! - [`fixtures`] — records for tests
//! - [`db`] — fresh stores per backend
//! - [`discovery`] — discovered accounts' findings by name
//! - [`server`] — `aim serve` in-process on an ephemeral port, with a fake clock
//! - [`pki`] — a private CA and a server certificate for HTTPS tests

pub mod db;
pub mod discovery;
pub mod fixtures;
pub mod pki;
pub mod server;

pub use db::{Backend, TestStore};
pub use server::TestServer;
