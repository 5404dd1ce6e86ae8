//! The command line, as clap types. Each noun has its own enum of verbs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod audit;
mod behaviour;
mod decisions;
mod discover;
mod human;
mod identity;
mod policy;
mod report;
mod secret;
mod token;
mod tool;

pub use audit::{AuditCommand, AuditListArgs, ExportArgs, ExportFormat, VerifyArgs};
pub use behaviour::BehaviourCommand;
pub use decisions::{ApprovalCommand, GrantCommand};
pub use discover::{
    AccountArg, AccountFilter, AdoptArgs, DiscoverCommand, ImportArgs, ImportCommand, LdapArgs,
    PresenceArg,
};
pub use human::{CredentialCommand, HumanCommand};
pub use identity::{Expiry, IdentityCommand, JoinTokenCommand, KeyCommand, ListArgs};
pub use policy::{PolicyCommand, PolicyFiles};
pub use report::{ReportCommand, ReportFormatArg, ReportOut};
pub use secret::SecretCommand;
pub use token::{IssueArgs, SigningKeyCommand, TaskCommand, TokenCommand};
pub use tool::ToolCommand;

#[derive(Debug, Parser)]
#[command(
    name = "aim",
    version,
    about = "Control plane for the identities of AI agents and other non-human identities"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The aim server to talk to.
    #[arg(
        long,
        env = "AIM_ADDR",
        default_value = "http://127.0.0.1:8420",
        global = true
    )]
    pub addr: String,
    /// An API credential (`aim_...`).
    #[arg(long, env = "AIM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Trust only this CA (PEM) for an aim served over HTTPS with a private CA.
    #[arg(long, env = "AIM_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane.
    Serve(ServeArgs),
    /// Run an enforcement gateway in front of tools (`--config gateway.toml`).
    Gateway(GatewayArgs),
    /// The kill switch: lock an identity (or, with `--all-agents`, every active AI agent)
    /// and say how many connected gateways applied it.
    Lock(LockArgs),
    /// Unlock a locked identity (admins, with a reason).
    Unlock(ReasonArgs),
    /// Humans: sponsors, approvers, admins, auditors.
    #[command(subcommand)]
    Human(HumanCommand),
    /// Non-human identities: request, approve, govern.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The governance sweep (end-of-life, attestation, dormancy, orphans).
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// The tamper-evident event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Tasks: the units of work agents hold tokens for.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Access tokens: get one as an agent would, or look inside one.
    #[command(subcommand)]
    Token(TokenCommand),
    /// aim's own token signing keys.
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
    /// One-time tokens a new agent registers its own key with.
    #[command(subcommand)]
    JoinToken(JoinTokenCommand),
    /// Cedar policies: apply, show, roll back, try a request against them.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Approvals of high-risk actions: list what waits, approve or deny with a reason.
    #[command(subcommand)]
    Approval(ApprovalCommand),
    /// Grants of actions to identities and groups, and just-in-time elevations.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Behavioural baselines: backtest the detectors, mark a finding as expected.
    #[command(subcommand)]
    Behaviour(BehaviourCommand),
    /// Machine identities that already exist outside aim: import directories, cloud IAM,
    /// Kubernetes and inventories; list what they hold and the findings about it.
    #[command(subcommand)]
    Discover(DiscoverCommand),
    /// Compliance reports: aim's live controls and findings against OWASP, NIST and CSA
    /// frameworks, and their trend.
    #[command(subcommand)]
    Report(ReportCommand),
    /// MCP tools seen through gateways: review what changed, pin a definition.
    #[command(subcommand)]
    Tool(ToolCommand),
    /// Credentials gateways inject into upstream requests, kept sealed in aim.
    #[command(subcommand)]
    UpstreamSecret(SecretCommand),
    /// Administration of aim itself.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a shell completion script.
    Completion {
        /// The shell to print it for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Replace the first-start admin credential: the old one stops working; the new one is
    /// printed once (and rewritten to `<data-dir>/bootstrap-admin-token` on the server).
    RotateBootstrap,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["identity", "all_agents"])))]
pub struct LockArgs {
    /// Name or id.
    pub identity: Option<String>,
    /// The emergency stop: every active AI agent.
    #[arg(long)]
    pub all_agents: bool,
    /// Why, written on the record of every identity locked.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's TOML config: listener, resource URL, aim, upstreams and routes
    /// (docs/gateway.md).
    #[arg(long, env = "AIM_GATEWAY_CONFIG")]
    pub config: PathBuf,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the SQLite database, the bootstrap credential and local state live.
    #[arg(long, env = "AIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "AIM_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Where `/healthz`, `/readyz` and Prometheus `/metrics` answer, apart from the API.
    #[arg(long, env = "AIM_ADMIN_LISTEN")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Use PostgreSQL (`postgres://user@host/db`) instead of the SQLite file.
    #[arg(long, env = "AIM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A TOML config file; flags and environment variables override it.
    #[arg(long, env = "AIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (re-read when it changes).
    #[arg(long, env = "AIM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, env = "AIM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Args)]
pub struct ReasonArgs {
    /// Name or id.
    pub identity: String,
    /// Why, written on the record (rejecting and unlocking need one).
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Continue from a previous page's cursor.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Run the sweep now.
    Run,
}

/// A value parser for one of a domain enum's names: `--help` and the shell completions
/// list the allowed values, and a wrong one is refused with them (exit 6).
macro_rules! one_of {
    ($t:ty) => {
        clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(<$t>::ALL.iter().map(|v| v.as_str())),
            |s: String| <$t>::parse(&s),
        )
    };
}
pub(crate) use one_of;

/// An RFC 3339 instant (`2027-03-01T00:00:00Z`).
pub fn parse_instant(s: &str) -> Result<aim_domain::Timestamp, String> {
    aim_domain::Timestamp::parse(s)
        .map_err(|_| format!("`{s}` is not an RFC 3339 instant like 2027-03-01T00:00:00Z"))
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// `90d`, `12w`, `36h` as milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not a duration like 30m, 36h, 90d or 12w");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 || n > 100_000 {
        return Err(bad());
    }
    Ok(n * unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag and argument of every command says what it means, in `--help`.
    #[test]
    fn every_argument_is_explained() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "aim", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2d"), Ok(2 * 86_400_000));
        assert_eq!(parse_duration_ms("1w"), Ok(7 * 86_400_000));
        assert!(parse_duration_ms("2y").is_err());
        assert!(parse_duration_ms("-1d").is_err());
        assert!(parse_duration_ms("d").is_err());
    }
}
