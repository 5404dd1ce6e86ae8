//! A typed HTTP client for aim's API, shared by the CLI and the tests.
//!
//! Every error from the server arrives as [`ClientError::Api`] with its status, its stable
//! `code` and its message; transport problems (server down, wrong address) are
//! [`ClientError::Transport`].
//!
//! # Layout
//! One module per group of resources, each adding its methods to [`Client`]:
//! - [`identities`] — the registry
//! - [`humans`] — humans and their credentials
//! - [`credentials`] — agents' keys, join tokens, tasks, tokens, signing keys, revocations
//! - [`decisions`] — policy sets, decisions, approvals and grants
//! - [`discovery`] — imports of outside sources, discovered accounts and their findings
//! - [`gateway`] — what an enforcement gateway asks
//! - [`secrets`] — credentials for upstreams: stored by admins, read by gateways
//! - [`tools`] — MCP tools: what gateways report and ask, admins' review and approval
//! - [`audit`] — the audit log, traces, checkpoints and sweeps
//! - [`behaviour`] — backtests of the behavioural detectors, why an identity was held
//! - [`reports`] — compliance reports and their trend

pub mod audit;
pub mod behaviour;
pub mod credentials;
pub mod decisions;
pub mod discovery;
pub mod gateway;
pub mod humans;
pub mod identities;
pub mod reports;
pub mod secrets;
pub mod tools;

use aim_domain::page::Page;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aim_api::audit::AuditHead;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// What aim said, its code and status after the first line (a refused policy set
    /// lists its problems on the lines after).
    #[error("{}", with_code(message, code, *status))]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach aim at {addr}: {message}")]
    Transport { addr: String, message: String },
    #[error("unexpected response from aim: {0}")]
    Decode(String),
}

impl ClientError {
    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One aim server, one credential.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// The credential this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // INVARIANT: the credential is never printed.
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Query parameters as (name, value) pairs; absent filters are simply left out.
pub type Params = Vec<(&'static str, String)>;

impl Client {
    /// `base` is `http://host:port` or `https://...`; `token` an API credential.
    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// As [`Client::new`], giving up on an answer after `timeout` (an enforcement point
    /// fails closed rather than wait).
    pub fn with_timeout(
        base: &str,
        token: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::Decode(format!("the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// As [`Client::new`], trusting (only) the CA certificates in `ca_pem` for an aim
    /// served with a private CA.
    pub fn with_ca(base: &str, token: Option<String>, ca_pem: &[u8]) -> Result<Self> {
        let bad = |e: reqwest::Error| ClientError::Decode(format!("the CA certificate: {e}"));
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(bad)?;
        if certs.is_empty() {
            return Err(ClientError::Decode(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .tls_certs_only(certs)
            .build()
            .map_err(bad)?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Whether requests carry an API credential.
    pub fn has_credential(&self) -> bool {
        self.token.is_some()
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and decodes a JSON answer (or `()` for an empty one).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &Params,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let mut req = self.request(method, path, params);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// A request to `path` with `params`, carrying the API credential if there is one.
    fn request(&self, method: Method, path: &str, params: &Params) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(params);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req` and decodes a JSON answer; an error status becomes [`ClientError::Api`].
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let bytes = self.send_raw(req).await?;
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Sends `req` and returns the answer's body; an error status becomes
    /// [`ClientError::Api`].
    async fn send_raw(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let resp = req.send().await.map_err(|e| ClientError::Transport {
            addr: self.base.clone(),
            message: without_url(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport {
            addr: self.base.clone(),
            message: without_url(&e),
        })?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(bytes.to_vec())
    }

    /// A GET whose answer is text (CSV), not JSON.
    async fn get_text(&self, path: &str, params: &Params) -> Result<String> {
        self.text(Method::GET, path, params).await
    }

    /// Sends a request with no body and returns the answer as text (CSV, Markdown, HTML).
    async fn text(&self, method: Method, path: &str, params: &Params) -> Result<String> {
        let bytes = self.send_raw(self.request(method, path, params)).await?;
        String::from_utf8(bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, params: &Params) -> Result<T> {
        self.call(Method::GET, path, params, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.call(Method::POST, path, &Vec::new(), Some(body)).await
    }

    /// As [`Client::post`], under the request id `request_id` (`X-Request-Id`).
    async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
        request_id: &str,
    ) -> Result<T> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-request-id", request_id)
            .json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.call(Method::PATCH, path, &Vec::new(), Some(body))
            .await
    }

    pub async fn ready(&self) -> Result<aim_api::common::Health> {
        self.get("/readyz", &Vec::new()).await
    }

    async fn post_form<T: DeserializeOwned>(&self, path: &str, form: &[(&str, &str)]) -> Result<T> {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }
}

/// The first item of a lookup page, or a 404 the way the server would say it.
pub(crate) fn first_or_not_found<T>(page: Page<T>, message: impl FnOnce() -> String) -> Result<T> {
    page.items
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: message(),
        })
}

fn with_code(message: &str, code: &str, status: u16) -> String {
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("\n{rest}")
    };
    format!("{first} ({code}, HTTP {status}){rest}")
}

/// One problem of a refused policy set as `file:line:column: policy p: message` (no line
/// and column when it has no place in a file), without control characters.
fn problem_line(p: &serde_json::Value) -> String {
    let s = |k: &str| p[k].as_str().unwrap_or_default();
    let n = |k: &str| p[k].as_i64().unwrap_or_default();
    let mut line = match n("line") {
        0 => format!("{}: ", s("file")),
        l => format!("{}:{l}:{}: ", s("file"), n("column")),
    };
    if let Some(policy) = p["policy"].as_str() {
        line.push_str(&format!("policy {policy}: "));
    }
    line.push_str(s("message"));
    printable(&line)
}

/// `s` with each control character escaped (`\n` as the two characters `\` `n`).
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}

pub(crate) fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
        /// aim's own error bodies.
        #[serde(default)]
        message: String,
        /// OAuth error bodies (`/oauth/token`).
        #[serde(default)]
        error_description: String,
        /// A refused policy set: every problem, each `file:line:column: message`.
        #[serde(default)]
        problems: Vec<serde_json::Value>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let mut message = if b.message.is_empty() {
                b.error_description
            } else {
                b.message
            };
            // What aim says is shown to people: no control character in it can forge a
            // line; the only line breaks are those between problems below.
            message = printable(&message);
            if !b.problems.is_empty() {
                // One problem a line (`file:line:column: policy p: message`), each without
                // control characters, so the list can be printed as lines.
                message = format!(
                    "{} problem(s) in the policy set; nothing was applied",
                    b.problems.len()
                );
                for p in &b.problems {
                    message.push_str("\n  ");
                    message.push_str(&problem_line(p));
                }
            }
            ClientError::Api {
                status: status.as_u16(),
                code: b.code,
                message,
            }
        }
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: "http_error".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        },
    }
}

/// reqwest's message without the URL (which the caller knows), so nothing sensitive in a
/// query string is echoed.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(u) = e.url() {
        msg = msg.replace(u.as_str(), "");
    }
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let root = cur.to_string();
    if !msg.contains(&root) {
        msg = format!("{msg}: {root}");
    }
    msg.replace(" ()", "").trim().to_owned()
}

/// A value made safe as one path segment: anything but base64url characters is refused by
/// the server anyway, so those are percent-encoded.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
