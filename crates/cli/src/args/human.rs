//! `aim human ...`: humans and their credentials.

use aim_domain::human::{HumanState, Role};
use clap::Subcommand;

use super::{PageArgs, one_of};

#[derive(Debug, Subcommand)]
pub enum HumanCommand {
    /// Add a human.
    Add {
        /// Their user name at the IdP (`alice@example.com`); unique.
        user_name: String,
        /// A role; repeat for several.
        #[arg(long = "role", value_parser = one_of!(Role))]
        roles: Vec<Role>,
        /// A group (named by `@approval("group:...")`); repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The name people know them by.
        #[arg(long)]
        display_name: Option<String>,
        /// Their e-mail address, as the IdP knows it.
        #[arg(long)]
        email: Option<String>,
        /// The IdP's id for this person.
        #[arg(long)]
        external_id: Option<String>,
    },
    /// List humans.
    List {
        /// Only humans in this state.
        #[arg(long, value_parser = one_of!(HumanState))]
        state: Option<HumanState>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one human (by user name or id).
    Show {
        /// User name or id.
        human: String,
    },
    /// Set a human's roles (replacing the ones they have).
    Roles {
        /// User name or id.
        human: String,
        /// A role; repeat for several (none removes every role).
        #[arg(long = "role", value_parser = one_of!(Role))]
        roles: Vec<Role>,
    },
    /// Set a human's groups (replacing the ones they are in).
    Groups {
        /// User name or id.
        human: String,
        /// A group; repeat for several (none removes them all).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Mark a human departed: every identity they sponsor becomes orphaned.
    Deactivate {
        /// User name or id.
        human: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Mark a departed human active again.
    Reactivate {
        /// User name or id.
        human: String,
        /// Why, for the record.
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
        /// User name or id.
        human: String,
        /// What it is for (a laptop, a CI job), shown in lists.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List a human's credentials (never their secrets).
    List {
        /// User name or id.
        human: String,
    },
    /// Revoke a credential.
    Revoke {
        /// User name or id.
        human: String,
        /// The credential's id (`aim human credential list` shows it).
        credential_id: String,
    },
}
