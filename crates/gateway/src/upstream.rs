//! Calling an upstream: one HTTP client per upstream, whose resolver refuses addresses the
//! upstream may not reach ([`crate::net`]), which never follows a redirect and never uses
//! a proxy from the environment; the request leaves with the gateway's credential for that
//! upstream and without anything the agent authenticated with.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use reqwest::Url;

use crate::config::Upstream;
use crate::net::Guarded;

/// An upstream and its client.
#[derive(Debug)]
pub struct Client {
    pub upstream: Upstream,
    http: reqwest::Client,
    /// Reads the upstream's credential from aim, when it is kept there.
    aim: aim_client::Client,
    /// Reads it from Vault or OpenBao (not through the upstream's resolver).
    vault: reqwest::Client,
}

/// Why an upstream gave no answer the agent may see.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("the upstream {0} could not be reached: {1}")]
    Unreachable(String, String),
    #[error("the upstream {0} did not answer in time")]
    Timeout(String),
    #[error(
        "the upstream {name} redirected to {location}, another origin; redirects are not followed or passed on"
    )]
    Redirect { name: String, location: String },
    #[error("{0}; nothing was forwarded")]
    Credential(crate::credential::Unavailable),
}

impl Failed {
    pub fn status(&self) -> StatusCode {
        match self {
            Failed::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failed::Credential(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Failed::Unreachable(..) => "upstream_unreachable",
            Failed::Timeout(_) => "upstream_timeout",
            Failed::Redirect { .. } => "upstream_redirect_refused",
            Failed::Credential(_) => "upstream_credential_unavailable",
        }
    }
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1), and those the
/// agent authenticates to the gateway with: none of them is forwarded either way.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "dpop",
    "cookie",
    "aim-approval-id",
    "aim-model-decision",
];

/// Whether the gateway sets (or drops) this header itself, so an agent's value for it is
/// never passed on and an upstream credential may not use its name.
pub fn is_reserved(name: &HeaderName) -> bool {
    let n = name.as_str();
    DROPPED.contains(&n) || n.starts_with("x-aim-") || n == "x-request-id" || n == "forwarded"
}

impl Client {
    pub fn new(upstream: Upstream, aim: aim_client::Client) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(Guarded {
                allow: Arc::new(upstream.allow.clone()),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_millis(upstream.timeout_ms))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("upstream {}: {e}", upstream.name))?;
        let vault = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("upstream {}: {e}", upstream.name))?;
        Ok(Self {
            upstream,
            http,
            aim,
            vault,
        })
    }

    /// The upstream URL for a request path (already checked canonical) and query.
    pub fn url(&self, path: &str, query: Option<&str>) -> Url {
        let path = match &self.upstream.strip_prefix {
            Some(prefix) => path
                .strip_prefix(prefix.trim_end_matches('/'))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .unwrap_or(path),
            None => path,
        };
        let path = if path.is_empty() { "/" } else { path };
        let mut url = self.upstream.url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url.set_query(query);
        url
    }

    /// Sends the request on and returns the upstream's answer as it streams.
    pub async fn forward(
        &self,
        method: Method,
        url: Url,
        incoming: &HeaderMap,
        added: &[(HeaderName, HeaderValue)],
        body: bytes::Bytes,
        task: crate::credential::ForTask<'_>,
    ) -> Result<Response<Body>, Failed> {
        let name = &self.upstream.name;
        let mut headers = reqwest::header::HeaderMap::with_capacity(incoming.len() + 4);
        for (k, v) in incoming {
            let credential = self
                .upstream
                .credential
                .as_ref()
                .is_some_and(|c| c.name == *k);
            if !is_reserved(k) && !credential && !connection_listed(incoming, k) {
                headers.append(k.clone(), v.clone());
            }
        }
        for (k, v) in added {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(c) = &self.upstream.credential {
            let value = c
                .value(&self.aim, &self.vault, Some(task))
                .await
                .map_err(Failed::Credential)?;
            headers.insert(c.name.clone(), value);
        }
        let sent = self
            .http
            .request(method, url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Failed::Timeout(name.clone())
                } else {
                    Failed::Unreachable(name.clone(), chain(&e))
                }
            })?;
        if sent.status().is_redirection()
            && let Some(location) = sent.headers().get(reqwest::header::LOCATION)
        {
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            let same = sent
                .url()
                .join(&location)
                .is_ok_and(|to| to.origin() == sent.url().origin());
            if !same {
                return Err(Failed::Redirect {
                    name: name.clone(),
                    location,
                });
            }
        }
        let mut response = Response::builder().status(sent.status());
        if let Some(out) = response.headers_mut() {
            for (k, v) in sent.headers() {
                if !DROPPED.contains(&k.as_str()) && !connection_listed(sent.headers(), k) {
                    out.append(k.clone(), v.clone());
                }
            }
        }
        response
            .body(Body::from_stream(sent.bytes_stream()))
            .map_err(|e| Failed::Unreachable(name.clone(), e.to_string()))
    }
}

impl Client {
    /// Revokes the dynamic secrets this upstream leased for tasks that ended.
    pub async fn revoke_ended(
        &self,
        ended: &crate::credential::Ended<'_>,
    ) -> crate::credential::Revoked {
        match &self.upstream.credential {
            Some(c) => c.revoke_ended(&self.vault, ended).await,
            None => crate::credential::Revoked::default(),
        }
    }
}

/// Whether `name` is listed in the message's `Connection` header (hop-by-hop too).
fn connection_listed(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
}

/// An error and its causes on one line (the resolver's refusal is a cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
