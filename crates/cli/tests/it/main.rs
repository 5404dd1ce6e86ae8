//! The `aim` binary, run as a user would: `aim serve` as a process, the README's tour
//! executed verbatim, and the exit statuses scripts rely on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod bearer;
mod crash;
mod discover;
mod exit_codes;
mod grants;
mod join;
mod names;
mod policy;
mod process;
mod report;
mod tls;
mod tour;
