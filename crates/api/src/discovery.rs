//! Discovery over HTTP: an import is opened for a source, its accounts sent in batches, and
//! finished (which marks the accounts it did not see as gone); discovered accounts and their
//! findings are listed per source.

use std::collections::BTreeMap;

use aim_domain::discovery::{
    Account, AccountKind, Finding, FindingKind, Severity, SourceKind, Thresholds,
};
use aim_domain::identity::{Autonomy, Identity, IdentityKind};
use aim_domain::ids::{AccountId, HumanId, IdentityId, ImportId};
use aim_domain::risk::{DataSensitivity, Level, RiskAssessment};
use aim_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The most accounts one batch may carry.
pub const MAX_BATCH: usize = 2000;

/// `POST /v1/discovery/imports`: open an import of one source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    /// The source's name (`corp-ad`, `aws-prod`): its accounts are kept under it, and
    /// importing it again updates them.
    pub source: String,
    /// The format this import reads. One source may be read in several formats (an AWS
    /// account's credential report and its authorization details): each adds its view of
    /// the same accounts.
    pub kind: SourceKind,
    /// The thresholds findings use; the source kind's defaults if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
}

/// An open import.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Import {
    pub id: ImportId,
    pub source: String,
    pub kind: SourceKind,
    pub thresholds: Thresholds,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub finished_at: Option<Timestamp>,
    /// The counts, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ImportSummary>,
    /// Ended without marking anything gone: reading the source failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
}

/// `POST /v1/discovery/imports/{id}/accounts`: one batch (at most [`MAX_BATCH`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccountsBody {
    pub accounts: Vec<Account>,
}

/// `POST /v1/discovery/imports/{id}/finish` (the body may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    /// Mark gone more than half of the accounts this format showed: without it, such an
    /// import is refused (409 `mass_removal`), as a wrong or empty file would do it.
    #[serde(default)]
    pub allow_mass_removal: bool,
}

/// What one batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchCounts {
    pub received: u64,
    /// Accounts the source had not shown before (or showed again after they were gone).
    pub new: u64,
    /// Accounts whose record or findings changed.
    pub updated: u64,
    pub unchanged: u64,
    /// Findings on the batch's accounts now.
    pub findings: u64,
}

/// An import's counts, as of its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportSummary {
    /// What this import's batches did.
    pub batches: BatchCounts,
    /// Accounts that were in the source's previous import of this kind and not in this one.
    pub gone: u64,
    /// The source's accounts present after the import, and the enabled machine identities
    /// among them.
    pub present: u64,
    pub machine_enabled: u64,
    /// Findings on the source's present accounts, by kind and by severity.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub findings: BTreeMap<FindingKind, u64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub severities: BTreeMap<Severity, u64>,
    /// Enabled machine identities, of every source and in the registry, per active human.
    pub ratio: Ratio,
}

/// Machine identities per person: enabled discovered machine accounts of every source plus
/// the registry's active identities, over the active humans aim knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ratio {
    pub machine_identities: u64,
    pub active_humans: u64,
    /// `machine_identities / active_humans`; absent when aim knows no active human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_human: Option<f64>,
}

/// `POST /v1/discovery/reassess`: every source's present accounts assessed again against
/// the clock and aim's humans now, without an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reassessment {
    /// Still running when the answer was sent (202): it goes on by itself, and the counts
    /// are not known yet (its changes are audit events `discovery.findings_reassessed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub running: bool,
    /// Sources assessed (those with a finished import).
    pub sources: u64,
    /// Present accounts assessed.
    pub accounts: u64,
    /// Accounts whose findings changed (which, or their evidence: the days unused).
    pub changed: u64,
    /// Findings that appeared, by kind.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub appeared: BTreeMap<FindingKind, u64>,
    /// Findings that went, by kind.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub went: BTreeMap<FindingKind, u64>,
    /// Sources left alone because an import of them is running (it assesses them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<String>,
}

/// Whether a discovered account is still in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Present,
    /// Its source's last import of every kind that showed it no longer did.
    Gone,
}

/// A discovered account as aim keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveredAccount {
    pub id: AccountId,
    pub source: String,
    pub key: String,
    pub name: String,
    pub kind: AccountKind,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub presence: Presence,
    /// The registry identity it is, when one matches (by name) or it was adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityId>,
    pub risk: RiskAssessment,
    pub findings: Vec<Finding>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub first_seen: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub gone_at: Option<Timestamp>,
    /// The formats that show it (`aws-credential-report`, `aws-authorization`).
    pub seen_in: Vec<SourceKind>,
    /// Adopted into the registry, or marked for decommissioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<DispositionView>,
    /// Findings acknowledged until a date that has not passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledgements: Vec<AcknowledgementView>,
    /// Everything the source says about it, its views merged.
    pub account: Account,
}

/// One finding, with the account it is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingRow {
    pub account: AccountId,
    pub source: String,
    pub key: String,
    pub name: String,
    #[serde(flatten)]
    pub finding: Finding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<AcknowledgementView>,
}

/// What the security team decided about an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispositionView {
    /// `adopted` or `decommission`.
    pub state: String,
    pub reason: String,
    /// The human who decided.
    pub by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
}

/// A finding acknowledged until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcknowledgementView {
    /// The finding's kind, and `:credential` when it is about one.
    pub finding: String,
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub until: Timestamp,
    pub by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
}

/// `POST /v1/discovery/accounts/{id}/acknowledge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeBody {
    /// The finding: its kind, and `:credential` when it is about one (`dormant:access_key_1`).
    pub finding: String,
    pub reason: String,
    /// When it counts again (at most a year away).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub until: Timestamp,
}

/// `POST /v1/discovery/accounts/{id}/adopt`: an identity requested for the account, through
/// the registry's approval. What is left out comes from the account: its name, purpose and
/// systems, and the criticality, data sensitivity and impact its reach gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdoptBody {
    #[serde(default)]
    pub name: Option<String>,
    pub kind: IdentityKind,
    #[serde(default)]
    pub autonomy: Option<Autonomy>,
    pub sponsor_id: HumanId,
    #[serde(default)]
    pub owner_team: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub systems: Option<Vec<String>>,
    #[serde(default)]
    pub data_sensitivity: Option<DataSensitivity>,
    #[serde(default)]
    pub criticality: Option<Level>,
    #[serde(default)]
    pub impact: Option<Level>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: Timestamp,
}

/// An adoption: the identity requested for the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Adopted {
    pub account: AccountId,
    pub identity: Identity,
}

/// One account on a decommission list: what an operator retires, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecommissionRow {
    pub account: AccountId,
    pub source: String,
    pub key: String,
    pub name: String,
    pub kind: AccountKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The ids of its credentials still active (keys to delete).
    pub active_credentials: Vec<String>,
    pub reason: String,
    pub marked_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub marked_at: Timestamp,
    /// When its source stopped showing it: done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub gone_at: Option<Timestamp>,
}
