//! `/.well-known/jwks.json` and the authorization-server metadata (RFC 8414, and the same
//! document at the OpenID discovery path), so any OAuth or JWT library finds aim's keys.

use aim_api::oauth::ServerMetadata;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The JWK Set (RFC 7517) of aim's token signing keys; no credential.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth", security(()),
    responses((status = 200, description = "A JWK Set: `{\"keys\": [...]}`", body = Object)))]
pub async fn jwks(State(s): State<AppState>) -> impl IntoResponse {
    let ring = s.tokens.keys.current();
    (
        // Short: a rotated or revoked key must reach verifiers quickly.
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(ring.jwks.clone()),
    )
}

pub fn metadata(s: &AppState) -> ServerMetadata {
    let t = &s.tokens;
    let strings = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    ServerMetadata {
        issuer: t.issuer.clone(),
        token_endpoint: t.token_endpoint.clone(),
        jwks_uri: format!("{}/.well-known/jwks.json", t.issuer),
        grant_types_supported: strings(&[
            "client_credentials",
            aim_api::oauth::JWT_BEARER,
            aim_api::oauth::TOKEN_EXCHANGE,
        ]),
        dpop_signing_alg_values_supported: strings(&aim_token::jose::ALLOWED_ALGS),
        token_endpoint_auth_methods_supported: strings(&["private_key_jwt"]),
        token_endpoint_auth_signing_alg_values_supported: strings(&aim_token::jose::ALLOWED_ALGS),
        authorization_details_types_supported: strings(&[aim_domain::task::TASK_DETAIL_TYPE]),
        response_types_supported: strings(&["token"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: strings(&["EdDSA"]),
        access_token_signing_alg_values_supported: strings(&["EdDSA"]),
    }
}

/// The authorization-server metadata (RFC 8414); no credential.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth", security(()),
    responses((status = 200, body = ServerMetadata)))]
pub async fn authorization_server(State(s): State<AppState>) -> Json<ServerMetadata> {
    Json(metadata(&s))
}

/// The same metadata at the OpenID discovery path, for libraries that look there.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth", security(()),
    responses((status = 200, body = ServerMetadata)))]
pub async fn openid_configuration(s: State<AppState>) -> Json<ServerMetadata> {
    authorization_server(s).await
}
