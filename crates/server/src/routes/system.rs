use aim_domain::event::Event;
use aim_domain::human::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::paging;
use aim_domain::sweep::SweepReport;

use crate::registry::sweeps;
use crate::state::AppState;

/// Routes that need no credential.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sweeps/run", post(run_sweep))
        .route("/v1/events", get(events))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Ready when the store answers.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    s.store.ping().await?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

/// Runs the governance sweep now (it also runs every minute by default).
#[utoipa::path(post, path = "/v1/sweeps/run", tag = "system", responses((status = 200, body = SweepReport)))]
pub async fn run_sweep(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<SweepReport>, ApiError> {
    p.require_any(&[Role::Admin], "running a sweep")?;
    let report = sweeps::run(&s).await?;
    tracing::info!(by = %p.human.user_name, ?report, "sweep run on demand");
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events with a sequence number above this; the page's `next_cursor`.
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    pub next_cursor: Option<String>,
}

/// The event log, oldest first. Admins and auditors only.
#[utoipa::path(get, path = "/v1/events", tag = "system", params(EventQuery), responses((status = 200, body = EventPage)))]
pub async fn events(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading events")?;
    let limit = paging::limit(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this server issued")
        })?,
    };
    let mut items = s.store.events(after, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(Json(EventPage { items, next_cursor }))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}
