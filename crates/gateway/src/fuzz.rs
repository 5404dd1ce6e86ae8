//! What the fuzz targets (`fuzz/`) drive: the gateway's own reading of what an agent sends
//! and of what an MCP server answers, through the same functions and in the same order as
//! a request, up to the point where aim would be asked. No aim, no network: a gateway is
//! built from a fixed configuration and every step that would leave the process is left
//! out.
//!
//! Besides "no panic", each step checks what the request path relies on:
//!
//! * a path that passes [`crate::canon::path`] has no segment two readers could read
//!   differently;
//! * a message whose routing headers pass at 2026-07-28 has an `Mcp-Method` equal to its
//!   body's method;
//! * a tool call's question names a valid tool and is the same when asked twice;
//! * an upstream answer that holds the response, rewritten, still holds exactly the
//!   rewritten response;
//! * a tool definition's canonical form is stable (hashing it twice, or its canonical form,
//!   gives one hash).
//!
//! A failed check panics: that is what a fuzzer reports.
//!
//! Cases are read from a text format a person can write and libFuzzer can mutate
//! ([`McpCase::read`], [`HttpCase::read`]); the seeds in `fuzz/seeds/` are such files, and
//! a test here checks that each reaches the step it is for.
#![allow(clippy::panic, clippy::expect_used)]

use std::net::SocketAddr;

use aim_domain::tool::canonical;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use axum::response::Response;
use serde_json::Value;

use crate::Gateway;
use crate::config::Config;
use crate::mcp::{Presented, rpc, tools};

const CONFIG: &str = r#"
listen = "127.0.0.1:1"
resource = "https://gw.example.com"
[aim]
url = "http://127.0.0.1:2"
credential_file = "CREDENTIAL"
[upstreams.crm]
url = "https://crm.example.com"
[upstreams.crm_mcp]
url = "https://mcp.example.com/mcp"
[[routes]]
upstream = "crm"
method = "POST"
path = "/crm/records/{id}"
action = "write"
resource = { system = "crm", id = "crm/records/{id}", attrs = { type = "record", sensitivity = "internal", subject = "body:/customer/id", region = "query:region" } }
[[routes]]
upstream = "crm"
method = "GET"
path = "/crm/files/{*rest}"
action = "read"
resource = { system = "crm", id = "crm/files/{rest}", attrs = { type = "file", sensitivity = "public" } }
[mcp.crm]
upstream = "crm_mcp"
path = "/mcp/crm"
allowed_origins = ["https://console.example.com"]
[[mcp.crm.tools]]
name = "update_record"
action = "write"
resource = { type = "Resource", system = "crm", id = "{id}", attrs = { type = "record", sensitivity = "confidential", subject = "body:/customer" } }
"#;

/// A gateway to fuzz against, and a runtime for the steps that are `async`.
#[derive(Debug)]
pub struct Harness {
    gateway: Gateway,
    runtime: tokio::runtime::Runtime,
}

/// One MCP request as an agent sends it, and the answer the server gives.
#[derive(Debug, Default)]
pub struct McpCase {
    pub headers: Headers,
    pub body: Vec<u8>,
    /// The server's answer in the chunks it arrives in.
    pub answer: Vec<Vec<u8>>,
    /// Whether the server answers with an event stream rather than JSON.
    pub sse: bool,
}

/// How far an MCP case got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct McpReached {
    /// Its routing headers matched its body.
    pub routed: bool,
    /// It was a tool call that came to a question for aim.
    pub question: bool,
    /// The server's answer held the response to it, and still did once rewritten.
    pub answered: bool,
}

/// One HTTP request to a REST route.
#[derive(Debug, Default)]
pub struct HttpCase {
    pub method: Vec<u8>,
    /// The request target as received: path and query.
    pub target: Vec<u8>,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Harness {
    pub fn new() -> Self {
        let credential = std::env::temp_dir().join(format!("aim-fuzz-{}", std::process::id()));
        std::fs::write(&credential, "fuzz").expect("writing the fuzz credential");
        // The gateway reads its credential at start and never again.
        let text = CONFIG.replace("CREDENTIAL", &credential.to_string_lossy());
        let config: Config = toml::from_str(&text).expect("the fuzz configuration parses");
        let checked = config.check().expect("the fuzz configuration is valid");
        let _ = std::fs::remove_file(&credential);
        Self {
            gateway: Gateway::new(checked).expect("the fuzz gateway starts"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime"),
        }
    }

    /// An MCP request read as `mcp::serve` reads it, then the server's answer as
    /// `tools/list` reads and rewrites it.
    pub fn mcp(&self, case: &McpCase) -> McpReached {
        let mut reached = McpReached::default();
        let g = &self.gateway;
        let m = &g.mcp[0];
        let Some(parts) = parts(Method::POST, b"/mcp/crm", &case.headers) else {
            return reached;
        };
        let _ = crate::mcp::origin(g, m, &parts);
        let Ok((token, proof)) = g.credentials(&parts.headers) else {
            return reached;
        };
        let _ = g.heard.revokes(&token);
        let presented = Presented {
            token,
            proof,
            url: format!("{}{}", g.resource, m.server.path),
            request_id: "fuzz",
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        };
        let Ok(msg) = rpc::parse(&case.body) else {
            return reached;
        };
        let routed = rpc::check_routing(&parts.headers, &msg);
        if routed.is_ok() && rpc::modern(&parts.headers) {
            let header = parts.headers.get("mcp-method").map(|v| v.as_bytes());
            assert_eq!(header, msg.method.as_deref().map(str::as_bytes));
        }
        if routed.is_err() {
            return reached;
        }
        reached.routed = true;
        if msg.method.as_deref() == Some("tools/call") {
            let first = tools::question(m, &parts, &msg, &presented);
            let again = tools::question(m, &parts, &msg, &presented);
            if let (Ok(a), Ok(b)) = (&first, &again) {
                reached.question = true;
                assert!(aim_domain::tool::valid_name(&a.tool));
                assert_eq!(a.args_hash, b.args_hash);
                assert_eq!(
                    serde_json::to_value(&a.question).ok(),
                    serde_json::to_value(&b.question).ok()
                );
            }
            let _ = tools::model_decision(&parts, &msg);
        }
        reached.answered = self.answer(case, &msg.id);
        reached
    }

    /// The server's answer to the message `id`, found, rewritten and found again.
    fn answer(&self, case: &McpCase, id: &Value) -> bool {
        let limit = 64 * 1024;
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = case
            .answer
            .iter()
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let content_type = if case.sse {
            "text/event-stream"
        } else {
            "application/json"
        };
        let response = Response::builder()
            .header("content-type", content_type)
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .expect("a response");
        let found = self.runtime.block_on(rpc::buffer(response, id, limit));
        let Ok(Ok((buffered, mut reply))) = found else {
            return false;
        };
        // As `tools::list` reads and rewrites a listing.
        let Ok(offered) = tools::offered(&reply) else {
            return false;
        };
        for tool in &offered {
            let once = canonical(tool);
            let reparsed: Value = serde_json::from_str(&once).expect("canonical JSON parses");
            assert_eq!(canonical(&reparsed), once);
        }
        tools::rewrite_listing(&mut reply, offered, true);
        let rewritten = buffered.finish(&reply);
        let again = self
            .runtime
            .block_on(rpc::buffer(rewritten, id, usize::MAX));
        match again {
            Ok(Ok((_, found))) => assert_eq!(found, reply),
            other => panic!("the rewritten answer lost its response: {other:?}"),
        }
        true
    }

    /// A REST request read as `proxy::prepare` reads it, up to the question aim is asked;
    /// whether it came to one.
    pub fn http(&self, case: &HttpCase) -> bool {
        let Ok(method) = Method::from_bytes(&case.method) else {
            return false;
        };
        let Some(parts) = parts(method, &case.target, &case.headers) else {
            return false;
        };
        if let Ok(path) = crate::canon::path(parts.uri.path()) {
            for s in &path.segments {
                assert!(s.is_ascii() && !s.contains(['/', '\\', ';']) && s != "." && s != "..");
            }
        }
        let body = Body::from(case.body.clone());
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let prepared =
            self.runtime
                .block_on(crate::proxy::prepare(&self.gateway, &parts, body, peer));
        let Ok((_, asked, _)) = prepared else {
            return false;
        };
        assert!(asked.url.starts_with(&self.gateway.resource));
        assert!(crate::canon::path(parts.uri.path()).is_ok());
        true
    }
}

/// `hay` split at the first `needle`.
fn split<'a>(hay: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = hay.windows(needle.len()).position(|w| w == needle)?;
    Some((&hay[..at], &hay[at + needle.len()..]))
}

/// Raw header lines: (name, value) as bytes.
type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// `name: value` lines, up to an empty line; what follows it.
fn head(text: &[u8]) -> (Headers, &[u8]) {
    let (lines, rest) = split(text, b"\n\n").unwrap_or((text, b""));
    let headers = lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match split(l, b":") {
            Some((k, v)) => (k.to_vec(), v.strip_prefix(b" ").unwrap_or(v).to_vec()),
            None => (l.to_vec(), Vec::new()),
        })
        .collect();
    (headers, rest)
}

impl McpCase {
    /// Header lines, an empty line, the body; then `\n=== json\n` or `\n=== sse\n` and the
    /// server's answer, its chunks separated by `\n~~~\n`.
    pub fn read(data: &[u8]) -> Self {
        let (headers, rest) = head(data);
        let (body, answer, sse) = match (split(rest, b"\n=== sse\n"), split(rest, b"\n=== json\n"))
        {
            (Some((b, a)), _) => (b, Some(a), true),
            (None, Some((b, a))) => (b, Some(a), false),
            (None, None) => (rest, None, false),
        };
        let mut chunks = Vec::new();
        let mut left = answer;
        while let Some(a) = left {
            match split(a, b"\n~~~\n") {
                Some((chunk, more)) => {
                    chunks.push(chunk.to_vec());
                    left = Some(more);
                }
                None => {
                    chunks.push(a.to_vec());
                    left = None;
                }
            }
        }
        Self {
            headers,
            body: body.to_vec(),
            answer: chunks,
            sse,
        }
    }
}

impl HttpCase {
    /// `METHOD target`, header lines, an empty line, the body.
    pub fn read(data: &[u8]) -> Self {
        let (first, rest) = split(data, b"\n").unwrap_or((data, b""));
        let (method, target) = split(first, b" ").unwrap_or((first, b"/"));
        let (headers, body) = head(rest);
        Self {
            method: method.to_vec(),
            target: target.to_vec(),
            headers,
            body: body.to_vec(),
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// A request's head from raw bytes, or `None` where hyper would have refused it already.
fn parts(
    method: Method,
    target: &[u8],
    headers: &[(Vec<u8>, Vec<u8>)],
) -> Option<axum::http::request::Parts> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name).ok()?;
        let value = HeaderValue::from_bytes(value).ok()?;
        map.append(name, value);
    }
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .body(())
        .ok()?;
    *request.headers_mut() = map;
    Some(request.into_parts().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each seed reaches the step it is for: the harness runs the request path, not a copy
    /// of it that refuses everything early.
    #[test]
    fn the_seeds_reach_the_steps_they_are_for() {
        let h = Harness::new();
        let reached: Vec<McpReached> = mcp_seeds().iter().map(|c| h.mcp(c)).collect();
        let all = McpReached {
            routed: true,
            question: true,
            answered: true,
        };
        let listed = McpReached {
            question: false,
            ..all
        };
        let not_answered = McpReached {
            answered: false,
            ..all
        };
        // The fourth: a listing whose result is a string, refused (it once made the
        // rewrite panic).
        let refused = McpReached {
            answered: false,
            ..listed
        };
        assert_eq!(reached, [all, listed, not_answered, refused]);
        let prepared: Vec<bool> = http_seeds().iter().map(|c| h.http(c)).collect();
        assert_eq!(prepared, [true, true, false]);
    }

    #[test]
    fn a_header_that_says_another_method_stops_at_routing() {
        let h = Harness::new();
        let mut case = mcp_seeds().remove(0);
        case.headers.retain(|(k, _)| k != b"mcp-method");
        case.headers
            .push((b"mcp-method".to_vec(), b"tools/list".to_vec()));
        assert_eq!(h.mcp(&case), McpReached::default());
    }

    /// The seed files of one fuzz target, in name order.
    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    fn mcp_seeds() -> Vec<McpCase> {
        seeds("mcp_request")
            .iter()
            .map(|s| McpCase::read(s))
            .collect()
    }

    fn http_seeds() -> Vec<HttpCase> {
        seeds("http_request")
            .iter()
            .map(|s| HttpCase::read(s))
            .collect()
    }
}
