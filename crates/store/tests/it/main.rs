//! The storage conformance suite: every case runs on SQLite and, when
//! `AIM_TEST_DATABASE_URL` is set, on PostgreSQL (and fails if that is unreachable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chain;
mod conformance;
mod credentials;
mod fixtures;
mod policies;
mod runtime;
