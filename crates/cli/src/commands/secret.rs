//! `aim upstream-secret ...`: store, list and delete credentials gateways inject.

use aim_api::secrets::PutUpstreamSecret;
use aim_client::Client;
use anyhow::Context;

use crate::args::{Format, SecretCommand};
use crate::output::{Table, clean, emit};

pub async fn run(client: &Client, format: Format, cmd: SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Set {
            name,
            from_env,
            from_file,
            description,
            gateways,
        } => {
            let value = match (from_env, from_file) {
                (Some(var), _) => std::env::var(&var)
                    .with_context(|| format!("the environment variable {var} is not set"))?,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                (None, None) => anyhow::bail!("give --from-env or --from-file"),
            };
            let stored = client
                .put_upstream_secret(
                    &name,
                    &PutUpstreamSecret {
                        value,
                        description,
                        gateways,
                    },
                )
                .await?;
            emit(format, &stored, |s| {
                println!("stored {} (version {})", clean(&s.name), s.version);
            })
        }
        SecretCommand::List => {
            let all = client.upstream_secrets().await?;
            emit(format, &all, |all| {
                let mut t = Table::new(&["NAME", "VERSION", "UPDATED", "BY", "DESCRIPTION"]);
                for s in all {
                    t.row(vec![
                        clean(&s.name),
                        s.version.to_string(),
                        s.updated_at.to_string(),
                        s.updated_by.to_string(),
                        clean(&s.description),
                    ]);
                }
                t.print();
            })
        }
        SecretCommand::Delete { name } => {
            client.delete_upstream_secret(&name).await?;
            if format == Format::Table {
                println!("deleted {}", clean(&name));
            }
            Ok(())
        }
    }
}
