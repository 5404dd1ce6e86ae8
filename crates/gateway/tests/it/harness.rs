//! A running aim, a gateway in front of a recording upstream, and an agent with a token
//! for the gateway.

use std::sync::{Arc, Mutex};

use aim_client::Client;
use aim_domain::Clock;
use aim_domain::human::Role;
use aim_domain::identity::Identity;
use aim_gateway::Gateway;
use aim_gateway::config::Config;
use aim_testkit::{Backend, TestServer};
use aim_token::client::ClientKey;
use axum::http::HeaderMap;
use serde_json::{Value, json};

pub const UPSTREAM_KEY: &str = "upstream-secret-3f9a";

/// The policies of these tests: the claims group reads, writes with the sponsor's
/// approval, and never deletes.
pub const POLICIES: &str = r#"@id("crm-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("crm-write") @approval("sponsor")
permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource is Aim::Resource);
"#;

/// What the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: String,
}

/// A loopback HTTP server that keeps every request and answers 200, a redirect under
/// `/redirect/`, or (GET `/mcp`) an event stream that never ends by itself.
pub async fn upstream() -> (std::net::SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let keep = keep.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let uri = parts.uri.to_string();
            keep.lock().unwrap().push(Seen {
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            if parts.method == axum::http::Method::GET && uri == "/mcp" {
                // An MCP server's GET stream: open until the other side goes.
                let beats = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    Some((Ok::<_, std::convert::Infallible>(": keep-alive\n\n"), ()))
                });
                return axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(beats))
                    .unwrap();
            }
            if let Some(to) = uri.strip_prefix("/redirect/") {
                let location = match to {
                    "same" => "/records/1".to_owned(),
                    _ => "http://169.254.169.254/latest/meta-data/".to_owned(),
                };
                return axum::response::Response::builder()
                    .status(302)
                    .header("location", location)
                    .body(axum::body::Body::empty())
                    .unwrap();
            }
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({ "ok": true, "uri": uri }).to_string(),
                ))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// aim, the gateway, the upstream, and an agent with an open task.
pub struct Setup {
    pub aim: TestServer,
    pub gateway: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub agent: AgentCaller,
    pub sponsor: Client,
    pub upstream: std::net::SocketAddr,
    pub dir: tempfile::TempDir,
}

/// An agent calling the gateway with its token and a fresh proof each time.
pub struct AgentCaller {
    pub identity: Identity,
    pub key: ClientKey,
    pub token: String,
    pub task: String,
    clock: aim_domain::time::FakeClock,
    pub http: reqwest::Client,
}

impl AgentCaller {
    /// Calls `path` on the gateway listening at `at`, whose agents know it as `resource`.
    pub async fn call_via(
        &self,
        at: &str,
        resource: &str,
        method: &str,
        path: &str,
    ) -> (u16, HeaderMap, Value) {
        let proof = self.proof(method, &format!("{resource}{path}"));
        let req = self
            .http
            .request(method.parse().unwrap(), format!("{at}{path}"))
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof);
        send(req).await
    }

    /// A DPoP proof for `method` on `url` with this agent's token.
    pub fn proof(&self, method: &str, url: &str) -> String {
        let now = self.clock.now().as_millis() / 1000;
        self.key
            .dpop_proof(method, url, Some(&self.token), now)
            .unwrap()
    }

    /// Calls `path` on the gateway at `base` with the token and a proof for this request.
    pub async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let url = format!("{base}{path}");
        let htu = url.split('?').next().unwrap_or_default().to_owned();
        let proof = self.proof(method, &htu);
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// The gateway config for these tests, in front of `upstream`; `extra` is appended.
pub fn config_text(
    listen: &str,
    resource: &str,
    aim: &str,
    credential: &str,
    upstream: &str,
    key: &str,
    extra: &str,
) -> String {
    format!(
        r#"
listen = "{listen}"
resource = "{resource}"

[aim]
url = "{aim}"
credential_file = "{credential}"
staleness_ms = 1500
decide = "gateway"

[upstreams.crm]
url = "http://{upstream}"
strip_prefix = "/crm"
allow_addresses = ["127.0.0.1/32"]
credential = {{ kind = "header", name = "x-api-key", credential_file = "{key}" }}

[[routes]]
upstream = "crm"
method = "GET"
path = "/crm/records/{{id}}"
action = "read"
resource = {{ system = "crm", id = "crm/customers/{{id}}", attrs = {{ type = "customer_record", sensitivity = "confidential", subject = "query:subject" }} }}

[[routes]]
upstream = "crm"
method = "POST"
path = "/crm/records/{{id}}"
action = "write"
resource = {{ system = "crm", id = "crm/customers/{{id}}", attrs = {{ type = "customer_record", sensitivity = "confidential", subject = "body:/subject" }} }}

[[routes]]
upstream = "crm"
method = "DELETE"
path = "/crm/records/{{id}}"
action = "delete"
resource = {{ system = "crm", id = "crm/customers/{{id}}", attrs = {{ type = "customer_record", sensitivity = "confidential" }} }}

[[routes]]
upstream = "crm"
method = "GET"
path = "/crm/redirect/{{to}}"
action = "read"
resource = {{ system = "crm", id = "crm/redirect/{{to}}", attrs = {{ type = "redirect", sensitivity = "public" }} }}
{extra}
"#
    )
}

impl Setup {
    pub async fn start(backend: Backend) -> Setup {
        Self::start_with(backend, "").await
    }

    /// As [`Setup::start`], with more config appended (`UPSTREAM` in it is the recording
    /// upstream's port).
    pub async fn start_with(backend: Backend, extra: &str) -> Setup {
        let (upstream, seen) = upstream().await;
        let extra = extra.replace("UPSTREAM", &upstream.port().to_string());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resource = format!("http://{}", listener.local_addr().unwrap());
        let aim = TestServer::start_with(backend, |c| {
            c.tokens.resources = vec![resource.clone()];
        })
        .await;
        let policies: aim_api::policies::ApplyBody = serde_json::from_value(json!({
            "sources": [{ "name": "crm.cedar", "text": POLICIES }],
            "comment": "gateway tests",
        }))
        .unwrap();
        aim.admin.apply_policies(&policies).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let spec = GatewaySpec {
            aim: aim.base.clone(),
            resource: resource.clone(),
            upstream,
            extra,
        };
        start_gateway(&aim, "gw-1", listener, &spec, dir.path()).await;

        let (sponsor, sponsor_client) = aim.human("sam", &[Role::Sponsor]).await;
        let (_, approver) = aim.human("ava", &[Role::Approver]).await;
        let request = aim_testkit::fixtures::low_risk_request(
            "agt-gateway",
            sponsor.id,
            aim.clock.now().plus_days(30),
        );
        let identity = sponsor_client.request_identity(&request).await.unwrap();
        let identity = approver
            .identity_action(identity.id, "approve", "ok")
            .await
            .unwrap();
        let key = ClientKey::generate("EdDSA").unwrap();
        sponsor_client
            .add_agent_key(identity.id, &key.public().to_json(), "test key")
            .await
            .unwrap();
        let agent = agent_with_task(&aim, identity, key, Some(&resource)).await;
        Setup {
            aim,
            gateway: resource,
            seen,
            agent,
            sponsor: sponsor_client,
            upstream,
            dir,
        }
    }

    /// Every audit event with `action`, oldest first.
    pub async fn events(&self, action: &str) -> Vec<aim_domain::event::Event> {
        self.aim
            .admin
            .audit(&vec![
                ("action", action.to_owned()),
                ("limit", "1000".into()),
            ])
            .await
            .unwrap()
            .items
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// What a gateway of these tests is put in front of, and behind.
pub struct GatewaySpec {
    /// The aim it asks (a replica's URL, or a proxy's to cut it off).
    pub aim: String,
    /// The URL agents reach it at (two gateways behind one name share it).
    pub resource: String,
    pub upstream: std::net::SocketAddr,
    pub extra: String,
}

/// Starts a gateway on `listener` with its own `gateway` account `name`; returns what it
/// heard from aim, once it has heard.
pub async fn start_gateway(
    aim: &TestServer,
    name: &str,
    listener: tokio::net::TcpListener,
    spec: &GatewaySpec,
    dir: &std::path::Path,
) -> std::sync::Arc<aim_gateway::feed::Heard> {
    let (account, gateway_client) = aim.human(name, &[Role::Gateway]).await;
    let credential = dir.join(format!("{name}-credential"));
    std::fs::write(&credential, gateway_client.token().unwrap()).unwrap();
    let key_file = dir.join("upstream-key");
    std::fs::write(&key_file, UPSTREAM_KEY).unwrap();
    let listen = listener.local_addr().unwrap().to_string();
    let text = config_text(
        &listen,
        &spec.resource,
        &spec.aim,
        &credential.display().to_string(),
        &spec.upstream.to_string(),
        &key_file.display().to_string(),
        &spec.extra,
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let gateway = Gateway::new(Config::load(&path).unwrap())
        .unwrap()
        .with_clock(std::sync::Arc::new(aim.clock.clone()));
    let heard = gateway.heard();
    let local = gateway.local();
    tokio::spawn(aim_gateway::serve(
        gateway,
        listener,
        std::future::pending(),
    ));
    until_heard(&heard).await;
    // And aim has its acknowledgement: it counts as connected from now on.
    let id = account.id.to_string();
    aim_testkit::eventually(&format!("aim hears from gateway {name}"), || async {
        let acks = aim.db.store.gateway_acks().await.unwrap();
        // And it decides by itself: what it decides with is read (unless aim is cut off).
        (acks.iter().any(|(g, _, _)| *g == id) && local.ready()).then_some(())
    })
    .await;
    heard
}

/// Waits until the gateway has heard from aim's feed (it refuses everything before).
pub async fn until_heard(heard: &aim_gateway::feed::Heard) {
    aim_testkit::eventually("the gateway hears from aim", || async {
        heard.stale().is_none().then_some(())
    })
    .await;
}

/// A token for `resource` (aim's own API without one) on a new task on `crm`.
pub async fn agent_with_task(
    aim: &TestServer,
    identity: Identity,
    key: ClientKey,
    resource: Option<&str>,
) -> AgentCaller {
    let meta: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        aim.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let endpoint = meta["token_endpoint"].as_str().unwrap().to_owned();
    let now = aim.clock.now().as_millis() / 1000;
    let assertion = key
        .assertion(&identity.id.to_string(), &endpoint, now, 60)
        .unwrap();
    let proof = key.dpop_proof("POST", &endpoint, None, now).unwrap();
    let details = json!([{
        "type": "aim_task",
        "purpose": "triage the claim",
        "systems": ["crm"],
        "triggered_by": "alice: TICKET-7",
    }])
    .to_string();
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
        ("authorization_details", &details),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let r = aim
        .client(None)
        .oauth_token(&form, Some(&proof))
        .await
        .unwrap();
    AgentCaller {
        identity,
        key,
        token: r.access_token,
        task: r.task_id,
        clock: aim.clock.clone(),
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl AgentCaller {
    /// Sends `GET <path>` byte for byte (an HTTP client library would normalise `%2E%2E`
    /// and friends before sending), with the token and a proof for the path as written.
    pub async fn raw_get(&self, base: &str, path: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = base.trim_start_matches("http://");
        let proof = self.proof("GET", &format!("{base}{path}"));
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: DPoP {}\r\ndpop: {proof}\r\nconnection: close\r\n\r\n",
            self.token
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let status = answer[9..12].parse().unwrap();
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        (
            status,
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }
}

/// `upstream` checked as the only upstream of an otherwise valid config.
pub fn check_upstream(upstream: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:0"
resource = "http://127.0.0.1:1"
[aim]
url = "http://127.0.0.1:2"
credential_file = "{0}"
[upstreams.u]
{upstream}
"#,
        secret.display()
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    aim_gateway::config::Config::load(&path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
