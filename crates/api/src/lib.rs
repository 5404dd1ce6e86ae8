//! aim's wire: the request and response types of its HTTP API, as plain serde types over
//! the domain. The server answers with them, `aim-client` sends and reads them, and every
//! enforcement point (`aim-enforce`) decides with them, so the three can never disagree
//! about a field.
//!
//! # Layout
//! - [`common`] — bodies several routes share
//! - [`identities`] — bearer opt-in, agents' keys, join tokens and joining
//! - [`leases`] — asking for a lease
//! - [`audit`] — the head of the chain
//! - [`authorize`] — `POST /v1/authorize` and `/v1/authorize/explain`
//! - [`behaviour`] — backtests of the behavioural detectors, and why an identity was held
//! - [`discovery`] — imports of discovery sources, discovered accounts and their findings
//! - [`export`] — audit records as SIEMs read them: OCSF and CEF
//! - [`gateway`] — what an enforcement gateway asks of aim
//! - [`oauth`] — `POST /oauth/token`: the form and the answer
//! - [`policies`] — a policy set's files and links as applied, and its history
//! - [`reports`] — compliance reports against OWASP, NIST and CSA frameworks, and their trend
//! - [`tools`] — MCP tools: what gateways saw, which a caller may use, pinned definitions
//! - [`secrets`] — credentials for upstreams kept in aim
//! - [`tokens`] — signing keys as operators see them, the revocation list

pub mod audit;
pub mod authorize;
pub mod behaviour;
pub mod common;
pub mod discovery;
pub mod export;
pub mod gateway;
pub mod identities;
pub mod leases;
pub mod oauth;
pub mod policies;
pub mod reports;
pub mod secrets;
pub mod tokens;
pub mod tools;
