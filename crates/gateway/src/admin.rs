//! The gateway's admin listener (`admin_listen`), apart from the agents' port: `/healthz`
//! (the process answers) and `/readyz` (it has heard from aim's feed within its staleness
//! limit, so it can enforce a lock; 503 `gateway_stale` otherwise), for load balancers and
//! orchestrators to route around a gateway that would refuse everything.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::feed::Heard;

pub fn router(heard: Arc<Heard>) -> axum::Router {
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
        .with_state(heard)
}

async fn ready(State(heard): State<Arc<Heard>>) -> (StatusCode, Json<Value>) {
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
pub async fn serve(heard: Arc<Heard>, listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(heard)).await
}
