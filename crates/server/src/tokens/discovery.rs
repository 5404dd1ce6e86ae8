//! `/.well-known/jwks.json` and the authorization-server metadata (RFC 8414, and the same
//! document at the OpenID discovery path), so any OAuth or JWT library finds aim's keys.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn jwks(State(s): State<AppState>) -> impl IntoResponse {
    let ring = s.tokens.keys.current();
    (
        // Short: a rotated or revoked key must reach verifiers quickly.
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(ring.jwks.clone()),
    )
}

pub fn metadata(s: &AppState) -> Value {
    let t = &s.tokens;
    json!({
        "issuer": t.issuer,
        "token_endpoint": t.token_endpoint,
        "jwks_uri": format!("{}/.well-known/jwks.json", t.issuer),
        "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "dpop_signing_alg_values_supported": aim_token::jose::ALLOWED_ALGS,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": aim_token::jose::ALLOWED_ALGS,
        "authorization_details_types_supported": [aim_domain::task::TASK_DETAIL_TYPE],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "access_token_signing_alg_values_supported": ["EdDSA"],
    })
}

pub async fn authorization_server(State(s): State<AppState>) -> Json<Value> {
    Json(metadata(&s))
}
