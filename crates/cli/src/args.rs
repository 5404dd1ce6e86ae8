//! The command line, as clap types. Each noun has its own enum of verbs.

use std::path::PathBuf;

use aim_domain::human::{HumanState, Role};
use aim_domain::identity::{Autonomy, IdentityKind};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::{DataSensitivity, Level, RiskTier};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod runtime;
pub use runtime::{ApprovalCommand, GrantCommand};

#[derive(Debug, Parser)]
#[command(
    name = "aim",
    version,
    about = "Control plane for the identities of AI agents and other non-human identities"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The aim server to talk to.
    #[arg(
        long,
        env = "AIM_ADDR",
        default_value = "http://127.0.0.1:8420",
        global = true
    )]
    pub addr: String,
    /// An API credential (`aim_...`).
    #[arg(long, env = "AIM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Trust only this CA (PEM) for an aim served over HTTPS with a private CA.
    #[arg(long, env = "AIM_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane.
    Serve(ServeArgs),
    /// Humans: sponsors, approvers, admins, auditors.
    #[command(subcommand)]
    Human(HumanCommand),
    /// Non-human identities: request, approve, govern.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The governance sweep (end-of-life, attestation, dormancy, orphans).
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// The tamper-evident event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Tasks: the units of work agents hold tokens for.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Access tokens: get one as an agent would, or look inside one.
    #[command(subcommand)]
    Token(TokenCommand),
    /// aim's own token signing keys.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// One-time tokens a new agent registers its own key with.
    #[command(subcommand)]
    JoinToken(JoinTokenCommand),
    /// Cedar policies: apply, show, roll back, try a request against them.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Approvals of high-risk actions: list what waits, approve or deny with a reason.
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Grants of actions to identities and groups, and just-in-time elevations.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Administration of aim itself.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Replace the first-start admin credential: the old one stops working; the new one is
    /// printed once (and rewritten to `<data-dir>/bootstrap-admin-token` on the server).
    RotateBootstrap,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the SQLite database, the bootstrap credential and local state live.
    #[arg(long, env = "AIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "AIM_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Use PostgreSQL (`postgres://user@host/db`) instead of the SQLite file.
    #[arg(long, env = "AIM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A TOML config file; flags and environment variables override it.
    #[arg(long, env = "AIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (re-read when it changes).
    #[arg(long, env = "AIM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, env = "AIM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HumanCommand {
    /// Add a human.
    Add {
        user_name: String,
        /// A role; repeat for several.
        #[arg(long = "role", value_parser = parse_role)]
        roles: Vec<Role>,
        /// A group (named by `@approval("group:...")`); repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The IdP's id for this person.
        #[arg(long)]
        external_id: Option<String>,
    },
    /// List humans.
    List {
        #[arg(long, value_parser = parse_human_state)]
        state: Option<HumanState>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one human (by user name or id).
    Show { human: String },
    /// Set a human's roles (replacing the ones they have).
    Roles {
        human: String,
        #[arg(long = "role", value_parser = parse_role)]
        roles: Vec<Role>,
    },
    /// Set a human's groups (replacing the ones they are in).
    Groups {
        human: String,
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Mark a human departed: every identity they sponsor becomes orphaned.
    Deactivate {
        human: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Mark a departed human active again.
    Reactivate {
        human: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A human's API credentials.
    #[command(subcommand)]
    Credential(CredentialCommand),
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create an API credential; its secret is printed once.
    Create {
        human: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List a human's credentials (never their secrets).
    List { human: String },
    /// Revoke a credential.
    Revoke {
        human: String,
        credential_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Request a new identity; it starts `requested` until an approver approves it.
    Request(RequestArgs),
    /// Approve a request.
    Approve(ReasonArgs),
    /// Reject a request (a reason is required).
    Reject(ReasonArgs),
    /// List identities.
    List(ListArgs),
    /// Show one identity (by name or id).
    Show { identity: String },
    /// Change an identity's description; its risk tier is recomputed. What widens an
    /// approved identity's reach (systems, team, labels, lower risk inputs) waits for an
    /// approver: `aim identity approve-change`.
    Update(UpdateArgs),
    /// Apply an identity's pending change (an approver who did not ask for it).
    ApproveChange(ReasonArgs),
    /// Drop an identity's pending change.
    RejectChange(ReasonArgs),
    /// Let an identity have bearer tokens, not bound to its key (admins, with a reason);
    /// `--withdraw` brings DPoP back.
    Bearer(BearerArgs),
    /// Suspend an active identity.
    Suspend(ReasonArgs),
    /// Resume a suspended identity.
    Resume(ReasonArgs),
    /// Lock an identity (kill switch); only an admin unlocks.
    Lock(ReasonArgs),
    /// Unlock a locked identity (admins, with a reason).
    Unlock(ReasonArgs),
    /// Re-certify an identity's purpose and entitlements.
    Attest(ReasonArgs),
    /// Retire an identity for good; its name is never reused.
    Decommission(ReasonArgs),
    /// The public keys an agent signs its assertions with.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Register a public key: from a public JWK file, or derived from a private key file.
    Add {
        /// Name or id.
        identity: String,
        /// A file with the public JWK.
        #[arg(long, group = "source")]
        jwk: Option<PathBuf>,
        /// A PKCS#8 PEM private key file (only its public half is sent).
        #[arg(long, group = "source")]
        key_file: Option<PathBuf>,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List an identity's keys.
    List {
        /// Name or id.
        identity: String,
    },
    /// Revoke a key; assertions signed with it are refused from now on.
    Revoke {
        /// Name or id.
        identity: String,
        kid: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// As a new agent: register the key in a private key file with a join token (no
    /// AIM_TOKEN needed; a DPoP proof shows the key is held).
    Join {
        /// The join token (`aimjoin_...`).
        #[arg(long, env = "AIM_JOIN_TOKEN", hide_env_values = true)]
        join_token: String,
        /// A PKCS#8 PEM private key file.
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Make a new private key file for an agent (PKCS#8 PEM, mode 0600) and print its
    /// public JWK.
    Generate {
        /// `EdDSA` (Ed25519) or `ES256` (P-256).
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum JoinTokenCommand {
    /// Make a one-time join token for an identity (printed once).
    Create {
        /// Name or id.
        identity: String,
        /// Seconds it may wait to be used (60 to 86400).
        #[arg(long, default_value_t = 900)]
        ttl: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Open a task as an agent (with its key file) and get its first token; the same as
    /// `aim token issue` without `--task`.
    Start(IssueArgs),
    /// List tasks (all of them for admins and auditors; a sponsor names an identity).
    List {
        /// Name or id.
        #[arg(long)]
        identity: Option<String>,
        /// Only open tasks.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one task.
    Show { task: String },
    /// End a task now; every token of it stops working.
    End {
        task: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Get an access token as an agent: sign a client assertion with a local key file and
    /// open a task (or continue one with --task). For people testing; agents do the same.
    Issue(IssueArgs),
    /// Decode a token and check it against the server's published keys.
    Inspect {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The identity's id (or its name, which needs AIM_TOKEN to look up).
    #[arg(long)]
    pub identity: String,
    /// The agent's PKCS#8 PEM private key file.
    #[arg(long)]
    pub key_file: PathBuf,
    /// Continue this open task instead of opening one.
    #[arg(long, conflicts_with_all = ["purpose", "systems", "subject", "triggered_by"])]
    pub task: Option<String>,
    #[arg(long, required_unless_present = "task")]
    pub purpose: Option<String>,
    /// A system the task needs; repeat for several.
    #[arg(long = "system", required_unless_present = "task")]
    pub systems: Vec<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// The human and request behind the task (`alice: TICKET-42`).
    #[arg(long, required_unless_present = "task")]
    pub triggered_by: Option<String>,
    /// Seconds the task may run (capped by the identity's autonomy).
    #[arg(long)]
    pub max_duration: Option<i64>,
    /// Ask for a plain bearer token instead of one bound to the key with DPoP (refused for
    /// autonomous agents by default).
    #[arg(long)]
    pub no_dpop: bool,
    /// Write the access token to this file (mode 0600) instead of printing it.
    #[arg(long)]
    pub write_token: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyFiles {
    /// A `.cedar` file, or a folder whose `*.cedar` files are read (not its subfolders);
    /// repeat for several. A file is named by its path under the folder given.
    #[arg(short = 'f', long = "file", required = true)]
    pub paths: Vec<PathBuf>,
    /// A JSON file of template links: `[{"id", "template", "principal", "resource"}]`.
    #[arg(long)]
    pub links: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the policy set in force with these files (validated strictly first).
    Apply {
        #[command(flatten)]
        files: PolicyFiles,
        #[arg(long, default_value = "")]
        comment: String,
        /// Refuse if the version in force is no longer this one.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Print the policy files in force, or those of one version.
    Show { version: Option<i64> },
    /// The history of versions.
    Versions,
    /// Bring an earlier version's files back, as a new version.
    Rollback {
        version: i64,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Decide a request (JSON: action, resource, principal, task_id, call) against the
    /// set in force, or against proposed files without applying them; nothing is recorded.
    Test {
        /// The request, as a JSON file.
        #[arg(long)]
        request: PathBuf,
        /// Proposed files instead of the set in force.
        #[arg(short = 'f', long = "file")]
        paths: Vec<PathBuf>,
        #[arg(long)]
        links: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// List aim's signing keys.
    List,
    /// Start signing with a new key now; the old one still verifies its tokens.
    Rotate,
    /// Revoke a signing key: every token it signed dies at once.
    Revoke {
        kid: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct ReasonArgs {
    /// Name or id.
    pub identity: String,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct BearerArgs {
    /// Name or id.
    pub identity: String,
    /// Why this identity cannot hold its tokens bound to its key (required to allow).
    #[arg(long, default_value = "", required_unless_present = "withdraw")]
    pub reason: String,
    /// Withdraw the opt-in.
    #[arg(long)]
    pub withdraw: bool,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    pub name: String,
    #[arg(long, value_parser = parse_kind)]
    pub kind: IdentityKind,
    #[arg(long, value_parser = parse_autonomy)]
    pub autonomy: Autonomy,
    /// The accountable human (user name or id).
    #[arg(long)]
    pub sponsor: String,
    #[arg(long)]
    pub purpose: String,
    /// A system it may touch; repeat for several.
    #[arg(long = "system")]
    pub systems: Vec<String>,
    #[arg(long, value_parser = parse_sensitivity)]
    pub sensitivity: DataSensitivity,
    #[arg(long, value_parser = parse_level)]
    pub criticality: Level,
    #[arg(long, value_parser = parse_level)]
    pub impact: Level,
    #[arg(long)]
    pub team: Option<String>,
    /// `key=value`; repeat for several.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub expiry: Expiry,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Expiry {
    /// End-of-life as a duration from now: `90d`, `12w`, `36h`.
    #[arg(long, value_parser = parse_duration_ms)]
    pub expires_in: Option<i64>,
    /// End-of-life as an RFC 3339 instant.
    #[arg(long)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub identity: String,
    #[arg(long)]
    pub purpose: Option<String>,
    /// Replaces the systems; repeat for several.
    #[arg(long = "system")]
    pub systems: Vec<String>,
    #[arg(long)]
    pub sponsor: Option<String>,
    #[arg(long, value_parser = parse_sensitivity)]
    pub sensitivity: Option<DataSensitivity>,
    #[arg(long, value_parser = parse_level)]
    pub criticality: Option<Level>,
    #[arg(long, value_parser = parse_level)]
    pub impact: Option<Level>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, value_parser = parse_duration_ms, conflicts_with = "expires_at")]
    pub expires_in: Option<i64>,
    #[arg(long)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_parser = parse_state)]
    pub state: Option<LifecycleState>,
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<IdentityKind>,
    /// User name or id.
    #[arg(long)]
    pub sponsor: Option<String>,
    #[arg(long, value_parser = parse_tier)]
    pub risk: Option<RiskTier>,
    /// Only those whose end-of-life comes within this duration (`30d`).
    #[arg(long, value_parser = parse_duration_ms)]
    pub expiring_within: Option<i64>,
    #[arg(long)]
    pub dormant: bool,
    #[arg(long)]
    pub orphaned: bool,
    #[arg(long)]
    pub possible_duplicate: bool,
    #[arg(long)]
    pub name_prefix: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Continue from a previous page's cursor.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, oldest first.
    List(AuditListArgs),
    /// Show one record by its sequence number.
    Show { seq: i64 },
    /// Check the hash chain offline, without a running server. Exit status 0 only when
    /// it is intact; 8 when it is broken (the first bad record is named).
    Verify(VerifyArgs),
    /// Write the log as JSON Lines (one record per line, with its hashes), for a SIEM or
    /// for keeping outside aim; `aim audit verify --from-export` checks such a file.
    Export(ExportArgs),
    /// Sign the current head now and print the checkpoint (JSON), or write it to `--file`:
    /// keep it outside aim, and give it to `aim audit verify --checkpoint` later.
    Checkpoint {
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print the causal chain of a task: the human request behind it, the task's own
    /// records, each token issued for it and the decisions and tool calls made under it,
    /// sub-agents' tokens nested under the token they were exchanged from.
    Trace {
        /// The task's id.
        task: String,
    },
    /// Print the latest records; with `-f`, keep printing new ones as they come.
    Tail {
        /// How many of the latest records to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep following the log.
        #[arg(short = 'f', long)]
        follow: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// aim's own records, one JSON object per line (verifiable with --from-export).
    Jsonl,
    /// OCSF events, one JSON object per line; each keeps the original record.
    Ocsf,
    /// ArcSight Common Event Format, one line per record.
    Cef,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only records after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Records about this identity (name or id).
    #[arg(long)]
    pub identity: Option<String>,
    /// Records by or about this human (user name or id).
    #[arg(long)]
    pub human: Option<String>,
    /// Records of this task (its id).
    #[arg(long)]
    pub task: Option<String>,
    /// Records of this token (its `jti`).
    #[arg(long)]
    pub jti: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    /// `success`, `denied`, `allow`, `deny` or `approval_required`.
    #[arg(long)]
    pub outcome: Option<String>,
    /// RFC 3339 instant.
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 instant.
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A data dir holding `aim.db` (SQLite).
    #[arg(long, group = "source")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database.
    #[arg(long, hide_env_values = true, group = "source")]
    pub database_url: Option<String>,
    /// A JSON Lines file written by `aim audit export`.
    #[arg(long, group = "source")]
    pub from_export: Option<PathBuf>,
    /// A checkpoint written by `aim audit checkpoint`: the log must reach it and match it.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The public key (hex) the checkpoint must be signed with.
    #[arg(long, requires = "checkpoint")]
    pub public_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Run the sweep now.
    Run,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}
fn parse_human_state(s: &str) -> Result<HumanState, String> {
    HumanState::parse(s).map_err(|e| e.to_string())
}
fn parse_kind(s: &str) -> Result<IdentityKind, String> {
    IdentityKind::parse(s).map_err(|e| e.to_string())
}
fn parse_autonomy(s: &str) -> Result<Autonomy, String> {
    Autonomy::parse(s).map_err(|e| e.to_string())
}
fn parse_sensitivity(s: &str) -> Result<DataSensitivity, String> {
    DataSensitivity::parse(s).map_err(|e| e.to_string())
}
fn parse_level(s: &str) -> Result<Level, String> {
    Level::parse(s).map_err(|e| e.to_string())
}
fn parse_state(s: &str) -> Result<LifecycleState, String> {
    LifecycleState::parse(s).map_err(|e| e.to_string())
}
fn parse_tier(s: &str) -> Result<RiskTier, String> {
    RiskTier::parse(s).map_err(|e| e.to_string())
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// `90d`, `12w`, `36h` as milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not a duration like 30m, 36h, 90d or 12w");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 || n > 100_000 {
        return Err(bad());
    }
    Ok(n * unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2d"), Ok(2 * 86_400_000));
        assert_eq!(parse_duration_ms("1w"), Ok(7 * 86_400_000));
        assert!(parse_duration_ms("2y").is_err());
        assert!(parse_duration_ms("-1d").is_err());
        assert!(parse_duration_ms("d").is_err());
    }
}
