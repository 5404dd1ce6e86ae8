//! `aim approval` and `aim grant`: the humans' side of step-up approvals and grants.

use clap::Subcommand;

use super::{PageArgs, parse_duration_ms};

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Approvals waiting for a decision (or, with --state, decided ones).
    List {
        /// Approvals in this state (`pending` without it; `all` for every state).
        #[arg(long, value_parser = ["pending", "approved", "denied", "used", "expired", "all"])]
        state: Option<String>,
        /// Only this identity's (name or id).
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One approval, with the exact action it holds.
    Show {
        /// The approval's id (`aim approval list` shows it).
        id: aim_domain::ids::ApprovalId,
    },
    /// Let the agent retry that exact action once.
    Approve {
        /// The approval's id (`aim approval list` shows it).
        id: aim_domain::ids::ApprovalId,
        /// Why, written on the record (required).
        #[arg(long)]
        reason: String,
    },
    /// Refuse that action; the agent's retry is refused too.
    Deny {
        /// The approval's id.
        id: aim_domain::ids::ApprovalId,
        /// Why, written on the record and told to the agent (required).
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
        /// The system the action is on (`crm`).
        #[arg(long)]
        system: String,
        /// With --resource-id: one record only.
        #[arg(long, requires = "resource_id")]
        resource_type: Option<String>,
        /// With --resource-type: the record's id.
        #[arg(long, requires = "resource_type")]
        resource_id: Option<String>,
        /// Why, written on the record (required).
        #[arg(long)]
        reason: String,
        /// How long it lasts (30m, 8h, 7d); until revoked without it.
        #[arg(long = "for", value_parser = parse_duration_ms)]
        duration: Option<i64>,
    },
    /// Grants, with their state.
    List {
        /// Only grants in this state.
        #[arg(long, value_parser = ["requested", "active", "denied", "revoked", "expired"])]
        state: Option<String>,
        /// Only this identity's grants (name or id).
        #[arg(long, conflicts_with = "group")]
        identity: Option<String>,
        /// Only this group's grants.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// End a grant (or withdraw an elevation request) now.
    Revoke {
        /// The grant's id (`aim grant list` shows it).
        id: aim_domain::ids::GrantId,
        /// Why, written on the record (required).
        #[arg(long)]
        reason: String,
    },
    /// Approve an identity's just-in-time elevation request: it starts now and expires
    /// by itself.
    Approve {
        /// The grant request's id (`aim grant list --state requested`).
        id: aim_domain::ids::GrantId,
        /// Why, written on the record (required).
        #[arg(long)]
        reason: String,
    },
    /// Refuse an identity's just-in-time elevation request.
    Deny {
        /// The grant request's id.
        id: aim_domain::ids::GrantId,
        /// Why, written on the record (required).
        #[arg(long)]
        reason: String,
    },
}
