//! `aim policy ...`: policy sets, what-ifs and tests.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct PolicyFiles {
    /// A `.cedar` file, or a folder whose `*.cedar` files are read (not its subfolders);
    /// repeat for several. A file is named by its path under the folder given.
    #[arg(short = 'f', long = "file", required = true)]
    pub paths: Vec<PathBuf>,
    /// A JSON file of template links: `[{"id", "template", "principal", "resource"}]`.
    #[arg(long)]
    pub links: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the policy set in force with these files (validated strictly first).
    Apply {
        #[command(flatten)]
        files: PolicyFiles,
        /// What changed and why, kept with the version.
        #[arg(long, default_value = "")]
        comment: String,
        /// Refuse if the version in force is no longer this one.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Print the policy files in force, or those of one version.
    Show {
        /// A version number (`aim policy versions`); the one in force without it.
        version: Option<i64>,
    },
    /// The history of versions.
    Versions,
    /// Bring an earlier version's files back, as a new version.
    Rollback {
        /// The version to bring back (`aim policy versions`).
        version: i64,
        /// Why, kept with the new version.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Decide a request (JSON: action, resource, principal, task_id, call) against the
    /// set in force, or against proposed files without applying them. The answer is not
    /// an audit record and nothing is applied; a question aim refuses (a bad target, an
    /// unknown principal) is recorded as a refused request, like any other.
    Test {
        /// The request, as a JSON file; its principal may name the identity or human
        /// (`{"identity": "agt-claims-triage"}`) instead of giving the id.
        #[arg(long)]
        request: PathBuf,
        /// Ask about this identity (name or id), whatever the request file says.
        #[arg(long, conflicts_with = "human")]
        identity: Option<String>,
        /// Ask about this human (user name or id), whatever the request file says.
        #[arg(long)]
        human: Option<String>,
        /// Proposed files instead of the set in force.
        #[arg(short = 'f', long = "file")]
        paths: Vec<PathBuf>,
        /// Template links for the proposed files (a JSON file, as for `apply`).
        #[arg(long)]
        links: Option<PathBuf>,
    },
}
