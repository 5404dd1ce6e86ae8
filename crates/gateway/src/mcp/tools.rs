//! `tools/list` filtered per caller, and `tools/call` decided.
//!
//! A listing shows a tool only if its definition is the one an admin pinned and the
//! caller may `call_tool` it in its task (`allow`, or `approval_required`: a call will
//! ask a human); the result is marked private to the caller. A call is decided with the
//! tool's own question (by default `call_tool` on `Tool::"<server>/<tool>"`), its
//! arguments' hash (an approval is for exactly these arguments) and its top-level scalar
//! arguments as the resource's tags (`resource.getTag("arg.amount")`), and only if the
//! definition this gateway last listed is the pinned one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aim_api::authorize::{AuthorizeBody, AuthorizeResponse};
use aim_api::gateway::{GatewayAuthorize, GatewayCall};
use aim_api::tools::{GatewayPermitted, SeenTools, ToolRef};
use aim_domain::decision::{Call, Effect, Target};
use aim_domain::ids::ApprovalId;
use aim_domain::tool::{PinState, canonical, valid_name};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::rpc::{self, RpcError};
use super::{Mcp, Out, Presented, forward, verify};
use crate::Gateway;
use crate::proxy::{Refusal, hex};

/// How long an approval asked for is remembered for the same call.
const ASKED_FOR: Duration = Duration::from_secs(24 * 3600);
/// The most top-level arguments passed to policies as tags, and their longest value.
const MAX_ARG_TAGS: usize = 32;
const MAX_ARG_TAG_LEN: usize = 256;

pub(super) async fn list(
    g: &Gateway,
    m: &Mcp,
    parts: &Parts,
    msg: &rpc::Message,
    body: bytes::Bytes,
    p: &Presented<'_>,
) -> Result<Response, Out> {
    let who = verify(g, m, &parts.method, p, "tools/list").await?;
    let answer = forward(g, m, parts, body, p, &who).await?;
    let (buffered, mut reply) = match rpc::buffer(answer, &msg.id, g.max_body_bytes).await {
        Ok(Ok(found)) => found,
        // No result to filter (an error): passed on as it is.
        Ok(Err(as_is)) => return Ok(as_is),
        Err(e) => {
            return Err(Refusal::new(StatusCode::BAD_GATEWAY, "upstream_unreadable", e).into());
        }
    };
    let offered = offered(&reply)?;
    let asking = Instant::now();
    let seen = SeenTools {
        server: m.server.name.clone(),
        tools: offered.clone(),
    };
    let states = g
        .aim
        .gateway_tools(&seen, p.request_id)
        .await
        .map_err(|e| g.aim_refused(e))?;
    let pinned: BTreeMap<String, String> = states
        .tools
        .iter()
        .filter(|t| t.state == PinState::Approved)
        .map(|t| (t.name.clone(), t.hash.clone()))
        .collect();
    if let Ok(mut last) = m.seen.lock() {
        for t in &states.tools {
            last.insert(t.name.clone(), t.hash.clone());
        }
    }
    let candidates: Vec<&Value> = offered
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| pinned.contains_key(n)))
        .collect();
    let questions = candidates
        .iter()
        .map(|t| listing_question(m, t["name"].as_str().unwrap_or_default()))
        .collect();
    let permitted = g
        .aim
        .gateway_permitted(
            &GatewayPermitted {
                identity: who.identity,
                task: who.task,
                questions,
            },
            p.request_id,
        )
        .await
        .map_err(|e| g.aim_refused(e))?;
    g.metrics.decided("list", asking.elapsed());
    let usable: Vec<Value> = candidates
        .into_iter()
        .zip(&permitted.effects)
        .filter(|(_, e)| **e != Effect::Deny)
        .map(|(t, _)| t.clone())
        .collect();
    rewrite_listing(&mut reply, usable, rpc::modern(&parts.headers));
    Ok(buffered.finish(&reply))
}

/// The tools a server's listing offers; refused (502) unless its result is an object, the
/// only shape a listing has (found by fuzzing: a string result made the rewrite panic).
pub(crate) fn offered(reply: &Value) -> Result<Vec<Value>, Refusal> {
    let Some(result) = reply["result"].as_object() else {
        return Err(Refusal::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unreadable",
            "the server answered tools/list with a result that is not an object",
        ));
    };
    Ok(result
        .get("tools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The listing with only the `usable` tools, marked private to the caller at 2026-07-28
/// (filtered for this caller: never to be shared with another).
pub(crate) fn rewrite_listing(reply: &mut Value, usable: Vec<Value>, modern: bool) {
    if let Some(result) = reply.get_mut("result").and_then(Value::as_object_mut) {
        result.insert("tools".into(), Value::Array(usable));
        if modern {
            result.insert("cacheScope".into(), json!("private"));
        }
    }
}

/// Whether the caller may use a tool at all: `call_tool` on the tool itself.
fn listing_question(m: &Mcp, tool: &str) -> AuthorizeBody {
    AuthorizeBody {
        action: "call_tool".into(),
        resource: Target {
            kind: "Tool".into(),
            id: format!("{}/{tool}", m.server.name),
            system: m.server.system.clone(),
            attrs: serde_json::Map::from_iter([("name".to_owned(), json!(tool))]),
            tags: BTreeMap::new(),
        },
        ..AuthorizeBody::default()
    }
}

/// A call, its question, and the approval it carries.
pub(crate) struct Asked {
    pub(crate) tool: String,
    pub(crate) args_hash: String,
    /// (task, tool, arguments' hash): where an approval asked for is remembered.
    key: Option<super::CallKey>,
    pub(crate) question: AuthorizeBody,
    pub(crate) audit: crate::decide::Audit,
}

pub(super) async fn call(
    g: &Gateway,
    m: &Mcp,
    parts: &Parts,
    msg: &rpc::Message,
    body: bytes::Bytes,
    p: &Presented<'_>,
) -> Result<Response, Out> {
    let modern = rpc::modern(&parts.headers);
    let asked = match question(m, parts, msg, p) {
        Ok(a) => a,
        Err(e) => return Err(super::rpc_refused(g, parts, p, e).await),
    };
    let hash = m.seen.lock().ok().and_then(|s| s.get(&asked.tool).cloned());
    let request = GatewayAuthorize {
        token: p.token.clone(),
        proof: p.proof.clone(),
        method: parts.method.as_str().to_owned(),
        url: p.url.clone(),
        question: asked.question.clone(),
        tool: Some(ToolRef {
            server: m.server.name.clone(),
            name: asked.tool.clone(),
            hash,
        }),
    };
    let decided = g.decide(&request, p.request_id, asked.audit).await;
    let decided = match decided {
        Ok(d) => d,
        Err(aim_client::ClientError::Api {
            status: 403,
            code,
            message,
        }) if code == "tool_not_approved" => {
            let text =
                format!("This tool cannot be used now: {message}. Do not retry; tell the user.");
            return Ok(rpc::tool_result(
                &msg.id,
                modern,
                &text,
                json!({ "aim/code": code }),
            ));
        }
        Err(e) => return Err(g.aim_refused(e).into()),
    };
    let answer = &decided.answer;
    if answer.decision.decision != Effect::Allow {
        return Ok(refused(m, msg, modern, answer, &asked));
    }
    if let (Some(key), Ok(mut remembered)) = (&asked.key, m.asked.lock()) {
        // Spent: the approval lets exactly one call through.
        remembered.remove(key);
    }
    let who = aim_api::tools::Verified {
        identity: decided.identity,
        task: decided.task,
        jti: decided.jti.clone(),
        act: decided.act.clone(),
    };
    let started = Instant::now();
    let forwarded = forward(g, m, parts, body, p, &who).await;
    let status = match &forwarded {
        Ok(r) => r.status().as_u16(),
        Err(r) => r.status().as_u16(),
    };
    let record = GatewayCall {
        identity: decided.identity,
        task: decided.task,
        jti: decided.jti,
        act: decided.act,
        action: asked.question.action,
        resource: asked.question.resource.id,
        method: "tools/call".into(),
        path: format!("{}/{}", m.server.name, asked.tool),
        upstream: g.upstreams[m.server.upstream].upstream.name.clone(),
        status,
        micros: started.elapsed().as_micros() as u64,
        model_decision: model_decision(parts, msg),
        ip: Some(p.peer.ip().to_string()),
        request_id: None,
    };
    g.record_call(record, p.request_id);
    Ok(forwarded?)
}

/// The question a call comes to.
pub(crate) fn question(
    m: &Mcp,
    parts: &Parts,
    msg: &rpc::Message,
    p: &Presented<'_>,
) -> Result<Asked, RpcError> {
    let invalid =
        |message: String| RpcError::new(StatusCode::OK, rpc::INVALID_PARAMS, message, &msg.id);
    let params = msg.params();
    let Some(tool) = params["name"].as_str().filter(|n| valid_name(n)) else {
        return Err(invalid(
            "params.name must name a tool (1-128 of A-Z a-z 0-9 _ - .)".into(),
        ));
    };
    let arguments = match &params["arguments"] {
        Value::Null => json!({}),
        Value::Object(_) => params["arguments"].clone(),
        _ => return Err(invalid("params.arguments must be an object".into())),
    };
    let route = m.server.route(tool);
    let scalars: BTreeMap<String, String> = arguments
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(n) => Some((k.clone(), n.to_string())),
            Value::Bool(b) => Some((k.clone(), b.to_string())),
            _ => None,
        })
        .collect();
    let mut target = route
        .target(&scalars, None, arguments.to_string().as_bytes())
        .map_err(|e| invalid(format!("the call of {tool} cannot be decided: {e}")))?;
    if matches!(target.kind.as_str(), "Tool" | "Resource") {
        target.tags = scalars
            .iter()
            .filter(|(_, v)| v.len() <= MAX_ARG_TAG_LEN)
            .take(MAX_ARG_TAGS)
            .map(|(k, v)| (format!("arg.{k}"), v.clone()))
            .collect();
    }
    let args_hash = hex(&Sha256::digest(canonical(&arguments).as_bytes()));
    let key = crate::feed::task_of(&p.token).map(|task| (task, tool.to_owned(), args_hash.clone()));
    let approval_id = approval(m, parts, msg, key.as_ref())
        .map_err(|_| invalid("_meta[\"aim/approval_id\"] is not an approval id".into()))?;
    let question = AuthorizeBody {
        action: route.action.clone(),
        resource: target,
        call: Call {
            method: Some("tools/call".into()),
            path: Some(format!("{}/{tool}", m.server.name)),
            ip: Some(p.peer.ip().to_string()),
            args_hash: Some(args_hash.clone()),
        },
        approval_id,
        ..AuthorizeBody::default()
    };
    Ok(Asked {
        tool: tool.to_owned(),
        args_hash,
        key,
        question,
        audit: route.audit,
    })
}

/// The approval a call carries: `Aim-Approval-Id`, `_meta["aim/approval_id"]`, or the one
/// this gateway saw asked for the same call.
fn approval(
    m: &Mcp,
    parts: &Parts,
    msg: &rpc::Message,
    key: Option<&super::CallKey>,
) -> Result<Option<ApprovalId>, ()> {
    let given = parts
        .headers
        .get("aim-approval-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| msg.params()["_meta"]["aim/approval_id"].as_str());
    if let Some(id) = given {
        return ApprovalId::parse(id).map(Some).map_err(|_| ());
    }
    let remembered = m.asked.lock().ok().and_then(|mut asked| {
        asked.retain(|_, (_, at)| at.elapsed() < ASKED_FOR);
        key.and_then(|k| asked.get(k).map(|(id, _)| *id))
    });
    Ok(remembered)
}

/// A call aim did not allow, as a tool result the model can read and act on.
fn refused(
    m: &Mcp,
    msg: &rpc::Message,
    modern: bool,
    answer: &AuthorizeResponse,
    asked: &Asked,
) -> Response {
    let amended = &answer.amended;
    let code = amended
        .code
        .clone()
        .unwrap_or_else(|| answer.decision.decision.as_str().to_owned());
    let text = match (answer.decision.decision, amended.approval_id) {
        (Effect::ApprovalRequired, Some(id)) => {
            if let (Some(key), Ok(mut remembered)) = (&asked.key, m.asked.lock()) {
                remembered.insert(key.clone(), (id, Instant::now()));
            }
            format!(
                "This call needs a human's approval (approval {id}); it was not made. Tell the user it waits for approval {id}. Once it is approved, make exactly the same call again (same arguments): it will go through once."
            )
        }
        _ if code == "conflict_of_authority" => {
            "This call was not made: another agent holds the lease on this record. Try again later or ask the user.".to_owned()
        }
        _ => format!(
            "This call was denied by policy and was not made ({code}). Do not retry it; tell the user what you were trying to do."
        ),
    };
    let meta = json!({
        "aim/code": code,
        "aim/approval_id": amended.approval_id,
        "aim/args_hash": asked.args_hash,
        "aim/decision": answer,
    });
    rpc::tool_result(&msg.id, modern, &text, meta)
}

/// Why the agent says it made the call: `Aim-Model-Decision`, or `_meta["aim/model_decision"]`.
pub(crate) fn model_decision(parts: &Parts, msg: &rpc::Message) -> Option<String> {
    let header = parts
        .headers
        .get("aim-model-decision")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    header
        .or_else(|| {
            msg.params()["_meta"]["aim/model_decision"]
                .as_str()
                .map(str::to_owned)
        })
        .map(|s| s.chars().take(1000).collect())
}
