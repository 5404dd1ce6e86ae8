//! `aim tool ...`: MCP tools seen through gateways, reviewed and pinned by an admin.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// Every tool gateways have seen: approved, changed since approval, or new.
    List {
        /// Tools of this MCP server only (its name in the gateway's configuration).
        #[arg(long)]
        server: Option<String>,
    },
    /// One tool: the definition seen, the one pinned, who approved it and when.
    Show {
        /// `SERVER/TOOL`.
        tool: String,
    },
    /// What changed between the pinned definition and the one seen now.
    Diff {
        /// `SERVER/TOOL`.
        tool: String,
    },
    /// Pin the definition seen now: the tool is listed to agents and may be called.
    Approve {
        /// `SERVER/TOOL`.
        tool: String,
        /// The hash you reviewed (`aim tool diff` prints it): refused if the definition
        /// changed again since. Without it, what is seen now is pinned.
        #[arg(long)]
        hash: Option<String>,
    },
}
