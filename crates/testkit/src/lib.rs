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

/// How long [`eventually`] waits.
pub const EVENTUALLY: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `check` every 10 ms until it gives `Some`, for up to [`EVENTUALLY`]: a deadline
/// for something that will happen (a record reaching aim, a webhook arriving, a file
/// written), not a timing; a loaded CI host takes seconds where a laptop takes
/// milliseconds. Panics naming `what` if it never happens.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {EVENTUALLY:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
