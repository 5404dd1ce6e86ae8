//! The storage conformance suite: every case runs on SQLite and, when
//! `AIM_TEST_DATABASE_URL` is set, on PostgreSQL (and fails if that is unreachable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// One test per case, each run on every enabled backend with a fresh store; a case is a
/// module with `pub async fn run(&DynStore)`.
macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for backend in aim_testkit::Backend::enabled() {
                eprintln!("backend: {backend:?}");
                let t = aim_testkit::TestStore::new(backend).await;
                $name::run(&t.store).await;
                t.cleanup().await;
            }
        }
    )*};
}

mod chain;
mod conformance;
mod credentials;
mod decisions;
mod files;
mod fixtures;
mod policies;
mod tls;
