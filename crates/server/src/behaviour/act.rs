//! What follows a decision its identity's baseline had a say in, once the decision is on
//! the record: a call a human approved after a step-up is accepted into the baseline; a
//! lock locks the identity (its tokens, tasks, leases and delegates die with it, and every
//! gateway hears of it through the revocation feed) before the deny is answered; every
//! finding goes on the record as `anomaly.detected`; a step-up or a lock is announced to
//! the sponsor over the decisions webhook, with the explanation.

use aim_domain::Refusal;
use aim_domain::baseline::respond::Response;
use aim_domain::baseline::watch::{Watched, approved_after};
use aim_domain::event::{Actor, AuditAction, Event, Outcome, Trail};
use aim_domain::ids::IdentityId;
use aim_domain::lifecycle::{LifecycleState, StateCause, Transition};
use aim_enforce::pipeline::Ruled;
use aim_store::StoreError;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Who acts on findings, on the record.
pub const ACTOR: &str = "behaviour";
/// Attempts at a lock another writer keeps getting in before.
const RETRIES: usize = 5;

/// Carries out what `ruled`'s baseline verdict calls for. `trail` and the request are
/// the decision's, so the finding links to it.
pub async fn after(
    s: &AppState,
    ruled: &Ruled,
    trail: &Trail,
    request_id: &str,
    source: &str,
) -> Result<(), ApiError> {
    let Some(w) = &ruled.watched else {
        return Ok(());
    };
    let v = &w.verdict;
    let outcome = match ruled.answer.decision.decision {
        aim_domain::decision::Effect::Allow => Outcome::Allow,
        aim_domain::decision::Effect::Deny => Outcome::Deny,
        aim_domain::decision::Effect::ApprovalRequired => Outcome::ApprovalRequired,
    };
    if approved_after(v, outcome) {
        s.behaviour.accept(v.identity, &w.seen).await?;
    }
    if v.response == Response::Lock {
        lock(s, w, request_id, source).await?;
    }
    if v.anomalies.is_empty() {
        return Ok(());
    }
    let event = finding(s, w, ruled.recorded, trail, request_id, source);
    let seq = s.store.append_event(&event).await?;
    if v.response > Response::Observe {
        announce(s, w, seq, request_id).await;
    }
    Ok(())
}

/// The finding on the record.
fn finding(
    s: &AppState,
    w: &Watched,
    decision: i64,
    trail: &Trail,
    request_id: &str,
    source: &str,
) -> Event {
    let v = &w.verdict;
    let why = v.cause().unwrap_or(&v.anomalies[0]);
    Event::new(
        s.clock.now(),
        Actor::system(ACTOR),
        AuditAction::AnomalyDetected,
        "identity",
        v.identity,
    )
    .reason(why.explanation.clone())
    .detail(json!({
        "response": v.response,
        "decision_seq": decision,
        "learning": v.learning,
        "n": v.n,
        "anomalies": v.anomalies,
        "call": {
            "action": w.seen.action,
            "system": w.seen.system,
            "resource": w.seen.resource,
            "resource_type": w.seen.resource_type,
        },
    }))
    .trail(trail.clone())
    .from_request(request_id, source)
}

/// Locks the identity, unless it is already out of service.
async fn lock(s: &AppState, w: &Watched, request_id: &str, source: &str) -> Result<(), ApiError> {
    let v = &w.verdict;
    let reason = v.cause().map_or_else(
        || "out of character".to_owned(),
        |c| format!("locked by its behavioural baseline: {}", c.explanation),
    );
    for _ in 0..RETRIES {
        let mut identity = crate::registry::identities::get(s, v.identity).await?;
        if !matches!(
            identity.state,
            LifecycleState::Active | LifecycleState::Suspended
        ) {
            return Ok(());
        }
        let (read, from, now) = (identity.version, identity.state, s.clock.now());
        identity.transition(
            Transition::Lock,
            StateCause::Behaviour,
            &reason,
            now,
            &s.governance,
        )?;
        let event = Event::new(
            now,
            Actor::system(ACTOR),
            AuditAction::IdentityLocked,
            "identity",
            v.identity,
        )
        .reason(reason.clone())
        .detail(json!({ "from": from, "to": identity.state, "cause": StateCause::Behaviour, "behaviour": v }))
        .from_request(request_id, source);
        match s.store.update_identity(&identity, read, &event).await {
            Ok(()) => {
                s.metrics.locked(1);
                tracing::warn!(identity = %v.identity, %reason, "locked by its behavioural baseline");
                return Ok(());
            }
            Err(StoreError::Conflict(Refusal::ConcurrentUpdate)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Refusal::ConcurrentUpdate.into())
}

/// Tells the sponsor (the decisions webhook) of a step-up or a lock.
async fn announce(s: &AppState, w: &Watched, seq: i64, request_id: &str) {
    let v = &w.verdict;
    let (name, sponsor) = match sponsor_of(s, v.identity).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(identity = %v.identity, error = %e, "could not read the identity for its sponsor; announcing without");
            (String::new(), None)
        }
    };
    s.decisions.announce(
        &s.store,
        &s.clock,
        format!("msg_anomaly_{seq}"),
        AuditAction::AnomalyDetected,
        json!({
            "identity": v.identity,
            "identity_name": name,
            "sponsor": sponsor,
            "response": v.response,
            "explanation": v.cause().map(|c| c.explanation.clone()),
            "anomalies": v.anomalies,
            "finding_seq": seq,
            "request_id": request_id,
        }),
    );
}

/// The identity's name and its sponsor's `{id, user_name}`.
async fn sponsor_of(
    s: &AppState,
    id: IdentityId,
) -> Result<(String, Option<serde_json::Value>), StoreError> {
    let Some(identity) = s.store.identity(id).await? else {
        return Ok((String::new(), None));
    };
    let sponsor = s
        .store
        .human(identity.sponsor_id)
        .await?
        .map(|h| json!({ "id": h.id, "user_name": h.user_name }));
    Ok((identity.name, sponsor))
}
