//! `aim approval` and `aim grant`: the humans' side of step-up approvals, grants and
//! just-in-time elevations.

use aim_client::Client;
use aim_domain::approval::ActionApproval;
use aim_domain::grant::{Grant, Grantee, NewGrant, Scope};

use crate::args::{ApprovalCommand, Format, GrantCommand};
use crate::commands::{collect, more_hint};
use crate::output::{Names, Table, clean, emit_named, fields, opt};

fn approval_rows(list: &[ActionApproval], names: &Names) {
    let mut t = Table::new(&[
        "ID",
        "STATE",
        "IDENTITY",
        "ACTION",
        "RESOURCE",
        "ARGS",
        "APPROVERS",
        "EXPIRES",
    ]);
    for a in list {
        t.row(vec![
            a.id.to_string(),
            a.state.to_string(),
            names.of(&a.action.identity_id),
            a.action.action.clone(),
            format!("{}:{}", a.action.system, a.action.resource_id),
            opt(&a.action.args_hash),
            a.approvers.join(", "),
            a.expires_at.to_string(),
        ]);
    }
    t.print();
}

/// One approval, its identity and deciding human named.
async fn one_approval(client: &Client, format: Format, a: &ActionApproval) -> anyhow::Result<()> {
    let mut names = Names::of_humans(client, a.decided_by).await;
    names.add_identity(client, a.action.identity_id).await;
    emit_named(format, a, &names, approval_fields)
}

fn approval_fields(a: &ActionApproval, names: &Names) {
    fields(&[
        ("id", a.id.to_string()),
        ("state", a.state.to_string()),
        ("identity", names.of(&a.action.identity_id)),
        ("task", a.action.task_id.to_string()),
        ("triggered by", clean(&a.triggered_by)),
        ("action", a.action.action.clone()),
        (
            "resource",
            format!("{} {}", a.action.resource_type, a.action.resource_id),
        ),
        ("system", a.action.system.clone()),
        ("args hash", opt(&a.action.args_hash)),
        ("approvers", a.approvers.join(", ")),
        ("policies", a.policies.join(", ")),
        ("requested", a.requested_at.to_string()),
        ("expires", a.expires_at.to_string()),
        (
            "decided by",
            a.decided_by
                .map_or_else(|| "-".to_owned(), |h| names.of(&h)),
        ),
        ("reason", clean(&a.reason)),
    ]);
}

pub async fn approval(client: &Client, format: Format, cmd: ApprovalCommand) -> anyhow::Result<()> {
    match cmd {
        ApprovalCommand::List {
            state,
            identity,
            page,
        } => {
            let mut filters = Vec::new();
            if let Some(s) = state {
                filters.push(("state", s));
            }
            if let Some(i) = identity {
                filters.push(("identity", client.find_identity(&i).await?.id.to_string()));
            }
            let (items, next, names) = collect(&page, |mut p| {
                p.extend(filters.iter().cloned());
                async move { client.approvals(&p).await }
            })
            .await?;
            emit_named(format, &items, &names, |a, names| approval_rows(a, names))?;
            more_hint(format, &next);
            Ok(())
        }
        ApprovalCommand::Show { id } => {
            one_approval(client, format, &client.approval(id).await?).await
        }
        ApprovalCommand::Approve { id, reason } => {
            let a = client.decide_approval(id, "approve", &reason).await?;
            one_approval(client, format, &a).await
        }
        ApprovalCommand::Deny { id, reason } => {
            let a = client.decide_approval(id, "deny", &reason).await?;
            one_approval(client, format, &a).await
        }
    }
}

fn grantee(g: &Grantee, names: &Names) -> String {
    match g {
        Grantee::Identity(i) => format!("identity {}", names.of(i)),
        Grantee::Group(g) => format!("group {g}"),
    }
}

fn grant_rows(list: &[Grant], names: &Names) {
    let mut t = Table::new(&[
        "ID", "STATE", "GRANTEE", "ACTION", "ON", "EXPIRES", "REASON",
    ]);
    for g in list {
        let on = match (&g.scope.resource_type, &g.scope.resource_id) {
            (Some(t), Some(i)) => format!("{}:{t} {i}", g.scope.system),
            _ => format!("{} (all)", g.scope.system),
        };
        t.row(vec![
            g.id.to_string(),
            g.state.to_string(),
            grantee(&g.grantee, names),
            g.scope.action.clone(),
            on,
            opt(&g.expires_at),
            clean(&g.reason),
        ]);
    }
    t.print();
}

/// One grant, its grantee and deciding human named.
async fn one(client: &Client, format: Format, g: &Grant) -> anyhow::Result<()> {
    let mut names = Names::of_humans(client, g.decided_by).await;
    if let Grantee::Identity(id) = &g.grantee {
        names.add_identity(client, *id).await;
    }
    emit_named(format, g, &names, |g, names| {
        grant_rows(std::slice::from_ref(g), names)
    })
}

pub async fn grant(client: &Client, format: Format, cmd: GrantCommand) -> anyhow::Result<()> {
    match cmd {
        GrantCommand::Add {
            identity,
            group,
            action,
            system,
            resource_type,
            resource_id,
            reason,
            duration,
        } => {
            let grantee = match (identity, group) {
                (Some(i), _) => Grantee::Identity(client.find_identity(&i).await?.id),
                (None, Some(g)) => Grantee::Group(g),
                (None, None) => anyhow::bail!("give --identity or --group"),
            };
            let g = NewGrant {
                grantee,
                scope: Scope {
                    action,
                    system,
                    resource_type,
                    resource_id,
                },
                reason,
                expires_at: None,
                duration_seconds: duration.map(|ms| ms / 1000),
            };
            one(client, format, &client.add_grant(&g).await?).await
        }
        GrantCommand::List {
            state,
            identity,
            group,
            page,
        } => {
            let mut filters = Vec::new();
            if let Some(s) = state {
                filters.push(("state", s));
            }
            if let Some(i) = identity {
                filters.push(("identity", client.find_identity(&i).await?.id.to_string()));
            }
            if let Some(g) = group {
                filters.push(("group", g));
            }
            let (items, next, names) = collect(&page, |mut p| {
                p.extend(filters.iter().cloned());
                async move { client.grants(&p).await }
            })
            .await?;
            emit_named(format, &items, &names, |g, names| grant_rows(g, names))?;
            more_hint(format, &next);
            Ok(())
        }
        GrantCommand::Revoke { id, reason } => {
            one(
                client,
                format,
                &client.grant_action(id, "revoke", &reason).await?,
            )
            .await
        }
        GrantCommand::Approve { id, reason } => {
            one(
                client,
                format,
                &client.grant_action(id, "approve", &reason).await?,
            )
            .await
        }
        GrantCommand::Deny { id, reason } => {
            one(
                client,
                format,
                &client.grant_action(id, "deny", &reason).await?,
            )
            .await
        }
    }
}
