use aim_api::common::Health;
use aim_domain::human::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
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
    Router::new().route("/v1/sweeps/run", post(run_sweep))
}

/// The admin listener (`admin_listen`), apart from the API's port: health, readiness and
/// Prometheus metrics (see [`crate::metrics`]).
pub fn admin(state: AppState) -> Router {
    public().route("/metrics", get(metrics)).with_state(state)
}

async fn metrics(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    let epoch = s.feed.epoch();
    let gateways = match s.store.gateway_acks().await {
        Ok(acks) => {
            let (connected, behind) = crate::feed::presence(&acks, epoch, s.clock.now());
            Some((connected as i64, behind as i64))
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the gateways' acknowledgements could not be read");
            None
        }
    };
    let scraped = crate::metrics::Scraped {
        epoch,
        gateways,
        cache: s.tokens.issuing.counts(),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(&scraped),
    )
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
    p: HumanCaller,
) -> Result<Json<SweepReport>, ApiError> {
    p.require_any(&[Role::Admin], "running a sweep")?;
    let report = sweeps::run(&s).await?;
    tracing::info!(by = %p.human.user_name, ?report, "sweep run on demand");
    Ok(Json(report))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
}
