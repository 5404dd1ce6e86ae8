//! `/v1/tasks`: the tasks agents opened. Admins and auditors see all; a sponsor sees and
//! ends the tasks of identities they sponsor. Ending a task revokes every token of it.

use aim_domain::event::AuditAction;
use aim_domain::event::Trail;
use aim_domain::human::Role;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::task::Task;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, HumanCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{OptionalBody, PathId, Query};
use crate::paging;
use crate::registry::identities as reg;
use crate::state::AppState;
use aim_api::common::ReasonBody;
use aim_enforce::Agent;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", get(list))
        .route("/v1/tasks/{id}", get(show))
        .route("/v1/tasks/{id}/end", post(end))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// Tasks of this identity (required for a sponsor).
    #[param(value_type = Option<String>)]
    identity: Option<IdentityId>,
    /// Only open tasks.
    #[serde(default)]
    open: bool,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub items: Vec<Task>,
    pub next_cursor: Option<String>,
    /// Each identity's name and each human's user name the items hold, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

/// Admins and auditors may read any task; a sponsor those of their identities.
async fn may_read(s: &AppState, p: &HumanCaller, identity: IdentityId) -> Result<(), ApiError> {
    if p.is(Role::Admin) || p.is(Role::Auditor) {
        return Ok(());
    }
    let i = reg::get(s, identity).await?;
    p.require_admin_or_sponsor_of(&i, "reading tasks")
}

#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(TaskQuery),
    responses((status = 200, body = TaskPage), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<TaskQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    match q.identity {
        Some(i) => may_read(&s, &p, i).await?,
        None => p.require_any(&[Role::Admin, Role::Auditor], "listing every task")?,
    }
    let limit = paging::limit(q.limit)?;
    let after =
        paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?.map(TaskId::from_uuid);
    let items = s
        .store
        .list_tasks(q.identity, q.open, after, limit + 1)
        .await?;
    let page = paging::page(items, limit, |t| paging::Cursor::Id(t.id.as_uuid()));
    Ok(Json(TaskPage {
        names: crate::names::names_in(&s.store, &page.items).await?,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn get_task(s: &AppState, id: TaskId) -> Result<Task, ApiError> {
    s.store
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))
}

#[utoipa::path(get, path = "/v1/tasks/{id}", params(("id" = String, Path)), tag = "tasks",
    responses((status = 200, body = Task), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    caller: Caller,
    PathId(id): PathId<TaskId>,
) -> Result<Json<Task>, ApiError> {
    let task = get_task(&s, id).await?;
    match &caller {
        Caller::Human(p) => may_read(&s, p, task.identity_id).await?,
        Caller::Agent(a) => own_task(a, id)?,
    }
    Ok(Json(task))
}

/// An agent may touch only the task its token was issued for.
fn own_task(agent: &Agent, id: TaskId) -> Result<(), ApiError> {
    if agent.task != id {
        return Err(ApiError::forbidden(
            "an agent's token reaches only its own task",
        ));
    }
    Ok(())
}

/// Ends an open task now; every token issued for it stops working.
#[utoipa::path(post, path = "/v1/tasks/{id}/end", params(("id" = String, Path)), tag = "tasks", request_body = ReasonBody,
    responses((status = 200, body = Task), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn end(
    State(s): State<AppState>,
    ctx: crate::extract::RequestContext,
    caller: Caller,
    PathId(id): PathId<TaskId>,
    OptionalBody(body): OptionalBody<ReasonBody>,
) -> Result<Json<Task>, ApiError> {
    let task = get_task(&s, id).await?;
    let reason = body.checked()?;
    let now = s.clock.now();
    let trail = Trail {
        task_id: id.to_string(),
        triggered_by: task.triggered_by.clone(),
        ..Trail::default()
    };
    let (reason, event) = match &caller {
        Caller::Human(p) => {
            let identity = reg::get(&s, task.identity_id).await?;
            p.require_admin_or_sponsor_of(&identity, "ending a task")?;
            let reason = if reason.is_empty() {
                "ended by a human".to_owned()
            } else {
                reason
            };
            (
                reason,
                p.event(now, AuditAction::TaskEnded, "task", id)
                    .trail(trail),
            )
        }
        Caller::Agent(a) => {
            own_task(a, id)?;
            // INVARIANT: only the task's own identity, with a token it was not handed, ends
            // the whole task; a sub-agent's work ends with its token.
            if a.claims.act.is_some() || a.identity != task.identity_id {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "delegate_cannot_end_task",
                    "a delegated token cannot end its delegator's task; its holder may revoke it (POST /oauth/revoke) or let it expire",
                ));
            }
            let reason = if reason.is_empty() {
                "ended by the agent".to_owned()
            } else {
                reason
            };
            let event = aim_domain::event::Event::new(
                now,
                aim_domain::event::Actor::identity(a.identity),
                AuditAction::TaskEnded,
                "task",
                id,
            )
            .trail(Trail {
                jti: a.claims.jti.clone(),
                session_id: a.claims.sid.clone(),
                ..trail
            })
            .from_request(&ctx.id, &ctx.source);
            (reason, event)
        }
    };
    let event = event
        .reason(reason.clone())
        .detail(json!({ "identity": task.identity_id }));
    if !s.store.end_task(id, now, &reason, &event).await? {
        return Err(aim_domain::Refusal::TaskEnded.into());
    }
    Ok(Json(get_task(&s, id).await?))
}
