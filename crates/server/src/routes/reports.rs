//! `/v1/reports/compliance`: admins and auditors generate a compliance report (kept, with
//! its score, for the trend), list the kept ones, and read one again, as JSON, Markdown or
//! one HTML page.

use aim_api::reports::{ComplianceReport, ReportFormat, ReportList, TREND};
use aim_domain::human::Role;
use aim_domain::ids::ReportId;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{PathId, Query};
use crate::report;
use crate::state::AppState;

const READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// What a rendered HTML report may load: nothing but its own inline styles.
const HTML_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/reports/compliance", post(generate).get(list))
        .route("/v1/reports/compliance/{id}", get(show))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `json` (the default), `md` or `html`.
    #[param(value_type = Option<String>)]
    format: Option<ReportFormat>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many of the newest reports (at most 100; 24 if absent).
    limit: Option<u32>,
}

fn respond(
    status: StatusCode,
    r: &ComplianceReport,
    format: ReportFormat,
) -> Result<Response, ApiError> {
    let body = report::render(r, format)?;
    let mut response =
        (status, [(header::CONTENT_TYPE, format.media_type())], body).into_response();
    if format == ReportFormat::Html {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(HTML_POLICY),
        );
    }
    Ok(response)
}

/// Reads aim's posture, evaluates it against OWASP NHI, OWASP Agentic, NIST CSF 2.0, NIST AI
/// RMF and CSA MAESTRO, keeps it, and answers it in `format`.
#[utoipa::path(post, path = "/v1/reports/compliance", params(FormatQuery), tag = "reports",
    responses((status = 201, description = "the report, in `format`", content((ComplianceReport = "application/json"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn generate(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    p.require_any(READERS, "generating a compliance report")?;
    let r = report::generate(&s, crate::auth::Asker::Human(&p)).await?;
    respond(StatusCode::CREATED, &r, q.format.unwrap_or_default())
}

/// The newest kept reports' scores, newest first: the posture's trend.
#[utoipa::path(get, path = "/v1/reports/compliance", params(ListQuery), tag = "reports",
    responses((status = 200, body = ReportList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<ListQuery>,
) -> Result<Json<ReportList>, ApiError> {
    p.require_any(READERS, "reading compliance reports")?;
    let limit = match q.limit {
        None => TREND,
        Some(n @ 1..=100) => n,
        Some(_) => {
            return Err(ApiError::bad_request("bad_limit", "`limit` is 1 to 100"));
        }
    };
    Ok(Json(report::list(&s, limit).await?))
}

/// A kept report, as it was generated, in `format`.
#[utoipa::path(get, path = "/v1/reports/compliance/{id}", params(("id" = String, Path), FormatQuery), tag = "reports",
    responses((status = 200, description = "the report, in `format`", content((ComplianceReport = "application/json"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<ReportId>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    p.require_any(READERS, "reading compliance reports")?;
    let r = report::kept(&s, id).await?;
    respond(StatusCode::OK, &r, q.format.unwrap_or_default())
}
