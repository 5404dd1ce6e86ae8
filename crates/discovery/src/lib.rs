//! Discovery importers: each reads one source's real format, streaming, into
//! [`Account`](aim_domain::discovery::Account)s, and [`upload`] sends them to aim in batches.
//! A malformed record stops the import with the row (or DN, or object) and the field that
//! is wrong; nothing a source did not say is made up (an unknown last use stays unknown).
//!
//! # Layout
//! - [`aws_authorization`] — AWS IAM users, groups, roles and policies: effective permissions
//! - [`credential_report`] — the AWS IAM credential report, CSV or the API's base64 JSON
//! - [`csv_map`] — any CSV, with a mapping from aim's fields to its columns
//! - [`kubernetes`] — service accounts, their bindings and their long-lived token secrets
//! - [`ldap`] — LDAP / Active Directory service accounts, FILETIMEs and account control bits
//! - [`values`] — the sentinels and date forms sources write
//! - [`upload`] — batches to `POST /v1/discovery/imports`, with progress
//! - `tests`, `hostile` (tests only) — the readers against fixtures, and against arbitrary
//!   or damaged input

pub mod aws_authorization;
pub mod credential_report;
pub mod csv_map;
pub mod kubernetes;
pub mod ldap;
pub mod upload;
pub mod values;

/// Why a source could not be read: where, and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A record is malformed; `at` names it (`row 12`, a DN, `ServiceAccount ns/name`).
    #[error("{at}: {message}")]
    Record { at: String, message: String },
    /// The file as a whole is not what the importer reads.
    #[error("{0}")]
    Format(String),
    #[error("reading the source: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    pub fn record(at: impl Into<String>, message: impl Into<String>) -> ReadError {
        ReadError::Record {
            at: at.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

#[cfg(test)]
mod hostile;
