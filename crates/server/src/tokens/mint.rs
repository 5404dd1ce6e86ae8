//! What a new token is signed with and for: the audience it names (RFC 8707), the key
//! ring that signs it (never a key another replica revoked), and the signing itself.

use std::sync::Arc;

use aim_domain::time::Timestamp;
use aim_token::claims::AccessClaims;
use axum::http::StatusCode;

use super::keys::KeyRing;
use super::refused::Refused;
use crate::state::AppState;

/// Signs `claims` with the current signing key.
pub(crate) fn mint(ring: &KeyRing, claims: &AccessClaims) -> Result<String, Refused> {
    aim_token::access::mint(&ring.signer, claims).map_err(|e| {
        tracing::error!(error = %e, "could not sign an access token");
        Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            "could not sign the token",
        )
    })
}

/// The audience of a new token: the RFC 8707 `resource` asked for, which must be one aim is
/// configured to issue for, or aim's own API.
pub(crate) fn audience(s: &AppState, resource: Option<&str>) -> Result<String, Refused> {
    match resource {
        None => Ok(s.tokens.rules.audience.clone()),
        Some(r)
            if r == s.tokens.rules.audience || s.tokens.rules.resources.iter().any(|k| k == r) =>
        {
            Ok(r.to_owned())
        }
        Some(r) => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "invalid_target",
            format!(
                "aim issues no tokens for resource `{}`; ask for one of `tokens.resources`",
                r.chars()
                    .take(200)
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            ),
        )),
    }
}

/// The key ring to sign with: `ring`, unless the read that checked the client found its
/// signing key revoked (by another replica, since this one last looked), in which case the
/// keys are read again first.
// INVARIANT: a revoked signing key never signs again, on any replica: the revocation is
// committed before it is announced, and every issuance reads it with the client.
pub(crate) async fn signing_ring(
    s: &AppState,
    ring: Arc<KeyRing>,
    revoked: bool,
    now: Timestamp,
) -> Result<Arc<KeyRing>, Refused> {
    if !revoked {
        return Ok(ring);
    }
    s.tokens.keys.refresh(now).await.map_err(|e| {
        tracing::error!(error = %e, "could not re-read the signing keys");
        Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "store_unavailable",
            "the signing keys could not be read; no token was issued",
        )
    })?;
    Ok(s.tokens.keys.current())
}
