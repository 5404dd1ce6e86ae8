use aim_domain::Refusal;
use aim_domain::event::{Actor, Event};
use aim_domain::sweep::{SweepAction, SweepReport, sweep};
use aim_store::{StoreError, SweepThresholds};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// How many candidates are read per round.
const BATCH: u32 = 500;
/// Rounds per run; a run that still finds work resumes at the next tick.
const MAX_ROUNDS: usize = 10_000;

pub async fn run(state: &AppState) -> Result<SweepReport, ApiError> {
    let now = state.clock.now();
    let g = &state.governance;
    let thresholds = SweepThresholds {
        expires_at: now,
        orphaned_since: now.minus_days(g.orphan_grace_days),
        attestation_due_at: now.minus_days(g.attestation_grace_days),
        last_activity_at: now.minus_days(g.dormancy_days),
    };
    let mut report = SweepReport::default();
    for _ in 0..MAX_ROUNDS {
        let candidates = state.store.sweep_candidates(&thresholds, BATCH).await?;
        if candidates.is_empty() {
            break;
        }
        let mut progressed = false;
        for mut identity in candidates {
            report.examined += 1;
            let read = identity.version;
            let Some((action, reason)) = sweep(&mut identity, now, g) else {
                continue;
            };
            let event = Event::new(now, Actor::system("sweep"), action.event_action(), "identity", identity.id)
                .reason(reason)
                .detail(json!({ "state": identity.state, "cause": identity.state_cause, "dormant": identity.dormant }));
            match state.store.update_identity(&identity, read, &event).await {
                Ok(()) => {
                    progressed = true;
                    match action {
                        SweepAction::Expired => report.expired += 1,
                        SweepAction::SuspendedOrphaned => report.suspended_orphaned += 1,
                        SweepAction::SuspendedAttestationOverdue => {
                            report.suspended_attestation_overdue += 1
                        }
                        SweepAction::FlaggedDormant => report.flagged_dormant += 1,
                        SweepAction::SuspendedDormant => report.suspended_dormant += 1,
                    }
                }
                Err(StoreError::Conflict(Refusal::ConcurrentUpdate)) => {
                    report.skipped_concurrent += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !progressed {
            break;
        }
    }
    // The first-start admin secret does not outlive a second admin for long.
    if crate::bootstrap::expire_superseded(state).await? {
        tracing::warn!(
            "the bootstrap admin credential expired: another admin has existed long enough"
        );
    }
    Ok(report)
}
