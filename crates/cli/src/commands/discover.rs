//! `aim discover`: import a source in its real format, with a progress bar over the file;
//! list discovered accounts, their findings, and the imports of a source over time.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use aim_api::discovery::{DiscoveredAccount, FindingRow, Import, ImportSummary};
use aim_client::Client;
use aim_discovery::upload::{Options, UploadError, upload};
use aim_discovery::{ReadError, aws_authorization, credential_report, csv_map, kubernetes, ldap};
use aim_domain::Clock;
use aim_domain::discovery::{Account, SourceKind, Thresholds};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{
    AccountFilter, DiscoverCommand, Format, ImportArgs, ImportCommand, LdapArgs, PresenceArg,
};
use crate::commands::discover_remedy as remedy;
use crate::commands::{collect, more_hint};
use crate::exit::Local;
use crate::output::{Table, emit, fields};

pub async fn run(client: &Client, format: Format, cmd: DiscoverCommand) -> anyhow::Result<()> {
    match cmd {
        DiscoverCommand::Import(cmd) => import(client, format, cmd).await,
        DiscoverCommand::Accounts(filter) => accounts(client, format, &filter).await,
        DiscoverCommand::Findings(filter) => findings(client, format, &filter).await,
        DiscoverCommand::Adopt(args) => remedy::adopt(client, format, args).await,
        DiscoverCommand::Decommission { account, reason } => {
            remedy::decommission(client, format, &account, &reason).await
        }
        DiscoverCommand::DecommissionList {
            source,
            format: as_,
        } => remedy::list(client, format, source.as_deref(), &as_).await,
        DiscoverCommand::Acknowledge {
            account,
            finding,
            reason,
            for_,
            until,
        } => remedy::acknowledge(client, format, &account, &finding, &reason, (for_, until)).await,
        DiscoverCommand::Reassess { wait } => remedy::reassess(client, format, wait).await,
        DiscoverCommand::Imports { source, page } => {
            let (items, next, _) = collect(&page, |mut params| {
                if let Some(s) = &source {
                    params.push(("source", s.clone()));
                }
                async move { client.imports(&params).await }
            })
            .await?;
            emit(format, &items, |items| imports_table(items))?;
            more_hint(format, &next);
            Ok(())
        }
    }
}

/// The file (or standard input), read through a progress bar over its bytes.
fn input(file: &Path) -> anyhow::Result<(Box<dyn Read + Send>, ProgressBar)> {
    if file.as_os_str() == "-" {
        let bar = ProgressBar::new_spinner();
        return Ok((Box::new(bar.wrap_read(std::io::stdin())), bar));
    }
    let f = std::fs::File::open(file)
        .map_err(|e| Local::Invalid(format!("reading {}: {e}", file.display())))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Ok((Box::new(bar.wrap_read(f)), bar))
}

/// Accounts read from a source, for [`upload`].
type Accounts = Box<dyn Iterator<Item = Result<Account, ReadError>> + Send>;

fn read_error(e: ReadError) -> Local {
    Local::Invalid(e.to_string())
}

async fn import(client: &Client, format: Format, cmd: ImportCommand) -> anyhow::Result<()> {
    let (options, accounts, bar) = match cmd {
        ImportCommand::Ldap(args) => directory(args).await?,
        other => file(other)?,
    };
    let done = upload(client, &options, accounts, |p| {
        bar.set_message(format!(
            "{} accounts read, {} new, {} findings",
            p.read, p.sent.new, p.sent.findings
        ));
    })
    .await;
    bar.finish_and_clear();
    let done = done.map_err(|e| -> anyhow::Error {
        match e {
            UploadError::Read(_) => Local::Invalid(e.to_string()).into(),
            UploadError::Api(e) => e.into(),
            UploadError::Batch { error } => anyhow::Error::from(error).context(
                "aim refused a batch; the import was abandoned, so nothing was marked gone",
            ),
        }
    })?;
    emit(format, &done, import_summary)
}

/// A file (or standard input) in one of the formats importers read, behind a progress bar.
fn file(cmd: ImportCommand) -> anyhow::Result<(Options, Accounts, ProgressBar)> {
    let (kind, file, common) = match &cmd {
        ImportCommand::AwsCredentialReport { file, common } => {
            (SourceKind::AwsCredentialReport, file, common)
        }
        ImportCommand::AwsAuthorization { file, common } => {
            (SourceKind::AwsAuthorization, file, common)
        }
        ImportCommand::Kubernetes { file, common } => (SourceKind::Kubernetes, file, common),
        ImportCommand::Csv { file, common, .. } => (SourceKind::Csv, file, common),
        ImportCommand::Ldap(_) => {
            return Err(Local::Usage("a directory is not a file".to_owned()).into());
        }
    };
    let options = options(kind, common);
    let (reader, bar) = input(file)?;
    let accounts: Accounts = match &cmd {
        ImportCommand::AwsCredentialReport { .. } => {
            Box::new(credential_report::open(reader).map_err(read_error)?)
        }
        ImportCommand::AwsAuthorization { .. } => Box::new(
            aws_authorization::read(reader, aim_domain::SystemClock.now()).map_err(read_error)?,
        ),
        ImportCommand::Kubernetes { .. } => Box::new(kubernetes::read(reader).map_err(read_error)?),
        ImportCommand::Csv {
            mapping, map, kind, ..
        } => {
            let mut lines = match mapping {
                Some(path) => std::fs::read_to_string(path).map_err(|e| {
                    Local::Invalid(format!("reading the mapping {}: {e}", path.display()))
                })?,
                None => String::new(),
            };
            for pair in map {
                lines.push('\n');
                lines.push_str(pair);
            }
            let mapping = csv_map::Mapping::parse_lines(&lines, *kind).map_err(read_error)?;
            Box::new(csv_map::Rows::new(reader, &mapping).map_err(read_error)?)
        }
        ImportCommand::Ldap(_) => {
            return Err(Local::Usage("a directory is not a file".to_owned()).into());
        }
    };
    Ok((options, accounts, bar))
}

/// A directory read whole (paged), behind a spinner; its own replication interval checked
/// against the dormancy threshold.
async fn directory(args: LdapArgs) -> anyhow::Result<(Options, Accounts, ProgressBar)> {
    let loopback = ["ldap://127.", "ldap://localhost", "ldap://[::1]"]
        .iter()
        .any(|p| args.url.starts_with(p));
    if args.url.starts_with("ldap://") && !args.starttls && !loopback && !args.insecure_plaintext {
        return Err(Local::Invalid(format!(
            "{} is plain LDAP: the bind password would cross the network in clear; use \
             ldaps://, --starttls, or --insecure-plaintext if you mean it",
            args.url
        ))
        .into());
    }
    let password = match (&args.bind_password_file, &args.bind_password) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Local::Invalid(format!("reading {}: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        (None, from_env) => from_env.clone(),
    };
    let ca_pem = match &args.ldap_ca_cert {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| Local::Invalid(format!("reading {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let dir = ldap::Directory {
        url: args.url.clone(),
        starttls: args.starttls,
        bind_dn: args.bind_dn.clone(),
        password,
        bases: args.bases.clone(),
        filter: args.filter.clone(),
        privileged_groups: if args.privileged_groups.is_empty() {
            ldap::PRIVILEGED_GROUPS
                .iter()
                .map(|g| (*g).to_owned())
                .collect()
        } else {
            args.privileged_groups.clone()
        },
        ca_pem,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_message(format!("reading {}", args.url));
    // The directory unreachable or refusing the bind is no fault of the command line: exit 1.
    let found = ldap::read(&dir).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = options(SourceKind::Ldap, &args.common);
    let dormant = options
        .thresholds
        .map_or(Thresholds::for_source(SourceKind::Ldap).dormant_days, |t| {
            t.dormant_days
        });
    ldap::check_threshold(&found, dormant).map_err(read_error)?;
    Ok((options, Box::new(found.accounts.into_iter()), bar))
}

fn options(kind: SourceKind, common: &ImportArgs) -> Options {
    let defaults = Thresholds::for_source(kind);
    let thresholds =
        (common.dormant_days.is_some() || common.rotation_days.is_some()).then(|| Thresholds {
            dormant_days: common.dormant_days.unwrap_or(defaults.dormant_days),
            rotation_days: common.rotation_days.unwrap_or(defaults.rotation_days),
        });
    Options {
        source: common.source.clone(),
        kind,
        thresholds,
        batch: common.batch,
        environment: common.environment.clone(),
        allow_mass_removal: common.allow_mass_removal,
    }
}

/// `kind n, kind n` for a count map.
fn counts<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    if m.is_empty() {
        return "none".to_owned();
    }
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn per_human(s: &ImportSummary) -> String {
    match s.ratio.per_human {
        Some(r) => format!(
            "{r:.1} ({} machine identities, {} active people)",
            s.ratio.machine_identities, s.ratio.active_humans
        ),
        None => format!(
            "{} machine identities, no active people known",
            s.ratio.machine_identities
        ),
    }
}

fn import_summary(i: &Import) {
    let mut rows = vec![
        ("import", i.id.to_string()),
        ("source", format!("{} ({})", i.source, i.kind)),
    ];
    if let Some(s) = &i.summary {
        let b = &s.batches;
        rows.extend([
            (
                "read",
                format!(
                    "{} accounts: {} new, {} changed, {} unchanged",
                    b.received, b.new, b.updated, b.unchanged
                ),
            ),
            ("gone", s.gone.to_string()),
            (
                "present",
                format!(
                    "{} ({} enabled machine identities)",
                    s.present, s.machine_enabled
                ),
            ),
            ("findings", counts(&s.findings)),
            ("by severity", counts(&s.severities)),
            ("machine identities per person", per_human(s)),
        ]);
    }
    fields(&rows);
}

fn imports_table(items: &[Import]) {
    let mut t = Table::new(&[
        "ID",
        "SOURCE",
        "KIND",
        "STARTED",
        "PRESENT",
        "GONE",
        "FINDINGS",
        "PER PERSON",
    ]);
    for i in items {
        let s = i.summary.as_ref();
        t.row(vec![
            i.id.to_string(),
            i.source.clone(),
            i.kind.to_string(),
            i.started_at.to_string(),
            s.map_or("open".to_owned(), |s| s.present.to_string()),
            s.map_or("-".to_owned(), |s| s.gone.to_string()),
            s.map_or("-".to_owned(), |s| {
                s.findings.values().sum::<u64>().to_string()
            }),
            s.and_then(|s| s.ratio.per_human)
                .map_or("-".to_owned(), |r| format!("{r:.1}")),
        ]);
    }
    t.print();
}

fn params(
    filter: &AccountFilter,
    mut params: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    if let Some(s) = &filter.source {
        params.push(("source", s.clone()));
    }
    let presence = match filter.presence {
        Some(PresenceArg::Gone) => "gone",
        _ => "present",
    };
    params.push(("presence", presence.to_owned()));
    if let Some(k) = filter.finding {
        params.push(("finding", k.to_string()));
    }
    if let Some(s) = filter.severity {
        params.push(("severity", s.to_string()));
    }
    if let Some(a) = &filter.acknowledged {
        params.push(("acknowledged", a.clone()));
    }
    params
}

async fn accounts(client: &Client, format: Format, filter: &AccountFilter) -> anyhow::Result<()> {
    let (items, next, _) = collect(&filter.page, |p| {
        let p = params(filter, p);
        async move { client.discovered_accounts(&p).await }
    })
    .await?;
    emit(format, &items, |items: &Vec<DiscoveredAccount>| {
        let mut t = Table::new(&[
            "NAME", "SOURCE", "KIND", "ENABLED", "OWNER", "TIER", "FINDINGS", "IDENTITY",
        ]);
        for a in items {
            let kinds: Vec<String> = a.findings.iter().map(|f| f.kind.to_string()).collect();
            t.row(vec![
                a.name.clone(),
                a.source.clone(),
                a.kind.to_string(),
                a.enabled.to_string(),
                a.owner.clone().unwrap_or_else(|| "-".to_owned()),
                a.risk.tier.to_string(),
                if kinds.is_empty() {
                    "-".to_owned()
                } else {
                    kinds.join(",")
                },
                a.identity.map_or("-".to_owned(), |i| i.to_string()),
            ]);
        }
        t.print();
    })?;
    more_hint(format, &next);
    Ok(())
}

async fn findings(client: &Client, format: Format, filter: &AccountFilter) -> anyhow::Result<()> {
    let (items, next, _) = collect(&filter.page, |p| {
        let p = params(filter, p);
        async move { client.discovery_findings(&p).await }
    })
    .await?;
    emit(format, &items, |items: &Vec<FindingRow>| {
        let mut t = Table::new(&[
            "SEVERITY",
            "OWASP",
            "FINDING",
            "ACCOUNT",
            "SOURCE",
            "CREDENTIAL",
            "WHAT",
        ]);
        for f in items {
            t.row(vec![
                f.finding.severity.to_string(),
                f.finding.nhi.to_string(),
                f.finding.kind.to_string(),
                f.name.clone(),
                f.source.clone(),
                f.finding
                    .credential
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                f.finding.message.clone(),
            ]);
        }
        t.print();
    })?;
    more_hint(format, &next);
    Ok(())
}
