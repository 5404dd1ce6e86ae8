//! `aim upstream-secret ...`: credentials for upstreams, kept in aim for gateways.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store (or replace) a credential a gateway injects (`aim_secret = "NAME"` in its
    /// config). The value is read from an environment variable or a file, never the
    /// command line.
    #[command(group(clap::ArgGroup::new("value").required(true).args(["from_env", "from_file"])))]
    Set {
        /// The secret's name (1-128 of A-Z a-z 0-9 _ - .), as gateways name it.
        name: String,
        /// The environment variable holding the value.
        #[arg(long)]
        from_env: Option<String>,
        /// A file holding the value (trailing newlines dropped).
        #[arg(long)]
        from_file: Option<PathBuf>,
        /// What the credential is for and who to ask about it (shown, never secret).
        #[arg(long, default_value = "")]
        description: String,
        /// A gateway account (user name) that may read it; repeat for several. Without
        /// it, any gateway account may.
        #[arg(long = "gateway")]
        gateways: Vec<String>,
    },
    /// Every stored credential's name, version and who changed it last (never a value).
    List,
    /// Delete a credential: gateways that inject it refuse their calls from then on.
    Delete {
        /// The secret's name.
        name: String,
    },
}
