//! A typed HTTP client for aim's API, shared by the CLI and the tests.
//!
//! Every error from the server arrives as [`ClientError::Api`] with its status, its stable
//! `code` and its message; transport problems (server down, wrong address) are
//! [`ClientError::Transport`].

use aim_domain::agent_key::AgentKey;
use aim_domain::event::Event;
use aim_domain::human::{
    Credential, DepartureOutcome, Human, HumanPatch, IssuedCredential, NewHuman,
};
use aim_domain::identity::{Identity, IdentityPatch, IdentityRequest};
use aim_domain::ids::{CredentialId, HumanId, IdentityId, TaskId};
use aim_domain::page::Page;
use aim_domain::sweep::SweepReport;
use aim_domain::task::Task;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The head of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    /// Hex.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{message} ({code}, HTTP {status})")]
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
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(params);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// Sends `req` and decodes a JSON answer; an error status becomes [`ClientError::Api`].
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
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
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
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

    async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T> {
        self.call(Method::PATCH, path, &Vec::new(), Some(body))
            .await
    }

    pub async fn ready(&self) -> Result<serde_json::Value> {
        self.get("/readyz", &Vec::new()).await
    }

    // Identities.

    pub async fn request_identity(&self, req: &IdentityRequest) -> Result<Identity> {
        self.post("/v1/identities", req).await
    }

    pub async fn identity(&self, id: IdentityId) -> Result<Identity> {
        self.get(&format!("/v1/identities/{id}"), &Vec::new()).await
    }

    /// An identity by id, or by exact name.
    pub async fn find_identity(&self, id_or_name: &str) -> Result<Identity> {
        if let Ok(id) = IdentityId::parse(id_or_name) {
            return self.identity(id).await;
        }
        let page = self
            .identities(&vec![("name", id_or_name.to_owned())])
            .await?;
        first_or_not_found(page, || format!("no identity named `{id_or_name}`"))
    }

    pub async fn identities(&self, params: &Params) -> Result<Page<Identity>> {
        self.get("/v1/identities", params).await
    }

    /// `action` is one of approve, reject, suspend, resume, lock, unlock, decommission, attest.
    pub async fn identity_action(
        &self,
        id: IdentityId,
        action: &str,
        reason: &str,
    ) -> Result<Identity> {
        self.post(
            &format!("/v1/identities/{id}/{action}"),
            &json!({ "reason": reason }),
        )
        .await
    }

    pub async fn change_identity(&self, id: IdentityId, patch: &IdentityPatch) -> Result<Identity> {
        self.patch(&format!("/v1/identities/{id}"), patch).await
    }

    /// Lets the identity have bearer tokens (`allowed`, with `reason`), or withdraws it.
    pub async fn set_bearer(
        &self,
        id: IdentityId,
        allowed: bool,
        reason: &str,
    ) -> Result<Identity> {
        self.post(
            &format!("/v1/identities/{id}/bearer"),
            &json!({ "allowed": allowed, "reason": reason }),
        )
        .await
    }

    // Humans.

    pub async fn create_human(&self, new: &NewHuman) -> Result<Human> {
        self.post("/v1/humans", new).await
    }

    pub async fn human(&self, id: HumanId) -> Result<Human> {
        self.get(&format!("/v1/humans/{id}"), &Vec::new()).await
    }

    /// A human by id, or by user name.
    pub async fn find_human(&self, id_or_user: &str) -> Result<Human> {
        if let Ok(id) = HumanId::parse(id_or_user) {
            return self.human(id).await;
        }
        let page = self
            .humans(&vec![("user_name", id_or_user.to_owned())])
            .await?;
        first_or_not_found(page, || format!("no human with user name `{id_or_user}`"))
    }

    pub async fn humans(&self, params: &Params) -> Result<Page<Human>> {
        self.get("/v1/humans", params).await
    }

    pub async fn change_human(&self, id: HumanId, patch: &HumanPatch) -> Result<Human> {
        self.patch(&format!("/v1/humans/{id}"), patch).await
    }

    pub async fn set_human_active(
        &self,
        id: HumanId,
        active: bool,
        reason: &str,
    ) -> Result<DepartureOutcome> {
        let action = if active { "reactivate" } else { "deactivate" };
        self.post(
            &format!("/v1/humans/{id}/{action}"),
            &json!({ "reason": reason }),
        )
        .await
    }

    pub async fn create_credential(&self, human: HumanId, label: &str) -> Result<IssuedCredential> {
        self.post(
            &format!("/v1/humans/{human}/credentials"),
            &json!({ "label": label }),
        )
        .await
    }

    /// Replaces the first-start admin credential; the new secret is in the answer.
    pub async fn rotate_bootstrap(&self) -> Result<IssuedCredential> {
        self.post("/v1/admin/bootstrap/rotate", &json!({})).await
    }

    pub async fn credentials(&self, human: HumanId) -> Result<Vec<Credential>> {
        self.get(&format!("/v1/humans/{human}/credentials"), &Vec::new())
            .await
    }

    pub async fn revoke_credential(&self, human: HumanId, id: CredentialId) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/humans/{human}/credentials/{id}"),
            &Vec::new(),
            None::<&()>,
        )
        .await
    }

    // System.

    pub async fn run_sweep(&self) -> Result<SweepReport> {
        self.post("/v1/sweeps/run", &json!({})).await
    }

    /// A page of the audit log (filters: identity, human, action, outcome, since, until).
    pub async fn audit(&self, params: &Params) -> Result<Page<Event>> {
        self.get("/v1/audit", params).await
    }

    // Agent keys, tasks and tokens.

    /// Registers a public key (a JWK) on an identity.
    pub async fn add_agent_key(
        &self,
        identity: IdentityId,
        jwk: &serde_json::Value,
        label: &str,
    ) -> Result<AgentKey> {
        self.post(
            &format!("/v1/identities/{identity}/keys"),
            &json!({ "jwk": jwk, "label": label }),
        )
        .await
    }

    /// A one-time join token for `identity` (the secret is in the answer, once).
    pub async fn create_join_token(
        &self,
        identity: IdentityId,
        ttl_seconds: Option<i64>,
    ) -> Result<serde_json::Value> {
        self.post(
            &format!("/v1/identities/{identity}/join-tokens"),
            &json!({ "ttl_seconds": ttl_seconds }),
        )
        .await
    }

    /// As a new agent: registers `jwk` with a join token; `proof` is a DPoP proof for
    /// `POST <issuer>/v1/join` signed by that key.
    pub async fn join(
        &self,
        token: &str,
        jwk: &serde_json::Value,
        label: &str,
        proof: Option<&str>,
    ) -> Result<AgentKey> {
        let mut req = self
            .http
            .post(format!("{}/v1/join", self.base))
            .json(&json!({ "token": token, "jwk": jwk, "label": label }));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        self.send(req).await
    }

    pub async fn agent_keys(&self, identity: IdentityId) -> Result<Vec<AgentKey>> {
        self.get(&format!("/v1/identities/{identity}/keys"), &Vec::new())
            .await
    }

    pub async fn revoke_agent_key(
        &self,
        identity: IdentityId,
        kid: &str,
        reason: &str,
    ) -> Result<AgentKey> {
        self.call(
            Method::DELETE,
            &format!("/v1/identities/{identity}/keys/{}", path_segment(kid)),
            &Vec::new(),
            Some(&json!({ "reason": reason })),
        )
        .await
    }

    pub async fn tasks(&self, params: &Params) -> Result<Page<Task>> {
        self.get("/v1/tasks", params).await
    }

    pub async fn task(&self, id: TaskId) -> Result<Task> {
        self.get(&format!("/v1/tasks/{id}"), &Vec::new()).await
    }

    pub async fn end_task(&self, id: TaskId, reason: &str) -> Result<Task> {
        self.post(&format!("/v1/tasks/{id}/end"), &json!({ "reason": reason }))
            .await
    }

    /// `POST /oauth/token` with form fields, as an agent does (no human credential), with
    /// a DPoP proof to bind the token to the agent's key.
    pub async fn oauth_token(
        &self,
        form: &[(&str, &str)],
        dpop: Option<&str>,
    ) -> Result<serde_json::Value> {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form);
        if let Some(p) = dpop {
            req = req.header("DPoP", p);
        }
        self.send(req).await
    }

    /// The authorization-server metadata (RFC 8414).
    pub async fn authorization_server(&self) -> Result<serde_json::Value> {
        self.get("/.well-known/oauth-authorization-server", &Vec::new())
            .await
    }

    /// The published signing keys.
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        self.get("/.well-known/jwks.json", &Vec::new()).await
    }

    /// aim's signing keys (no private halves).
    pub async fn signing_keys(&self) -> Result<Vec<serde_json::Value>> {
        self.get("/v1/signing-keys", &Vec::new()).await
    }

    pub async fn rotate_signing_key(&self) -> Result<Vec<serde_json::Value>> {
        self.post("/v1/signing-keys/rotate", &json!({})).await
    }

    pub async fn revoke_signing_key(
        &self,
        kid: &str,
        reason: &str,
    ) -> Result<Vec<serde_json::Value>> {
        self.post(
            &format!("/v1/signing-keys/{}/revoke", path_segment(kid)),
            &json!({ "reason": reason }),
        )
        .await
    }

    /// RFC 7662: `{"active": true, ...claims}` or `{"active": false}`.
    pub async fn introspect(&self, token: &str) -> Result<serde_json::Value> {
        self.post_form("/oauth/introspect", &[("token", token)])
            .await
    }

    /// RFC 7009: revokes an access token at once.
    pub async fn revoke_token(&self, token: &str) -> Result<serde_json::Value> {
        self.post_form("/oauth/revoke", &[("token", token)]).await
    }

    pub async fn revocations(&self, since: i64) -> Result<serde_json::Value> {
        self.get("/v1/revocations", &vec![("since", since.to_string())])
            .await
    }

    async fn post_form<T: DeserializeOwned>(&self, path: &str, form: &[(&str, &str)]) -> Result<T> {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// The causal chain of a task.
    pub async fn audit_trace(
        &self,
        task: aim_domain::ids::TaskId,
    ) -> Result<aim_domain::trace::Trace> {
        self.get(&format!("/v1/audit/trace/{task}"), &Vec::new())
            .await
    }

    /// The head of the chain: the last sequence number and its hash.
    pub async fn audit_head(&self) -> Result<AuditHead> {
        self.get("/v1/audit/head", &Vec::new()).await
    }

    /// Signs the current head (if it moved) and returns the latest checkpoint.
    pub async fn create_checkpoint(&self) -> Result<aim_domain::audit::Checkpoint> {
        self.post("/v1/audit/checkpoints", &json!({})).await
    }

    pub async fn audit_record(&self, seq: i64) -> Result<Event> {
        self.get(&format!("/v1/audit/{seq}"), &Vec::new()).await
    }

    /// A page of approvals (`state`, `identity`, `cursor`, `limit`).
    pub async fn approvals(
        &self,
        params: &Params,
    ) -> Result<aim_domain::page::Page<aim_domain::approval::ActionApproval>> {
        self.get("/v1/approvals", params).await
    }

    pub async fn approval(
        &self,
        id: aim_domain::ids::ApprovalId,
    ) -> Result<aim_domain::approval::ActionApproval> {
        self.get(&format!("/v1/approvals/{id}"), &Vec::new()).await
    }

    /// Approves (`approve`) or denies (`deny`) an approval, with a reason.
    pub async fn decide_approval(
        &self,
        id: aim_domain::ids::ApprovalId,
        verdict: &str,
        reason: &str,
    ) -> Result<aim_domain::approval::ActionApproval> {
        self.post(
            &format!("/v1/approvals/{id}/{verdict}"),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    pub async fn add_grant(
        &self,
        grant: &aim_domain::grant::NewGrant,
    ) -> Result<aim_domain::grant::Grant> {
        self.post("/v1/grants", grant).await
    }

    /// A page of grants (`state`, `identity`, `group`, `cursor`, `limit`).
    pub async fn grants(
        &self,
        params: &Params,
    ) -> Result<aim_domain::page::Page<aim_domain::grant::Grant>> {
        self.get("/v1/grants", params).await
    }

    /// `approve`, `deny` (an elevation request) or `revoke` a grant, with a reason.
    pub async fn grant_action(
        &self,
        id: aim_domain::ids::GrantId,
        action: &str,
        reason: &str,
    ) -> Result<aim_domain::grant::Grant> {
        self.post(
            &format!("/v1/grants/{id}/{action}"),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    /// Applies a policy set (`{sources, links, comment, expected_version?}`).
    pub async fn apply_policies(&self, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.call(Method::POST, "/v1/policies", &Vec::new(), Some(body))
            .await
    }

    /// The policy version in force, or `version` of the history.
    pub async fn policies(&self, version: Option<i64>) -> Result<serde_json::Value> {
        match version {
            Some(v) => {
                self.get(&format!("/v1/policies/versions/{v}"), &Vec::new())
                    .await
            }
            None => self.get("/v1/policies", &Vec::new()).await,
        }
    }

    pub async fn policy_versions(&self) -> Result<Vec<serde_json::Value>> {
        self.get("/v1/policies/versions", &Vec::new()).await
    }

    pub async fn rollback_policies(
        &self,
        version: i64,
        comment: &str,
    ) -> Result<serde_json::Value> {
        self.call(
            Method::POST,
            "/v1/policies/rollback",
            &Vec::new(),
            Some(&serde_json::json!({ "version": version, "comment": comment })),
        )
        .await
    }

    /// `POST /v1/authorize` (or `/v1/authorize/explain` with `explain`).
    pub async fn authorize(
        &self,
        body: &serde_json::Value,
        explain: bool,
    ) -> Result<serde_json::Value> {
        let path = if explain {
            "/v1/authorize/explain"
        } else {
            "/v1/authorize"
        };
        self.call(Method::POST, path, &Vec::new(), Some(body)).await
    }
}

/// The first item of a lookup page, or a 404 the way the server would say it.
fn first_or_not_found<T>(page: Page<T>, message: impl FnOnce() -> String) -> Result<T> {
    page.items
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: message(),
        })
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
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
            for p in &b.problems {
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                let n = |k: &str| p[k].as_i64().unwrap_or_default();
                message.push_str(&format!(
                    "\n  {}:{}:{}: {}",
                    s("file"),
                    n("line"),
                    n("column"),
                    s("message")
                ));
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
fn without_url(e: &reqwest::Error) -> String {
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
fn path_segment(s: &str) -> String {
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
