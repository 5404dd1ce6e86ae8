use aim_domain::event::AuditAction;
use std::path::Path;
use std::sync::Arc;

use aim_store::postgres::PgStore;
use aim_store::sqlite::SqliteStore;
use aim_store::{DynStore, verify_chain};
use anyhow::Context;

use aim_client::Client;
use aim_domain::event::Event;
use aim_domain::trace::{TokenTrace, Trace};

use crate::args::{AuditListArgs, ExportArgs, ExportFormat, Format, VerifyArgs};
use crate::commands::{collect, more_hint};
use crate::exit::{Local, OrInvalid};
use crate::output::{Names, Table, clean, emit, emit_named, fields};

/// Where `aim serve` keeps its data unless told otherwise (`Config::default`); the
/// offline commands never link the server, so the name is repeated here.
const DEFAULT_DATA_DIR: &str = "aim-data";

/// Opens the store read-only (no migrations) and walks the chain.
pub async fn verify(format: Format, args: VerifyArgs) -> anyhow::Result<()> {
    let checkpoint = match &args.checkpoint {
        Some(file) => Some(load_checkpoint(file, args.public_key.as_deref())?),
        None => None,
    };
    if let Some(file) = &args.from_export {
        return verify_export(format, file, checkpoint.as_ref());
    }
    let (store, source): (DynStore, String) = match (&args.data_dir, &args.database_url) {
        (None, None) if !Path::new(DEFAULT_DATA_DIR).join("aim.db").exists() => {
            return Err(Local::Usage(format!(
                "no source given and ./{DEFAULT_DATA_DIR}/aim.db does not exist: give \
                 --data-dir, --database-url or --from-export"
            ))
            .into());
        }
        (dir, None) => {
            let dir = dir.as_deref().unwrap_or(Path::new(DEFAULT_DATA_DIR));
            let path = dir.join("aim.db");
            if !path.exists() {
                return Err(Local::NotFound(format!(
                    "{} does not exist: --data-dir names the directory `aim serve` keeps its \
                     data in",
                    path.display()
                ))
                .into());
            }
            let store = SqliteStore::open_read_only(&path)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            (Arc::new(store), path.display().to_string())
        }
        (_, Some(url)) => {
            let store = PgStore::connect_unmigrated(url)
                .await
                .context("connecting to PostgreSQL")?;
            (Arc::new(store), "postgresql".to_owned())
        }
    };
    let verdict = verify_chain(store.as_ref(), checkpoint.as_ref())
        .await
        .context("reading the event log")?;
    match verdict {
        Ok(n) => {
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "intact": true, "records": n, "source": source })
                ),
                Format::Table => println!("intact: {n} records verified ({source})"),
            }
            Ok(())
        }
        Err(b) => {
            if format == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({ "intact": false, "first_bad_seq": b.first_bad(), "problem": b.to_string(), "source": source })
                );
            }
            Err(anyhow::Error::new(b).context(format!("the audit chain of {source} is broken")))
        }
    }
}

/// `kind:name`, or `kind:id` for what has no name (the system, a request).
fn named(kind: &impl std::fmt::Display, id: &str, names: &Names) -> String {
    format!("{kind}:{}", names.of(&id))
}

fn row(e: &Event, names: &Names) -> Vec<String> {
    vec![
        e.seq.to_string(),
        e.at.to_string(),
        named(&e.actor.kind, &e.actor.id, names),
        e.action.to_string(),
        named(&e.target_type, &e.target_id, names),
        e.outcome.to_string(),
        e.reason.clone(),
    ]
}

pub async fn list(client: &Client, format: Format, a: AuditListArgs) -> anyhow::Result<()> {
    let identity = match &a.identity {
        Some(i) => Some(client.find_identity(i).await?.id.to_string()),
        None => None,
    };
    let human = match &a.human {
        Some(h) => Some(client.find_human(h).await?.id.to_string()),
        None => None,
    };
    let filters: Vec<(&'static str, String)> = [
        ("identity", identity),
        ("human", human),
        ("task", a.task.clone()),
        ("jti", a.jti.clone()),
        ("action", a.action.clone()),
        ("outcome", a.outcome.clone()),
        ("since", a.since.clone()),
        ("until", a.until.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (items, next, names) = collect(&a.page, |mut p| {
        p.extend(filters.iter().cloned());
        async move { client.audit(&p).await }
    })
    .await?;
    emit_named(format, &items, &names, |items, names| {
        let mut t = Table::new(&[
            "SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON",
        ]);
        for e in items {
            t.row(row(e, names));
        }
        t.print();
    })?;
    more_hint(format, &next);
    Ok(())
}

pub async fn show(client: &Client, format: Format, seq: i64) -> anyhow::Result<()> {
    let e = client.audit_record(seq).await?;
    emit(format, &e, |e| {
        let rows: Vec<(&str, String)> = vec![
            ("seq", e.seq.to_string()),
            ("at", e.at.to_string()),
            ("actor", format!("{}:{}", e.actor.kind, e.actor.id)),
            ("action", e.action.to_string()),
            ("target", format!("{}:{}", e.target_type, e.target_id)),
            ("outcome", e.outcome.to_string()),
            ("reason", e.reason.clone()),
            ("detail", e.detail.to_string()),
            ("task", e.trail.task_id.clone()),
            ("session", e.trail.session_id.clone()),
            ("token (jti)", e.trail.jti.clone()),
            ("acting for", e.trail.act.join(" ← ")),
            ("triggered by", e.trail.triggered_by.clone()),
            ("policies", e.trail.policies.join(", ")),
            (
                "model decision",
                e.trail
                    .model_decision
                    .as_ref()
                    .map(|m| serde_json::to_string(m).unwrap_or_default())
                    .unwrap_or_default(),
            ),
            ("prev hash", e.prev_hash.clone()),
            ("hash", e.hash.clone()),
        ];
        // The trail's rows only when set; the rest always.
        let trail = [
            "task",
            "session",
            "token (jti)",
            "acting for",
            "triggered by",
            "policies",
            "model decision",
        ];
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|(k, v)| !(trail.contains(k) && v.is_empty()))
            .collect();
        fields(&rows)
    })
}

pub async fn trace(client: &Client, format: Format, task: &str) -> anyhow::Result<()> {
    let task = crate::commands::token::task_id(task)?;
    let t = client.audit_trace(task).await?;
    // The trace carries its names (`names`); JSON shows them beside the ids too.
    let names = Names(t.names.clone());
    emit_named(format, &t, &names, |t, names| {
        print!("{}", render_trace(t, names))
    })
}

/// The trace as an indented tree, one record a line, every supplied string escaped.
fn render_trace(t: &Trace, names: &Names) -> String {
    let mut out = format!("task {}\n", clean(&t.task_id));
    for h in &t.triggered_by {
        out.push_str(&format!("  triggered by human request: {}\n", clean(h)));
    }
    for e in &t.events {
        trace_line(&mut out, 1, e, names);
    }
    for token in &t.tokens {
        render_token(&mut out, 1, token, names);
    }
    if t.truncated {
        out.push_str("  … more records than one trace shows; use `aim audit list --task`\n");
    }
    out
}

fn render_token(out: &mut String, depth: usize, token: &TokenTrace, names: &Names) {
    let pad = "  ".repeat(depth);
    let holder = token
        .events
        .iter()
        .find(|e| e.action == AuditAction::TokenIssued)
        .map(|e| format!(" for {}", named(&e.target_type, &e.target_id, names)))
        .unwrap_or_default();
    out.push_str(&format!(
        "{pad}token {}{}\n",
        clean(&token.jti),
        clean(&holder)
    ));
    for e in &token.events {
        trace_line(out, depth + 1, e, names);
    }
    for child in &token.tokens {
        render_token(out, depth + 1, child, names);
    }
}

fn trace_line(out: &mut String, depth: usize, e: &Event, names: &Names) {
    let mut line = format!(
        "#{} {} {} {} {} {}",
        e.seq,
        e.at,
        named(&e.actor.kind, &e.actor.id, names),
        e.action,
        named(&e.target_type, &e.target_id, names),
        e.outcome
    );
    if !e.trail.act.is_empty() {
        line.push_str(&format!(" (acting for {})", e.trail.act.join(" ← ")));
    }
    if !e.trail.policies.is_empty() {
        line.push_str(&format!(" [policies: {}]", e.trail.policies.join(", ")));
    }
    if !e.reason.is_empty() {
        line.push_str(&format!(" — {}", e.reason));
    }
    if let Some(m) = &e.trail.model_decision {
        if !m.rationale.is_empty() {
            line.push_str(&format!(" — model: {:?}", m.rationale));
        }
        if !m.tool_call_id.is_empty() {
            line.push_str(&format!(" (tool call {})", m.tool_call_id));
        }
    }
    out.push_str(&"  ".repeat(depth));
    out.push_str(&clean(&line));
    out.push('\n');
}

/// Checks a JSON Lines export: every record links to the one before it, from the first
/// record in the file (whose own link to the record before it cannot be checked when the
/// export starts part-way through the log).
fn verify_export(
    format: Format,
    file: &std::path::Path,
    checkpoint: Option<&aim_domain::audit::Checkpoint>,
) -> anyhow::Result<()> {
    use std::io::BufRead;

    use aim_domain::audit::{ChainBreak, Chained, GENESIS, Verifier, from_hex};

    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let source = file.display().to_string();
    let mut verifier: Option<Verifier> = None;
    let mut first = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {source}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line)
            .with_context(|| format!("{source} line {}: not an audit record", n + 1))?;
        let seq = event.seq;
        let (Some(prev_hash), Some(hash)) = (from_hex(&event.prev_hash), from_hex(&event.hash))
        else {
            return broken(format, &source, ChainBreak::Altered { seq });
        };
        let v = verifier.get_or_insert_with(|| {
            first = Some(seq);
            if seq == 1 {
                Verifier::resume(1, GENESIS)
            } else {
                Verifier::resume(seq, prev_hash)
            }
        });
        let record = Chained {
            event,
            prev_hash,
            hash,
        };
        if let Err(b) = v.push(&record) {
            return broken(format, &source, b);
        }
        if let Some(cp) = checkpoint
            && let Err(b) = v.check_checkpoint(&record, cp)
        {
            return broken(format, &source, b);
        }
    }
    let (Some(v), Some(first)) = (verifier, first) else {
        anyhow::bail!("{source} holds no records")
    };
    if let Some(cp) = checkpoint
        && let Err(b) = v.reaches(cp)
    {
        return broken(format, &source, b);
    }
    let last = v.verified();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ "intact": true, "first_seq": first, "last_seq": last, "source": source })
        ),
        Format::Table => println!("intact: records {first} to {last} verified ({source})"),
    }
    Ok(())
}

fn broken(format: Format, source: &str, b: aim_domain::audit::ChainBreak) -> anyhow::Result<()> {
    if format == Format::Json {
        println!(
            "{}",
            serde_json::json!({ "intact": false, "first_bad_seq": b.first_bad(), "problem": b.to_string(), "source": source })
        );
    }
    Err(anyhow::Error::new(b).context(format!("the audit chain in {source} is broken")))
}

/// Pages through `/v1/audit` from `after`, handing each page to `each`; returns the last
/// sequence number seen.
async fn pages(
    client: &Client,
    mut after: i64,
    mut each: impl FnMut(&[Event], &Names) -> anyhow::Result<()>,
) -> anyhow::Result<i64> {
    loop {
        let page = client
            .audit(&vec![
                ("limit", "1000".to_owned()),
                ("cursor", after.to_string()),
            ])
            .await?;
        if let Some(last) = page.items.last() {
            after = last.seq;
        }
        each(&page.items, &Names(page.names))?;
        if page.next_cursor.is_none() {
            return Ok(after);
        }
    }
}

pub async fn export(client: &Client, args: ExportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    // `--file -` is standard output, as everywhere else.
    let file = args.file.as_ref().filter(|f| f.as_os_str() != "-");
    let mut out: Box<dyn Write> = match file {
        Some(f) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(f).with_context(|| format!("creating {}", f.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut count = 0u64;
    // An export is the records as they are on the chain (verifiable), without names.
    pages(client, args.after, |items, _| {
        for e in items {
            // serde_json escapes every control character, and CEF's writer escapes line
            // breaks: a record is always one line.
            match args.format {
                ExportFormat::Jsonl => serde_json::to_writer(&mut out, e)?,
                ExportFormat::Ocsf => serde_json::to_writer(&mut out, &aim_api::export::ocsf(e))?,
                ExportFormat::Cef => out.write_all(aim_api::export::cef(e).as_bytes())?,
            }
            out.write_all(b"\n")?;
            count += 1;
        }
        Ok(())
    })
    .await?;
    out.flush()?;
    if let Some(f) = file {
        eprintln!("exported {count} records to {}", f.display());
    }
    Ok(())
}

pub async fn tail(client: &Client, format: Format, lines: u32, follow: bool) -> anyhow::Result<()> {
    let print = |items: &[Event], names: &Names| -> anyhow::Result<()> {
        for e in items {
            match format {
                Format::Json => {
                    let mut v = serde_json::to_value(e)?;
                    crate::output::with_names(&mut v, names);
                    println!("{}", serde_json::to_string(&v)?);
                }
                Format::Table => println!("{}", crate::output::clean(&row(e, names).join("  "))),
            }
        }
        Ok(())
    };
    // The last `lines` records before the head, then whatever follows.
    let head = client.audit_head().await?;
    let start = (head.seq - i64::from(lines)).max(0);
    let mut after = pages(client, start, print).await?;
    if follow {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            after = pages(client, after, print).await?;
        }
    }
    Ok(())
}

/// Reads a checkpoint file and checks its signature.
fn load_checkpoint(
    file: &std::path::Path,
    public_key: Option<&str>,
) -> anyhow::Result<aim_domain::audit::Checkpoint> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let cp: aim_domain::audit::Checkpoint = serde_json::from_str(&text)
        .or_invalid(|| format!("{} is not a checkpoint", file.display()))?;
    aim_token::checkpoint::verify(&cp, public_key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(cp)
}

pub async fn checkpoint_keys(client: &Client, format: Format, rotate: bool) -> anyhow::Result<()> {
    let keys = if rotate {
        client.rotate_checkpoint_key().await?
    } else {
        client.checkpoint_keys().await?
    };
    emit(format, &keys, |keys| {
        let mut t = Table::new(&["PUBLIC KEY", "CREATED", "RETIRED"]);
        for k in keys {
            t.row(vec![
                k.public_key.clone(),
                k.created_at.to_string(),
                k.retired_at
                    .map_or_else(|| "- (signs now)".to_owned(), |t| t.to_string()),
            ]);
        }
        t.print();
    })
}

pub async fn checkpoint(client: &Client, file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let cp = client.create_checkpoint().await?;
    let text = serde_json::to_string_pretty(&cp)?;
    match file {
        Some(f) => {
            std::fs::write(&f, format!("{text}\n"))
                .with_context(|| format!("writing {}", f.display()))?;
            eprintln!(
                "checkpoint of record {} written to {} (signed by {})",
                cp.seq,
                f.display(),
                cp.public_key
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}
