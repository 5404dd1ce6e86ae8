//! What a gateway that decides by itself reads from aim, and how its decisions reach aim's
//! record. `GET /v1/gateway/state`: the policy set in force here (with the schema it
//! compiles against), the live grants and the approval limits; the feed's heartbeat names
//! their versions, so a gateway reads this again only when one moved. `POST
//! /v1/gateway/live`: the live state behind a token the gateway verified (what aim's own
//! check reads from the store), with the identity's sponsor. `POST /v1/gateway/decisions`:
//! a decision the gateway took, appended to aim's log with the DPoP proof it spends in one
//! durable write, so a proof is single-use across every gateway and replica.
//!
//! Only a `gateway` credential reaches these routes (and an admin's, to test one).

use aim_api::gateway::{
    GatewayLive, GatewayLiveState, GatewayRecord, GatewayRecorded, GatewayRecords, GatewayState,
};
use aim_domain::event::AuditAction;
use aim_domain::human::Role;
use aim_domain::live::Hangs;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Body;
use crate::state::AppState;

use super::presented::clean;

/// The most records one request may carry.
const MAX_RECORDS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/state", get(state))
        .route("/v1/gateway/live", post(live))
        .route("/v1/gateway/decisions", post(decisions))
}

/// What a gateway decides with.
#[utoipa::path(get, path = "/v1/gateway/state", tag = "policies",
    responses((status = 200, body = GatewayState), (status = 403, body = ErrorBody)))]
pub async fn state(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<GatewayState>, ApiError> {
    p.require_any(&[Role::Gateway, Role::Admin], "reading a gateway's state")?;
    let active = s.policies.active();
    let policies = match active.version {
        0 => aim_api::policies::Content::default(),
        v => {
            let stored = s.store.policy_version(Some(v)).await?.ok_or_else(|| {
                tracing::error!(version = v, "the policy version in force is not stored");
                ApiError::internal()
            })?;
            crate::policy::content_of(&stored).map_err(|e| {
                tracing::error!(version = v, error = %e, "the policy version in force is unreadable");
                ApiError::internal()
            })?
        }
    };
    let grants = s.decisions.grants();
    Ok(Json(GatewayState {
        issuer: s.tokens.rules.issuer.clone(),
        policy_version: active.version,
        policies,
        schema: s.policies.extensions().to_vec(),
        grants_revision: grants.revision,
        grants: grants.grants.clone(),
        approval_ttl_seconds: s.decisions.approvals.ttl_seconds,
        max_pending_approvals: s.decisions.approvals.max_pending_per_identity,
    }))
}

/// The live state behind a token a gateway verified: the same read aim's own check makes.
#[utoipa::path(post, path = "/v1/gateway/live", tag = "policies", request_body = GatewayLive,
    responses((status = 200, body = GatewayLiveState), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn live(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<GatewayLive>,
) -> Result<Json<GatewayLiveState>, ApiError> {
    p.require_any(
        &[Role::Gateway, Role::Admin],
        "reading live state for a gateway",
    )?;
    // A token names a handful of ancestors and keys; more is not a token aim issued.
    if body.always.len() + body.earlier.len() > 64 || body.delegators.len() > 16 {
        return Err(ApiError::bad_request(
            "too_many_names",
            "a token hangs on at most 64 revocable names and 16 delegators",
        ));
    }
    let hangs = Hangs {
        always: body.always.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        earlier: body.earlier.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        delegators: body.delegators.clone(),
    };
    let context = s
        .store
        .live_context(body.identity, body.task, &hangs)
        .await?;
    let sponsor = match &context {
        Some(c) => s.store.human(c.context.identity.sponsor_id).await?,
        None => None,
    };
    Ok(Json(GatewayLiveState { context, sponsor }))
}

/// Appends decisions a gateway took. One record is durable, with its proof spent, before
/// the answer (409 `dpop_replayed` and nothing written if the proof was used before); of
/// several (a batched route's, already acted on), a record whose proof was spent before is
/// appended without it and marked `replayed`, and the replay is logged.
#[utoipa::path(post, path = "/v1/gateway/decisions", tag = "policies", request_body = GatewayRecord,
    responses((status = 200, body = GatewayRecorded), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn decisions(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<GatewayRecords>,
) -> Result<Json<GatewayRecorded>, ApiError> {
    p.require_any(
        &[Role::Gateway, Role::Admin],
        "recording a gateway's decision",
    )?;
    let (records, one) = match body {
        GatewayRecords::One(r) => (vec![*r], true),
        GatewayRecords::Many(rs) => (rs, false),
    };
    if records.is_empty() || records.len() > MAX_RECORDS {
        return Err(ApiError::bad_request(
            "invalid_records",
            format!("send between 1 and {MAX_RECORDS} records"),
        ));
    }
    let gateway = clean(&p.human.user_name, 128);
    let records = records
        .into_iter()
        .map(|r| checked(r, &gateway))
        .collect::<Result<Vec<_>, _>>()?;
    let mut recorded = GatewayRecorded {
        seqs: Vec::with_capacity(records.len()),
        replayed: Vec::new(),
    };
    for (at, mut r) in records.into_iter().enumerate() {
        let watched = crate::behaviour::act::at_gateway(&s, &mut r.event).await?;
        let seq = match s.store.append_claimed(&r.event, r.claims.clone()).await? {
            Some(seq) => seq,
            None if one => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "dpop_replayed",
                    "this DPoP proof was already used",
                ));
            }
            None => {
                tracing::warn!(gateway = %gateway, claims = ?r.claims.iter().map(|c| &c.id).collect::<Vec<_>>(),
                    "a batched route's call reused a DPoP proof; recorded as replayed");
                recorded.replayed.push(at);
                if let Some(d) = r.event.detail.as_object_mut() {
                    d.insert("replayed".into(), true.into());
                }
                s.store.append_event(&r.event).await?
            }
        };
        if let Some(w) = &watched {
            let e = &r.event;
            let on = crate::behaviour::act::Recorded {
                seq,
                outcome: e.outcome,
                trail: &e.trail,
                request_id: &e.request_id,
                source: &e.source,
            };
            crate::behaviour::act::carry_out(&s, w, &on).await?;
        }
        recorded.seqs.push(seq);
    }
    Ok(Json(recorded))
}

/// A gateway records decisions and spends DPoP proofs, nothing else; its name goes on
/// each record.
fn checked(mut r: GatewayRecord, gateway: &str) -> Result<GatewayRecord, ApiError> {
    if r.event.action != AuditAction::Decision {
        return Err(ApiError::bad_request(
            "invalid_records",
            "a gateway records decisions only",
        ));
    }
    if r.claims.len() > 1 || r.claims.iter().any(|c| !c.id.starts_with("dpop:")) {
        return Err(ApiError::bad_request(
            "invalid_records",
            "a decision spends at most one DPoP proof (`dpop:<jkt>:<jti>`)",
        ));
    }
    match r.event.detail.as_object_mut() {
        Some(d) => {
            d.insert("gateway".into(), gateway.into());
        }
        None => {
            return Err(ApiError::bad_request(
                "invalid_records",
                "a decision's detail is an object",
            ));
        }
    }
    Ok(r)
}
