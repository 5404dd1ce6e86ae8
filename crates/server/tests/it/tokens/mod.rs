//! `POST /oauth/token` and what follows from it: an agent with a registered key gets a
//! task-scoped access token that any holder of the JWKS verifies; each way of getting it
//! wrong is refused with its own code and recorded. Shared helpers live here.

pub(crate) mod amend;
mod audience;
mod behaviour;
mod cascades;
mod decisions;
mod delegation;
mod dpop;
mod issuance;
mod narrowing;
mod revocation;

pub(crate) use amend::ask_for_an_approval;

pub(crate) use aim_client::Client;
pub(crate) use aim_domain::identity::Identity;
pub(crate) use aim_testkit::TestServer;
pub(crate) use aim_token::access::{Expect, TrustedKeys};
pub(crate) use aim_token::client::ClientKey;
pub(crate) use serde_json::{Value, json};

pub(crate) use crate::fixtures::{Cast, ClockExt, active_identity, cast, code};

/// A token response as the JSON an agent reads.
pub(crate) fn as_json(r: aim_api::oauth::TokenResponse) -> Value {
    serde_json::to_value(r).expect("a token response is JSON")
}

const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Agent {
    identity: Identity,
    key: ClientKey,
    http: Client,
    endpoint: String,
    clock: aim_domain::time::FakeClock,
}

impl Agent {
    async fn new(s: &TestServer, c: &Cast, name: &str, alg: &str) -> Agent {
        Self::on(s, c, name, alg, &["crm"]).await
    }

    /// An agent whose identity has these registered systems.
    async fn on(s: &TestServer, c: &Cast, name: &str, alg: &str, systems: &[&str]) -> Agent {
        let identity = crate::fixtures::active_identity_on(s, c, name, systems).await;
        Self::for_identity(s, c, identity, alg).await
    }

    /// An agent of `identity`, with a new key its sponsor registers.
    async fn for_identity(s: &TestServer, c: &Cast, identity: Identity, alg: &str) -> Agent {
        let key = ClientKey::generate(alg).unwrap();
        c.sponsor_client
            .add_agent_key(identity.id, &key.public().to_json(), "test key")
            .await
            .unwrap();
        let http = s.client(None);
        let meta: Value =
            reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        Agent {
            identity,
            key,
            http,
            clock: s.clock.clone(),
            endpoint: meta["token_endpoint"].as_str().unwrap().to_owned(),
        }
    }

    fn assertion(&self, s: &TestServer) -> String {
        let now = s.clock_now().as_millis() / 1000;
        self.key
            .assertion(&self.identity.id.to_string(), &self.endpoint, now, 60)
            .unwrap()
    }

    /// A fresh DPoP proof for the token endpoint.
    fn proof(&self) -> String {
        use aim_domain::Clock;
        let now = self.clock.now().as_millis() / 1000;
        self.key
            .dpop_proof("POST", &self.endpoint, None, now)
            .unwrap()
    }

    async fn token_with(&self, assertion: &str, task: (&str, &str)) -> aim_client::Result<Value> {
        let proof = self.proof();
        self.token_with_proof(assertion, task, Some(&proof)).await
    }

    async fn token_with_proof(
        &self,
        assertion: &str,
        task: (&str, &str),
        proof: Option<&str>,
    ) -> aim_client::Result<Value> {
        self.http
            .oauth_token(
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION),
                    ("client_assertion", assertion),
                    task,
                ],
                proof,
            )
            .await
            .map(as_json)
    }

    async fn open_task(&self, s: &TestServer) -> aim_client::Result<Value> {
        let details = json!([{
            "type": "aim_task",
            "purpose": "triage the claim",
            "systems": ["crm"],
            "subject": "customer:42",
            "triggered_by": "alice: TICKET-7",
        }])
        .to_string();
        self.token_with(&self.assertion(s), ("authorization_details", &details))
            .await
    }

    /// Opens a task on `systems`, bound to no subject.
    async fn open_task_on(&self, s: &TestServer, systems: &[&str]) -> aim_client::Result<Value> {
        let details = json!([{
            "type": "aim_task",
            "purpose": "reconcile accounts",
            "systems": systems,
            "triggered_by": "alice: TICKET-8",
        }])
        .to_string();
        self.token_with(&self.assertion(s), ("authorization_details", &details))
            .await
    }

    async fn continue_task(&self, s: &TestServer, task: &str) -> aim_client::Result<Value> {
        self.token_with(&self.assertion(s), ("task_id", task)).await
    }
}

async fn jwks(s: &TestServer) -> TrustedKeys {
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    TrustedKeys::from_jwks(&jwks).unwrap()
}

async fn actions(s: &TestServer, action: &str) -> Vec<aim_domain::event::Event> {
    s.admin
        .audit(&vec![
            ("action", action.to_owned()),
            ("limit", "500".into()),
        ])
        .await
        .unwrap()
        .items
}

/// An agent's request to aim: `Authorization: DPoP <token>` and, if given, a `DPoP` proof.
async fn agent_call(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    proof: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", s.base))
        .header("Authorization", format!("DPoP {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An agent's JSON request to aim: its `token` with a fresh DPoP proof signed by `key`.
async fn agent_json(
    s: &TestServer,
    key: &ClientKey,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    agent_json_from(s, key, token, (method, path), body, None).await
}

/// [`agent_json`] from the local address `from` (another loopback address stands for
/// another network).
async fn agent_json_from(
    s: &TestServer,
    key: &ClientKey,
    token: &str,
    (method, path): (&str, &str),
    body: &Value,
    from: Option<std::net::IpAddr>,
) -> (u16, Value) {
    let url = format!("{}{path}", s.base);
    let proof = key
        .dpop_proof(method, &url, Some(token), s.clock_now().as_millis() / 1000)
        .unwrap();
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let resp = http
        .request(m, url)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Applies `text` as the whole policy set.
async fn apply(s: &TestServer, text: &str) {
    let (status, body) = post(
        s,
        "/v1/policies",
        &s.admin_token,
        &json!({ "sources": [{ "name": "p.cedar", "text": text }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// A raw JSON `POST` with a bearer credential, to see whole error bodies.
pub(crate) async fn post(s: &TestServer, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// A raw `GET` with a bearer credential.
async fn get_as(s: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}
