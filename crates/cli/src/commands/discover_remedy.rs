//! `aim discover adopt|decommission|decommission-list|acknowledge`: what a security team
//! does about a discovered account.

use aim_api::discovery::{AcknowledgeBody, AdoptBody, DecommissionRow, DiscoveredAccount};
use aim_client::Client;
use aim_domain::Clock;
use aim_domain::ids::AccountId;

use crate::args::{AccountArg, AdoptArgs, Format};
use crate::commands::identity::expiry;
use crate::exit::Local;
use crate::output::{Table, emit, fields};

/// The account an argument names: its id, or its one present account of that name.
pub async fn resolve(client: &Client, arg: &AccountArg) -> anyhow::Result<DiscoveredAccount> {
    if let Ok(id) = AccountId::parse(&arg.account) {
        return Ok(client.discovered_account(id).await?);
    }
    let mut params = vec![
        ("name", arg.account.clone()),
        ("presence", "present".to_owned()),
    ];
    if let Some(s) = &arg.source {
        params.push(("source", s.clone()));
    }
    let mut page = client.discovered_accounts(&params).await?;
    match page.items.len() {
        0 => Err(Local::NotFound(format!(
            "no discovered account named `{}`{}",
            arg.account,
            arg.source
                .as_ref()
                .map_or(String::new(), |s| format!(" in `{s}`"))
        ))
        .into()),
        1 => Ok(page.items.remove(0)),
        _ => {
            let sources: Vec<String> = page
                .items
                .iter()
                .map(|a| format!("{} ({})", a.source, a.key))
                .collect();
            Err(Local::Usage(format!(
                "`{}` is in several sources: {}; say which with --source, or give the id",
                arg.account,
                sources.join(", ")
            ))
            .into())
        }
    }
}

pub async fn adopt(client: &Client, format: Format, args: AdoptArgs) -> anyhow::Result<()> {
    let account = resolve(client, &args.account).await?;
    let sponsor = client.find_human(&args.sponsor).await?;
    let body = AdoptBody {
        name: args.name,
        kind: args.kind,
        autonomy: args.autonomy,
        sponsor_id: sponsor.id,
        owner_team: args.owner_team,
        purpose: args.purpose,
        systems: (!args.systems.is_empty()).then_some(args.systems),
        data_sensitivity: None,
        criticality: None,
        impact: None,
        labels: Default::default(),
        expires_at: expiry(&args.expiry)?,
    };
    let adopted = client.adopt_account(account.id, &body).await?;
    emit(format, &adopted, |a| {
        fields(&[
            ("account", format!("{} ({})", account.name, account.source)),
            (
                "identity",
                format!("{} ({})", a.identity.name, a.identity.id),
            ),
            ("state", a.identity.state.to_string()),
            ("risk", a.identity.risk.tier.to_string()),
        ]);
    })
}

pub async fn decommission(
    client: &Client,
    format: Format,
    arg: &AccountArg,
    reason: &str,
) -> anyhow::Result<()> {
    let account = resolve(client, arg).await?;
    let row = client.decommission_account(account.id, reason).await?;
    emit(format, &row, |r| {
        println!(
            "{} ({}) is on the decommission list; active credentials: {}",
            r.name,
            r.source,
            if r.active_credentials.is_empty() {
                "none".to_owned()
            } else {
                r.active_credentials.join(", ")
            }
        );
    })
}

pub async fn list(
    client: &Client,
    format: Format,
    source: Option<&str>,
    as_: &str,
) -> anyhow::Result<()> {
    if as_ == "csv" {
        let csv = client.decommission_csv(source).await?;
        return crate::commands::write_stdout(csv.as_bytes());
    }
    let rows = client.decommission_list(source).await?;
    let format = if as_ == "json" { Format::Json } else { format };
    emit(format, &rows, |rows: &Vec<DecommissionRow>| {
        let mut t = Table::new(&[
            "SOURCE",
            "NAME",
            "KEY",
            "ACTIVE CREDENTIALS",
            "MARKED BY",
            "REASON",
            "DONE",
        ]);
        for r in rows {
            t.row(vec![
                r.source.clone(),
                r.name.clone(),
                r.key.clone(),
                r.active_credentials.join(" "),
                r.marked_by.clone(),
                r.reason.clone(),
                r.gone_at.map_or("-".to_owned(), |t| t.to_string()),
            ]);
        }
        t.print();
    })
}

pub async fn acknowledge(
    client: &Client,
    format: Format,
    arg: &AccountArg,
    finding: &str,
    reason: &str,
    until: (Option<i64>, Option<aim_domain::Timestamp>),
) -> anyhow::Result<()> {
    let until = match until {
        (Some(ms), _) => aim_domain::SystemClock.now().plus_millis(ms),
        (None, Some(at)) => at,
        (None, None) => {
            return Err(
                Local::Usage("say until when: --for 30d or --until INSTANT".to_owned()).into(),
            );
        }
    };
    let account = resolve(client, arg).await?;
    let body = AcknowledgeBody {
        finding: finding.to_owned(),
        reason: reason.to_owned(),
        until,
    };
    let k = client.acknowledge_finding(account.id, &body).await?;
    emit(format, &k, |k| {
        println!(
            "`{}` of {} acknowledged until {} (by {})",
            k.finding, account.name, k.until, k.by
        );
    })
}

pub async fn reassess(client: &Client, format: Format, wait: u64) -> anyhow::Result<()> {
    let r = client.reassess_discovery(Some(wait)).await?;
    emit(format, &r, |r| {
        if r.running {
            println!(
                "still running after {wait} s: it goes on in aim; its changes are audit \
                 events discovery.findings_reassessed (aim audit --action \
                 discovery.findings_reassessed)"
            );
            return;
        }
        println!(
            "{} accounts of {} sources assessed again: {} changed",
            r.accounts, r.sources, r.changed
        );
        let list = |m: &std::collections::BTreeMap<aim_domain::discovery::FindingKind, u64>| {
            m.iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !r.appeared.is_empty() {
            println!("new findings: {}", list(&r.appeared));
        }
        if !r.went.is_empty() {
            println!("findings gone: {}", list(&r.went));
        }
        if !r.busy.is_empty() {
            println!(
                "left alone while an import of them runs: {}",
                r.busy.join(", ")
            );
        }
    })
}
