//! `aim human ...`: humans and their credentials.

use aim_domain::human::{HumanState, Role};
use clap::Subcommand;

use super::{PageArgs, parse_human_state, parse_role};

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
