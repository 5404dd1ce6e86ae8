//! The gateway's admin listener (`admin_listen`), apart from the agents' port: `/healthz`
//! (the process answers) and `/readyz` (it has heard from aim's feed within its staleness
//! limit, so it can enforce a lock; 503 `gateway_stale` otherwise), for load balancers and
//! orchestrators to route around a gateway that would refuse everything; and `/metrics`
//! (Prometheus, see [`crate::metrics`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use axum::response::IntoResponse;

use crate::feed::Heard;
use crate::metrics::Metrics;

pub fn router(heard: Arc<Heard>, metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(scrape))
        .with_state((heard, metrics))
}

async fn scrape(State((heard, metrics)): State<(Arc<Heard>, Arc<Metrics>)>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(&heard),
    )
}

async fn ready(State((heard, _)): State<(Arc<Heard>, Arc<Metrics>)>) -> (StatusCode, Json<Value>) {
    match heard.stale() {
        None => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "epoch": heard.epoch() })),
        ),
        Some(silent) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "stale",
                "code": "gateway_stale",
                "silent_ms": silent.map(|d| d.as_millis() as u64),
                "message": "no word from aim's revocation feed within the staleness limit: every call is refused",
            })),
        ),
    }
}

/// Serves the admin routes on `listener` for as long as the process runs.
pub async fn serve(
    heard: Arc<Heard>,
    metrics: Arc<Metrics>,
    listener: TcpListener,
) -> std::io::Result<()> {
    axum::serve(listener, router(heard, metrics)).await
}
