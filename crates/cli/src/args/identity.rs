//! `aim identity ...`: the registry, agents' keys and join tokens.

use std::path::PathBuf;

use aim_domain::identity::{Autonomy, IdentityKind};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::{DataSensitivity, Level, RiskTier};
use clap::{Args, Subcommand};

use super::{PageArgs, ReasonArgs, one_of, parse_duration_ms, parse_instant, parse_label};

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
    Show {
        /// Name or id.
        identity: String,
    },
    /// Why an identity is in its state: its behavioural baseline and the findings, locks
    /// and unlocks of the last 90 days.
    Why {
        /// Name or id.
        identity: String,
    },
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
    #[command(group(clap::ArgGroup::new("source").required(true)))]
    Add {
        /// Name or id.
        identity: String,
        /// A file with the public JWK.
        #[arg(long, group = "source")]
        jwk: Option<PathBuf>,
        /// A PKCS#8 PEM private key file (only its public half is sent).
        #[arg(long, group = "source")]
        key_file: Option<PathBuf>,
        /// What the key is for (`triage worker`), shown in lists.
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
        /// The key's id: its RFC 7638 thumbprint (`aim identity key list` shows it).
        kid: String,
        /// Why, written on the record.
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
        /// What the key is for, shown in lists.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Make a new private key file for an agent (PKCS#8 PEM, mode 0600) and print its
    /// public JWK.
    Generate {
        /// `EdDSA` (Ed25519) or `ES256` (P-256).
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        /// The file to write the private key to; it must not exist yet.
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
    /// The identity's name, by the naming rule of its kind (`agt-claims-triage`); never reused.
    pub name: String,
    /// What it is: an AI agent, a bot, a service account, an API key or an automation.
    #[arg(long, value_parser = one_of!(IdentityKind))]
    pub kind: IdentityKind,
    /// How far it acts on its own: `autonomous` agents get shorter tasks and need DPoP.
    #[arg(long, value_parser = one_of!(Autonomy))]
    pub autonomy: Autonomy,
    /// The accountable human (user name or id).
    #[arg(long)]
    pub sponsor: String,
    /// What it is for, in a sentence an attester can check (`Triage incoming claims`).
    #[arg(long)]
    pub purpose: String,
    /// A system it may touch; repeat for several.
    #[arg(long = "system")]
    pub systems: Vec<String>,
    /// The most sensitive data it touches; an input to its risk tier.
    #[arg(long, value_parser = one_of!(DataSensitivity))]
    pub sensitivity: DataSensitivity,
    /// How much the business depends on it; an input to its risk tier.
    #[arg(long, value_parser = one_of!(Level))]
    pub criticality: Level,
    /// How much harm its misuse could do; an input to its risk tier.
    #[arg(long, value_parser = one_of!(Level))]
    pub impact: Level,
    /// The team that owns it (its group in policies and grants).
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
    /// End-of-life as an RFC 3339 instant (`2027-03-01T00:00:00Z`).
    #[arg(long, value_parser = parse_instant)]
    pub expires_at: Option<aim_domain::Timestamp>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Name or id.
    pub identity: String,
    /// A new purpose.
    #[arg(long)]
    pub purpose: Option<String>,
    /// Replaces the systems; repeat for several.
    #[arg(long = "system")]
    pub systems: Vec<String>,
    /// A new sponsor (user name or id), e.g. when the old one leaves.
    #[arg(long)]
    pub sponsor: Option<String>,
    /// The most sensitive data it touches now.
    #[arg(long, value_parser = one_of!(DataSensitivity))]
    pub sensitivity: Option<DataSensitivity>,
    /// How much the business depends on it now.
    #[arg(long, value_parser = one_of!(Level))]
    pub criticality: Option<Level>,
    /// How much harm its misuse could do now.
    #[arg(long, value_parser = one_of!(Level))]
    pub impact: Option<Level>,
    /// The team that owns it now.
    #[arg(long)]
    pub team: Option<String>,
    /// A new end-of-life as a duration from now: `90d`, `12w`, `36h`.
    #[arg(long, value_parser = parse_duration_ms, conflicts_with = "expires_at")]
    pub expires_in: Option<i64>,
    /// A new end-of-life as an RFC 3339 instant (`2027-03-01T00:00:00Z`).
    #[arg(long, value_parser = parse_instant)]
    pub expires_at: Option<aim_domain::Timestamp>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only identities in this lifecycle state.
    #[arg(long, value_parser = one_of!(LifecycleState))]
    pub state: Option<LifecycleState>,
    /// Only identities of this kind.
    #[arg(long, value_parser = one_of!(IdentityKind))]
    pub kind: Option<IdentityKind>,
    /// User name or id.
    #[arg(long)]
    pub sponsor: Option<String>,
    /// Only identities of this risk tier.
    #[arg(long, value_parser = one_of!(RiskTier))]
    pub risk: Option<RiskTier>,
    /// Only those whose end-of-life comes within this duration (`30d`).
    #[arg(long, value_parser = parse_duration_ms)]
    pub expiring_within: Option<i64>,
    /// Only those flagged dormant (idle past the dormancy threshold).
    #[arg(long)]
    pub dormant: bool,
    /// Only those whose sponsor has left.
    #[arg(long)]
    pub orphaned: bool,
    /// Only those with the same sponsor, purpose and systems as another.
    #[arg(long)]
    pub possible_duplicate: bool,
    /// Only names starting with this.
    #[arg(long)]
    pub name_prefix: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}
