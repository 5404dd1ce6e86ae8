//! One module per command group; `main` dispatches and maps errors to exit statuses.

mod audit;
mod behaviour;
mod decisions;
mod discover;
mod discover_remedy;
mod gateway;
mod human;
pub(crate) mod identity;
mod policy;
mod report;
mod secret;
mod serve;
pub mod token;
mod tool;

use std::process::ExitCode;

use aim_client::Client;
use clap::{CommandFactory, Parser};

use crate::args::{AdminCommand, AuditCommand, Cli, Command, Format, SweepCommand};
use crate::output;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A closed standard output (`aim --help | head`) is not worth a panic.
            let _ = e.print();
            return crate::exit::code_for_clap(&e);
        }
    };
    let anonymous = cli.global.token.is_none();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each line escaped on its own: a multi-line message (a refused policy set's
            // problems) keeps its lines, and nothing in it can forge one.
            let message = crate::exit::chain_message(&e);
            let mut lines = message.lines().map(output::clean);
            eprintln!("error: {}", lines.next().unwrap_or_default());
            for line in lines {
                eprintln!("{line}");
            }
            if anonymous && crate::exit::unauthenticated(&e) {
                eprintln!(
                    "hint: no credential was given: set AIM_TOKEN (or pass --token) to an API \
                     credential, e.g. `export AIM_TOKEN=$(cat aim-data/bootstrap-admin-token)`"
                );
            }
            crate::exit::code_for(&e)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let format = cli.global.output;
    if cli
        .global
        .token
        .as_deref()
        .is_some_and(|t| t.chars().any(char::is_control))
    {
        return Err(crate::exit::Local::Invalid(
            "the credential (AIM_TOKEN or --token) holds a line break or another control \
             character; give the `aim_...` secret alone"
                .to_owned(),
        )
        .into());
    }
    let base = match &cli.global.ca_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("reading the CA certificate {}: {e}", path.display())
            })?;
            Client::with_ca(&cli.global.addr, cli.global.token.clone(), &pem)?
        }
        None => Client::new(&cli.global.addr, cli.global.token.clone()),
    };
    let client = || base.clone();
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Lock(args) => identity::lock_command(&client(), format, args).await,
        Command::Unlock(args) => identity::unlock_command(&client(), format, args).await,
        Command::Human(cmd) => human::run(&client(), format, cmd).await,
        Command::Identity(cmd) => identity::run(&client(), format, cmd).await,
        Command::Sweep(SweepCommand::Run) => {
            let report = client().run_sweep().await?;
            output::emit(format, &report, |r| println!("{}", sweep_summary(r)))
        }
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(format, args).await,
        Command::Audit(AuditCommand::List(args)) => audit::list(&client(), format, args).await,
        Command::Audit(AuditCommand::Show { seq }) => audit::show(&client(), format, seq).await,
        Command::Audit(AuditCommand::Trace { task }) => {
            audit::trace(&client(), format, &task).await
        }
        Command::Audit(AuditCommand::Export(args)) => audit::export(&client(), args).await,
        Command::Audit(AuditCommand::Checkpoint { file }) => {
            audit::checkpoint(&client(), file).await
        }
        Command::Audit(AuditCommand::CheckpointKeys { rotate }) => {
            audit::checkpoint_keys(&client(), format, rotate).await
        }
        Command::Audit(AuditCommand::Tail { lines, follow }) => {
            audit::tail(&client(), format, lines, follow).await
        }
        Command::Task(cmd) => token::task(&client(), format, cmd).await,
        Command::Token(cmd) => token::token(&client(), format, cmd).await,
        Command::SigningKey(cmd) => token::signing_key(&client(), format, cmd).await,
        Command::Policy(cmd) => policy::run(&client(), format, cmd).await,
        Command::Approval(cmd) => decisions::approval(&client(), format, cmd).await,
        Command::Grant(cmd) => decisions::grant(&client(), format, cmd).await,
        Command::Behaviour(cmd) => behaviour::run(&client(), format, cmd).await,
        Command::Discover(cmd) => discover::run(&client(), format, cmd).await,
        Command::Report(cmd) => report::run(&client(), format, cmd).await,
        Command::Tool(cmd) => tool::run(&client(), format, cmd).await,
        Command::UpstreamSecret(cmd) => secret::run(&client(), format, cmd).await,
        Command::JoinToken(cmd) => token::join_token(&client(), format, cmd).await,
        Command::Admin(AdminCommand::RotateBootstrap) => {
            let issued = client().rotate_bootstrap().await?;
            output::emit(format, &issued, |i| println!("{}", i.secret))
        }
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "aim", &mut script);
            write_stdout(&script)
        }
    }
}

/// What a sweep did, in words: what was due and what happened to it, or that nothing was.
fn sweep_summary(r: &aim_domain::sweep::SweepReport) -> String {
    let done: Vec<String> = [
        (r.expired, "expired (end of life passed)"),
        (r.suspended_orphaned, "suspended (sponsor departed)"),
        (
            r.suspended_attestation_overdue,
            "suspended (attestation overdue)",
        ),
        (r.flagged_dormant, "flagged dormant"),
        (r.suspended_dormant, "suspended (dormant)"),
        (
            r.skipped_concurrent,
            "skipped (changed meanwhile; the next sweep looks again)",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if r.examined == 0 {
        return "nothing was due: no identity is past its end of life, orphaned, overdue for attestation or dormant".to_owned();
    }
    if done.is_empty() {
        return format!("{} identities looked at; none needed a change", r.examined);
    }
    format!("{} identities looked at: {}", r.examined, done.join(", "))
}

/// Writes `bytes` to standard output; a reader that went away (`aim completion bash |
/// head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Pages through a list endpoint: one page, or all of them with `--all`; the items, the
/// next page's cursor, and the names aim sent beside the ids.
pub async fn collect<T, F, Fut>(
    page: &crate::args::PageArgs,
    mut fetch: F,
) -> anyhow::Result<(Vec<T>, Option<String>, output::Names)>
where
    F: FnMut(Vec<(&'static str, String)>) -> Fut,
    Fut: std::future::Future<Output = aim_client::Result<aim_domain::page::Page<T>>>,
{
    let mut items = Vec::new();
    let mut names = output::Names::default();
    let mut cursor = page.cursor.clone();
    loop {
        let mut params = vec![("limit", page.limit.to_string())];
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let p = fetch(params).await?;
        items.extend(p.items);
        names.0.extend(p.names);
        cursor = p.next_cursor;
        if !page.all || cursor.is_none() {
            return Ok((items, cursor, names));
        }
    }
}

/// Tells a table reader how to get the next page.
pub fn more_hint(format: Format, next: &Option<String>) {
    if let (Format::Table, Some(c)) = (format, next) {
        eprintln!("(more: --cursor {c}, or --all)");
    }
}
