//! `/v1/discovery/...`: what a security team does about what discovery found. Adopting an
//! account requests an identity for it (admins, or a sponsor for themselves); marking one
//! for decommissioning and acknowledging a finding are for admins; the decommission list is
//! read by admins and auditors, as JSON or CSV. Admins may also have every source's findings
//! assessed again now (the clock, the owners), without an import.

use aim_api::common::ReasonBody;
use aim_api::discovery::{
    AcknowledgeBody, AcknowledgementView, AdoptBody, Adopted, DecommissionRow, Reassessment,
};
use aim_domain::human::Role;
use aim_domain::ids::AccountId;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::HumanCaller;
use crate::discovery::{reassess, remedy};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, PathId, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/discovery/accounts/{id}/adopt", post(adopt))
        .route(
            "/v1/discovery/accounts/{id}/decommission",
            post(decommission),
        )
        .route("/v1/discovery/accounts/{id}/acknowledge", post(acknowledge))
        .route("/v1/discovery/decommission", get(list))
        .route("/v1/discovery/reassess", post(reassess))
}

/// Assesses every source's present accounts again against the clock and aim's humans now
/// (what aim does by itself each `discovery_reassess_interval_seconds`). Answers when it is
/// done, or after `wait` seconds with 202 `running` while it goes on by itself (its
/// changes are `discovery.findings_reassessed` events).
#[utoipa::path(post, path = "/v1/discovery/reassess", params(ReassessQuery), tag = "discovery",
    responses((status = 200, body = Reassessment), (status = 202, body = Reassessment, description = "still running: `running` is true, the counts are not known yet"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reassess(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<ReassessQuery>,
) -> Result<(StatusCode, Json<Reassessment>), ApiError> {
    p.require_any(&[Role::Admin], "reassessing discovered accounts")?;
    let wait = match q.wait {
        None => REASSESS_WAIT_SECONDS,
        Some(w) if w <= MAX_WAIT_SECONDS => w,
        Some(w) => {
            return Err(ApiError::bad_request(
                "bad_wait",
                format!("wait is {w}: at most {MAX_WAIT_SECONDS} seconds"),
            ));
        }
    };
    let mut running = reassess::spawn(&s, Some(p));
    match tokio::time::timeout(std::time::Duration::from_secs(wait), &mut running).await {
        Ok(done) => {
            let r = done.map_err(|e| {
                tracing::error!(error = %e, "the reassessment's task failed");
                ApiError::internal()
            })??;
            Ok((StatusCode::OK, Json(r)))
        }
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(Reassessment {
                running: true,
                ..Reassessment::default()
            }),
        )),
    }
}

/// How long `POST /v1/discovery/reassess` waits by default: under the default request
/// timeout (30 s).
const REASSESS_WAIT_SECONDS: u64 = 20;
const MAX_WAIT_SECONDS: u64 = 3600;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReassessQuery {
    /// Seconds to wait for it to finish (20 if absent, at most 3600; the server's
    /// `request_timeout_seconds` still applies): after that, 202 and it goes on.
    wait: Option<u64>,
}

/// Requests an identity for a discovered account, linked to it.
#[utoipa::path(post, path = "/v1/discovery/accounts/{id}/adopt", params(("id" = String, Path)), tag = "discovery", request_body = AdoptBody,
    responses((status = 201, body = Adopted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn adopt(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<AccountId>,
    Body(body): Body<AdoptBody>,
) -> Result<(StatusCode, Json<Adopted>), ApiError> {
    p.require_any(
        &[Role::Admin, Role::Sponsor],
        "adopting a discovered account",
    )?;
    Ok((
        StatusCode::CREATED,
        Json(remedy::adopt(&s, &p, id, body).await?),
    ))
}

/// Puts a discovered account on its source's decommission list.
#[utoipa::path(post, path = "/v1/discovery/accounts/{id}/decommission", params(("id" = String, Path)), tag = "discovery", request_body = ReasonBody,
    responses((status = 200, body = DecommissionRow), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn decommission(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<AccountId>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<DecommissionRow>, ApiError> {
    p.require_any(&[Role::Admin], "marking an account for decommissioning")?;
    Ok(Json(remedy::decommission(&s, &p, id, &body.reason).await?))
}

/// Acknowledges one finding of a discovered account until a date.
#[utoipa::path(post, path = "/v1/discovery/accounts/{id}/acknowledge", params(("id" = String, Path)), tag = "discovery", request_body = AcknowledgeBody,
    responses((status = 200, body = AcknowledgementView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn acknowledge(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<AccountId>,
    Body(body): Body<AcknowledgeBody>,
) -> Result<Json<AcknowledgementView>, ApiError> {
    p.require_any(&[Role::Admin], "acknowledging a finding")?;
    let k = remedy::acknowledge(&s, &p, id, body).await?;
    Ok(Json(AcknowledgementView {
        finding: k.finding,
        reason: k.reason,
        until: k.until,
        by: k.by,
        at: k.at,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The list of this source (all sources if absent).
    source: Option<String>,
    /// `json` (the default) or `csv`.
    format: Option<String>,
}

/// The decommission list: accounts to retire, with their active credentials, who marked
/// them and why; `gone_at` once their source no longer shows them.
#[utoipa::path(get, path = "/v1/discovery/decommission", params(ListQuery), tag = "discovery",
    responses((status = 200, body = Vec<DecommissionRow>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    p.require_any(
        &[Role::Admin, Role::Auditor],
        "reading the decommission list",
    )?;
    let rows = remedy::list(&s, q.source.as_deref()).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(rows).into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&rows),
        )
            .into_response()),
        other => Err(ApiError::bad_request(
            "bad_format",
            format!(
                "`{}` is not a format: json or csv",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break, and with a leading
/// `'` when a spreadsheet would take it for a formula.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv(rows: &[DecommissionRow]) -> String {
    let mut out = String::from(
        "source,key,name,kind,owner,active_credentials,reason,marked_by,marked_at,gone_at\r\n",
    );
    for r in rows {
        let cells = [
            r.source.clone(),
            r.key.clone(),
            r.name.clone(),
            r.kind.to_string(),
            r.owner.clone().unwrap_or_default(),
            r.active_credentials.join(" "),
            r.reason.clone(),
            r.marked_by.clone(),
            r.marked_at.to_string(),
            r.gone_at.map(|t| t.to_string()).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}
