//! Credentials on the command line: agents' public keys (`aim identity key`), tasks
//! (`aim task`), access tokens (`aim token issue|inspect`) and aim's signing keys
//! (`aim signing-key`).

use std::path::Path;

use aim_client::Client;
use aim_domain::agent_key::AgentKey;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::task::Task;
use aim_token::access::{ACCESS_TYP, TrustedKeys};
use aim_token::client::ClientKey;
use anyhow::Context;
use serde_json::{Value, json};

use crate::args::{Format, IssueArgs, KeyCommand, SigningKeyCommand, TaskCommand, TokenCommand};
use crate::commands::{collect, more_hint};
use crate::exit::{Local, OrInvalid};
use crate::output::{Names, Table, clean, emit, emit_named, fields, opt};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The humans who added these keys (a key an agent registered with a join token was added
/// by no human).
async fn key_names(client: &Client, keys: &[AgentKey]) -> Names {
    let humans = keys.iter().filter_map(|k| {
        let id = k.created_by.strip_prefix("human:")?;
        aim_domain::ids::HumanId::parse(id).ok()
    });
    Names::of_humans(client, humans).await
}

async fn one_key(client: &Client, format: Format, k: &AgentKey) -> anyhow::Result<()> {
    let names = key_names(client, std::slice::from_ref(k)).await;
    emit_named(format, k, &names, |k, names| {
        key_rows(std::slice::from_ref(k), names)
    })
}

fn key_rows(keys: &[AgentKey], names: &Names) {
    let mut t = Table::new(&["KID", "ALG", "LABEL", "ADDED", "BY", "LAST USED", "REVOKED"]);
    for k in keys {
        t.row(vec![
            k.kid.clone(),
            k.alg.clone(),
            k.label.clone(),
            k.created_at.to_string(),
            // `human:<id>`, or how an agent registered itself (a join token).
            k.created_by
                .strip_prefix("human:")
                .map_or_else(|| names.of(&k.created_by), |id| names.of(&id)),
            opt(&k.last_used_at),
            opt(&k.revoked_at),
        ]);
    }
    t.print();
}

fn read_key_file(path: &Path) -> anyhow::Result<ClientKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ClientKey::from_pem(&pem).or_invalid(|| format!("{} holds no usable key", path.display()))
}

/// Writes a new private file (a key, a token), mode 0600; refuses to replace one.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use aim_server::secrets::{Existing, write_private};
    write_private(path, text, Existing::Keep)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))
}

pub async fn key(client: &Client, format: Format, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Add {
            identity,
            jwk,
            key_file,
            label,
        } => {
            let public = match (jwk, key_file) {
                (Some(file), _) => serde_json::from_str::<Value>(
                    &std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?,
                )
                .or_invalid(|| format!("{} is not JSON", file.display()))?,
                (None, Some(file)) => read_key_file(&file)?.public().to_json(),
                // clap requires one of the two (the `source` group).
                (None, None) => anyhow::bail!("give --jwk FILE or --key-file FILE"),
            };
            let id = client.find_identity(&identity).await?.id;
            let k = client.add_agent_key(id, &public, &label).await?;
            one_key(client, format, &k).await
        }
        KeyCommand::List { identity } => {
            let id = client.find_identity(&identity).await?.id;
            let keys = client.agent_keys(id).await?;
            let names = key_names(client, &keys).await;
            emit_named(format, &keys, &names, |k, names| key_rows(k, names))
        }
        KeyCommand::Revoke {
            identity,
            kid,
            reason,
        } => {
            let id = client.find_identity(&identity).await?.id;
            let k = client.revoke_agent_key(id, &kid, &reason).await?;
            one_key(client, format, &k).await
        }
        KeyCommand::Join {
            join_token,
            key_file,
            label,
        } => {
            let key = read_key_file(&key_file)?;
            let meta = client.authorization_server().await?;
            let issuer = &meta.issuer;
            let proof = key
                .dpop_proof("POST", &format!("{issuer}/v1/join"), None, time_now())
                .map_err(anyhow::Error::msg)?;
            let k = client
                .join(&join_token, &key.public().to_json(), &label, Some(&proof))
                .await?;
            one_key(client, format, &k).await
        }
        KeyCommand::Generate { alg, out } => {
            let key = ClientKey::generate(&alg).map_err(anyhow::Error::msg)?;
            write_private(&out, &key.to_pem())?;
            let public = key.public().to_json();
            emit(format, &public, |p| {
                fields(&[
                    ("private key", out.display().to_string()),
                    ("kid", key.kid()),
                    ("public JWK", p.to_string()),
                ])
            })
        }
    }
}

fn task_rows(tasks: &[Task], names: &Names) {
    let mut t = Table::new(&[
        "ID",
        "IDENTITY",
        "STATE",
        "PURPOSE",
        "SYSTEMS",
        "DEADLINE",
        "TRIGGERED BY",
    ]);
    for task in tasks {
        t.row(vec![
            task.id.to_string(),
            names.of(&task.identity_id),
            task.state.to_string(),
            task.purpose.clone(),
            task.systems.join(","),
            task.deadline.to_string(),
            task.triggered_by.clone(),
        ]);
    }
    t.print();
}

/// A task is named by its id; anything else names no task (exit 3).
pub fn task_id(s: &str) -> anyhow::Result<TaskId> {
    TaskId::parse(s).map_err(|_| {
        Local::NotFound(format!(
            "no task `{}`: tasks are named by their id (a UUID; `aim task list` shows them)",
            clean(s)
        ))
        .into()
    })
}

pub async fn task(client: &Client, format: Format, cmd: TaskCommand) -> anyhow::Result<()> {
    match cmd {
        TaskCommand::Start(a) => {
            if a.task.is_some() {
                return Err(Local::Usage(
                    "`aim task start` opens a new task; use `aim token issue --task` to continue one"
                        .to_owned(),
                )
                .into());
            }
            issue(client, format, a).await
        }
        TaskCommand::List {
            identity,
            open,
            page,
        } => {
            let mut filters = Vec::new();
            if let Some(i) = identity {
                filters.push(("identity", client.find_identity(&i).await?.id.to_string()));
            }
            if open {
                filters.push(("open", "true".to_owned()));
            }
            let (items, next, names) = collect(&page, |mut p| {
                p.extend(filters.iter().cloned());
                async move { client.tasks(&p).await }
            })
            .await?;
            emit_named(format, &items, &names, |t, names| task_rows(t, names))?;
            more_hint(format, &next);
            Ok(())
        }
        TaskCommand::Show { task } => {
            let t = client.task(task_id(&task)?).await?;
            let mut names = Names::default();
            names.add_identity(client, t.identity_id).await;
            emit_named(format, &t, &names, |t, names| {
                fields(&[
                    ("id", t.id.to_string()),
                    ("identity", names.of(&t.identity_id)),
                    ("state", t.state.to_string()),
                    ("purpose", t.purpose.clone()),
                    ("systems", t.systems.join(", ")),
                    ("subject", opt(&t.subject)),
                    ("triggered by", t.triggered_by.clone()),
                    ("opened", t.opened_at.to_string()),
                    ("deadline", t.deadline.to_string()),
                    ("ended", opt(&t.ended_at)),
                    ("end reason", t.end_reason.clone()),
                ])
            })
        }
        TaskCommand::End { task, reason } => {
            let t = client.end_task(task_id(&task)?, &reason).await?;
            let mut names = Names::default();
            names.add_identity(client, t.identity_id).await;
            emit_named(format, &t, &names, |t, names| {
                task_rows(std::slice::from_ref(t), names)
            })
        }
    }
}

pub async fn token(client: &Client, format: Format, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Issue(a) => issue(client, format, *a).await,
        TokenCommand::Inspect { token } => inspect(client, format, &token).await,
    }
}

async fn issue(client: &Client, format: Format, a: IssueArgs) -> anyhow::Result<()> {
    let key = read_key_file(&a.key_file)?;
    let identity = match IdentityId::parse(&a.identity) {
        Ok(id) => id,
        Err(_) => client.find_identity(&a.identity).await?.id,
    };
    let meta = client.authorization_server().await?;
    let endpoint = meta.token_endpoint.as_str();
    let now = time_now();
    let assertion = key
        .assertion(&identity.to_string(), endpoint, now, 60)
        .map_err(anyhow::Error::msg)?;
    let details;
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    match &a.task {
        Some(t) => form.push(("task_id", t.as_str())),
        None => {
            let mut entry = json!({
                "type": "aim_task",
                "purpose": a.purpose,
                "systems": a.systems,
                "triggered_by": a.triggered_by,
            });
            if let Some(s) = &a.subject {
                entry["subject"] = json!(s);
            }
            if let Some(d) = a.max_duration {
                entry["max_duration"] = json!(d);
            }
            details = json!([entry]).to_string();
            form.push(("authorization_details", details.as_str()));
        }
    }
    if let Some(r) = &a.resource {
        form.push(("resource", r.as_str()));
    }
    // Bind the token to the same key (DPoP) unless asked not to.
    let proof = if a.no_dpop {
        None
    } else {
        Some(
            key.dpop_proof("POST", endpoint, None, now)
                .map_err(anyhow::Error::msg)?,
        )
    };
    let mut r = client.oauth_token(&form, proof.as_deref()).await?;
    if let Some(file) = &a.write_token {
        write_private(file, &format!("{}\n", r.access_token))?;
        r.access_token = format!("(written to {})", file.display());
    }
    emit(format, &r, |r| {
        fields(&[
            ("task", r.task_id.clone()),
            ("scope", r.scope.clone()),
            ("expires in", format!("{} s", r.expires_in)),
            ("access token", r.access_token.clone()),
        ])
    })
}

fn time_now() -> i64 {
    use aim_domain::Clock;
    aim_domain::SystemClock.now().as_millis() / 1000
}

/// The token to inspect: `-` reads standard input, an existing file is read, anything
/// else is the token itself.
fn token_from(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s.trim().to_owned());
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(text.trim().to_owned());
    }
    Ok(arg.trim().to_owned())
}

/// A token that is not active: inspected, shown, and refused (exit 5).
#[derive(Debug, thiserror::Error)]
#[error("the token is not active: {0}")]
pub struct NotActive(pub String);

/// Shows a token's header and claims and says whether it is active: its signature and
/// lifetime against the keys aim publishes now, then, with a credential that may
/// introspect (admin, auditor, gateway), aim's own answer, which also sees revocations
/// and the state of the identity, its sponsor, its task and its delegators.
async fn inspect(client: &Client, format: Format, arg: &str) -> anyhow::Result<()> {
    let token = token_from(arg)?;
    let parsed = aim_token::jose::Unverified::parse(&token, &[ACCESS_TYP])
        .map_err(|e| anyhow::anyhow!("not an aim access token: {e}"))?;
    let header = Value::Object(parsed.header.clone());
    let claims = Value::Object(parsed.claims.clone());
    let meta = client.authorization_server().await?;
    let jwks = client.jwks().await?;
    let keys = TrustedKeys::from_jwks(&jwks).map_err(anyhow::Error::msg)?;
    let expect = aim_token::access::Expect {
        issuer: &meta.issuer,
        audience: claims["aud"].as_str().unwrap_or_default(),
        now: time_now(),
    };
    let signature = aim_token::access::verify(&token, &keys, &expect)
        .map(|_| ())
        .map_err(|e| format!("{} ({})", e, e.code()));
    let introspection = if client.has_credential() {
        match client.introspect(&token).await {
            Ok(i) => Ok(i),
            Err(
                e @ aim_client::ClientError::Api {
                    status: 401 | 403, ..
                },
            ) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    } else {
        Err("no credential (AIM_TOKEN) to introspect with".to_owned())
    };
    let (active, verdict) = match (&signature, &introspection) {
        (Err(why), _) => (false, format!("invalid: {why}")),
        (Ok(()), Ok(i)) if i.active => (true, "active: aim introspected it".to_owned()),
        (Ok(()), Ok(_)) => (
            false,
            "not active: aim introspected it (revoked, or its identity, sponsor, task or a delegator is no longer active)".to_owned(),
        ),
        (Ok(()), Err(why)) => (
            true,
            format!("signature and lifetime valid; revocation not checked: {why}"),
        ),
    };
    let out = json!({
        "header": header,
        "claims": claims,
        "active": active,
        "verdict": verdict,
        "introspection": introspection.as_ref().ok(),
    });
    emit(format, &out, |_| {
        // JSON escapes every control character in a value, so the blocks are safe to print.
        println!("verdict  {}", crate::output::clean(&verdict));
        println!(
            "header\n{}",
            serde_json::to_string_pretty(&header).unwrap_or_default()
        );
        println!(
            "claims\n{}",
            serde_json::to_string_pretty(&claims).unwrap_or_default()
        );
    })?;
    if active {
        Ok(())
    } else {
        Err(NotActive(verdict).into())
    }
}

pub async fn signing_key(
    client: &Client,
    format: Format,
    cmd: SigningKeyCommand,
) -> anyhow::Result<()> {
    let keys = match cmd {
        SigningKeyCommand::List => client.signing_keys().await?,
        SigningKeyCommand::Rotate => client.rotate_signing_key().await?,
        SigningKeyCommand::Revoke { kid, reason } => {
            client.revoke_signing_key(&kid, &reason).await?
        }
    };
    emit(format, &keys, |keys| {
        let mut t = Table::new(&[
            "KID",
            "ALG",
            "CREATED",
            "RETIRES",
            "REVOKED",
            "CURRENT",
            "PUBLISHED",
        ]);
        for k in keys {
            t.row(vec![
                k.kid.clone(),
                k.alg.clone(),
                k.created_at.to_string(),
                k.retire_at.to_string(),
                k.revoked_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                k.current.to_string(),
                k.published.to_string(),
            ]);
        }
        t.print();
    })
}

pub async fn join_token(
    client: &Client,
    format: Format,
    cmd: crate::args::JoinTokenCommand,
) -> anyhow::Result<()> {
    match cmd {
        crate::args::JoinTokenCommand::Create { identity, ttl } => {
            let id = client.find_identity(&identity).await?.id;
            let t = client.create_join_token(id, Some(ttl)).await?;
            emit(format, &t, |t| {
                fields(&[
                    ("identity", t.identity_id.to_string()),
                    ("expires", t.expires_at.to_string()),
                    ("join token (shown once)", t.token.clone()),
                ])
            })
        }
    }
}
