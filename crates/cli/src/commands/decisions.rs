//! `aim approval` and `aim grant`: the humans' side of step-up approvals, grants and
//! just-in-time elevations.

use aim_client::Client;
use aim_domain::approval::ActionApproval;
use aim_domain::grant::{Grant, Grantee, NewGrant, Scope};

use crate::args::{ApprovalCommand, Format, GrantCommand};
use crate::commands::{collect, more_hint};
use crate::output::{Table, clean, emit, fields, opt};

fn approval_rows(list: &[ActionApproval]) {
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
            a.action.identity_id.to_string(),
            a.action.action.clone(),
            format!("{}:{}", a.action.system, a.action.resource_id),
            opt(&a.action.args_hash),
            a.approvers.join(", "),
            a.expires_at.to_string(),
        ]);
    }
    t.print();
}

fn approval_fields(a: &ActionApproval) {
    fields(&[
        ("id", a.id.to_string()),
        ("state", a.state.to_string()),
        ("identity", a.action.identity_id.to_string()),
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
        ("decided by", opt(&a.decided_by)),
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
            let (items, next) = collect(&page, |mut p| {
                p.extend(filters.iter().cloned());
                async move { client.approvals(&p).await }
            })
            .await?;
            emit(format, &items, |a| approval_rows(a))?;
            more_hint(format, &next);
            Ok(())
        }
        ApprovalCommand::Show { id } => emit(format, &client.approval(id).await?, approval_fields),
        ApprovalCommand::Approve { id, reason } => emit(
            format,
            &client.decide_approval(id, "approve", &reason).await?,
            approval_fields,
        ),
        ApprovalCommand::Deny { id, reason } => emit(
            format,
            &client.decide_approval(id, "deny", &reason).await?,
            approval_fields,
        ),
    }
}

fn grantee(g: &Grantee) -> String {
    match g {
        Grantee::Identity(i) => format!("identity {i}"),
        Grantee::Group(g) => format!("group {g}"),
    }
}

fn grant_rows(list: &[Grant]) {
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
            grantee(&g.grantee),
            g.scope.action.clone(),
            on,
            opt(&g.expires_at),
            clean(&g.reason),
        ]);
    }
    t.print();
}

fn one(format: Format, g: &Grant) -> anyhow::Result<()> {
    emit(format, g, |g| grant_rows(std::slice::from_ref(g)))
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
            one(format, &client.add_grant(&g).await?)
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
            let (items, next) = collect(&page, |mut p| {
                p.extend(filters.iter().cloned());
                async move { client.grants(&p).await }
            })
            .await?;
            emit(format, &items, |g| grant_rows(g))?;
            more_hint(format, &next);
            Ok(())
        }
        GrantCommand::Revoke { id, reason } => {
            one(format, &client.grant_action(id, "revoke", &reason).await?)
        }
        GrantCommand::Approve { id, reason } => {
            one(format, &client.grant_action(id, "approve", &reason).await?)
        }
        GrantCommand::Deny { id, reason } => {
            one(format, &client.grant_action(id, "deny", &reason).await?)
        }
    }
}
