//! Extractors that turn every malformed input into an [`ApiError`] with a code, instead of
//! axum's plain-text rejections, and the request behind an action ([`RequestContext`]).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Unknown fields are refused where the type says `deny_unknown_fields`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Body(v))
    }
}

/// An `application/x-www-form-urlencoded` body, as OAuth endpoints take.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Form(v) = axum::Form::<T>::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    "malformed_request",
                    format!("the body must be a URL-encoded form: {}", e.body_text()),
                )
            })?;
        Ok(FormBody(v))
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// An id in the path, parsed with its type's own parser.
#[derive(Debug)]
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: std::str::FromStr> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::bad_request("invalid_path", "missing or malformed path parameter")
                })?;
        raw.parse::<T>().map(PathId).map_err(|_| {
            let shown: String = raw.chars().take(64).filter(|c| !c.is_control()).collect();
            ApiError::bad_request("invalid_id", format!("`{shown}` is not a valid id"))
        })
    }
}

/// A JSON body that may be omitted entirely (then `T::default()`), as for
/// `POST /v1/identities/{id}/suspend` with no reason.
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
        let h = req.headers();
        let no_body = !h.contains_key(CONTENT_TYPE)
            && !h.contains_key(TRANSFER_ENCODING)
            && h.get(CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
        if no_body {
            return Ok(OptionalBody(T::default()));
        }
        let Body(v) = Body::<T>::from_request(req, state).await?;
        Ok(OptionalBody(v))
    }
}

/// The HTTP request behind an action, as the audit log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `X-Request-Id`: the caller's if it sent a sane one, else one aim generated.
    pub id: String,
    /// The client's address.
    pub source: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(context_of(&parts.headers, &parts.extensions))
    }
}

/// The request id (set by the request-id layer) and the client's address.
pub fn context_of(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> RequestContext {
    // A caller's id is kept only if it is short and plain; it lands in every export format.
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let source = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    RequestContext { id, source }
}
