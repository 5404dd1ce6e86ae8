//! Behavioural baselines: what each identity normally does, kept in bounded memory and
//! updated from its decisions as they are taken, never by rescanning the log.
//!
//! # Layout
//! - [`burst`] — rate spikes, denial bursts and enumeration, on the identity's own thresholds
//! - [`detect`] — what is out of character in one call, explained
//! - [`profile`] — one identity's profile, learnt one decision at a time
//! - [`respond`] — observe, step up or lock: what is done about a call's findings
//! - [`sketch`] — Count-Min and HyperLogLog summaries under the baseline's own hashing key
//! - [`spot`] — per-identity thresholds set from its own benign scores (SPOT), as a profile keeps them
//! - [`watch`] — one call held against its baseline, live or replayed from its record

pub mod burst;
pub mod detect;
#[cfg(test)]
mod month;
pub mod profile;
pub mod respond;
pub mod sketch;
pub mod spot;
#[cfg(test)]
mod testing;
pub mod watch;
