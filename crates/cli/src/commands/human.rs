use aim_client::Client;
use aim_domain::human::{Credential, Human, HumanPatch, NewHuman};
use aim_domain::ids::CredentialId;
use anyhow::Context;

use crate::args::{CredentialCommand, Format, HumanCommand};
use crate::commands::{collect, more_hint};
use crate::output::{self, Table, emit, fields, opt};

fn roles(h: &Human) -> String {
    h.roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn show(h: &Human) {
    fields(&[
        ("id", h.id.to_string()),
        ("user name", h.user_name.clone()),
        ("display name", opt(&h.display_name)),
        ("email", opt(&h.email)),
        ("external id", opt(&h.external_id)),
        ("roles", roles(h)),
        ("groups", h.groups.join(", ")),
        ("state", h.state.to_string()),
        ("created", h.created_at.to_string()),
        ("departed", opt(&h.departed_at)),
    ]);
}

fn credential_table(list: &[Credential]) {
    let mut t = Table::new(&["ID", "LABEL", "CREATED", "LAST USED", "REVOKED"]);
    for c in list {
        t.row(vec![
            c.id.to_string(),
            c.label.clone(),
            c.created_at.to_string(),
            opt(&c.last_used_at),
            opt(&c.revoked_at),
        ]);
    }
    t.print();
}

pub async fn run(client: &Client, format: Format, cmd: HumanCommand) -> anyhow::Result<()> {
    match cmd {
        HumanCommand::Add {
            user_name,
            roles,
            groups,
            display_name,
            email,
            external_id,
        } => {
            let h = client
                .create_human(&NewHuman {
                    user_name,
                    display_name,
                    email,
                    external_id,
                    roles,
                    groups,
                })
                .await?;
            emit(format, &h, show)
        }
        HumanCommand::List { state, page } => {
            let (items, next, _) = collect(&page, |mut params| {
                if let Some(s) = state {
                    params.push(("state", s.to_string()));
                }
                async move { client.humans(&params).await }
            })
            .await?;
            emit(format, &items, |items| {
                let mut t = Table::new(&["ID", "USER NAME", "DISPLAY NAME", "ROLES", "STATE"]);
                for h in items {
                    t.row(vec![
                        h.id.to_string(),
                        h.user_name.clone(),
                        opt(&h.display_name),
                        roles(h),
                        h.state.to_string(),
                    ]);
                }
                t.print();
            })?;
            more_hint(format, &next);
            Ok(())
        }
        HumanCommand::Show { human } => emit(format, &client.find_human(&human).await?, show),
        HumanCommand::Roles { human, roles } => {
            let h = client.find_human(&human).await?;
            let h = client
                .change_human(
                    h.id,
                    &HumanPatch {
                        roles: Some(roles),
                        ..Default::default()
                    },
                )
                .await?;
            emit(format, &h, show)
        }
        HumanCommand::Groups { human, groups } => {
            let h = client.find_human(&human).await?;
            let h = client
                .change_human(
                    h.id,
                    &HumanPatch {
                        groups: Some(groups),
                        ..Default::default()
                    },
                )
                .await?;
            emit(format, &h, show)
        }
        HumanCommand::Deactivate { human, reason } => {
            let h = client.find_human(&human).await?;
            let out = client.set_human_active(h.id, false, &reason).await?;
            emit(format, &out, |o| {
                println!(
                    "{} is departed; {} identities they sponsor are now orphaned",
                    output::clean(&o.human.user_name),
                    o.identities_affected
                );
            })
        }
        HumanCommand::Reactivate { human, reason } => {
            let h = client.find_human(&human).await?;
            let out = client.set_human_active(h.id, true, &reason).await?;
            emit(format, &out, |o| {
                println!(
                    "{} is active; {} identities are no longer orphaned",
                    output::clean(&o.human.user_name),
                    o.identities_affected
                );
            })
        }
        HumanCommand::Credential(c) => credential(client, format, c).await,
    }
}

/// `aim human credential ...`.
async fn credential(client: &Client, format: Format, cmd: CredentialCommand) -> anyhow::Result<()> {
    match cmd {
        CredentialCommand::Create { human, label } => {
            let h = client.find_human(&human).await?;
            let issued = client.create_credential(h.id, &label).await?;
            emit(format, &issued, |i| {
                println!("{}", i.secret);
                eprintln!(
                    "credential {} for {}: shown once, store it now",
                    i.credential.id,
                    output::clean(&h.user_name)
                );
            })
        }
        CredentialCommand::List { human } => {
            let h = client.find_human(&human).await?;
            let list = client.credentials(h.id).await?;
            emit(format, &list, |l| credential_table(l))
        }
        CredentialCommand::Revoke {
            human,
            credential_id,
        } => {
            let h = client.find_human(&human).await?;
            let id = CredentialId::parse(&credential_id).context("credential id")?;
            client.revoke_credential(h.id, id).await?;
            emit(format, &serde_json::json!({ "revoked": id }), |_| {
                println!("revoked {id}")
            })
        }
    }
}
