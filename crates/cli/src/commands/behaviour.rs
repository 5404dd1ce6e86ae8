//! `aim behaviour` and `aim identity why`: behavioural baselines, their backtests and
//! their findings.

use aim_api::behaviour::{BacktestBody, Why};
use aim_client::Client;

use crate::args::{BehaviourCommand, Format};
use crate::output::{Table, clean, emit, fields};

pub async fn run(client: &Client, format: Format, cmd: BehaviourCommand) -> anyhow::Result<()> {
    match cmd {
        BehaviourCommand::Backtest {
            since,
            enforce,
            enforce_all,
        } => {
            let body = BacktestBody {
                window_ms: Some(since),
                enforce,
                enforce_all,
            };
            let report = client.backtest(&body).await?;
            emit(format, &report, |r| {
                fields(&[
                    ("since", r.since.to_string()),
                    ("records read", r.records.to_string()),
                    (
                        "replayed",
                        format!("{} calls of {} identities", r.replayed, r.identities),
                    ),
                    ("in the window", r.in_window.to_string()),
                    (
                        "would step up",
                        format!("{} (live: {})", r.would_step_up, r.stepped_up),
                    ),
                    (
                        "would lock",
                        format!("{} (live: {})", r.would_lock, r.locked),
                    ),
                    (
                        "matches live",
                        if r.same_rules {
                            format!(
                                "{} of {} ({} differ)",
                                r.matched,
                                r.matched + r.mismatched,
                                r.mismatched
                            )
                        } else {
                            "not compared: other rules than the live ones".to_owned()
                        },
                    ),
                    ("calls not on the record", r.unrecorded.to_string()),
                ]);
                if !r.findings.is_empty() {
                    println!();
                    let mut t = Table::new(&["SEQ", "AT", "IDENTITY", "WOULD", "LIVE", "FINDING"]);
                    for f in &r.findings {
                        let why = f
                            .anomalies
                            .first()
                            .map_or(String::new(), |a| a.explanation.clone());
                        t.row(vec![
                            f.seq.to_string(),
                            f.at.to_string(),
                            clean(&f.identity_name),
                            f.would.to_string(),
                            f.live.map_or("-".to_owned(), |l| l.to_string()),
                            clean(&why),
                        ]);
                    }
                    t.print();
                }
            })
        }
        BehaviourCommand::Expected {
            identity,
            finding,
            reason,
        } => {
            let i = client.find_identity(&identity).await?;
            let marked = client.mark_expected(i.id, finding, &reason).await?;
            emit(format, &marked, |_| {
                println!(
                    "finding {finding} of {} marked as expected; its call is now part of the baseline",
                    clean(&i.name)
                )
            })
        }
    }
}

/// `aim identity why NAME`.
pub async fn why(client: &Client, format: Format, identity: &str) -> anyhow::Result<()> {
    let i = client.find_identity(identity).await?;
    let why = client.why(i.id).await?;
    emit(format, &why, print_why)
}

fn print_why(w: &Why) {
    fields(&[
        ("identity", clean(&w.name)),
        ("state", format!("{} ({})", w.state, w.state_cause)),
        ("reason", clean(&w.state_reason)),
    ]);
    if let Some(b) = &w.baseline {
        fields(&[
            (
                "baseline",
                format!(
                    "{} calls from {} to {}{}",
                    b.events,
                    b.first,
                    b.last,
                    if b.learning { ", still learning" } else { "" }
                ),
            ),
            ("systems", clean(&b.systems.join(", "))),
            ("tools", clean(&b.tools.join(", "))),
            ("networks", b.networks.join(", ")),
        ]);
    }
    if w.events.is_empty() {
        println!("\nno findings in the last 90 days");
        return;
    }
    println!();
    let mut t = Table::new(&["SEQ", "AT", "EVENT", "BY", "WHY"]);
    for e in &w.events {
        t.row(vec![
            e.seq.to_string(),
            e.at.to_string(),
            e.action.as_str().to_owned(),
            clean(&e.actor.id),
            clean(&e.reason),
        ]);
    }
    t.print();
}
