//! `aim identity ...`: the registry, agents' keys and join tokens.

use std::path::PathBuf;

use aim_domain::identity::{Autonomy, IdentityKind};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::{DataSensitivity, Level, RiskTier};
use clap::{Args, Subcommand};

use super::{
    PageArgs, ReasonArgs, parse_autonomy, parse_duration_ms, parse_kind, parse_label, parse_level,
    parse_sensitivity, parse_state, parse_tier,
};

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
