//! The gateway in front of a real upstream, deciding with a real aim (SQLite and
//! PostgreSQL): what reaches the upstream, what is refused, and what aim's record says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod behaviour;
mod harness;
mod kill;
mod local;
mod proxy;
mod ssrf;
