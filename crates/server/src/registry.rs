//! The operations behind the API, independent of HTTP: each checks who may do it, applies
//! the domain rule, and stores the change with its event in one write.
//!
//! # Layout
//! - [`identities`] — request, decide, lifecycle moves, attest, change
//! - [`humans`] — create, change, depart and return, API credentials
//! - [`sweeps`] — the periodic governance sweep

pub mod humans;
pub mod identities;
pub mod sweeps;
