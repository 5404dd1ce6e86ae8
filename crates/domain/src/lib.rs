//! aim's domain core: the registry of non-human identities and the governance rules around
//! it, as plain types and functions. No IO: clocks are injected, storage and HTTP live in
//! other crates.
//!
//! # Layout
//! - [`ids`] — opaque id newtypes (UUIDv7)
//! - [`time`] — [`Timestamp`] (UTC, millisecond precision) and the injected [`Clock`]
//! - [`validate`] — checks on user-supplied strings: lengths, character sets, no control characters
//! - [`human`] — humans (sponsors, approvers, admins, auditors) and their roles
//! - [`identity`] — the NHI record, what a requester supplies, what a patch may change
//! - [`lifecycle`] — the state machine and the guards on it
//! - [`risk`] — risk tier from criticality, data sensitivity and impact, with reasons
//! - [`naming`] — the naming policy per kind
//! - [`governance`] — lifetimes, attestation, dormancy and orphan rules, and their config
//! - [`review`] — deciding an identity request, with separation of duties
//! - [`entitlement`] — widening an approved identity waits for a second human
//! - [`agent_key`] — agents' registered keys, and what a revocation kills
//! - [`task`] — a unit of agent work, and what opening one asks for
//! - [`live`] — what a presented token hangs on, and what one read finds about it
//! - [`single_use`] — ids spent once across replicas (assertions, DPoP proofs)
//! - [`decision`] — a decision and the question it answers, as plain data
//! - [`policy_file`] — policy files and template links as uploaded
//! - [`approval`] — a human's single-use yes or no on one exact high-risk action
//! - [`grant`] — grants and just-in-time elevation
//! - [`lease`] — exclusive write on one record (conflict of authority)
//! - [`upstream_secret`] — credentials for upstreams, kept sealed for gateways
//! - [`tool`] — MCP tools' definitions pinned by hash when an admin approves them
//! - [`sweep`] — what the periodic sweep does to one identity at one instant
//! - [`baseline`] — what an identity normally does, in bounded memory, and its thresholds
//! - [`discovery`] — machine identities found outside aim, and the posture findings about them
//! - [`compliance`] — aim's live controls and findings read against OWASP, NIST and CSA frameworks
//! - [`event`] — the append-only record of every change
//! - [`audit`] — the hash chain over events and its verifier
//! - [`trace`] — the causal chain of one task: its request, tokens and what each did
//! - [`page`] — cursor pagination
//! - [`error`] — [`Refusal`], every reason the domain says no

/// A closed set of lowercase snake_case names: serde, `as_str`, `parse`, `ALL` and `Display`
/// from one list, so the API, the store and the CLI can never spell a variant differently.
macro_rules! str_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// Parses the exact lowercase name; the error lists what is allowed.
            pub fn parse(s: &str) -> Result<Self, $crate::error::InvalidEnum> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err($crate::error::InvalidEnum {
                        kind: stringify!($name),
                        value: s.chars().take(64).collect(),
                        allowed: &[$($s),+],
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::InvalidEnum;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }
    };
}

pub mod agent_key;
pub mod approval;
pub mod audit;
pub mod baseline;
pub mod compliance;
pub mod decision;
pub mod discovery;
pub mod entitlement;
pub mod error;
pub mod event;
pub mod governance;
pub mod grant;
pub mod human;
pub mod identity;
pub mod ids;
pub mod lease;
pub mod lifecycle;
pub mod live;
pub mod naming;
pub mod page;
pub mod policy_file;
pub mod review;
pub mod risk;
pub mod single_use;
pub mod sweep;
pub mod task;
pub mod time;
pub mod tool;
pub mod trace;
pub mod upstream_secret;
pub mod validate;

pub use error::Refusal;
pub use time::{Clock, FakeClock, SystemClock, Timestamp};
