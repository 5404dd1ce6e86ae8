//! What an enforcement gateway asks of aim. `POST /v1/gateway/authorize`: the gateway hands
//! over the token and DPoP proof an agent presented to it, the request they were made for
//! and the question the request comes to; aim checks the token for the gateway's audience
//! (RFC 8707) and the proof for the gateway's URL, decides with the token's task in view,
//! and answers once the decision, with the proof spent, is durable. The gateway forwards
//! nothing it was not answered `allow` for. `POST /v1/gateway/refusals`: a request the
//! gateway refused on its own, for the record. `GET /v1/gateway/feed`: the revocation list
//! as it grows, with a heartbeat each second; `POST /v1/gateway/acks`: what the gateway
//! applied of it (see [`crate::feed`]).
//!
//! Only a `gateway` credential reaches these routes (and an admin's, to test one).

use aim_api::gateway::{
    Ack, GatewayAuthorize, GatewayCall, GatewayCalls, GatewayDecision, GatewayRefusal,
};
use aim_domain::event::{AuditAction, Event};
use aim_domain::human::Role;
use aim_enforce::pipeline::{Origin, Subject};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, RequestContext};
use crate::state::AppState;
use crate::tokens::check::Source;

use super::presented::{clean, presented};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/gateway/authorize", post(authorize))
        .route("/v1/gateway/refusals", post(refusal))
        .route("/v1/gateway/feed", axum::routing::get(feed))
        .route("/v1/gateway/acks", post(ack))
        .route("/v1/gateway/calls", post(call))
}

/// Decides an agent's request to a gateway; the answer is on the record before it is sent.
#[utoipa::path(post, path = "/v1/gateway/authorize", tag = "policies", request_body = GatewayAuthorize,
    responses((status = 200, body = GatewayDecision), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn authorize(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    Body(mut body): Body<GatewayAuthorize>,
) -> Result<Json<GatewayDecision>, ApiError> {
    p.require_any(&[Role::Gateway, Role::Admin], "deciding for a gateway")?;
    let q = &body.question;
    if q.principal.is_some() || q.task_id.is_some() || q.policies.is_some() {
        return Err(ApiError::bad_request(
            "principal_not_allowed",
            "the token says who asks and under which task; leave out principal, task_id and policies",
        ));
    }
    let now = s.clock.now();
    let (agent, proof) = presented(
        &s,
        &body.token,
        body.proof.as_deref(),
        &body.method,
        &body.url,
    )
    .await?;
    if let Some(tool) = &body.tool {
        super::tools::pinned(&s, &ctx, &p, &agent, tool).await?;
    }
    let who = Subject::agent(&agent);
    let active = s.policies.active();
    let grants = s.decisions.grants();
    let source = Source::of(&s);
    let pipeline =
        super::authorize::pipeline(&s, &source, &active.engine, Some(active.version), &grants);
    // The agent's address is the one the gateway saw.
    let address = body.question.call.ip.clone().unwrap_or_default();
    body.question.call.ip = (!address.is_empty()).then(|| address.clone());
    let origin = Origin {
        request_id: &ctx.id,
        source: &address,
    };
    let started = std::time::Instant::now();
    let ruled = pipeline
        .rule(&who, &body.question, origin, proof, now)
        .await?;
    s.metrics
        .decided("gateway", ruled.answer.decision.decision, started.elapsed());
    crate::behaviour::act::after(&s, &ruled, &who.trail, &ctx.id, &address).await?;
    super::authorize::announce(&s, ruled.requested);
    Ok(Json(GatewayDecision {
        identity: agent.identity,
        task: agent.task,
        jti: agent.claims.jti.clone(),
        act: who.trail.act.clone(),
        answer: ruled.answer,
    }))
}

/// Records a request the gateway refused before it could ask (no token, a path that is
/// not canonical, an unknown route). Refusals from one address are summarised when they
/// flood, as aim's own are.
#[utoipa::path(post, path = "/v1/gateway/refusals", tag = "policies", request_body = GatewayRefusal,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn refusal(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    Body(body): Body<GatewayRefusal>,
) -> Result<StatusCode, ApiError> {
    p.require_any(
        &[Role::Gateway, Role::Admin],
        "recording a gateway's refusal",
    )?;
    let (method, path, code) = (
        clean(&body.method, 16),
        clean(&body.path, 256),
        clean(&body.code, 64),
    );
    let source = clean(body.ip.as_deref().unwrap_or_default(), 64);
    let event = Event::new(
        s.clock.now(),
        p.actor(),
        AuditAction::RequestRefused,
        "gateway_request",
        format!("{method} {path}"),
    )
    .denied()
    .from_request(&ctx.id, &source)
    .reason(code.clone())
    .detail(
        serde_json::json!({ "status": body.status, "code": code, "gateway": p.human.user_name }),
    );
    s.refusals.record(&s.store, &source, &code, event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `?since=EPOCH`: entries after it first (by default, only what comes from now on).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct FeedQuery {
    since: Option<i64>,
}

/// Server-sent events: `hello` with the epoch it starts from, then each revocation
/// (`event: revocation`, its epoch as the id) as this replica's reader sees it, and a
/// `heartbeat` carrying the newest epoch each second, with the versions of the policy set
/// and grants in force here (`GET /v1/gateway/state`). A gateway that misses heartbeats
/// knows it is not hearing from aim. Resumable with `Last-Event-ID`.
#[utoipa::path(get, path = "/v1/gateway/feed", tag = "policies", params(FeedQuery),
    responses((status = 200, description = "text/event-stream"), (status = 403, body = ErrorBody)))]
pub async fn feed(
    State(s): State<AppState>,
    p: HumanCaller,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<FeedQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    use axum::response::sse::{Event as Sse, Sse as Stream};
    use std::collections::VecDeque;
    p.require_any(&[Role::Gateway, Role::Admin], "following the gateway feed")?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    // Subscribed before the backlog is read, so nothing falls between the two.
    let rx = s.feed.subscribe();
    let start = match resume.or(q.since) {
        Some(e) => e.max(0),
        None => s.store.latest_epoch().await?,
    };
    let hello = Sse::default()
        .event("hello")
        .data(serde_json::json!({ "epoch": start }).to_string());
    let mut tick = tokio::time::interval(crate::feed::HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (s, rx, start, VecDeque::from([hello]), tick, true);
    let events = futures_util::stream::unfold(
        state,
        |(s, mut rx, mut sent, mut pending, mut tick, mut behind)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(e),
                        (s, rx, sent, pending, tick, behind),
                    ));
                }
                if behind {
                    // The backlog (or what a lagging subscriber missed), from the store.
                    match s.store.revocations(sent, 500).await {
                        Ok(batch) => {
                            behind = batch.len() == 500;
                            for r in batch {
                                sent = r.epoch;
                                pending.push_back(revocation_event(&r));
                            }
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "gateway feed: store failed; closing");
                            return None;
                        }
                    }
                }
                tokio::select! {
                    got = rx.recv() => match got {
                        Ok(r) if r.epoch > sent => {
                            sent = r.epoch;
                            pending.push_back(revocation_event(&r));
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => behind = true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => {
                        let epoch = sent.max(s.feed.epoch());
                        // What a gateway deciding by itself decides with, by version.
                        let beat = serde_json::json!({
                            "epoch": epoch,
                            "policy_version": s.policies.active().version,
                            "grants_revision": s.decisions.grants().revision,
                        });
                        pending.push_back(Sse::default().event("heartbeat").data(beat.to_string()));
                    }
                }
            }
        },
    );
    Ok(Stream::new(events))
}

fn revocation_event(r: &aim_domain::agent_key::Revocation) -> axum::response::sse::Event {
    axum::response::sse::Event::default()
        .event("revocation")
        .id(r.epoch.to_string())
        .json_data(r)
        .unwrap_or_else(|_| axum::response::sse::Event::default().comment("unencodable entry"))
}

/// The gateway applied the revocation list up to `epoch` (and is alive): what a lock
/// waits for.
#[utoipa::path(post, path = "/v1/gateway/acks", tag = "policies", request_body = Ack,
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn ack(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<Ack>,
) -> Result<StatusCode, ApiError> {
    p.require_any(&[Role::Gateway], "acknowledging the revocation feed")?;
    s.store
        .gateway_ack(&p.human.id.to_string(), body.epoch, s.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records calls the gateway forwarded (their decisions are on the record already): the
/// upstream's status and latency, and why the agent says it made each, under the token and
/// task that made it (`aim audit trace TASK` shows them). One call, or several at once.
#[utoipa::path(post, path = "/v1/gateway/calls", tag = "policies", request_body = GatewayCall,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn call(
    State(s): State<AppState>,
    ctx: RequestContext,
    p: HumanCaller,
    Body(calls): Body<GatewayCalls>,
) -> Result<StatusCode, ApiError> {
    p.require_any(&[Role::Gateway], "recording a gateway's call")?;
    let calls = match calls {
        GatewayCalls::One(c) => vec![*c],
        GatewayCalls::Many(v) => v,
    };
    if calls.len() > 1000 {
        return Err(ApiError::bad_request(
            "too_many_calls",
            "at most 1000 calls at once",
        ));
    }
    let now = s.clock.now();
    let events: Vec<Event> = calls.iter().map(|c| call_event(c, &ctx, &p, now)).collect();
    // Carried: written with the decisions being written anyway (one durable batch, no
    // commit of their own), or after at most 20 ms.
    let written =
        futures_util::future::join_all(events.iter().map(|e| s.store.append_event_carried(e)))
            .await;
    for w in written {
        w?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The `tool.called` record of one call.
fn call_event(
    c: &GatewayCall,
    ctx: &RequestContext,
    p: &HumanCaller,
    now: aim_domain::time::Timestamp,
) -> Event {
    let request_id = c
        .request_id
        .as_deref()
        .map_or_else(|| ctx.id.clone(), |r| clean(r, 64));
    Event::new(
        now,
        aim_domain::event::Actor::identity(c.identity),
        AuditAction::ToolCalled,
        "upstream",
        clean(&c.upstream, 128),
    )
    .from_request(&request_id, &clean(c.ip.as_deref().unwrap_or_default(), 64))
    .detail(serde_json::json!({
        "action": clean(&c.action, 128),
        "resource": clean(&c.resource, 512),
        "method": clean(&c.method, 16),
        "path": clean(&c.path, 512),
        "status": c.status,
        "micros": c.micros,
        "model_decision": c.model_decision.as_deref().map(|m| clean(m, 1000)),
        "gateway": p.human.user_name,
    }))
    .trail(aim_domain::event::Trail {
        task_id: c.task.to_string(),
        jti: clean(&c.jti, 64),
        act: c.act.iter().map(|a| clean(a, 256)).collect(),
        ..aim_domain::event::Trail::default()
    })
}
