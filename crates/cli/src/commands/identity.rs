use std::collections::BTreeMap;

use aim_client::Client;
use aim_domain::Timestamp;
use aim_domain::identity::{Identity, IdentityPatch, IdentityRequest};
use anyhow::Context;

use crate::args::{Expiry, Format, IdentityCommand, ListArgs, ReasonArgs};
use crate::commands::{collect, more_hint};
use crate::output::{Names, Table, emit, emit_named, fields, opt};

fn now() -> Timestamp {
    use aim_domain::Clock;
    aim_domain::SystemClock.now()
}

pub(crate) fn expiry(e: &Expiry) -> anyhow::Result<Timestamp> {
    match (e.expires_in, &e.expires_at) {
        (Some(ms), _) => Ok(now().plus_millis(ms)),
        (None, Some(at)) => Ok(*at),
        // clap requires one of the two (`Expiry` is a required group).
        (None, None) => anyhow::bail!("give --expires-in or --expires-at"),
    }
}

fn flags(i: &Identity) -> String {
    let mut f = Vec::new();
    if i.dormant {
        f.push("dormant");
    }
    if i.orphaned_since.is_some() {
        f.push("orphaned");
    }
    if i.possible_duplicate {
        f.push("possible-duplicate");
    }
    if i.pending_change.is_some() {
        f.push("change-pending");
    }
    f.join(",")
}

fn show(i: &Identity, names: &Names) {
    let labels = i
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    fields(&[
        ("id", i.id.to_string()),
        ("name", i.name.clone()),
        ("kind", i.kind.to_string()),
        ("autonomy", i.autonomy.to_string()),
        (
            "state",
            format!("{} ({}: {})", i.state, i.state_cause, i.state_reason),
        ),
        (
            "risk",
            format!("{} ({})", i.risk.tier, i.risk.reasons.join("; ")),
        ),
        ("sponsor", names.of(&i.sponsor_id)),
        (
            "pending change",
            i.pending_change.as_ref().map_or_else(
                || "-".to_owned(),
                |c| {
                    format!(
                        "{} (asked {}; `aim identity approve-change`)",
                        c.fields.join(", "),
                        c.requested_at
                    )
                },
            ),
        ),
        ("team", opt(&i.owner_team)),
        ("purpose", i.purpose.clone()),
        ("systems", i.systems.join(", ")),
        ("data", i.data_sensitivity.to_string()),
        ("criticality", i.criticality.to_string()),
        ("impact", i.impact.to_string()),
        ("labels", labels),
        ("expires", i.expires_at.to_string()),
        ("attestation due", opt(&i.attestation_due_at)),
        ("last attested", opt(&i.last_attested_at)),
        ("last seen", opt(&i.last_seen_at)),
        ("flags", flags(i)),
        (
            "requested",
            format!("{} by {}", i.created_at, names.of(&i.created_by)),
        ),
        (
            "decided",
            match (i.decided_at, i.decided_by) {
                (Some(t), Some(by)) => format!("{t} by {}", names.of(&by)),
                (Some(t), None) => format!("{t} by the auto-approval rule"),
                _ => "-".into(),
            },
        ),
    ]);
}

/// One identity: as JSON, or as fields with the sponsor's user name looked up.
async fn print_identity(client: &Client, format: Format, i: &Identity) -> anyhow::Result<()> {
    let humans = [Some(i.sponsor_id), Some(i.created_by), i.decided_by];
    let names = Names::of_humans(client, humans.into_iter().flatten()).await;
    emit_named(format, i, &names, show)
}

async fn list(client: &Client, format: Format, a: ListArgs) -> anyhow::Result<()> {
    let sponsor = match &a.sponsor {
        Some(s) => Some(client.find_human(s).await?.id),
        None => None,
    };
    let expiring_before = a.expiring_within.map(|ms| now().plus_millis(ms));
    let (items, next, names) = collect(&a.page, |mut p| {
        if let Some(s) = a.state {
            p.push(("state", s.to_string()));
        }
        if let Some(k) = a.kind {
            p.push(("kind", k.to_string()));
        }
        if let Some(s) = sponsor {
            p.push(("sponsor_id", s.to_string()));
        }
        if let Some(r) = a.risk {
            p.push(("risk_tier", r.to_string()));
        }
        if let Some(t) = expiring_before {
            p.push(("expiring_before", t.to_string()));
        }
        if a.dormant {
            p.push(("dormant", "true".into()));
        }
        if a.orphaned {
            p.push(("orphaned", "true".into()));
        }
        if a.possible_duplicate {
            p.push(("possible_duplicate", "true".into()));
        }
        if let Some(n) = &a.name_prefix {
            p.push(("name_prefix", n.clone()));
        }
        async move { client.identities(&p).await }
    })
    .await?;
    if format == Format::Json {
        return emit_named(format, &items, &names, |_, _| {});
    }
    let mut t = Table::new(&[
        "NAME", "KIND", "STATE", "RISK", "SPONSOR", "EXPIRES", "FLAGS",
    ]);
    for i in &items {
        t.row(vec![
            i.name.clone(),
            i.kind.to_string(),
            i.state.to_string(),
            i.risk.tier.to_string(),
            names.of(&i.sponsor_id),
            i.expires_at.to_string(),
            flags(i),
        ]);
    }
    t.print();
    more_hint(format, &next);
    Ok(())
}

async fn act(client: &Client, format: Format, action: &str, a: ReasonArgs) -> anyhow::Result<()> {
    let i = client.find_identity(&a.identity).await?;
    let i = client.identity_action(i.id, action, &a.reason).await?;
    emit(format, &i, |i| {
        println!(
            "{} is {} ({})",
            crate::output::clean(&i.name),
            i.state,
            crate::output::clean(&i.state_reason)
        )
    })
}

/// `aim lock NAME --reason ...` or `aim lock --all-agents --reason ...`.
pub async fn lock_command(
    client: &Client,
    format: Format,
    a: crate::args::LockArgs,
) -> anyhow::Result<()> {
    match a.identity {
        Some(identity) if !a.all_agents => {
            lock(
                client,
                format,
                ReasonArgs {
                    identity,
                    reason: a.reason,
                },
            )
            .await
        }
        _ => {
            let all = client.lock_all_agents(&a.reason).await?;
            emit(format, &all, |r| {
                println!(
                    "emergency stop: {} AI agents locked; {}",
                    r.locked, r.gateways
                );
                for f in &r.failed {
                    println!("  not locked: {}", crate::output::clean(&f.to_string()));
                }
            })
        }
    }
}

/// `aim unlock NAME --reason ...`.
pub async fn unlock_command(client: &Client, format: Format, a: ReasonArgs) -> anyhow::Result<()> {
    act(client, format, "unlock", a).await
}

/// Locks an identity and says how many connected gateways applied the lock.
async fn lock(client: &Client, format: Format, a: ReasonArgs) -> anyhow::Result<()> {
    let i = client.find_identity(&a.identity).await?;
    let locked = client.lock_identity(i.id, &a.reason).await?;
    emit(format, &locked, |l| {
        println!(
            "{} is {}; {}",
            crate::output::clean(&l.identity.name),
            l.identity.state,
            l.gateways
        )
    })
}

/// Re-certifies an identity and says so: when, by whom the next one is due (its state and
/// the approval's reason do not change, so showing them would look as if nothing happened).
async fn attest(client: &Client, format: Format, a: ReasonArgs) -> anyhow::Result<()> {
    let i = client.find_identity(&a.identity).await?;
    let i = client.identity_action(i.id, "attest", &a.reason).await?;
    emit(format, &i, |i| {
        println!(
            "{} attested at {}; next attestation due {}",
            crate::output::clean(&i.name),
            opt(&i.last_attested_at),
            opt(&i.attestation_due_at)
        )
    })
}

pub async fn run(client: &Client, format: Format, cmd: IdentityCommand) -> anyhow::Result<()> {
    match cmd {
        IdentityCommand::Request(r) => {
            let sponsor = client.find_human(&r.sponsor).await.context("sponsor")?;
            let req = IdentityRequest {
                name: r.name,
                kind: r.kind,
                autonomy: r.autonomy,
                sponsor_id: sponsor.id,
                owner_team: r.team,
                purpose: r.purpose,
                systems: r.systems,
                data_sensitivity: r.sensitivity,
                criticality: r.criticality,
                impact: r.impact,
                labels: r.labels.into_iter().collect::<BTreeMap<_, _>>(),
                expires_at: expiry(&r.expiry)?,
            };
            let i = client.request_identity(&req).await?;
            print_identity(client, format, &i).await
        }
        IdentityCommand::List(a) => list(client, format, a).await,
        IdentityCommand::Show { identity } => {
            print_identity(client, format, &client.find_identity(&identity).await?).await
        }
        IdentityCommand::Why { identity } => super::behaviour::why(client, format, &identity).await,
        IdentityCommand::Update(u) => {
            let i = client.find_identity(&u.identity).await?;
            let sponsor_id = match &u.sponsor {
                Some(s) => Some(client.find_human(s).await.context("sponsor")?.id),
                None => None,
            };
            let expires_at = match (u.expires_in, &u.expires_at) {
                (Some(ms), _) => Some(now().plus_millis(ms)),
                (None, Some(at)) => Some(*at),
                (None, None) => None,
            };
            let patch = IdentityPatch {
                sponsor_id,
                owner_team: u.team,
                purpose: u.purpose,
                systems: (!u.systems.is_empty()).then_some(u.systems),
                data_sensitivity: u.sensitivity,
                criticality: u.criticality,
                impact: u.impact,
                labels: None,
                expires_at,
            };
            print_identity(client, format, &client.change_identity(i.id, &patch).await?).await
        }
        IdentityCommand::Approve(a) => act(client, format, "approve", a).await,
        IdentityCommand::Reject(a) => act(client, format, "reject", a).await,
        IdentityCommand::ApproveChange(a) => act(client, format, "change/approve", a).await,
        IdentityCommand::RejectChange(a) => act(client, format, "change/reject", a).await,
        IdentityCommand::Bearer(a) => {
            let i = client.find_identity(&a.identity).await?;
            let i = client.set_bearer(i.id, !a.withdraw, &a.reason).await?;
            emit(format, &i, |i| match &i.bearer_reason {
                Some(r) => println!(
                    "{} may have bearer tokens ({})",
                    crate::output::clean(&i.name),
                    crate::output::clean(r)
                ),
                None => println!(
                    "{}'s tokens are bound to its key (DPoP)",
                    crate::output::clean(&i.name)
                ),
            })
        }
        IdentityCommand::Suspend(a) => act(client, format, "suspend", a).await,
        IdentityCommand::Resume(a) => act(client, format, "resume", a).await,
        IdentityCommand::Lock(a) => lock(client, format, a).await,
        IdentityCommand::Unlock(a) => act(client, format, "unlock", a).await,
        IdentityCommand::Attest(a) => attest(client, format, a).await,
        IdentityCommand::Decommission(a) => act(client, format, "decommission", a).await,
        IdentityCommand::Key(cmd) => crate::commands::token::key(client, format, cmd).await,
    }
}
