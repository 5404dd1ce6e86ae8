//! `aim serve`: the control plane's HTTP API, SCIM endpoint, background sweeps and
//! first-start bootstrap.
//!
//! # Layout
//! - [`config`] — settings from defaults, the TOML file and flags, checked once
//! - [`state`] — the handles handlers share (no module it names imports it back)
//! - [`auth`] — bearer credentials, agents' tokens, roles, and the audit of refused requests
//! - [`extract`] — extractors: JSON bodies, path ids, queries, the request behind an action
//! - [`feed`] — the revocation feed gateways follow, and their acknowledgements
//! - [`error`], [`paging`] — the HTTP edge's error shape and cursor pages
//! - [`names`] — names beside ids in the lists people read
//! - [`registry`] — the registry's operations, independent of HTTP
//! - [`routes`] — the HTTP surface, one module per resource
//! - [`tokens`] — the token issuer: `POST /oauth/token`, discovery, signing keys
//! - [`policy`] — the policy set in force on this replica
//! - [`decisions`] — what decisions use besides policies: live grants, the approvals config
//!   and its webhook
//! - [`discovery`] — imports of outside sources: batches assessed, unseen accounts gone
//! - [`behaviour`] — behavioural baselines: learnt on the decision path, acted on, backtested
//! - [`report`] — the compliance report: the posture read, scored, kept and rendered
//! - [`checkpoint`] — signed checkpoints of the audit chain
//! - [`metrics`] — what Prometheus scrapes from the admin listener
//! - [`sinks`] — delivery of every record to files, syslog and webhooks
//! - [`signals`] — Shared Signals: CAEP events for what cuts an identity off
//! - [`bootstrap`] — the first admin credential
//! - [`secrets`] — credentials aim makes and the private files it keeps
//! - [`jobs`] — background work and the one loop that runs it
//! - [`serve`] — connections: HTTPS, connection cap, header deadline, graceful stop
//! - [`outbound`] — aim's own HTTPS clients, pinned CAs, the plain-HTTP rule
//! - [`refusals`] — refused requests on the record, counted per source under a flood

pub mod auth;
pub mod behaviour;
pub mod bootstrap;
pub mod checkpoint;
pub mod config;
pub mod decisions;
pub mod discovery;
pub mod error;
pub mod extract;
pub mod feed;
pub mod jobs;
pub mod metrics;
pub mod names;
pub mod outbound;
pub mod paging;
pub mod policy;
pub mod refusals;
pub mod registry;
pub mod report;
pub mod routes;
pub mod secrets;
pub mod serve;
pub mod signals;
pub mod sinks;
pub mod state;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use aim_domain::Clock;
use aim_store::DynStore;
use anyhow::Context;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use state::AppState;

/// The whole HTTP surface, with the server's default limits.
pub fn router(state: AppState, body_limit: usize) -> Router {
    router_with(state, body_limit, &config::LimitsConfig::default())
}

/// The whole HTTP surface: every route, every request under `limits`.
pub fn router_with(state: AppState, body_limit: usize, limits: &config::LimitsConfig) -> Router {
    let timeout = limits.request_timeout_seconds.max(1);
    let authenticated = Router::new()
        .merge(routes::identities::router())
        .merge(routes::humans::router())
        .merge(routes::system::router())
        .merge(routes::audit::router())
        .merge(routes::agent_keys::router())
        .merge(routes::tasks::router())
        .merge(routes::oauth::router())
        .merge(routes::signing_keys::router())
        .merge(routes::policies::router())
        .merge(routes::authorize::router())
        .merge(routes::behaviour::router())
        .merge(routes::discovery::router())
        .merge(routes::discovery_remedy::router())
        .merge(routes::reports::router())
        .merge(routes::gateway::router())
        .merge(routes::gateway_sync::router())
        .merge(routes::tools::router())
        .merge(routes::upstream_secrets::router())
        .merge(routes::approvals::router())
        .merge(routes::grants::router())
        .merge(routes::leases::router())
        .merge(routes::join::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ));
    // SCIM clients get SCIM's error shape, the auth layer's refusals included.
    let scim = routes::scim::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ))
        .layer(axum::middleware::map_response(routes::scim::shaped));
    Router::new()
        .merge(routes::system::public())
        .route("/.well-known/jwks.json", get(tokens::discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(tokens::discovery::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(tokens::discovery::openid_configuration),
        )
        .route("/oauth/token", axum::routing::post(tokens::endpoint::token))
        .merge(routes::join::public())
        .route("/v1/openapi.json", get(routes::openapi::document))
        .merge(authenticated)
        .merge(scim)
        .fallback(routes::system::not_found)
        // Every body is read through an extractor, which enforces this and answers 413
        // with a JSON (or SCIM) error body.
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        // At most so many requests are handled at once; the rest wait, and whatever is
        // not answered in time gets 503 (a stream, once started, is not cut).
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests.max(1),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(limits.request_timeout_seconds.max(1)),
        ))
        .layer(axum::middleware::map_response(
            move |r: axum::response::Response| async move { error::explain_timeout(r, timeout) },
        ))
        .layer(TraceLayer::new_for_http())
        // Every request has an id (the caller's `X-Request-Id`, or a new one), echoed in the
        // response and recorded in the events it causes.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Opens the store the config names: PostgreSQL if `database_url` is set, else the SQLite
/// file `aim.db` in the data dir.
pub async fn open_store(config: &Config) -> anyhow::Result<(DynStore, String)> {
    if let Some(url) = &config.database_url {
        let wait = Duration::from_millis(config.limits.database_wait_ms.max(100));
        let store = aim_store::postgres::PgStore::connect_url_waiting(url, wait)
            .await
            .context("connecting to PostgreSQL")?;
        return Ok((Arc::new(store), "postgresql".to_owned()));
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let path = config.data_dir.join("aim.db");
    let store = aim_store::sqlite::SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((Arc::new(store), format!("sqlite {}", path.display())))
}

/// What handlers share, from the config: keys (made on first start), the policy set, the
/// grants and the checkpoint key, each read from the store.
async fn build_state(
    config: &Config,
    checked: config::Checked,
    store: DynStore,
    clock: Arc<dyn Clock>,
    issuer: String,
) -> anyhow::Result<AppState> {
    let kek = tokens::keys::load_kek(&config.tokens, &config.data_dir)?;
    let nonce_key = if config.tokens.dpop_nonce {
        Some(tokens::keys::load_kek(&config.tokens, &config.data_dir)?)
    } else {
        None
    };
    let keys = tokens::keys::SigningKeys::load(
        store.clone(),
        kek,
        config.tokens.signing_key_rotation_days,
        clock.now(),
    )
    .await
    .context("loading the token signing keys")?;
    let mut extensions = Vec::new();
    for path in &config.policy.schema {
        extensions.push(aim_policy::Source {
            name: path.display().to_string(),
            text: std::fs::read_to_string(path)
                .with_context(|| format!("reading the policy schema {}", path.display()))?,
        });
    }
    let policies = policy::Policies::load(&store, &extensions)
        .await
        .context("loading the policy set")?;
    let decisions =
        decisions::Decisions::load(&store, config.approvals.clone(), config.leases, clock.now())
            .await
            .context("loading the grants and approvals config")?;
    let signer = checkpoint::Signer::load(
        store.clone(),
        tokens::keys::load_kek(&config.tokens, &config.data_dir)?,
        &config.data_dir,
        clock.now(),
    )
    .await
    .context("loading the audit checkpoint key")?;
    let baselines = behaviour::Baselines::new(config.behaviour.clone(), store.clone());
    Ok(AppState {
        store,
        clock,
        governance: Arc::new(config.governance.clone()),
        naming: Arc::new(checked.naming),
        signer: Arc::new(signer),
        tokens: Arc::new(tokens::TokenService::new(
            &config.tokens,
            issuer,
            keys,
            nonce_key,
        )?),
        policies: Arc::new(policies),
        decisions: Arc::new(decisions),
        behaviour: Arc::new(baselines),
        bootstrap: Arc::new(config::BootstrapPolicy {
            data_dir: config.data_dir.clone(),
            ttl_hours: config.bootstrap_ttl_hours,
        }),
        refusals: Arc::new(refusals::Refusals::new(
            config.limits.refusals_per_window,
            Duration::from_secs(config.limits.refusal_window_seconds),
        )),
        feed: Arc::default(),
        reporting: Arc::new(config::ReportSettings {
            sinks: config
                .audit_sinks
                .iter()
                .map(|k| k.name().to_owned())
                .collect(),
            checkpoint_every_seconds: (config.checkpoint_interval_seconds > 0)
                .then_some(config.checkpoint_interval_seconds),
        }),
        metrics: Arc::default(),
        callers: Arc::default(),
        held_leases: Arc::default(),
        tools: Arc::default(),
    })
}

/// A server ready to accept connections.
#[derive(Debug)]
pub struct Server {
    pub state: AppState,
    pub listener: TcpListener,
    /// `/healthz`, `/readyz` and `/metrics`, when `admin_listen` is set.
    pub admin: Option<TcpListener>,
    pub body_limit: usize,
    pub limits: config::LimitsConfig,
    /// HTTPS, when `[tls]` names a certificate and key.
    pub tls: Option<Arc<serve::CertFiles>>,
    pub sweep_every: Option<Duration>,
    pub checkpoint_every: Option<Duration>,
    pub report_every: Option<Duration>,
    pub reassess_every: Option<Duration>,
    pub sinks: Vec<config::SinkConfig>,
}

impl Server {
    /// Opens the store, bootstraps the first admin if the store is empty, and binds.
    pub async fn prepare(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Server, Startup)> {
        config.check()?;
        let (store, store_label) = open_store(config).await?;
        Self::prepare_with_store(config, store, store_label, clock).await
    }

    /// As [`Server::prepare`], on a store opened by the caller.
    pub async fn prepare_with_store(
        config: &Config,
        store: DynStore,
        store_label: String,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<(Server, Startup)> {
        let checked = config.check()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let admin = match config.admin_listen {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding {a} (admin_listen)"))?,
            ),
            None => None,
        };
        let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
        let tls = match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(cert), Some(key)) => Some(serve::CertFiles::load(cert, key)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = config
            .tokens
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let state = build_state(config, checked, store, clock, issuer).await?;
        let bootstrap = bootstrap::ensure_admin(&state, &config.data_dir).await?;
        let sweep_every = (config.sweep_interval_seconds > 0)
            .then(|| Duration::from_secs(config.sweep_interval_seconds));
        let server = Server {
            state,
            listener,
            admin,
            body_limit: config.body_limit_bytes,
            limits: config.limits,
            tls,
            sweep_every,
            sinks: config.audit_sinks.clone(),
            checkpoint_every: (config.checkpoint_interval_seconds > 0)
                .then(|| Duration::from_secs(config.checkpoint_interval_seconds)),
            report_every: (config.compliance_report_interval_seconds > 0)
                .then(|| Duration::from_secs(config.compliance_report_interval_seconds)),
            reassess_every: (config.discovery_reassess_interval_seconds > 0)
                .then(|| Duration::from_secs(config.discovery_reassess_interval_seconds)),
        };
        Ok((
            server,
            Startup {
                addr,
                admin: admin_addr,
                store: store_label,
                bootstrap,
            },
        ))
    }

    /// Serves until the process is told to stop (Ctrl-C or SIGTERM).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        jobs::start(
            &self.state,
            jobs::Plan {
                sweep_every: self.sweep_every,
                checkpoint_every: self.checkpoint_every,
                report_every: self.report_every,
                reassess_every: self.reassess_every,
                sinks: self.sinks,
                tls: self.tls.clone(),
            },
        );
        if let Some(admin) = self.admin {
            let app = routes::system::admin(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(admin, app).await {
                    tracing::error!(error = %e, "the admin listener stopped");
                }
            });
        }
        let (baselines, clock) = (self.state.behaviour.clone(), self.state.clock.clone());
        let app = router_with(self.state, self.body_limit, &self.limits);
        let limits = serve::ConnectionLimits {
            max_connections: self.limits.max_connections.max(1),
            header_timeout: Duration::from_secs(self.limits.header_timeout_seconds.max(1)),
        };
        let served = serve::serve(self.listener, app, self.tls, limits, shutdown)
            .await
            .context("serving HTTP");
        // The requests in flight are answered: what their baselines learnt since the last
        // save is kept for the next start.
        if let Err(e) = baselines.save(clock.now()).await {
            tracing::error!(error = %e, "could not save the behavioural baselines at stop");
        }
        served
    }
}

/// What happened at start, for the operator.
#[derive(Debug)]
pub struct Startup {
    pub addr: std::net::SocketAddr,
    /// Where the admin listener answers, if there is one.
    pub admin: Option<std::net::SocketAddr>,
    pub store: String,
    pub bootstrap: Option<bootstrap::Bootstrapped>,
}
