//! The MCP wire as the gateway reads it: one JSON-RPC message per POST (batches refused),
//! the routing headers of the 2026-07-28 era checked against the body, answers the
//! gateway writes itself (errors, and tool results a model can read), and a buffered
//! upstream answer (JSON or an SSE stream) rewritten before it goes back.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Protocol versions without `initialize` and sessions, whose requests carry their method
/// and name in headers too.
pub const MODERN: &[&str] = &["2026-07-28"];
/// JSON-RPC: a routing header does not match the body.
pub const HEADER_MISMATCH: i64 = -32020;
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// The `_meta` key of the protocol version a 2026-07-28 request carries.
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// A JSON-RPC error the gateway answers itself, with its HTTP status.
#[derive(Debug)]
pub struct RpcError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub id: Value,
}

impl RpcError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>, id: &Value) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            id: id.clone(),
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// One JSON-RPC message as received.
#[derive(Debug)]
pub struct Message {
    pub value: Value,
    /// `null` for a notification.
    pub id: Value,
    /// `None` for a response (to a request the server made).
    pub method: Option<String>,
}

impl Message {
    pub fn params(&self) -> &Value {
        &self.value["params"]
    }
}

pub fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RpcError::new(
            StatusCode::BAD_REQUEST,
            PARSE_ERROR,
            format!("the body is not JSON: {e}"),
            &Value::Null,
        )
    })?;
    let bad = |m: &str| RpcError::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, m, &Value::Null);
    if value.is_array() {
        return Err(bad(
            "send one JSON-RPC message per request: batches are not accepted",
        ));
    }
    if value.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(bad("not a JSON-RPC 2.0 message"));
    }
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let method = match value.get("method") {
        None => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(bad("`method` is not a string")),
    };
    Ok(Message { value, id, method })
}

/// Whether the request is of the 2026-07-28 era (its `MCP-Protocol-Version` says so).
pub fn modern(headers: &HeaderMap) -> bool {
    headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| MODERN.contains(&v))
}

/// The body's member a method's `Mcp-Name` mirrors.
fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// `Mcp-Method` and `Mcp-Name` (and, at 2026-07-28, `MCP-Protocol-Version`) must say what
/// the body says: required at 2026-07-28, checked whenever present. A proxy, a load
/// balancer or the server routing on the headers must never see another request than
/// the one decided on.
pub fn check_routing(headers: &HeaderMap, msg: &Message) -> Result<(), RpcError> {
    let modern = modern(headers);
    let mismatch = |what: &str| {
        RpcError::new(
            StatusCode::BAD_REQUEST,
            HEADER_MISMATCH,
            format!("the {what} header does not match the request body"),
            &msg.id,
        )
    };
    let one = |name: &str| -> Result<Option<String>, RpcError> {
        let mut all = headers.get_all(name).iter();
        match (all.next(), all.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v.to_str().map_err(|_| mismatch(name))?.to_owned())),
            (Some(_), Some(_)) => Err(mismatch(name)),
        }
    };
    let method = one("mcp-method")?;
    if (modern || method.is_some()) && method.as_deref() != msg.method.as_deref() {
        return Err(mismatch("Mcp-Method"));
    }
    if let Some(key) = msg.method.as_deref().and_then(named_param) {
        let name = one("mcp-name")?;
        let body = msg.params()[key].as_str();
        if (modern || name.is_some())
            && name.as_deref().and_then(decode_header) != body.map(str::to_owned)
        {
            return Err(mismatch("Mcp-Name"));
        }
    }
    if modern
        && let Some(v) = msg.params()["_meta"][VERSION_META].as_str()
        && one("mcp-protocol-version")?.as_deref() != Some(v)
    {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    Ok(())
}

/// A header value as MCP encodes one that is not plain visible ASCII: `=?base64?...?=`.
/// A malformed encoding is `None`, so it never matches.
pub fn decode_header(v: &str) -> Option<String> {
    let Some(payload) = v
        .strip_prefix("=?base64?")
        .and_then(|p| p.strip_suffix("?="))
    else {
        return Some(v.to_owned());
    };
    let bytes = STANDARD.decode(payload).ok()?;
    // Only the canonical encoding: two spellings of one name are one too many.
    (STANDARD.encode(&bytes) == payload)
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

/// A tool result the gateway writes itself: the call did not reach the tool, and the text
/// says why in words a model can act on; `_meta` carries the same for code.
pub fn tool_result(id: &Value, modern: bool, text: &str, meta: Value) -> Response {
    let mut result = json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": meta,
    });
    if modern {
        result["resultType"] = json!("complete");
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// An upstream's answer read whole, with the JSON-RPC response in it to rewrite.
#[derive(Debug)]
pub struct Buffered {
    parts: axum::http::response::Parts,
    /// `None`: a JSON body; else the SSE events and which one holds the response.
    events: Option<(Vec<SseEvent>, usize)>,
}

/// Reads an upstream's answer (at most `limit` bytes) and finds the response to `id` in
/// it; `Ok(None)` if it holds none (an error status, say), with the answer as it was.
pub async fn buffer(
    response: Response,
    id: &Value,
    limit: usize,
) -> Result<Result<(Buffered, Value), Response>, String> {
    let (parts, body) = response.into_parts();
    let sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let bytes = if sse {
        until_answered(body, id, limit).await?
    } else {
        axum::body::to_bytes(body, limit)
            .await
            .map_err(|e| format!("reading the server's answer: {e}"))?
    };
    let text = String::from_utf8_lossy(&bytes);
    let found = if sse {
        let events = sse_events(&text);
        let at = events.iter().position(|e| {
            serde_json::from_str::<Value>(&data(e))
                .is_ok_and(|v| v["id"] == *id && v.get("result").is_some())
        });
        at.map(|at| {
            let msg = serde_json::from_str(&data(&events[at])).unwrap_or(Value::Null);
            (Some((events, at)), msg)
        })
    } else {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(|v| v["id"] == *id && v.get("result").is_some())
            .map(|v| (None, v))
    };
    Ok(match found {
        Some((events, msg)) => Ok((Buffered { parts, events }, msg)),
        None => Err(Response::from_parts(parts, Body::from(bytes))),
    })
}

/// An SSE answer read until it holds the response to `id` (or the stream ends): a server
/// that keeps the stream open after answering does not hold the listing up.
async fn until_answered(body: Body, id: &Value, limit: usize) -> Result<bytes::Bytes, String> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| format!("reading the server's answer: {e}"))?);
        if buf.len() > limit {
            return Err(format!("the server's answer is larger than {limit} bytes"));
        }
        let text = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
        let answered = text.rfind("\n\n").is_some_and(|end| {
            sse_events(&text[..end]).iter().any(|e| {
                serde_json::from_str::<Value>(&data(e)).is_ok_and(|v| {
                    v["id"] == *id && (v.get("result").is_some() || v.get("error").is_some())
                })
            })
        });
        if answered {
            break;
        }
    }
    Ok(bytes::Bytes::from(buf))
}

impl Buffered {
    /// The answer again, with `msg` in place of the response it held.
    pub fn finish(self, msg: &Value) -> Response {
        let mut parts = self.parts;
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = match self.events {
            None => msg.to_string(),
            Some((mut events, at)) => {
                events[at].retain(|(k, _)| k != "data");
                events[at].push(("data".into(), msg.to_string()));
                let mut out = String::new();
                for e in events {
                    for (k, v) in e {
                        out.push_str(&format!("{k}: {v}\n"));
                    }
                    out.push('\n');
                }
                out
            }
        };
        Response::from_parts(parts, Body::from(body))
    }
}

/// One server-sent event: its (field, value) lines.
type SseEvent = Vec<(String, String)>;

/// Server-sent events, comments dropped.
fn sse_events(text: &str) -> Vec<SseEvent> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with(':'))
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap_or((l, ""));
                    (k.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned())
                })
                .collect::<Vec<_>>()
        })
        .filter(|e| !e.is_empty())
        .collect()
}

fn data(event: &[(String, String)]) -> String {
    event
        .iter()
        .filter(|(k, _)| k == "data")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn msg(v: Value) -> Message {
        parse(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("{}", e.message))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap_or_else(|_| panic!("{v}")));
        }
        h
    }

    #[test]
    fn routing_headers_must_say_what_the_body_says() {
        let call = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "pay", "_meta": {VERSION_META: "2026-07-28"}}}));
        let ok = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "pay"),
        ]);
        assert!(check_routing(&ok, &call).is_ok());
        let encoded = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?cGF5?="),
        ]);
        assert!(check_routing(&encoded, &call).is_ok());
        for bad in [
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "read"),
            ]),
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
                ("mcp-name", "pay"),
            ]),
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ]),
            headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-name", "pay")]),
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "pay"),
                ("mcp-name", "pay"),
            ]),
            // Not canonical base64 for "pay".
            headers(&[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?cGF5=?="),
            ]),
            // Older era, but a header that is there must match too.
            headers(&[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/list"),
            ]),
        ] {
            let e = check_routing(&bad, &call)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} passed"));
            assert_eq!(
                (e.code, e.status),
                (HEADER_MISMATCH, StatusCode::BAD_REQUEST)
            );
            assert_eq!(e.id, json!(1));
        }
        let mut other_version = call.value.clone();
        other_version["params"]["_meta"][VERSION_META] = json!("2026-99-99");
        assert!(check_routing(&ok, &msg(other_version)).is_err());
        // The handshake era without routing headers is as it always was.
        assert!(check_routing(&headers(&[("mcp-protocol-version", "2025-11-25")]), &call).is_ok());
    }

    #[test]
    fn batches_and_non_json_rpc_are_refused() {
        for body in [
            &b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]"[..],
            b"{\"id\":1}",
            b"{",
            b"{\"jsonrpc\":\"2.0\",\"method\":7}",
        ] {
            let e = parse(body)
                .err()
                .unwrap_or_else(|| panic!("{body:?} parsed"));
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }

    #[tokio::test]
    async fn a_stream_kept_open_after_the_answer_does_not_hold_the_listing() {
        let answer =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[]}}\n\n";
        let open =
            futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(answer))])
                .chain(futures_util::stream::pending());
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(open))
            .unwrap_or_else(|e| panic!("{e}"));
        let found = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            buffer(response, &json!(5), 1 << 20),
        )
        .await
        .unwrap_or_else(|_| panic!("the listing waited for the stream to end"));
        assert!(matches!(found, Ok(Ok(_))));
    }

    #[tokio::test]
    async fn an_sse_answer_is_rewritten_in_place() {
        let text = ": ping\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\nid: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[1,2]}}\n\n";
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from(text))
            .unwrap_or_else(|e| panic!("{e}"));
        let Ok(Ok((b, mut m))) = buffer(response, &json!(3), 1 << 20).await else {
            panic!("no response found");
        };
        m["result"]["tools"] = json!([1]);
        let out = axum::body::to_bytes(b.finish(&m).into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"),
            "{out}"
        );
        assert!(out.contains("event: message\nid: 7\ndata: {\"id\":3,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[1]}}\n\n")
            || out.contains("\"tools\":[1]"), "{out}");
        assert!(!out.contains("[1,2]"));
    }
}
