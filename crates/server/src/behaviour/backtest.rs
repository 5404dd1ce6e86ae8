//! The recorded history replayed through the detectors: every decision record that
//! carries a baseline verdict is read back into the call it describes
//! ([`Seen::from_record`]), each identity's calls are replayed in the order its baseline
//! learnt them (`n`) into a fresh profile hashing under the same key, and each replayed
//! verdict is held against the recorded one. With the rules in force the two must agree;
//! with a detector enforced only here, the report says what it would have stepped up or
//! locked. Each identity's whole history is replayed, so its baseline at the start of the
//! window is the one it had then; only calls in the window are reported.

use std::collections::HashMap;

use aim_api::behaviour::{Backtest, BacktestBody, BacktestFinding, Mismatch};
use aim_domain::baseline::profile::Profile;
use aim_domain::baseline::respond::Response;
use aim_domain::baseline::watch::{Rules, Seen, Verdict, approved_after, check};
use aim_domain::event::{AuditAction, Outcome};
use aim_domain::ids::IdentityId;
use aim_domain::time::Timestamp;
use aim_store::AuditFilter;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Records read per page.
const PAGE: u32 = 1000;
const MAX_MISMATCHES: usize = 100;
const MAX_FINDINGS: usize = 500;
const DEFAULT_WINDOW_MS: i64 = 30 * aim_domain::time::DAY_MS;
const MAX_WINDOW_MS: i64 = 3650 * aim_domain::time::DAY_MS;

/// One recorded call.
struct Recorded {
    seq: i64,
    seen: Seen,
    verdict: Verdict,
    outcome: Outcome,
}

/// Replays the record as `body` asks.
pub async fn run(s: &AppState, body: &BacktestBody) -> Result<Backtest, ApiError> {
    let window = body.window_ms.unwrap_or(DEFAULT_WINDOW_MS);
    if !(1..=MAX_WINDOW_MS).contains(&window) {
        return Err(ApiError::bad_request(
            "bad_window",
            "window_ms must be from 1 to 3650 days",
        ));
    }
    let now = s.clock.now();
    let since = now.plus_millis(-window);
    let live = s.behaviour.rules();
    let mut rules = live.clone();
    rules.observing.retain(|d| !body.enforce.contains(d));
    if body.enforce_all {
        rules.observing.clear();
        rules.observe_only = false;
    }
    let mut report = Backtest::new(since, rules == *live);
    let histories = read(s, &mut report).await?;
    report.identities = histories.len() as u64;
    for (id, mut calls) in histories {
        calls.sort_by_key(|c| c.verdict.n);
        replay(s, id, &calls, &rules, since, &mut report).await?;
    }
    report.findings.sort_by_key(|f| f.seq);
    Ok(report)
}

/// Every decision record with a verdict, by identity.
async fn read(
    s: &AppState,
    report: &mut Backtest,
) -> Result<HashMap<IdentityId, Vec<Recorded>>, ApiError> {
    let filter = AuditFilter {
        action: Some(AuditAction::Decision),
        ..AuditFilter::default()
    };
    let mut histories: HashMap<IdentityId, Vec<Recorded>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = s.store.audit(&filter, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            report.records += 1;
            if let Some((id, seen, verdict)) = Seen::from_record(e) {
                report.replayed += 1;
                histories.entry(id).or_default().push(Recorded {
                    seq: e.seq,
                    seen,
                    verdict,
                    outcome: e.outcome,
                });
            }
        }
    }
    Ok(histories)
}

/// One identity's calls, in the order its baseline learnt them.
async fn replay(
    s: &AppState,
    id: IdentityId,
    calls: &[Recorded],
    rules: &Rules,
    since: Timestamp,
    report: &mut Backtest,
) -> Result<(), ApiError> {
    let Some(identity) = s.store.identity(id).await? else {
        return Ok(());
    };
    let Some(first) = calls.first() else {
        return Ok(());
    };
    let key = s.behaviour.key(id, first.seen.at).await?;
    let mut profile = Profile::new(key, first.seen.at);
    let mut expected_n = 0;
    for c in calls {
        // Calls learnt live but never recorded (and a history whose start is gone).
        report.unrecorded += c.verdict.n.saturating_sub(expected_n);
        expected_n = c.verdict.n + 1;
        let mut replayed = check(&mut profile, &c.seen, &identity, rules);
        if approved_after(&replayed, c.outcome) {
            profile.accept(&c.seen.observation());
        }
        // The place in the history is the recorded one, even after a gap.
        replayed.n = c.verdict.n;
        if report.same_rules {
            if replayed == c.verdict {
                report.matched += 1;
            } else {
                report.mismatched += 1;
                if report.mismatches.len() < MAX_MISMATCHES {
                    report.mismatches.push(Mismatch {
                        seq: c.seq,
                        recorded: json!(c.verdict),
                        replayed: json!(replayed),
                    });
                }
            }
        }
        if c.seen.at < since {
            continue;
        }
        report.in_window += 1;
        tally(report, c, &replayed, &identity.name);
    }
    Ok(())
}

/// Counts one call of the window, and lists it if anything was found.
fn tally(report: &mut Backtest, c: &Recorded, replayed: &Verdict, name: &str) {
    match replayed.response {
        Response::StepUp => report.would_step_up += 1,
        Response::Lock => report.would_lock += 1,
        Response::Observe => {}
    }
    match c.verdict.response {
        Response::StepUp => report.stepped_up += 1,
        Response::Lock => report.locked += 1,
        Response::Observe => {}
    }
    if !replayed.anomalies.is_empty() && report.findings.len() < MAX_FINDINGS {
        report.findings.push(BacktestFinding {
            seq: c.seq,
            at: c.seen.at,
            identity: replayed.identity,
            identity_name: name.to_owned(),
            would: replayed.response,
            live: Some(c.verdict.response),
            anomalies: replayed.anomalies.clone(),
        });
    }
}
