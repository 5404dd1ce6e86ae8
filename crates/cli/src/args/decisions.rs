//! `aim approval` and `aim grant`: the humans' side of step-up approvals and grants.

use clap::Subcommand;

use super::{PageArgs, parse_duration_ms};

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Approvals waiting for a decision (or, with --state, decided ones).
    List {
        /// pending (the default), approved, denied, used, expired or all.
        #[arg(long)]
        state: Option<String>,
        /// Only this identity's (name or id).
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One approval, with the exact action it holds.
    Show { id: aim_domain::ids::ApprovalId },
    /// Let the agent retry that exact action once.
    Approve {
        id: aim_domain::ids::ApprovalId,
        #[arg(long)]
        reason: String,
    },
    Deny {
        id: aim_domain::ids::ApprovalId,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Grant an identity (or a group) an action on a system or one record.
    Add {
        /// The identity (name or id).
        #[arg(long, required_unless_present = "group", conflicts_with = "group")]
        identity: Option<String>,
        /// Every identity of this team.
        #[arg(long)]
        group: Option<String>,
        /// An action or action group: read, write, delete, call_tool, admin, ...
        #[arg(long)]
        action: String,
        #[arg(long)]
        system: String,
        /// With --resource-id: one record only.
        #[arg(long, requires = "resource_id")]
        resource_type: Option<String>,
        #[arg(long, requires = "resource_type")]
        resource_id: Option<String>,
        #[arg(long)]
        reason: String,
        /// How long it lasts (30m, 8h, 7d); until revoked without it.
        #[arg(long = "for", value_parser = parse_duration_ms)]
        duration: Option<i64>,
    },
    /// Grants, with their state.
    List {
        /// requested, active, denied or revoked.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, conflicts_with = "group")]
        identity: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// End a grant (or withdraw an elevation request) now.
    Revoke {
        id: aim_domain::ids::GrantId,
        #[arg(long)]
        reason: String,
    },
    /// Approve an identity's just-in-time elevation request: it starts now and expires
    /// by itself.
    Approve {
        id: aim_domain::ids::GrantId,
        #[arg(long)]
        reason: String,
    },
    Deny {
        id: aim_domain::ids::GrantId,
        #[arg(long)]
        reason: String,
    },
}
