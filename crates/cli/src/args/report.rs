//! `aim report ...`: compliance reports against OWASP, NIST and CSA frameworks.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Read aim's live controls and findings against the OWASP NHI and Agentic Top 10s, NIST
    /// CSF 2.0, NIST AI RMF and CSA MAESTRO (admins and auditors): each control met, partial
    /// or not met, with the identities and accounts behind it. The report is kept, so its
    /// score has a trend.
    Compliance(ComplianceArgs),
    /// The kept reports' scores, newest first: the posture's trend.
    List {
        /// How many of the newest (1 to 100).
        #[arg(long, default_value_t = 24)]
        limit: u32,
    },
    /// A kept report again, exactly as it was generated.
    Show {
        /// The report's id (`aim report list`).
        id: String,
        #[command(flatten)]
        out: ReportOut,
    },
}

#[derive(Debug, Args)]
pub struct ComplianceArgs {
    #[command(flatten)]
    pub out: ReportOut,
}

#[derive(Debug, Args)]
pub struct ReportOut {
    /// `md` (Markdown), `html` (one self-contained page) or `json`.
    #[arg(long, value_enum, default_value_t = ReportFormatArg::Md)]
    pub format: ReportFormatArg,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormatArg {
    Md,
    Html,
    Json,
}
