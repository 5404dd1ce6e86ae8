//! MCP tools through gateways, pinned by definition (see [`aim_domain::tool`]).
//!
//! - `POST /v1/gateway/tools`: a gateway reports the tools a server offered it; aim
//!   records a new tool or a changed definition (`tool.discovered`) and answers where
//!   each stands. Only `approved` ones are listed to agents.
//! - `POST /v1/gateway/verify`: the agent behind a token and proof may send an MCP message
//!   that is not a call (`initialize`, `tools/list`, ...): the proof spent, the message
//!   recorded.
//! - `POST /v1/gateway/permitted`: which tools (questions) a verified agent may use in its
//!   task: a listing filtered per caller. Nothing is asked of a human, no lease taken.
//! - `GET /v1/tools`, `GET /v1/tools/{server}/{name}`, `POST .../approve`: an admin reviews
//!   what was seen against what is pinned, and pins it.
//!
//! A gateway's `tools/call` names the definition it last saw ([`ToolRef`]); the call is
//! refused (`tool_not_approved`) unless that definition is pinned.

use aim_api::authorize::AuthorizeBody;
use aim_api::tools::{
    ApproveTool, GatewayPermitted, GatewayVerify, Permitted, SeenTools, ToolRef, ToolState,
    ToolStates, ToolView, Verified,
};
use aim_domain::event::{Actor, AuditAction, Event, Outcome, Trail};
use aim_domain::human::Role;
use aim_domain::tool::{self, Approved, Definition, Tool};
use aim_enforce::pipeline::DecisionStore;
use aim_enforce::pipeline::Subject;
use aim_enforce::token::Agent;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::presented::{clean, presented};
use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, RequestContext};
use crate::state::AppState;
use crate::tokens::check::Source;

/// The most tools one report or one listing may hold.
const MAX_TOOLS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/tools", post(seen))
        .route("/v1/gateway/verify", post(verify))
        .route("/v1/gateway/permitted", post(permitted))
        .route("/v1/tools", get(list))
        .route("/v1/tools/{server}/{name}", get(show))
        .route("/v1/tools/{server}/{name}/approve", post(approve))
}

/// `{server}/{name}` in the path, both valid tool names.
#[derive(Debug)]
pub struct ToolPath(String, String);

impl<S: Send + Sync> FromRequestParts<S> for ToolPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((server, name)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::bad_request("invalid_path", "missing or malformed path parameter")
                })?;
        if !tool::valid_name(&server) || !tool::valid_name(&name) {
            return Err(ApiError::bad_request(
                "invalid_tool_name",
                "a server or tool name is 1-128 of A-Z a-z 0-9 _ - .",
            ));
        }
        Ok(Self(server, name))
    }
}

fn check_server(server: &str) -> Result<(), ApiError> {
    if tool::valid_name(server) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_tool_name",
        "a server name is 1-128 of A-Z a-z 0-9 _ - .",
    ))
}

fn too_many(n: usize) -> Result<(), ApiError> {
    if n <= MAX_TOOLS {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "too_many_tools",
        format!("at most {MAX_TOOLS} tools at once, not {n}"),
    ))
}

/// Records what a gateway saw of a server's tools and answers where each stands. A tool
/// whose name is not a valid tool name is left out of the answer: the gateway hides it.
#[utoipa::path(post, path = "/v1/gateway/tools", tag = "tools", request_body = SeenTools,
    responses((status = 200, body = ToolStates), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn seen(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    Body(body): Body<SeenTools>,
) -> Result<Json<ToolStates>, ApiError> {
    p.require_any(&[Role::Gateway, Role::Admin], "reporting a server's tools")?;
    check_server(&body.server)?;
    too_many(body.tools.len())?;
    let known: std::collections::BTreeMap<String, Tool> = s
        .store
        .list_tools(Some(&body.server))
        .await?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let mut tools = Vec::with_capacity(body.tools.len());
    for definition in &body.tools {
        let Some(name) = definition["name"].as_str().filter(|n| tool::valid_name(n)) else {
            continue;
        };
        let hash = tool::definition_hash(definition);
        let current = match known.get(name) {
            Some(t) if t.seen.hash == hash => t.clone(),
            before => {
                let seen = Definition {
                    hash: hash.clone(),
                    definition: tool::pinned(definition),
                    at: s.clock.now(),
                };
                record_seen(&s, &ctx, &p, &body.server, name, seen, before).await?
            }
        };
        tools.push(ToolState {
            name: name.to_owned(),
            state: current.state(),
            hash,
        });
    }
    Ok(Json(ToolStates { tools }))
}

/// Writes a new tool or a changed definition with its `tool.discovered` event; if another
/// gateway wrote first, what it wrote.
async fn record_seen(
    s: &AppState,
    ctx: &RequestContext,
    p: &HumanCaller,
    server: &str,
    name: &str,
    seen: Definition,
    before: Option<&Tool>,
) -> Result<Tool, ApiError> {
    let t = Tool {
        server: server.to_owned(),
        name: name.to_owned(),
        seen,
        approved: before.and_then(|b| b.approved.clone()),
    };
    let change = match before {
        None => "new",
        Some(_) => "changed",
    };
    let event = Event::new(
        s.clock.now(),
        p.actor(),
        AuditAction::ToolDiscovered,
        "tool",
        format!("{server}/{name}"),
    )
    .reason(change)
    .from_request(&ctx.id, &ctx.source)
    .detail(json!({
        "change": change,
        "hash": t.seen.hash,
        "previous_hash": before.map(|b| &b.seen.hash),
        "approved_hash": t.approved.as_ref().map(|a| &a.pinned.hash),
        "gateway": p.human.user_name,
    }));
    if s.store
        .put_tool(&t, before.map(|b| b.seen.hash.as_str()), &event)
        .await?
    {
        if change == "changed" {
            tracing::warn!(server, tool = name, hash = %t.seen.hash, "an MCP tool's definition changed: hidden until an admin approves it");
        }
        return Ok(t);
    }
    s.store
        .tool(server, name)
        .await?
        .ok_or_else(ApiError::internal)
}

/// The tool as stored, from the cache while the store's generation has not moved since it
/// was read (a definition seen or approved is a write that moves it).
async fn tool(
    s: &AppState,
    server: &str,
    name: &str,
) -> Result<Option<aim_domain::tool::Tool>, ApiError> {
    let key = format!("{server}/{name}");
    // Taken before the read: an entry read before a change is never used after it.
    let generation = s.store.generation().current();
    if let Some(found) = s.tools.get(&key, generation) {
        return Ok(found);
    }
    let found = s.store.tool(server, name).await?;
    s.tools.put(&key, found.clone(), generation);
    Ok(found)
}

/// Refuses a call unless the tool's definition the gateway saw is the pinned one. The
/// refusal is on the record.
pub(crate) async fn pinned(
    s: &AppState,
    ctx: &RequestContext,
    p: &HumanCaller,
    agent: &Agent,
    t: &ToolRef,
) -> Result<(), ApiError> {
    let found = tool(s, &t.server, &t.name).await?;
    if found.as_ref().is_some_and(|f| f.allows(t.hash.as_deref())) {
        return Ok(());
    }
    let why = match &found {
        None => "it has never been seen or approved",
        Some(f) if f.approved.is_none() => "it has never been approved",
        Some(_) => "its definition changed since an admin approved it",
    };
    let source = clean(&ctx.source, 64);
    let event = Event::new(
        s.clock.now(),
        Actor::identity(agent.identity),
        AuditAction::RequestRefused,
        "tool",
        format!("{}/{}", clean(&t.server, 128), clean(&t.name, 128)),
    )
    .denied()
    .from_request(&ctx.id, &source)
    .reason("tool_not_approved")
    .detail(json!({ "hash": t.hash.as_deref().map(|h| clean(h, 80)), "why": why, "gateway": p.human.user_name }))
    .trail(Trail {
        task_id: agent.task.to_string(),
        jti: agent.claims.jti.clone(),
        ..Trail::default()
    });
    s.refusals
        .record(&s.store, &source, "tool_not_approved", event)
        .await;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "tool_not_approved",
        format!(
            "tool {}/{} may not be called: {why}; an admin reviews it with `aim tool diff {}/{}`",
            t.server, t.name, t.server, t.name
        ),
    ))
}

/// Checks the token and proof an agent presented to a gateway with an MCP message that is
/// not a call, spends the proof and records the message (a `decision` allowing it).
#[utoipa::path(post, path = "/v1/gateway/verify", tag = "tools", request_body = GatewayVerify,
    responses((status = 200, body = Verified), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    Body(body): Body<GatewayVerify>,
) -> Result<Json<Verified>, ApiError> {
    p.require_any(&[Role::Gateway, Role::Admin], "verifying for a gateway")?;
    check_server(&body.server)?;
    let (agent, proof) = presented(
        &s,
        &body.token,
        body.proof.as_deref(),
        &body.method,
        &body.url,
    )
    .await?;
    let who = Subject::agent(&agent);
    let rpc = clean(&body.rpc, 64);
    let event = Event::new(
        s.clock.now(),
        who.actor.clone(),
        AuditAction::Decision,
        "mcp_server",
        clean(&body.server, 128),
    )
    .outcome(Outcome::Allow)
    .reason(rpc.clone())
    .from_request(&ctx.id, &clean(&ctx.source, 64))
    .detail(json!({ "action": rpc, "gateway": p.human.user_name }))
    .trail(who.trail.clone());
    let claims = proof.into_iter().map(|p| p.into_claim()).collect();
    if Source::of(&s).record(&event, claims).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "dpop_replayed",
            "this DPoP proof was already used",
        ));
    }
    Ok(Json(Verified {
        identity: agent.identity,
        task: agent.task,
        jti: agent.claims.jti.clone(),
        act: who.trail.act.clone(),
    }))
}

/// Which of the questions the identity could be allowed under its task: each weighed as a
/// decision would be (policies, grants, leases) without asking anyone or recording it.
#[utoipa::path(post, path = "/v1/gateway/permitted", tag = "tools", request_body = GatewayPermitted,
    responses((status = 200, body = Permitted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn permitted(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<GatewayPermitted>,
) -> Result<Json<Permitted>, ApiError> {
    p.require_any(&[Role::Gateway, Role::Admin], "listing for a gateway")?;
    too_many(body.questions.len())?;
    if body.questions.iter().any(foreign) {
        return Err(ApiError::bad_request(
            "principal_not_allowed",
            "the identity and task are given once, beside the questions; leave out principal, task_id and policies",
        ));
    }
    let named = AuthorizeBody {
        principal: Some(aim_api::authorize::PrincipalRef::Identity(body.identity)),
        task_id: Some(body.task),
        ..AuthorizeBody::default()
    };
    let who = super::authorize::named(&s, &p, &named).await?;
    let active = s.policies.active();
    let grants = s.decisions.grants();
    let source = Source::of(&s);
    let pipeline =
        super::authorize::pipeline(&s, &source, &active.engine, Some(active.version), &grants);
    let now = s.clock.now();
    let mut effects = Vec::with_capacity(body.questions.len());
    for q in &body.questions {
        let (decision, _) = pipeline
            .consider(&who, q, now)
            .await
            .map_err(ApiError::from)?;
        effects.push(decision.decision);
    }
    Ok(Json(Permitted { effects }))
}

/// A question that names its own principal, task or policies: given once, beside them.
fn foreign(q: &AuthorizeBody) -> bool {
    q.principal.is_some() || q.task_id.is_some() || q.policies.is_some()
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ToolQuery {
    /// Tools of this MCP server only.
    server: Option<String>,
}

/// Every tool gateways have seen, with what is pinned and where it stands.
#[utoipa::path(get, path = "/v1/tools", tag = "tools", params(ToolQuery),
    responses((status = 200, body = Vec<ToolView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    crate::extract::Query(q): crate::extract::Query<ToolQuery>,
) -> Result<Json<Vec<ToolView>>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading tools")?;
    if let Some(server) = &q.server {
        check_server(server)?;
    }
    let tools = s.store.list_tools(q.server.as_deref()).await?;
    Ok(Json(tools.into_iter().map(ToolView::from).collect()))
}

#[utoipa::path(get, path = "/v1/tools/{server}/{name}", tag = "tools",
    params(("server" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ToolView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    p: HumanCaller,
    ToolPath(server, name): ToolPath,
) -> Result<Json<ToolView>, ApiError> {
    // A gateway reads the pin to decide calls of the tool itself.
    p.require_any(
        &[Role::Admin, Role::Auditor, Role::Gateway],
        "reading tools",
    )?;
    let t = s
        .store
        .tool(&server, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("tool"))?;
    Ok(Json(t.into()))
}

/// Pins the definition last seen, if it is still the one with `hash` (the one the admin
/// reviewed): the tool may be listed and called.
#[utoipa::path(post, path = "/v1/tools/{server}/{name}/approve", tag = "tools", request_body = ApproveTool,
    params(("server" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ToolView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    ToolPath(server, name): ToolPath,
    Body(body): Body<ApproveTool>,
) -> Result<Json<ToolView>, ApiError> {
    p.require_any(&[Role::Admin], "approving a tool")?;
    let mut t = s
        .store
        .tool(&server, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("tool"))?;
    let changed = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "definition_changed",
            format!(
                "the definition seen now is not {}: review it again (`aim tool diff {server}/{name}`)",
                clean(&body.hash, 80)
            ),
        )
    };
    if t.seen.hash != body.hash {
        return Err(changed());
    }
    if t.allows(Some(&body.hash)) {
        return Ok(Json(t.into()));
    }
    let previous = t.approved.as_ref().map(|a| a.pinned.hash.clone());
    t.approved = Some(Approved {
        pinned: Definition {
            at: s.clock.now(),
            ..t.seen.clone()
        },
        by: p.human.id,
    });
    let event = Event::new(
        s.clock.now(),
        p.actor(),
        AuditAction::ToolApproved,
        "tool",
        format!("{server}/{name}"),
    )
    .from_request(&ctx.id, &ctx.source)
    .detail(json!({ "hash": t.seen.hash, "previous_hash": previous }));
    if !s.store.put_tool(&t, Some(&body.hash), &event).await? {
        return Err(changed());
    }
    Ok(Json(t.into()))
}
