//! A refused token request, in RFC 6749's shape (`error`, `error_description`) plus aim's
//! specific `code`.

use aim_store::StoreError;
use aim_token::TokenError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refused token request.
#[derive(Debug)]
pub struct Refused {
    pub(crate) status: StatusCode,
    /// RFC 6749 `error`.
    pub(crate) error: &'static str,
    /// aim's specific code.
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Refused {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: &'static str,
        m: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            message: m.into(),
        }
    }

    pub(crate) fn request(code: &'static str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, m)
    }

    pub(crate) fn client(code: &'static str, m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, m)
    }

    pub(crate) fn token(e: TokenError) -> Self {
        Self::client(e.code(), format!("client assertion refused: {e}"))
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "token endpoint: store failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "store_unavailable",
            "the store is unavailable; no token was issued",
        )
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "error": self.error,
                "error_description": self.message,
                "code": self.code,
            })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_client\""),
            );
        }
        r
    }
}

/// RFC 9449's error for a missing or bad proof at the token endpoint.
pub(crate) fn dpop_refused(e: TokenError) -> Refused {
    // RFC 9449 §8: a missing or stale nonce has its own error, and the answer carries the
    // nonce to use.
    let error = if e == TokenError::NonceRequired {
        "use_dpop_nonce"
    } else {
        "invalid_dpop_proof"
    };
    Refused::new(StatusCode::BAD_REQUEST, error, e.code(), e.to_string())
}
