//! `aim discover ...`: machine identities that already exist outside aim.

use std::path::PathBuf;

use aim_domain::discovery::{AccountKind, FindingKind, Severity};
use aim_domain::identity::{Autonomy, IdentityKind};
use clap::{Args, Subcommand, ValueEnum};

use super::PageArgs;

// Parsed once per run: the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum DiscoverCommand {
    /// Import a source (admins): read its real format, send what it holds to aim in
    /// batches, and finish the import, which marks gone the accounts it no longer holds.
    /// Importing the same source again updates it; it never duplicates.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Discovered accounts, with their tiers and findings.
    Accounts(AccountFilter),
    /// Findings on present accounts, one line per finding (`--limit` counts accounts).
    Findings(AccountFilter),
    /// Adopt a discovered account into the registry: an identity is requested for it (an
    /// approver decides, as for any request) and linked to it. Its name, purpose, systems
    /// and risk inputs come from the account unless given.
    Adopt(AdoptArgs),
    /// Put a discovered account on its source's decommission list (admins, with a reason).
    Decommission {
        #[command(flatten)]
        account: AccountArg,
        /// Why it goes (on the record and on the list).
        #[arg(long)]
        reason: String,
    },
    /// The decommission list: what to retire, its active credentials, who marked it and
    /// why, and when its source stopped showing it.
    DecommissionList {
        /// The list of this source (every source if absent).
        #[arg(long)]
        source: Option<String>,
        /// `table`, `json` or `csv` (for a spreadsheet or a ticket).
        #[arg(long, value_parser = ["table", "json", "csv"], default_value = "table")]
        format: String,
    },
    /// Acknowledge one finding of an account until a date: it stays on the account, marked,
    /// and counts again once the date passes.
    Acknowledge {
        #[command(flatten)]
        account: AccountArg,
        /// The finding: its kind, and `:credential` when it is about one
        /// (`dormant:access_key_1`).
        #[arg(long)]
        finding: String,
        /// Why it is accepted for now (on the record).
        #[arg(long)]
        reason: String,
        /// Until when: a duration from now (`30d`) ...
        #[arg(long = "for", value_parser = super::parse_duration_ms, conflicts_with = "until")]
        for_: Option<i64>,
        /// ... or an RFC 3339 instant.
        #[arg(long, value_parser = super::parse_instant)]
        until: Option<aim_domain::Timestamp>,
    },
    /// Assess every source's present accounts again now (admins), without an import: a
    /// key unused for a month becomes dormant, an owner who left makes their accounts
    /// orphaned. aim does it by itself daily (`discovery_reassess_interval_seconds`).
    Reassess {
        /// Seconds to wait for it to finish; after that it goes on by itself in aim
        /// (its changes are audit events `discovery.findings_reassessed`).
        #[arg(long, default_value_t = 20)]
        wait: u64,
    },
    /// Imports, newest first, with their counts: a source's trend over time.
    Imports {
        /// Imports of this source.
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// The AWS IAM credential report: the CSV, or the JSON of `aws iam
    /// get-credential-report` (its base64 `Content`). `-` reads standard input.
    AwsCredentialReport {
        /// The report file, or `-`.
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
    },
    /// AWS IAM users, groups, roles and managed policies: the JSON of `aws iam
    /// get-account-authorization-details`. Import it into the same source as the account's
    /// credential report: each user is one account with its keys and its permissions.
    AwsAuthorization {
        /// The JSON file, or `-`.
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
    },
    /// Kubernetes service accounts, their role bindings and their long-lived token
    /// secrets: the JSON of `kubectl get serviceaccounts,roles,clusterroles,rolebindings,
    /// clusterrolebindings,secrets -A -o json` (no secret's value is read).
    Kubernetes {
        /// The JSON file, or `-`.
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
    },
    /// LDAP / Active Directory service accounts, read with a bind, base DNs and a filter
    /// (by default: managed service accounts and accounts with a service principal name).
    Ldap(LdapArgs),
    /// Any CSV (SaaS bots, API key lists), through a mapping from aim's fields to its
    /// columns: `--map key="Bot ID" --map owner="Owner Email"`, or `--mapping FILE` with
    /// one `field=Column` per line. Fields: key (required), name, kind, enabled, owner,
    /// purpose, vendor, environment, created, last_used, expires, credential,
    /// credential_kind, credential_created, fingerprint, permissions, groups, systems.
    Csv {
        /// The CSV file, or `-`.
        file: PathBuf,
        /// A file of `field=Column` lines.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// One `field=Column` pair (repeatable).
        #[arg(long = "map")]
        map: Vec<String>,
        /// The kind of accounts whose row does not say.
        #[arg(long, value_parser = parse_kind, default_value = "bot")]
        kind: AccountKind,
        #[command(flatten)]
        common: ImportArgs,
    },
}

/// A discovered account: its id, or its name (with `--source` when two sources have one of
/// that name).
#[derive(Debug, Args)]
pub struct AccountArg {
    /// The account's id or name.
    pub account: String,
    /// The source it is in.
    #[arg(long)]
    pub source: Option<String>,
}

/// What an adopted account is registered as.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// The identity's kind.
    #[arg(long, value_parser = super::one_of!(IdentityKind))]
    pub kind: IdentityKind,
    /// Its sponsor (user name or id): the human accountable for it.
    #[arg(long)]
    pub sponsor: String,
    #[command(flatten)]
    pub expiry: super::Expiry,
    /// Its name in the registry (default: the account's; the naming policy applies).
    #[arg(long)]
    pub name: Option<String>,
    /// What it is for (default: the account's purpose in its source).
    #[arg(long)]
    pub purpose: Option<String>,
    /// How it acts (default: automation).
    #[arg(long, value_parser = super::one_of!(Autonomy))]
    pub autonomy: Option<Autonomy>,
    /// A system it reaches (repeatable; default: the account's).
    #[arg(long = "system")]
    pub systems: Vec<String>,
    /// The team that owns it.
    #[arg(long)]
    pub owner_team: Option<String>,
}

/// Where the directory is and what to read from it.
#[derive(Debug, Args)]
pub struct LdapArgs {
    /// `ldaps://dc.corp.example`, or `ldap://...` with `--starttls`.
    #[arg(long)]
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[arg(long)]
    pub starttls: bool,
    /// Allow a plain `ldap://` connection to a host other than this one: the bind password
    /// would cross the network in clear.
    #[arg(long)]
    pub insecure_plaintext: bool,
    /// The DN to bind as (a read-only account); anonymous if absent.
    #[arg(long)]
    pub bind_dn: Option<String>,
    /// A file holding the bind password (never on the command line).
    #[arg(long)]
    pub bind_password_file: Option<PathBuf>,
    /// The bind password, from the environment only.
    #[arg(
        long = "bind-password-env",
        env = "AIM_LDAP_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub bind_password: Option<String>,
    /// A base DN to search under (repeatable).
    #[arg(long = "base", required = true)]
    pub bases: Vec<String>,
    /// The LDAP filter selecting service accounts.
    #[arg(long, default_value = aim_discovery::ldap::DEFAULT_FILTER)]
    pub filter: String,
    /// A group whose members are privileged (repeatable; default: Domain Admins,
    /// Enterprise Admins, Schema Admins, Administrators, the built-in operators, DnsAdmins,
    /// Group Policy Creator Owners, Key Admins, Enterprise Key Admins).
    #[arg(long = "privileged-group")]
    pub privileged_groups: Vec<String>,
    /// Trust only this CA (PEM) for the directory's certificate.
    #[arg(long)]
    pub ldap_ca_cert: Option<PathBuf>,
    #[command(flatten)]
    pub common: ImportArgs,
}

/// What every import takes.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The source's name (`aws-prod`, `corp-ad`): its accounts are kept under it.
    #[arg(long)]
    pub source: String,
    /// The environment of accounts the source does not place in one (`prod`).
    #[arg(long)]
    pub environment: Option<String>,
    /// Unused for longer than this many days: dormant (default 30; 90 for a directory).
    #[arg(long)]
    pub dormant_days: Option<u32>,
    /// Credentials older than this many days: stale or never rotated (default 90).
    #[arg(long)]
    pub rotation_days: Option<u32>,
    /// Accounts per batch sent to aim (1-2000).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Let this import mark more than half of the source's accounts gone (refused
    /// otherwise: a wrong or empty file does that).
    #[arg(long)]
    pub allow_mass_removal: bool,
}

/// Which accounts to list.
#[derive(Debug, Args)]
pub struct AccountFilter {
    /// Accounts of this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Present (default) or gone accounts.
    #[arg(long, value_enum)]
    pub presence: Option<PresenceArg>,
    /// Accounts with a finding of this kind (`dormant`, `over_privileged`, ...).
    #[arg(long, value_parser = parse_finding)]
    pub finding: Option<FindingKind>,
    /// Accounts with a finding of this severity.
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Findings acknowledged until a date still to come: left out (`exclude`, the
    /// default), shown too (`include`), or shown alone (`only`).
    #[arg(long, value_parser = ["exclude", "include", "only"])]
    pub acknowledged: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresenceArg {
    Present,
    Gone,
}

fn parse_kind(s: &str) -> Result<AccountKind, String> {
    AccountKind::parse(s).map_err(|e| e.to_string())
}

fn parse_finding(s: &str) -> Result<FindingKind, String> {
    FindingKind::parse(s).map_err(|e| e.to_string())
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).map_err(|e| e.to_string())
}
