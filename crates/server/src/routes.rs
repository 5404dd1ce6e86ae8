//! HTTP routes, grouped by resource. Handlers are thin: extract, call the registry, shape
//! the response.
//!
//! # Layout
//! - [`identities`] — `/v1/identities`
//! - [`humans`] — `/v1/humans` and API credentials
//! - [`scim`] — `/scim/v2` for identity providers
//! - [`audit`] — `/v1/audit`, the event log
//! - [`system`] — health, readiness, sweeps
//! - [`policies`], [`authorize`] — the policy set and runtime decisions
//! - [`behaviour`] — backtests of the behavioural detectors, why an identity was held
//! - [`discovery`] — imports of outside sources, the accounts they hold and their findings
//! - [`discovery_remedy`] — adoption, the decommission list, acknowledged findings
//! - [`reports`] — compliance reports: generated, kept for the trend, read again
//! - [`approvals`], [`grants`], [`leases`] — human approval, grants and elevation, leases
//! - [`gateway`], [`tools`], [`presented`] — what enforcement gateways ask, MCP tools pinned
//!   by definition, the agent's token checked for a gateway
//! - [`gateway_sync`] — what a gateway deciding by itself reads, and its decisions' record
//! - [`upstream_secrets`] — credentials for upstreams, sealed, read only by gateways
//! - [`openapi`] — `/v1/openapi.json`

pub mod agent_keys;
pub mod approvals;
pub mod audit;
pub mod authorize;
pub mod behaviour;
pub mod discovery;
pub mod discovery_remedy;
pub mod gateway;
pub mod gateway_sync;
pub mod grants;
pub mod humans;
pub mod identities;
pub mod join;
pub mod leases;
pub mod oauth;
pub mod openapi;
pub mod policies;
pub mod presented;
pub mod reports;
pub mod scim;
pub mod signing_keys;
pub mod system;
pub mod tasks;
pub mod tools;
pub mod upstream_secrets;
