//! Discovery: the machine identities that already exist outside aim (directory service
//! accounts, cloud IAM users and roles, Kubernetes service accounts, SaaS bots and API keys),
//! as importers read them, and the posture findings about each of them, per credential.
//!
//! An importer turns one source's real format into [`Account`]s; aim keeps them per source
//! (re-importing updates, never duplicates) and [`assess`]es each against the
//! [`Thresholds`], the humans it knows and the account as the previous import saw it. Every
//! [`Finding`] names its OWASP Top 10 for Non-Human Identities entry ([`Nhi`]) and carries the
//! values that triggered it.
//!
//! # Layout
//! - [`account`] — a discovered account, its credentials, permissions and groups
//! - [`across`] — findings across accounts: duplicates, one secret in several environments
//! - [`finding`] — finding kinds, severities, the OWASP NHI mapping, thresholds
//! - [`rules`] — the findings about one account at one instant
//! - [`tier`] — a risk tier for a discovered account from what it can reach

pub mod account;
pub mod across;
pub mod finding;
pub mod rules;
pub mod tier;

#[cfg(test)]
mod tests;

pub use account::{
    Account, AccountKind, Credential, CredentialKind, Flag, Group, LastUse, Permission, SourceKind,
};
pub use finding::{Finding, FindingKind, Nhi, Severity, Thresholds};
pub use rules::{Owner, Subject, assess, reassess};
