//! What any enforcement point runs on a request, whether it is `aim serve` answering
//! `POST /v1/authorize` or a gateway in front of a tool: check the token, its DPoP proof
//! and the live state behind it, then decide with the policy set, grants, leases and
//! approvals, and produce the decision record. No HTTP and no SQL: where live state,
//! leases and approvals come from, and where records go, are small traits the embedding
//! implements (the store in `aim serve`; aim's API and revocation feed in a gateway).
//!
//! # Layout
//! - [`snapshot`] — a value replaced whole (policy set, grants, key ring), read without locks held
//! - [`live`] — the live state behind presented tokens, kept briefly, dropped on any change
//! - [`token`] — a presented token and proof checked against keys and live state
//! - [`pipeline`] — one decision: policies, grants, leases, baseline, approvals, the record
//! - [`subject`] — who a question is about, under which task, asked by whom
//! - [`amend`] — what grants, leases and approvals make of the policy set's answer
//! - [`policies`] — a policy set as aim serves it, compiled where it is enforced

pub mod amend;
pub mod live;
pub mod pipeline;
pub mod policies;
pub mod snapshot;
pub mod subject;
pub mod token;

pub use aim_policy::Engine;
pub use live::LiveCache;
pub use pipeline::{Pipeline, Refused, Ruled, Subject};
pub use snapshot::Snapshot;
pub use token::{Agent, Inactive, LiveSource, TokenRules, UnspentProof};
