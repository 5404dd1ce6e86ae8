//! `aim audit ...`: the record, its exports and its offline check.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::PageArgs;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, oldest first.
    List(AuditListArgs),
    /// Show one record by its sequence number.
    Show {
        /// The record's sequence number (the first column of `aim audit list`).
        seq: i64,
    },
    /// Check the hash chain offline, without a running server. Exit status 0 only when
    /// it is intact; 8 when it is broken (the first bad record is named).
    Verify(VerifyArgs),
    /// Write the log as JSON Lines (one record per line, with its hashes), for a SIEM or
    /// for keeping outside aim; `aim audit verify --from-export` checks such a file.
    Export(ExportArgs),
    /// Sign the current head now and print the checkpoint (JSON), or write it to `--file`:
    /// keep it outside aim, and give it to `aim audit verify --checkpoint` later.
    Checkpoint {
        /// Write the checkpoint to this file (mode 0600) instead of printing it.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// The keys checkpoints are signed with (shared by every replica), newest first: give
    /// one to `aim audit verify --checkpoint FILE --public-key KEY`.
    CheckpointKeys {
        /// First start signing with a new key (admins); the old one still verifies what it
        /// signed.
        #[arg(long)]
        rotate: bool,
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
    /// The format of each line.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only records after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub after: i64,
    /// Write to this file instead of standard output (`-` is standard output).
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
    /// Only records of this action.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        aim_domain::event::AuditAction::ALL.iter().map(|a| a.as_str())
    ))]
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
