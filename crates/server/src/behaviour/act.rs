//! What follows a decision its identity's baseline had a say in, once the decision is on
//! the record: a call a human approved after a step-up is accepted into the baseline; a
//! lock locks the identity (its tokens, tasks, leases and delegates die with it, and every
//! gateway hears of it through the revocation feed) before the deny is answered; every
//! finding goes on the record as `anomaly.detected`; a step-up or a lock is announced to
//! the sponsor over the decisions webhook, with the explanation. A call a gateway decided
//! itself is held against the baseline when its record reaches aim ([`at_gateway`]): too
//! late for a step-up (the sponsor is told of what would have been one), not for a lock.

use aim_domain::Refusal;
use aim_domain::baseline::respond::Response;
use aim_domain::baseline::watch::{Seen, Watched, approved_after};
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
    let outcome = match ruled.answer.decision.decision {
        aim_domain::decision::Effect::Allow => Outcome::Allow,
        aim_domain::decision::Effect::Deny => Outcome::Deny,
        aim_domain::decision::Effect::ApprovalRequired => Outcome::ApprovalRequired,
    };
    let at = Recorded {
        seq: ruled.recorded,
        outcome,
        trail,
        request_id,
        source,
    };
    carry_out(s, w, &at).await
}

/// A decision record a verdict is on.
#[derive(Debug)]
pub struct Recorded<'a> {
    pub seq: i64,
    pub outcome: Outcome,
    pub trail: &'a Trail,
    pub request_id: &'a str,
    pub source: &'a str,
}

/// A gateway's decision record, as it reaches aim: held against its identity's baseline
/// (the call already let through), the verdict written into it. Whatever verdict a gateway
/// put there itself is replaced.
pub async fn at_gateway(s: &AppState, event: &mut Event) -> Result<Option<Watched>, ApiError> {
    if let Some(d) = event.detail.as_object_mut() {
        d.remove("behaviour");
    }
    let Some((id, seen)) = Seen::from_gateway_record(event) else {
        return Ok(None);
    };
    let Some(identity) = s.store.identity(id).await? else {
        return Ok(None);
    };
    let Some(verdict) = s.behaviour.watch(&identity, &seen).await? else {
        return Ok(None);
    };
    if let Some(d) = event.detail.as_object_mut() {
        d.insert("behaviour".into(), json!(verdict));
    }
    Ok(Some(Watched { seen, verdict }))
}

/// What the verdict `w` on the record `at` calls for.
pub async fn carry_out(s: &AppState, w: &Watched, at: &Recorded<'_>) -> Result<(), ApiError> {
    let v = &w.verdict;
    if approved_after(v, at.outcome) {
        s.behaviour.accept(v.identity, &w.seen).await?;
    }
    if v.response == Response::Lock {
        lock(s, w, at.request_id, at.source).await?;
    }
    if v.anomalies.is_empty() {
        return Ok(());
    }
    let cause = v.cause().unwrap_or(&v.anomalies[0]);
    s.metrics
        .found(cause.detector.as_str(), v.response.as_str());
    tracing::info!(identity = %v.identity, detector = %cause.detector, response = %v.response,
        anomalies = v.anomalies.len(), "out of character: {}", cause.explanation);
    let event = finding(s, w, at);
    let seq = s.store.append_event(&event).await?;
    if v.response > Response::Observe
        || w.seen.forwarded
            && v.anomalies
                .iter()
                .any(|a| a.severity > aim_domain::baseline::detect::Severity::Low)
    {
        announce(s, w, seq, at.request_id).await;
    }
    Ok(())
}

/// The finding on the record.
fn finding(s: &AppState, w: &Watched, at: &Recorded<'_>) -> Event {
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
        "decision_seq": at.seq,
        "forwarded": w.seen.forwarded,
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
    .trail(at.trail.clone())
    .from_request(at.request_id, at.source)
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
                // As a lock by hand: answered once the connected gateways applied it (two
                // seconds at most), so the identity's next call anywhere is refused.
                let committed = std::time::Instant::now();
                let clock = s.clock.clone();
                let gateways = crate::feed::acknowledged(&s.store, || clock.now(), committed).await;
                tracing::warn!(identity = %v.identity, %reason, %gateways, "locked by its behavioural baseline");
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
