//! MCP servers behind the gateway (streamable HTTP), both protocol eras on one path: the
//! 2025-11-25 handshake (`initialize`, `Mcp-Session-Id`, the GET stream) and 2026-07-28
//! (no handshake or session, `server/discover`, `Mcp-Method` / `Mcp-Name` headers).
//!
//! ```text
//! Origin ─► token present, not revoked ─► one JSON-RPC message ─► routing headers = body
//!   tools/call  ─► aim decides (tool pinned? policy, grants, leases, approval) ─► forward
//!   tools/list  ─► aim verifies ─► forward ─► pinned and permitted tools only, private
//!   initialize, ping, notifications, server/discover, responses, GET, DELETE
//!               ─► aim verifies ─► forward
//!   anything else (resources, prompts) ─► -32601: this gateway passes tools only
//! ```
//!
//! Every answer that streams (SSE) ends the moment the gateway hears its token revoked.

pub mod config;
pub mod rpc;
pub(crate) mod tools;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aim_api::tools::{GatewayVerify, Verified};
use aim_domain::ids::ApprovalId;
use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::Gateway;
use crate::credential::ForTask;
use crate::proxy::{self, Refusal};
use rpc::RpcError;

/// An MCP server and what the gateway remembers of it.
#[derive(Debug)]
pub struct Mcp {
    pub server: config::Server,
    /// Each tool's definition hash as last listed through this gateway.
    seen: Mutex<HashMap<String, String>>,
    /// Approvals asked for calls, by (task, tool, arguments' hash): the same call made
    /// again after the approval carries it without the agent having to.
    asked: Mutex<HashMap<CallKey, (ApprovalId, Instant)>>,
}

/// (task, tool, arguments' hash): one call, as an approval binds it.
pub(crate) type CallKey = (String, String, String);

impl Mcp {
    pub fn new(server: config::Server) -> Self {
        Self {
            server,
            seen: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
        }
    }
}

/// What an MCP request may be answered with besides the server's answer.
#[derive(Debug)]
pub enum Out {
    Refused(Refusal),
    Rpc(RpcError),
}

impl From<Refusal> for Out {
    fn from(r: Refusal) -> Self {
        Out::Refused(r)
    }
}

impl From<RpcError> for Out {
    fn from(e: RpcError) -> Self {
        Out::Rpc(e)
    }
}

/// The agent's credentials and where it sent them.
#[derive(Debug)]
pub(crate) struct Presented<'a> {
    pub(crate) token: String,
    pub(crate) proof: Option<String>,
    /// The URL the agent called: the proof's `htu`.
    pub(crate) url: String,
    pub(crate) request_id: &'a str,
    pub(crate) peer: SocketAddr,
}

pub async fn handle(g: Arc<Gateway>, at: usize, peer: SocketAddr, req: Request) -> Response {
    let started = Instant::now();
    let request_id = proxy::request_id(req.headers());
    let m = &g.mcp[at];
    let method = req.method().clone();
    match serve(&g, m, peer, req, &request_id).await {
        Ok(response) => {
            g.metrics.request("mcp", response.status().as_u16(), None);
            tracing::info!(request_id, server = %m.server.name, %method,
                status = response.status().as_u16(),
                micros = started.elapsed().as_micros() as u64, "mcp forwarded");
            response
        }
        Err(Out::Refused(r)) => {
            g.metrics
                .request("mcp", r.status().as_u16(), Some(r.code()));
            tracing::info!(request_id, server = %m.server.name, %method,
                status = r.status().as_u16(), code = %r.code(), "mcp refused");
            r.into_response()
        }
        Err(Out::Rpc(e)) => {
            let code = format!("jsonrpc_{}", e.code);
            g.metrics.request("mcp", e.status.as_u16(), Some(&code));
            tracing::info!(request_id, server = %m.server.name, %method, status = e.status.as_u16(), code = e.code, message = %e.message, "mcp refused");
            e.into_response()
        }
    }
}

async fn serve(
    g: &Gateway,
    m: &Mcp,
    peer: SocketAddr,
    req: Request,
    request_id: &str,
) -> Result<Response, Out> {
    proxy::fresh(g)?;
    let (parts, body) = req.into_parts();
    let refuse = async |r: Refusal| Out::from(g.record(&parts, peer, request_id, r).await);
    if let Err(r) = origin(g, m, &parts) {
        return Err(refuse(r).await);
    }
    let (token, proof) = match g.credentials(&parts.headers) {
        Ok(c) => c,
        Err(r) => return Err(refuse(r).await),
    };
    if g.heard.revokes(&token) {
        return Err(refuse(proxy::revoked(g)).await);
    }
    let presented = Presented {
        token,
        proof,
        url: format!("{}{}", g.resource, m.server.path),
        request_id,
        peer,
    };
    if parts.method == Method::GET || parts.method == Method::DELETE {
        let rpc = parts.method.as_str().to_owned();
        return pass(g, m, &parts, bytes::Bytes::new(), &presented, &rpc).await;
    }
    if parts.method != Method::POST {
        return Err(refuse(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "an MCP endpoint takes POST, GET and DELETE",
        ))
        .await);
    }
    let body = match axum::body::to_bytes(body, g.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let r = Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {} bytes", g.max_body_bytes),
            );
            return Err(refuse(r).await);
        }
    };
    let msg = match rpc::parse(&body)
        .and_then(|msg| rpc::check_routing(&parts.headers, &msg).map(|()| msg))
    {
        Ok(msg) => msg,
        Err(e) => return Err(rpc_refused(g, &parts, &presented, e).await),
    };
    match msg.method.as_deref() {
        Some("tools/call") => tools::call(g, m, &parts, &msg, body, &presented).await,
        Some("tools/list") => tools::list(g, m, &parts, &msg, body, &presented).await,
        Some(method) if passes(method) => {
            let method = method.to_owned();
            pass(g, m, &parts, body, &presented, &method).await
        }
        None => pass(g, m, &parts, body, &presented, "response").await,
        Some(other) => {
            let e = RpcError::new(
                StatusCode::OK,
                rpc::METHOD_NOT_FOUND,
                format!(
                    "{other}: this gateway passes tools only (resources and prompts are not offered through it)"
                ),
                &msg.id,
            );
            Err(rpc_refused(g, &parts, &presented, e).await)
        }
    }
}

/// Puts a JSON-RPC refusal on aim's record and returns it.
async fn rpc_refused(g: &Gateway, parts: &Parts, p: &Presented<'_>, e: RpcError) -> Out {
    let code = match e.code {
        rpc::HEADER_MISMATCH => "header_mismatch",
        rpc::METHOD_NOT_FOUND => "method_not_offered",
        rpc::INVALID_PARAMS => "invalid_params",
        _ => "invalid_json_rpc",
    };
    let r = Refusal::new(e.status, code, e.message.clone());
    let _ = g.record(parts, p.peer, p.request_id, r).await;
    Out::Rpc(e)
}

/// What passes once aim has verified the token: the handshake, liveness, notifications,
/// discovery, logging, completions, subscriptions, and answers to the server's requests.
fn passes(method: &str) -> bool {
    matches!(
        method,
        "initialize"
            | "ping"
            | "server/discover"
            | "logging/setLevel"
            | "completion/complete"
            | "subscriptions/listen"
    ) || method.starts_with("notifications/")
}

/// An `Origin` header (a browser's request) must be the gateway's own origin or one the
/// server's configuration allows: else 403, as MCP requires against DNS rebinding.
pub(crate) fn origin(g: &Gateway, m: &Mcp, parts: &Parts) -> Result<(), Refusal> {
    let Some(origin) = parts.headers.get(axum::http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let own = url::Url::parse(&g.resource)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    if origin == own
        || m.server
            .origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin)
    {
        return Ok(());
    }
    Err(Refusal::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        format!("requests from the origin {origin:?} are not accepted by this MCP endpoint"),
    ))
}

/// Asks aim who presented the token (spending the proof, recording the message).
async fn verify(
    g: &Gateway,
    m: &Mcp,
    method: &Method,
    p: &Presented<'_>,
    rpc: &str,
) -> Result<Verified, Refusal> {
    let asked = GatewayVerify {
        token: p.token.clone(),
        proof: p.proof.clone(),
        method: method.as_str().to_owned(),
        url: p.url.clone(),
        server: m.server.name.clone(),
        rpc: rpc.to_owned(),
    };
    let asking = Instant::now();
    let verified = g.aim.gateway_verify(&asked, p.request_id).await;
    g.metrics.decided("verify", asking.elapsed());
    verified.map_err(|e| g.aim_refused(e))
}

/// Verifies, then forwards the message as it is.
async fn pass(
    g: &Gateway,
    m: &Mcp,
    parts: &Parts,
    body: bytes::Bytes,
    p: &Presented<'_>,
    rpc: &str,
) -> Result<Response, Out> {
    let who = verify(g, m, &parts.method, p, rpc).await?;
    Ok(forward(g, m, parts, body, p, &who).await?)
}

/// Sends the request to the server with the gateway's credential for it, and streams its
/// answer back until the token is revoked.
async fn forward(
    g: &Gateway,
    m: &Mcp,
    parts: &Parts,
    body: bytes::Bytes,
    p: &Presented<'_>,
    who: &Verified,
) -> Result<Response, Refusal> {
    // A revocation heard while aim answered wins.
    if g.heard.revokes(&p.token) {
        return Err(proxy::revoked(g));
    }
    let upstream = &g.upstreams[m.server.upstream];
    let mut url = upstream.upstream.url.clone();
    url.set_query(parts.uri.query());
    let added = [
        ("x-request-id", p.request_id.to_owned()),
        ("x-aim-identity", who.identity.to_string()),
        ("x-aim-task", who.task.to_string()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((HeaderName::from_static(k), HeaderValue::from_str(&v).ok()?)))
    .collect::<Vec<_>>();
    let started = Instant::now();
    let (task, identity) = (who.task.to_string(), who.identity.to_string());
    let response = upstream
        .forward(
            parts.method.clone(),
            url,
            &parts.headers,
            &added,
            body,
            ForTask {
                task: &task,
                identity: &identity,
            },
        )
        .await;
    g.metrics
        .upstream(&upstream.upstream.name, started.elapsed());
    let response = response.map_err(|e| {
            tracing::warn!(request_id = p.request_id, upstream = %upstream.upstream.name, error = %e, "MCP server failed");
            Refusal::new(e.status(), e.code(), e.to_string())
        })?;
    Ok(closable(g, response, &p.token))
}

/// `response`, whose body ends as soon as the gateway hears `token` revoked (a lock
/// closes the identity's open streams).
fn closable(g: &Gateway, response: Response, token: &str) -> Response {
    let (parts, body) = response.into_parts();
    // Subscribed before the one check here: a revocation applied after it wakes the
    // stream; the token is read again only then, not for every chunk.
    let applied = g.heard.applied();
    if g.heard.revokes(token) {
        tracing::info!("closing a stream: its token was revoked");
        return Response::from_parts(parts, Body::empty());
    }
    let state = (
        body.into_data_stream(),
        applied,
        g.heard.clone(),
        token.to_owned(),
    );
    let stream =
        futures_util::stream::unfold(state, |(mut body, mut applied, heard, token)| async move {
            loop {
                tokio::select! {
                    chunk = body.next() => return chunk.map(|c| (c, (body, applied, heard, token))),
                    changed = applied.changed() => {
                        if changed.is_err() || heard.revokes(&token) {
                            tracing::info!("closing a stream: its token was revoked");
                            return None;
                        }
                    }
                }
            }
        });
    Response::from_parts(parts, Body::from_stream(stream))
}
