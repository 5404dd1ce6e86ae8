//! `aim policy`: apply Cedar files, read the history, roll back, try a request.

use aim_api::authorize::AuthorizeBody;
use aim_api::policies::{Applied, ApplyBody};
use std::path::{Path, PathBuf};

use aim_client::Client;
use anyhow::Context;
use serde_json::{Value, json};

use crate::args::{Format, PolicyCommand, PolicyFiles};
use crate::exit::{Local, OrInvalid};
use crate::output::{Table, emit, fields};

/// `[{name, text}]` from files and folders (a folder's `*.cedar` files, sorted).
fn sources(paths: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "cedar"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(
                    Local::Invalid(format!("{} holds no .cedar files", path.display())).into(),
                );
            }
            for f in files {
                let name = f.strip_prefix(path).unwrap_or(&f).display().to_string();
                out.push(json!({ "name": name, "text": read(&f)? }));
            }
        } else {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            out.push(json!({ "name": name, "text": read(path)? }));
        }
    }
    Ok(out)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn links(path: Option<&PathBuf>) -> anyhow::Result<Value> {
    match path {
        None => Ok(json!([])),
        Some(p) => serde_json::from_str(&read(p)?)
            .or_invalid(|| format!("{} is not a JSON array of links", p.display())),
    }
}

/// The request's principal by id: a name (`agt-claims-triage`, `alice@example.com`) is
/// looked up, so a what-if can be written the way people name things.
async fn name_principal(client: &Client, question: &mut Value) -> anyhow::Result<()> {
    let Some(principal) = question.get_mut("principal").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(Value::String(name)) = principal.get("identity") {
        let id = client.find_identity(name).await?.id;
        principal.insert("identity".into(), json!(id));
    }
    if let Some(Value::String(name)) = principal.get("human") {
        let id = client.find_human(name).await?.id;
        principal.insert("human".into(), json!(id));
    }
    Ok(())
}

fn content(files: &PolicyFiles) -> anyhow::Result<Value> {
    Ok(json!({ "sources": sources(&files.paths)?, "links": links(files.links.as_ref())? }))
}

fn applied(format: Format, v: &Applied) -> anyhow::Result<()> {
    emit(format, v, |v| {
        fields(&[
            ("version", v.version.to_string()),
            ("policies", v.policies.to_string()),
            ("templates", v.templates.to_string()),
            ("digest", v.digest.clone()),
        ]);
    })
}

pub async fn run(client: &Client, format: Format, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Apply {
            files,
            comment,
            expected_version,
        } => {
            let body = ApplyBody {
                content: serde_json::from_value(content(&files)?)?,
                comment,
                expected_version,
            };
            applied(format, &client.apply_policies(&body).await?)
        }
        PolicyCommand::Rollback { version, comment } => {
            applied(format, &client.rollback_policies(version, &comment).await?)
        }
        PolicyCommand::Show { version } => {
            let v = client.policies(version).await?;
            emit(format, &v, |v| {
                println!("# version {} ({})", v.version, v.comment);
                for f in &v.content.sources {
                    println!("\n# --- {} ---", f.name);
                    print!("{}", f.text);
                }
                if !v.content.links.is_empty() {
                    let links = serde_json::to_string(&v.content.links).unwrap_or_default();
                    println!("\n# --- links ---\n{links}");
                }
            })
        }
        PolicyCommand::Versions => {
            let list = client.policy_versions().await?;
            emit(format, &list, |list| {
                let mut t = Table::new(&["VERSION", "CREATED", "BY", "FILES", "COMMENT"]);
                for v in list {
                    let mut comment = v.comment.clone();
                    if let Some(r) = v.rollback_of {
                        comment = format!("(rollback to {r}) {comment}");
                    }
                    t.row(vec![
                        v.version.to_string(),
                        v.created_at.to_string(),
                        v.created_by.clone(),
                        v.files.len().to_string(),
                        comment,
                    ]);
                }
                t.print();
            })
        }
        PolicyCommand::Test {
            request,
            identity,
            human,
            paths,
            links: link_file,
        } => {
            let not_a_request = || format!("{} is not a decision request", request.display());
            let mut question: Value =
                serde_json::from_str(&read(&request)?).or_invalid(not_a_request)?;
            if let Some(name) = identity {
                question["principal"] = json!({ "identity": name });
            }
            if let Some(name) = human {
                question["principal"] = json!({ "human": name });
            }
            name_principal(client, &mut question).await?;
            let mut question: AuthorizeBody =
                serde_json::from_value(question).or_invalid(not_a_request)?;
            if !paths.is_empty() {
                question.policies = Some(serde_json::from_value(
                    json!({ "sources": sources(&paths)?, "links": links(link_file.as_ref())? }),
                )?);
            }
            let d = client.explain(&question).await?;
            emit(format, &d, |d| {
                fields(&[
                    ("decision", d.decision.decision.as_str().to_owned()),
                    ("policies", d.decision.policies.join(", ")),
                    ("reasons", d.decision.reasons.join(", ")),
                    ("approvers", d.decision.approvers.join(", ")),
                    ("errors", d.decision.errors.join(", ")),
                    (
                        "policy version",
                        d.policy_version
                            .map_or("proposed".into(), |v| v.to_string()),
                    ),
                ]);
            })
        }
    }
}
