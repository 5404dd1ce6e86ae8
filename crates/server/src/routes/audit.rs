//! `/v1/audit`: the event log, filtered and paged in sequence order. Admins and auditors.

use aim_api::audit::AuditHead;
use aim_domain::event::{AuditAction, Event, Outcome};
use aim_domain::human::Role;
use aim_domain::ids::{HumanId, IdentityId, TaskId};
use aim_domain::time::Timestamp;
use aim_domain::trace::Trace;
use aim_store::AuditFilter;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::paging;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/head", get(head))
        .route(
            "/v1/audit/checkpoints",
            axum::routing::post(create_checkpoint),
        )
        .route("/v1/audit/checkpoints/latest", get(latest_checkpoint))
        .route("/v1/audit/checkpoint-keys", get(checkpoint_keys))
        .route(
            "/v1/audit/checkpoint-keys/rotate",
            axum::routing::post(rotate_checkpoint_key),
        )
        .route("/v1/audit/trace/{task}", get(trace))
        .route("/v1/audit/{seq}", get(show))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events about this identity.
    #[param(value_type = Option<String>)]
    identity: Option<IdentityId>,
    /// Events by or about this human.
    #[param(value_type = Option<String>)]
    human: Option<HumanId>,
    /// Events of this task.
    #[param(value_type = Option<String>)]
    task: Option<TaskId>,
    /// Events of this token (its `jti`).
    jti: Option<String>,
    /// `identity.approved`, `request.refused`, ...
    action: Option<String>,
    #[param(value_type = Option<String>)]
    outcome: Option<Outcome>,
    /// At or after this RFC 3339 instant.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// Before this RFC 3339 instant.
    #[param(value_type = Option<String>)]
    until: Option<Timestamp>,
    /// The `next_cursor` of the previous page (a sequence number).
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<Event>,
    pub next_cursor: Option<String>,
    /// Each identity's name and each human's user name the items hold, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

fn may_read(p: &HumanCaller) -> Result<(), ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading the audit log")
}

/// Events, oldest first, each with its place in the hash chain.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    may_read(&p)?;
    let limit = paging::limit(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this server issued")
        })?,
    };
    let action = q
        .action
        .as_deref()
        .map(AuditAction::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_action", e.to_string()))?;
    if let Some(j) = &q.jti {
        aim_domain::validate::token("jti", j, 128)?;
    }
    let filter = AuditFilter {
        identity: q.identity,
        human: q.human,
        task: q.task,
        jti: q.jti,
        action,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
    };
    let mut items = s.store.audit(&filter, after, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(AuditPage {
        names: crate::names::names_in(&s.store, &items).await?,
        items,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/audit/{seq}", params(("seq" = i64, Path)), tag = "audit",
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(seq): Path<String>,
) -> Result<Json<Event>, ApiError> {
    may_read(&p)?;
    let seq: i64 = seq.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            "an audit record is named by its sequence number",
        )
    })?;
    s.store
        .event(seq)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("audit record"))
}

/// At most this many events go into one trace.
const TRACE_LIMIT: u32 = 10_000;

/// The causal chain of a task: the human request behind it, its own events, and each token
/// issued for it with the decisions and tool calls made under it, sub-agents' tokens nested
/// under the token they were exchanged from.
#[utoipa::path(get, path = "/v1/audit/trace/{task}", params(("task" = String, Path)), tag = "audit",
    responses((status = 200, body = Trace), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn trace(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(task): Path<String>,
) -> Result<Json<Trace>, ApiError> {
    may_read(&p)?;
    let task = TaskId::parse(&task)
        .map_err(|_| ApiError::bad_request("invalid_id", "a task is named by its UUID"))?;
    let filter = AuditFilter {
        task: Some(task),
        ..AuditFilter::default()
    };
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let want = (TRACE_LIMIT + 1 - events.len() as u32).min(1000);
        let page = s.store.audit(&filter, after, want).await?;
        let done = (page.len() as u32) < want;
        after = page.last().map_or(after, |e| e.seq);
        events.extend(page);
        if done || events.len() as u32 > TRACE_LIMIT {
            break;
        }
    }
    if events.is_empty() {
        return Err(ApiError::not_found("task"));
    }
    let truncated = events.len() as u32 > TRACE_LIMIT;
    events.truncate(TRACE_LIMIT as usize);
    let mut trace = Trace::build(&task.to_string(), events, truncated);
    trace.names = crate::names::names_in(&s.store, std::slice::from_ref(&trace)).await?;
    Ok(Json(trace))
}

/// The last sequence number and its hash: what to keep outside aim to detect a rewritten or
/// truncated log later.
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit", responses((status = 200, body = AuditHead)))]
pub async fn head(State(s): State<AppState>, p: HumanCaller) -> Result<Json<AuditHead>, ApiError> {
    may_read(&p)?;
    let (seq, hash) = s.store.chain_head().await?;
    Ok(Json(AuditHead {
        seq,
        hash: aim_domain::audit::to_hex(&hash),
    }))
}

/// Signs the current head now (if it moved since the last checkpoint) and returns the
/// latest checkpoint: keep it outside aim and give it to `aim audit verify --checkpoint`.
#[utoipa::path(post, path = "/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = aim_domain::audit::Checkpoint), (status = 404, body = ErrorBody)))]
pub async fn create_checkpoint(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<aim_domain::audit::Checkpoint>, ApiError> {
    p.require_any(&[Role::Admin], "making a checkpoint")?;
    s.signer
        .checkpoint(&s.store, s.clock.now())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("audit record"))
}

/// The keys checkpoints are signed with, newest first: every replica signs with the
/// newest; a retired one still verifies what it signed.
#[utoipa::path(get, path = "/v1/audit/checkpoint-keys", tag = "audit",
    responses((status = 200, body = Vec<aim_api::audit::CheckpointKey>), (status = 403, body = ErrorBody)))]
pub async fn checkpoint_keys(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<Vec<aim_api::audit::CheckpointKey>>, ApiError> {
    may_read(&p)?;
    Ok(Json(s.signer.published().await?))
}

/// Starts signing checkpoints with a new key, on every replica; the old key is retired
/// and still verifies what it signed. Admins.
#[utoipa::path(post, path = "/v1/audit/checkpoint-keys/rotate", tag = "audit",
    responses((status = 200, body = Vec<aim_api::audit::CheckpointKey>), (status = 403, body = ErrorBody)))]
pub async fn rotate_checkpoint_key(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<Vec<aim_api::audit::CheckpointKey>>, ApiError> {
    p.require_any(&[Role::Admin], "rotating the checkpoint key")?;
    s.signer
        .rotate(s.clock.now(), aim_domain::event::Actor::human(p.human.id))
        .await
        .map_err(|e| match e.downcast::<aim_store::StoreError>() {
            Ok(store) => ApiError::from(store),
            Err(e) => {
                tracing::error!(error = %e, "rotating the checkpoint key");
                ApiError::internal()
            }
        })?;
    Ok(Json(s.signer.published().await?))
}

/// The latest signed checkpoint.
#[utoipa::path(get, path = "/v1/audit/checkpoints/latest", tag = "audit",
    responses((status = 200, body = aim_domain::audit::Checkpoint), (status = 404, body = ErrorBody)))]
pub async fn latest_checkpoint(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<aim_domain::audit::Checkpoint>, ApiError> {
    may_read(&p)?;
    s.store
        .latest_checkpoint()
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("checkpoint"))
}
