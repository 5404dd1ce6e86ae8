//! `aim gateway`: the enforcement point in front of tools. It stands between agents and
//! the HTTP APIs they call, lets through only what aim allows right now (each request's
//! token and DPoP proof checked, its question decided and on aim's record before anything
//! is forwarded), gives the upstream a credential the agent never sees, and refuses every
//! request two parsers could read differently.
//!
//! It asks aim to decide a call, or decides by itself with what it reads from aim's API
//! (the policy set, grants, keys and the live state behind tokens; see [`decide`]), and
//! each decision is on aim's record before the call goes on (or queued for it, on a
//! batched route). It never opens aim's database.
//!
//! # Layout
//! - [`config`] — `gateway.toml`, checked whole at start
//! - [`canon`] — request paths refused unless unambiguous
//! - [`route`] — path templates, and a request's action and resource
//! - [`net`] — which addresses an upstream may be reached at (SSRF)
//! - [`upstream`] — calling an upstream with its credential injected
//! - [`credential`] — that credential: from a file, aim, or Vault/OpenBao at the moment of use
//! - [`feed`] — the revocation feed from aim, its heartbeat, and staleness
//! - [`decide`] — decisions taken here, as aim takes them, and their record at aim
//! - [`journal`] — durable routes' records on this gateway's disk until aim has them
//! - [`admin`] — `/healthz`, `/readyz` and `/metrics` on the admin listener
//! - [`metrics`] — what Prometheus scrapes
//! - [`proxy`] — one request, from arrival to answer
//! - [`mcp`] — MCP servers: tools listed per caller, calls decided, pinned definitions
//! - `fuzz` — what the fuzz targets in `fuzz/` drive: the request path up to aim

pub mod admin;
pub mod canon;
pub mod config;
pub mod credential;
pub mod decide;
pub mod feed;
#[doc(hidden)]
pub mod fuzz;
pub mod journal;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod proxy;
pub mod route;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::config::Checked;
use crate::route::Route;

/// A running gateway's state.
#[derive(Debug)]
pub struct Gateway {
    /// The URL agents reach it at, without a trailing `/`.
    pub resource: String,
    aim: aim_client::Client,
    routes: Vec<Route>,
    upstreams: Vec<upstream::Client>,
    max_body_bytes: usize,
    metadata: Value,
    heard: Arc<feed::Heard>,
    local: Arc<decide::Local>,
    mcp: Vec<mcp::Mcp>,
    metrics: Arc<metrics::Metrics>,
    /// Forwarded calls waiting to be recorded with aim, and the other end until `serve`
    /// starts the recorder.
    calls: tokio::sync::mpsc::Sender<aim_api::gateway::GatewayCall>,
    queued: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<aim_api::gateway::GatewayCall>>>,
}

impl Gateway {
    pub fn new(config: Checked) -> Result<Self, String> {
        let aim = aim_client::Client::with_timeout(
            &config.aim_url,
            Some(config.aim_credential),
            std::time::Duration::from_millis(config.aim_timeout_ms),
        )
        .map_err(|e| format!("aim client: {e}"))?;
        let upstreams = config
            .upstreams
            .into_iter()
            .map(|u| upstream::Client::new(u, aim.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let (calls, queued) = tokio::sync::mpsc::channel(10_000);
        // RFC 9728: what this resource is and where its tokens come from.
        let metadata = json!({
            "resource": config.resource,
            "authorization_servers": [&config.issuer],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": ["EdDSA", "ES256"],
            "dpop_bound_access_tokens_required": true,
            "resource_name": "aim gateway",
        });
        let journal = match &config.journal {
            Some(dir) => Some(Arc::new(
                journal::Journal::open(dir)
                    .map_err(|e| format!("journal {}: {e}", dir.display()))?,
            )),
            None => None,
        };
        let local = decide::Local::new(&config.resource)
            .deciding(config.decide)
            .journaling(journal);
        let local = Arc::new(local);
        Ok(Self {
            resource: config.resource,
            local,
            aim,
            routes: config.routes,
            upstreams,
            max_body_bytes: config.max_body_bytes,
            metadata,
            heard: Arc::new(feed::Heard::new(std::time::Duration::from_millis(
                config.staleness_ms,
            ))),
            mcp: config.mcp.into_iter().map(mcp::Mcp::new).collect(),
            metrics: Arc::default(),
            calls,
            queued: std::sync::Mutex::new(Some(queued)),
        })
    }

    /// What Prometheus scrapes (shared with the admin listener).
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// Decides by `clock` rather than the system's (tests: aim's own fake clock).
    pub fn with_clock(mut self, clock: Arc<dyn aim_domain::time::Clock>) -> Self {
        let local = decide::Local::new(&self.resource)
            .with_clock(clock)
            .deciding(self.local.taken())
            .journaling(self.local.journal());
        self.local = Arc::new(local);
        self
    }

    /// The gateway's own decision point.
    pub fn local(&self) -> Arc<decide::Local> {
        self.local.clone()
    }

    /// Decides `asked`: here when everything the decision needs is here, else by aim.
    /// Either way the decision is on aim's record (queued for it on a batched route)
    /// before this returns.
    pub(crate) async fn decide(
        &self,
        asked: &aim_api::gateway::GatewayAuthorize,
        request_id: &str,
        audit: decide::Audit,
    ) -> Result<aim_api::gateway::GatewayDecision, aim_client::ClientError> {
        let asking = std::time::Instant::now();
        let why = match self
            .local
            .decide(&self.aim, &self.heard, asked, request_id, audit)
            .await
        {
            decide::Decided::Here(d) => {
                self.metrics.taken("gateway", "");
                self.metrics.decided("gateway", asking.elapsed());
                return Ok(*d);
            }
            decide::Decided::Refused(e) => {
                self.metrics.taken("gateway", "");
                return Err(e);
            }
            decide::Decided::Aim(why) => why,
        };
        self.metrics.taken("aim", why);
        let decided = self.aim.gateway_authorize(asked, request_id).await;
        self.metrics.decided("authorize", asking.elapsed());
        decided
    }

    /// What the gateway has heard from aim (shared with the feed's follower).
    pub fn heard(&self) -> Arc<feed::Heard> {
        self.heard.clone()
    }

    pub fn router(self: Arc<Self>) -> Router {
        let mut router =
            Router::new().route("/.well-known/oauth-protected-resource", get(metadata));
        for (at, m) in self.mcp.iter().enumerate() {
            router = router.route(
                &m.server.path,
                axum::routing::any(
                    move |axum::extract::State(g): axum::extract::State<Arc<Gateway>>,
                          axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                        SocketAddr,
                    >,
                          req: axum::extract::Request| {
                        mcp::handle(g, at, peer, req)
                    },
                ),
            );
        }
        router.fallback(proxy::handle).with_state(self)
    }
}

/// Revokes the dynamic secrets of tasks as soon as the feed says they ended (or their
/// identity was locked), and every few seconds tries again what Vault refused.
async fn revoke_ended(g: Arc<Gateway>) {
    let mut applied = g.heard.applied();
    loop {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), applied.changed()).await;
        let ended = |task: &str, identity: &str| g.heard.ended(task, identity);
        let pass =
            futures_util::future::join_all(g.upstreams.iter().map(|u| u.revoke_ended(&ended)))
                .await
                .into_iter()
                .fold(credential::Revoked::default(), |a, b| a + b);
        g.metrics.revocations(pass);
        let (mut held, mut revoking) = (0, 0);
        for u in &g.upstreams {
            if let Some(c) = &u.upstream.credential {
                let (h, r) = c.lease_counts();
                held += h;
                revoking += r;
            }
        }
        g.metrics.leases(held, revoking);
    }
}

async fn metadata(
    axum::extract::State(g): axum::extract::State<Arc<Gateway>>,
) -> axum::Json<Value> {
    axum::Json(g.metadata.clone())
}

/// Serves `gateway` on `listener` until `shutdown` completes.
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(feed::follow(gateway.aim.clone(), gateway.heard()));
    tokio::spawn(
        gateway
            .local
            .clone()
            .follow(gateway.aim.clone(), gateway.heard()),
    );
    let (local, aim) = (gateway.local.clone(), gateway.aim.clone());
    tokio::spawn(async move { local.ship(aim).await });
    if let Some(journal) = gateway.local.journal() {
        tokio::spawn(journal.ship(gateway.aim.clone(), gateway.metrics()));
    }
    if let Some(queue) = gateway.queued.lock().ok().and_then(|mut q| q.take()) {
        tokio::spawn(proxy::record_calls(gateway.aim.clone(), queue));
    }
    let gateway = Arc::new(gateway);
    if gateway
        .upstreams
        .iter()
        .any(|u| u.upstream.credential.as_ref().is_some_and(|c| c.dynamic()))
    {
        tokio::spawn(revoke_ended(gateway.clone()));
    }
    let app = gateway.clone().router();
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    // The leases this gateway took die with it, not at their TTL.
    let revoking = futures_util::future::join_all(
        gateway
            .upstreams
            .iter()
            .map(|u| u.revoke_ended(&|_, _| true)),
    );
    if tokio::time::timeout(std::time::Duration::from_secs(20), revoking)
        .await
        .is_err()
    {
        tracing::warn!(
            "stopped before Vault took every lease's revocation; those end at their TTL"
        );
    }
    served
}
