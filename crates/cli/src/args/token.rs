//! `aim task ...`, `aim token ...`, `aim signing-key ...`: just-in-time credentials.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::PageArgs;

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
    Show {
        /// The task's id.
        task: String,
    },
    /// End a task now; every token of it stops working.
    End {
        /// The task's id.
        task: String,
        /// Why, written on the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Get an access token as an agent: sign a client assertion with a local key file and
    /// open a task (or continue one with --task). For people testing; agents do the same.
    Issue(Box<IssueArgs>),
    /// Decode an access token, check it against the server's published keys and, with a
    /// credential that may introspect, ask aim whether it is active; exits 5 if it is not.
    Inspect {
        /// A file holding the token, `-` to read it from standard input, or the token.
        // INVARIANT: not named `token`, which is the global credential's id: clap would
        // hand this value to `--token` too.
        #[arg(id = "inspected", value_name = "TOKEN")]
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
    /// What the task is for (required for a new task).
    #[arg(long, required_unless_present = "task")]
    pub purpose: Option<String>,
    /// A system the task needs, among the identity's; repeat for several (required for a
    /// new task).
    #[arg(long = "system", required_unless_present = "task")]
    pub systems: Vec<String>,
    /// The customer or person whose data the task is about: once set, the task reaches
    /// only that subject's records.
    #[arg(long)]
    pub subject: Option<String>,
    /// The human and request behind the task (`alice: TICKET-42`), written on every
    /// record of it (required for a new task).
    #[arg(long, required_unless_present = "task")]
    pub triggered_by: Option<String>,
    /// Seconds the task may run (capped by the identity's autonomy).
    #[arg(long)]
    pub max_duration: Option<i64>,
    /// Ask for a plain bearer token instead of one bound to the key with DPoP (refused for
    /// autonomous agents by default).
    #[arg(long)]
    pub no_dpop: bool,
    /// The resource the token is for (RFC 8707): a gateway's URL, one of aim's
    /// `tokens.resources`. Without it, the token is for aim's own API.
    #[arg(long)]
    pub resource: Option<String>,
    /// Write the access token to this file (mode 0600) instead of printing it.
    #[arg(long)]
    pub write_token: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// List aim's signing keys.
    List,
    /// Start signing with a new key now; the old one still verifies its tokens.
    Rotate,
    /// Revoke a signing key: every token it signed dies at once.
    Revoke {
        /// The signing key's id (`aim signing-key list`).
        kid: String,
        /// Why, written on the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
}
