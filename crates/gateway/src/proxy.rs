//! One agent request, from arrival to answer:
//!
//! ```text
//! path checked ─► route ─► token present? ─► body read ─► question ─► aim decides
//!     (and records, durably) ─► allow: forward with the upstream's credential ─► answer
//! ```
//!
//! Everything refused before aim was asked is put on aim's record too
//! (`POST /v1/gateway/refusals`). Nothing reaches an upstream without aim's `allow`, and
//! aim answers only once that decision is durable; aim unreachable is a refusal (503).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use aim_api::authorize::{AuthorizeBody, AuthorizeResponse};
use aim_api::gateway::{GatewayAuthorize, GatewayCall, GatewayRefusal};
use aim_client::ClientError;
use aim_domain::decision::{Call, Effect};
use aim_domain::ids::ApprovalId;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Gateway;
use crate::route::Route;

/// A refusal: status, stable code, message, and what else the agent needs to act on it.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: String,
    message: String,
    extra: Option<Box<Value>>,
    challenge: Option<Box<str>>,
}

impl Refusal {
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            extra: None,
            challenge: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(Value::Object(extra)), Value::Object(b)) = (self.extra.map(|e| *e), &mut body)
        {
            for (k, v) in extra {
                b.entry(k).or_insert(v);
            }
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        response
    }
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
    pub(crate) fn code(&self) -> &str {
        &self.code
    }
}

/// What the log line of a call says.
struct Logged<'a> {
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
}

pub async fn handle(
    State(g): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let request_id = request_id(req.headers());
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let log = Logged {
        request_id: &request_id,
        method: &method,
        path: &path,
    };
    match call(&g, peer, req, &request_id).await {
        Ok(response) => {
            g.metrics.request("http", response.status().as_u16(), None);
            tracing::info!(
                request_id = log.request_id,
                method = log.method,
                path = log.path,
                status = response.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "forwarded"
            );
            response
        }
        Err(refusal) => {
            g.metrics
                .request("http", refusal.status.as_u16(), Some(&refusal.code));
            tracing::info!(request_id = log.request_id, method = log.method, path = log.path,
                status = refusal.status.as_u16(), code = %refusal.code, "refused");
            refusal.into_response()
        }
    }
}

async fn call(
    g: &Gateway,
    peer: SocketAddr,
    req: Request,
    request_id: &str,
) -> Result<Response, Refusal> {
    let (parts, body) = req.into_parts();
    fresh(g)?;
    let (route, asked, body) = match prepare(g, &parts, body, peer).await {
        Ok(prepared) => prepared,
        Err(r) => return Err(g.record(&parts, peer, request_id, r).await),
    };
    let decided = g
        .decide(&asked, request_id, route.audit)
        .await
        .map_err(|e| g.aim_refused(e))?;
    if decided.answer.decision.decision != Effect::Allow {
        return Err(not_allowed(&decided.answer));
    }
    // A revocation heard while aim decided wins over its allow.
    if g.heard.revokes(&asked.token) {
        return Err(g.record(&parts, peer, request_id, revoked(g)).await);
    }
    let upstream = &g.upstreams[route.upstream];
    let url = upstream.url(parts.uri.path(), parts.uri.query());
    let added = [
        (HeaderName::from_static("x-request-id"), request_id),
        (
            HeaderName::from_static("x-aim-identity"),
            &decided.identity.to_string(),
        ),
        (
            HeaderName::from_static("x-aim-task"),
            &decided.task.to_string(),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| HeaderValue::from_str(v).ok().map(|v| (k, v)))
    .collect::<Vec<_>>();
    let started = std::time::Instant::now();
    let (task, identity) = (decided.task.to_string(), decided.identity.to_string());
    let forwarded = upstream
        .forward(
            parts.method.clone(),
            url,
            &parts.headers,
            &added,
            body,
            crate::credential::ForTask {
                task: &task,
                identity: &identity,
            },
        )
        .await;
    g.metrics
        .upstream(&upstream.upstream.name, started.elapsed());
    let status = match &forwarded {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status().as_u16(),
    };
    // The decision is durable already; what the upstream answered follows it on the
    // record without holding up the answer.
    let call = GatewayCall {
        identity: decided.identity,
        task: decided.task,
        jti: decided.jti,
        act: decided.act,
        action: asked.question.action,
        resource: asked.question.resource.id,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        upstream: upstream.upstream.name.clone(),
        status,
        micros: started.elapsed().as_micros() as u64,
        model_decision: parts.headers.get("aim-model-decision").map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(1000)
                .collect()
        }),
        ip: Some(peer.ip().to_string()),
        request_id: None,
    };
    g.record_call(call, request_id);
    forwarded.map_err(|e| {
        tracing::warn!(request_id, upstream = %upstream.upstream.name, error = %e, "upstream failed");
        Refusal::new(e.status(), e.code(), e.to_string())
    })
}

/// INVARIANT: a gateway that cannot tell whether an identity was locked allows nothing.
pub(crate) fn fresh(g: &Gateway) -> Result<(), Refusal> {
    let Some(silent) = g.heard.stale() else {
        return Ok(());
    };
    let since = silent.map_or_else(
        || "since it started".to_owned(),
        |d| format!("for {} ms", d.as_millis()),
    );
    Err(Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "gateway_stale",
        format!(
            "this gateway has not heard from aim's revocation feed {since}; it refuses every call until it hears again"
        ),
    ))
}

/// Everything checked that can be checked before aim is asked: the path, the route, the
/// token's presence, the body; and the question the request comes to.
pub(crate) async fn prepare<'g>(
    g: &'g Gateway,
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    peer: SocketAddr,
) -> Result<(&'g Route, GatewayAuthorize, bytes::Bytes), Refusal> {
    let method = parts.method.as_str();
    let raw_path = parts.uri.path();
    let bad = |code: &str, message: String| Refusal::new(StatusCode::BAD_REQUEST, code, message);
    let segments = crate::canon::path(raw_path)
        .map_err(|e| bad("non_canonical_path", e.to_string()))?
        .segments;
    let (route, params) = route_for(&g.routes, method, &segments)?;
    let (token, proof) = g.credentials(&parts.headers)?;
    if g.heard.revokes(&token) {
        return Err(revoked(g));
    }
    let approval_id = match parts.headers.get("aim-approval-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| ApprovalId::parse(v).ok())
                .ok_or_else(|| {
                    bad(
                        "invalid_approval_id",
                        "Aim-Approval-Id is not an approval id".into(),
                    )
                })?,
        ),
    };
    let body = axum::body::to_bytes(body, g.max_body_bytes)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body is larger than {} bytes, or was cut off",
                    g.max_body_bytes
                ),
            )
        })?;
    let target = route
        .target(&params, parts.uri.query(), &body)
        .map_err(|e| bad("unreadable_request", e.to_string()))?;
    let question = AuthorizeBody {
        action: route.action.clone(),
        resource: target,
        call: Call {
            method: Some(method.to_owned()),
            path: Some(raw_path.to_owned()),
            ip: Some(peer.ip().to_string()),
            // An approval is for exactly these arguments.
            args_hash: (!body.is_empty()).then(|| hex(&Sha256::digest(&body))),
        },
        approval_id,
        ..AuthorizeBody::default()
    };
    let asked = GatewayAuthorize {
        token,
        proof,
        method: method.to_owned(),
        // RFC 9449: `htu` is the URL without its query and fragment.
        url: format!("{}{raw_path}", g.resource),
        question,
        tool: None,
    };
    Ok((route, asked, body))
}

/// A token something heard on the revocation feed revoked (a lock, say).
pub(crate) fn revoked(g: &Gateway) -> Refusal {
    let mut r = Refusal::new(
        StatusCode::UNAUTHORIZED,
        "token_revoked",
        "the token has been revoked (its identity locked, its task ended, or the token itself)",
    );
    r.challenge = Some(g.challenge(Some("invalid_token")).into());
    r
}

/// The first route whose template matches and which takes this method.
fn route_for<'a>(
    routes: &'a [Route],
    method: &str,
    segments: &[String],
) -> Result<(&'a Route, std::collections::BTreeMap<String, String>), Refusal> {
    let mut other_method = false;
    for route in routes {
        match route.template.matches(segments) {
            Ok(Some(params)) if route.accepts(method) => return Ok((route, params)),
            Ok(Some(_)) => other_method = true,
            Ok(None) => {}
            Err(e) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "non_canonical_path",
                    e.to_string(),
                ));
            }
        }
    }
    if other_method {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("no route takes {method} on this path"),
        ));
    }
    Err(Refusal::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no route of this gateway matches the path",
    ))
}

/// The answer to a decision other than allow: a deny, or an approval to wait for.
fn not_allowed(answer: &AuthorizeResponse) -> Refusal {
    let amended = &answer.amended;
    let (status, code, message) = match (answer.decision.decision, amended.approval_id) {
        (Effect::ApprovalRequired, Some(id)) => (
            StatusCode::FORBIDDEN,
            amended
                .code
                .clone()
                .unwrap_or_else(|| "approval_required".into()),
            format!(
                "this action needs a human's approval: once approval {id} is approved, send the same request again with `Aim-Approval-Id: {id}`"
            ),
        ),
        _ if amended.code.as_deref() == Some("conflict_of_authority") => (
            StatusCode::CONFLICT,
            "conflict_of_authority".into(),
            "another identity holds the lease on this record".into(),
        ),
        _ => (
            StatusCode::FORBIDDEN,
            amended
                .code
                .clone()
                .unwrap_or_else(|| answer.decision.decision.as_str().into()),
            "the policies in force do not allow this action".into(),
        ),
    };
    let mut r = Refusal::new(status, code, message);
    r.extra = serde_json::to_value(answer).ok().map(Box::new);
    r
}

impl Gateway {
    /// `WWW-Authenticate` for a refused token: the scheme, the algorithms and where the
    /// resource metadata is (RFC 9728 §5.1).
    fn challenge(&self, error: Option<&str>) -> String {
        let error = error
            .map(|e| format!("error=\"{e}\", "))
            .unwrap_or_default();
        format!(
            "DPoP {error}algs=\"EdDSA ES256\", resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
            self.resource
        )
    }

    /// Puts a forwarded call on aim's record, after its decision (durable already) and
    /// without holding up the answer: queued for the recorder, which sends what has queued
    /// up in one request (see [`record_calls`]); sent alone if the queue is full.
    pub(crate) fn record_call(&self, mut call: GatewayCall, request_id: &str) {
        call.request_id = Some(request_id.to_owned());
        if let Err(e) = self.calls.try_send(call) {
            let call = match e {
                tokio::sync::mpsc::error::TrySendError::Full(c)
                | tokio::sync::mpsc::error::TrySendError::Closed(c) => c,
            };
            let (aim, id) = (self.aim.clone(), request_id.to_owned());
            tokio::spawn(async move {
                if let Err(e) = aim.gateway_call(&call, &id).await {
                    tracing::warn!(request_id = %id, error = %e, "could not record a call with aim");
                }
            });
        }
    }

    /// Puts a refusal aim did not decide on aim's record, and returns it.
    pub(crate) async fn record(
        &self,
        parts: &axum::http::request::Parts,
        peer: SocketAddr,
        request_id: &str,
        r: Refusal,
    ) -> Refusal {
        let refusal = GatewayRefusal {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            ip: Some(peer.ip().to_string()),
            status: r.status.as_u16(),
            code: r.code.clone(),
        };
        if let Err(e) = self.aim.gateway_refusal(&refusal, request_id).await {
            tracing::warn!(request_id, error = %e, "could not record a refusal with aim");
        }
        r
    }

    /// The agent's token and its DPoP proof (at most one).
    pub(crate) fn credentials(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<(String, Option<String>), Refusal> {
        let Some(token) = agent_token(headers) else {
            let mut r = Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: DPoP <token>` with a `DPoP` proof for this request; the resource metadata says where tokens come from",
            );
            r.challenge = Some(self.challenge(None).into());
            return Err(r);
        };
        let proofs: Vec<_> = headers.get_all("dpop").iter().collect();
        match proofs.as_slice() {
            [] => Ok((token, None)),
            [one] => Ok((token, Some(one.to_str().unwrap_or_default().to_owned()))),
            _ => {
                let mut r = Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_dpop_proof",
                    "send one DPoP proof, not several",
                );
                r.challenge = Some(self.challenge(Some("invalid_dpop_proof")).into());
                Err(r)
            }
        }
    }

    /// What the agent is told when aim refused to decide, or could not.
    pub(crate) fn aim_refused(&self, e: ClientError) -> Refusal {
        match e {
            ClientError::Api {
                status,
                code,
                message,
            } if (400..500).contains(&status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                let mut r = Refusal::new(status, code, message);
                if status == StatusCode::UNAUTHORIZED {
                    r.challenge = Some(self.challenge(Some("invalid_token")).into());
                }
                r
            }
            other => {
                tracing::warn!(error = %other, "aim could not decide; refusing");
                Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "aim_unavailable",
                    "aim could not decide this request; nothing was forwarded",
                )
            }
        }
    }
}

/// The agent's token: `Authorization: DPoP <jwt>` or `Bearer <jwt>`.
fn agent_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let dpop = scheme.eq_ignore_ascii_case("dpop") || scheme.eq_ignore_ascii_case("bearer");
    (dpop && !token.is_empty()).then(|| token.to_owned())
}

/// The agent's `X-Request-Id` if it is a sane one, else a new one.
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Waits for the next item of `queue` and takes what else is queued behind it, up to 500,
/// into `batch`; false once the queue is closed and empty.
pub(crate) async fn next_batch<T>(
    queue: &mut tokio::sync::mpsc::Receiver<T>,
    batch: &mut Vec<T>,
) -> bool {
    let Some(first) = queue.recv().await else {
        return false;
    };
    batch.push(first);
    while batch.len() < 500 {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    true
}

/// Sends queued calls to aim, as many at once as have queued up while the last request
/// was out (at most 500): under load, one request to aim records many calls. A call whose
/// record aim did not take is logged; its decision is on the record regardless. Calls
/// still queued when the gateway stops are lost (their decisions are not).
pub async fn record_calls(
    aim: aim_client::Client,
    mut queue: tokio::sync::mpsc::Receiver<GatewayCall>,
) {
    let mut batch = Vec::new();
    while next_batch(&mut queue, &mut batch).await {
        let id = batch[0].request_id.clone().unwrap_or_default();
        if let Err(e) = aim.gateway_calls(&batch, &id).await {
            tracing::warn!(request_id = %id, calls = batch.len(), error = %e, "could not record calls with aim");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
