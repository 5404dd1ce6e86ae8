//! API tests: a real server on 127.0.0.1:0 with a fake clock, on SQLite and (when
//! `AIM_TEST_DATABASE_URL` is set) PostgreSQL, driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod auth;
mod bad_input;
mod baselines;
mod discovery;
mod discovery_remedy;
mod discovery_views;
mod entitlements;
mod fail_closed;
mod federation;
mod first_start;
mod fixtures;
mod flood;
mod gateway_sync;
mod identities;
mod machines;
mod reports;
mod scim;
mod secrets;
mod sinks;
mod sweeps;
mod tls;
mod tokens;
mod tools;
