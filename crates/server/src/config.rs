//! `aim serve` settings: defaults, then the TOML file (`--config`), then flags and
//! environment variables.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aim_domain::governance::GovernanceConfig;
use aim_domain::identity::IdentityKind;
use aim_domain::naming::{DEFAULT_PATTERN, NamingPolicy};
use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where `/healthz`, `/readyz` and Prometheus `/metrics` answer, apart from the API
    /// (none if unset).
    pub admin_listen: Option<SocketAddr>,
    /// Where the SQLite file, the bootstrap credential and other local state live.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// The largest request body accepted.
    pub body_limit_bytes: usize,
    /// How often the background sweep runs; 0 turns it off (sweeps then run only on demand).
    pub sweep_interval_seconds: u64,
    /// How often a signed checkpoint of the audit chain is made; 0 turns it off (they are
    /// then made only on demand).
    pub checkpoint_interval_seconds: u64,
    /// How often a compliance report is made and kept without anyone asking, so its trend
    /// has a point each period (86400: daily); at least 3600. 0, the default, makes them
    /// only on request.
    pub compliance_report_interval_seconds: u64,
    /// How often discovered accounts are assessed again without an import (a key unused
    /// for a month becomes dormant, an owner who left makes their accounts orphaned); at
    /// least 3600, 0 only when asked (`POST /v1/discovery/reassess`). Daily by default, the
    /// first a period after start.
    pub discovery_reassess_interval_seconds: u64,
    /// Where every audit record is also delivered (`[[audit_sinks]]` tables).
    pub audit_sinks: Vec<SinkConfig>,
    pub governance: GovernanceConfig,
    pub naming: NamingConfig,
    pub tokens: TokenConfig,
    pub policy: PolicyConfig,
    pub approvals: ApprovalsConfig,
    /// `[leases]`: how many one identity and one task may hold, and for how long.
    pub leases: aim_domain::lease::LeaseLimits,
    /// `[behaviour]`: behavioural baselines and what their findings lead to.
    pub behaviour: crate::behaviour::BehaviourConfig,
    /// The first-start admin credential stops working this long after a second active
    /// admin exists (`aim admin rotate-bootstrap` replaces it sooner).
    pub bootstrap_ttl_hours: u32,
    /// `[tls]`: HTTPS for `aim serve`, and the rule for plain-HTTP outbound URLs.
    pub tls: TlsConfig,
    /// `[limits]`: what one client, or many, can hold of the server.
    pub limits: LimitsConfig,
}

/// HTTPS (`[tls]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain and private key: `aim serve` speaks HTTPS with them, and
    /// re-reads them when they change (a renewal needs no restart).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Accept `http://` URLs that are not loopback for a JWKS, a webhook or a sink. Off: a
    /// JWKS over plain HTTP is a root of trust anyone on the path can replace.
    pub allow_insecure_http: bool,
}

/// Limits against abuse (`[limits]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections at once; one more is closed at once.
    pub max_connections: usize,
    /// Requests being handled at once; more wait (within `request_timeout_seconds`).
    pub max_concurrent_requests: usize,
    /// A request's headers (and a TLS handshake) must arrive within this.
    pub header_timeout_seconds: u64,
    /// A request is answered within this, or gets 503 `timeout` (streams once started
    /// are not cut).
    pub request_timeout_seconds: u64,
    /// How long a request waits for a database connection before its 503.
    pub database_wait_ms: u64,
    /// Refused requests from one source are recorded one by one up to this many per
    /// window, then counted and recorded as one event per window.
    pub refusals_per_window: u32,
    pub refusal_window_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_concurrent_requests: 1024,
            header_timeout_seconds: 10,
            request_timeout_seconds: 30,
            database_wait_ms: 2000,
            refusals_per_window: 5,
            refusal_window_seconds: 10,
        }
    }
}

/// Runtime decisions (`[policy]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Cedar schema fragments that extend aim's schema (`namespace Aim { ... }`: entity
    /// types, actions inside aim's action groups). Read at start; a bad one stops it.
    pub schema: Vec<PathBuf>,
}

/// The token issuer (`[tokens]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// The issuer URL tokens name in `iss` and discovery documents advertise; defaults to
    /// `http://<listen address>`. Set it to the URL agents reach aim at.
    pub issuer: Option<String>,
    /// The SPIFFE trust domain of subjects: `spiffe://<trust_domain>/<kind>/<name>`.
    pub trust_domain: String,
    /// The `aud` of access tokens for aim's own API, when a token request names no
    /// `resource`. aim's API refuses a token for any other audience.
    pub audience: String,
    /// The resources (RFC 8707 `resource`, absolute URIs: gateways, tools) an agent may ask
    /// a token for; the token's `aud` is then that resource, and aim's own API refuses it.
    /// Another `resource` is refused with `invalid_target`.
    pub resources: Vec<String>,
    /// The key-encryption key for signing keys at rest, base64url (32 bytes). Every
    /// replica on one database needs the same one. Without it, `kek_file` is used.
    pub kek: Option<String>,
    /// A file holding the key-encryption key (32 raw bytes, mode 0600); created if missing.
    /// Defaults to `<data_dir>/kek`.
    pub kek_file: Option<PathBuf>,
    /// A new signing key is made when the current one is this old.
    pub signing_key_rotation_days: u32,
    /// Access tokens live at most this long, below the per-autonomy defaults (5 minutes
    /// for autonomous agents, 15 for assistants, 60 for automation).
    pub max_token_seconds: Option<i64>,
    /// The longest chain of token exchanges (sub-agent of a sub-agent ...).
    pub max_delegation_depth: usize,
    /// External issuers whose workload tokens aim accepts (`jwt-bearer` grant).
    pub federation: Vec<FederationConfig>,
    /// Require DPoP proofs at the token endpoint to carry a nonce aim handed out
    /// (`DPoP-Nonce`), which caps how long a proof made in advance stays usable.
    pub dpop_nonce: bool,
}

/// A trusted external OIDC issuer (`[[tokens.federation]]`): a Kubernetes cluster, a CI
/// system. Its tokens name a workload in `claim`; `identities` maps that value to the
/// identity it acts as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its public keys are (fetched, cached five minutes, fetched again for an
    /// unknown `kid`).
    pub jwks_url: String,
    /// The `aud` its tokens must carry for aim.
    pub audience: String,
    /// The claim that names the workload (`sub` by default).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Workload (the claim's value) → identity name.
    #[serde(default)]
    pub identities: BTreeMap<String, String>,
    /// A token naming an unknown `kid` fetches the JWKS again, at most this often.
    #[serde(default = "default_refetch")]
    pub refetch_seconds: u64,
    /// A PEM CA to trust, alone, for `jwks_url` (the cluster's CA, say).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_refetch() -> u64 {
    30
}

fn default_claim() -> String {
    "sub".to_owned()
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            trust_domain: "aim.local".to_owned(),
            audience: "aim".to_owned(),
            resources: Vec::new(),
            kek: None,
            kek_file: None,
            signing_key_rotation_days: 30,
            max_token_seconds: None,
            max_delegation_depth: 4,
            federation: Vec::new(),
            dpop_nonce: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamingConfig {
    /// The pattern for kinds without their own.
    pub default: String,
    /// Patterns for some kinds, keyed by kind (`ai_agent = "^agt-[a-z0-9-]{3,48}$"`).
    pub per_kind: BTreeMap<IdentityKind, String>,
}

impl Default for NamingConfig {
    fn default() -> Self {
        Self {
            default: DEFAULT_PATTERN.to_owned(),
            per_kind: BTreeMap::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8420)),
            admin_listen: None,
            data_dir: PathBuf::from("./aim-data"),
            database_url: None,
            body_limit_bytes: 1024 * 1024,
            sweep_interval_seconds: 60,
            bootstrap_ttl_hours: 24,
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            checkpoint_interval_seconds: 60,
            compliance_report_interval_seconds: 0,
            discovery_reassess_interval_seconds: 86_400,
            audit_sinks: Vec::new(),
            governance: GovernanceConfig::default(),
            naming: NamingConfig::default(),
            tokens: TokenConfig::default(),
            policy: PolicyConfig::default(),
            approvals: ApprovalsConfig::default(),
            leases: aim_domain::lease::LeaseLimits::default(),
            behaviour: crate::behaviour::BehaviourConfig::default(),
        }
    }
}

/// What checking the settings produced (see [`Config::check`]).
#[derive(Debug)]
pub struct Checked {
    pub naming: NamingPolicy,
}

impl Config {
    /// Reads a TOML file; every key is optional and unknown keys are refused.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Checks every setting once, turning the raw settings into what the server is built
    /// from; nothing is checked again later.
    pub fn check(&self) -> anyhow::Result<Checked> {
        self.governance.check().map_err(anyhow::Error::msg)?;
        self.approvals.check()?;
        self.behaviour.check()?;
        self.leases.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(
            self.approvals.webhook_url.is_some() == self.approvals.webhook_secret.is_some(),
            "[approvals] webhook_url and webhook_secret go together: a webhook is always signed"
        );
        for (key, value, off) in [
            (
                "compliance_report_interval_seconds",
                self.compliance_report_interval_seconds,
                "make reports only on request",
            ),
            (
                "discovery_reassess_interval_seconds",
                self.discovery_reassess_interval_seconds,
                "reassess only on request",
            ),
        ] {
            anyhow::ensure!(
                value == 0 || value >= 3600,
                "{key} is {value}: at least 3600 (hourly; 86400 for daily), or 0 to {off}"
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.audit_sinks {
            let name = sink.name();
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "audit_sinks: `{name}` is not a valid sink name (letters, digits, - _ .)"
            );
            anyhow::ensure!(
                names.insert(name),
                "audit_sinks: the name `{name}` is used twice"
            );
        }
        self.check_outbound()?;
        let naming = NamingPolicy::new(&self.naming.default, &self.naming.per_kind)
            .map_err(anyhow::Error::msg)?;
        Ok(Checked { naming })
    }

    /// Every outbound URL is HTTPS, or plain HTTP to loopback, unless the operator opted in.
    fn check_outbound(&self) -> anyhow::Result<()> {
        let allow = self.tls.allow_insecure_http;
        for f in &self.tokens.federation {
            crate::outbound::check_url("[[tokens.federation]] jwks_url", &f.jwks_url, allow)?;
        }
        if let Some(url) = &self.approvals.webhook_url {
            crate::outbound::check_url("[approvals] webhook_url", url, allow)?;
        }
        for sink in &self.audit_sinks {
            if let SinkConfig::Webhook {
                url, secret, name, ..
            } = sink
            {
                crate::outbound::check_url("[[audit_sinks]] url", url, allow)?;
                crate::decisions::webhook::key(secret)
                    .with_context(|| format!("[[audit_sinks]] `{name}`: secret"))?;
            }
            if let SinkConfig::Caep {
                url,
                authorization_env,
                name,
                ..
            } = sink
            {
                crate::outbound::check_url("[[audit_sinks]] url", url, allow)?;
                if let Some(var) = authorization_env {
                    std::env::var(var).with_context(|| {
                        format!(
                            "[[audit_sinks]] `{name}`: the environment variable {var} is not set"
                        )
                    })?;
                }
            }
        }
        anyhow::ensure!(
            self.tls.cert_file.is_some() == self.tls.key_file.is_some(),
            "[tls] cert_file and key_file go together"
        );
        Ok(())
    }
}

/// Human approval of high-risk actions and just-in-time elevation (`[approvals]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// How long an approval may wait for a decision, and an approved one for its retry.
    pub ttl_seconds: i64,
    /// The most approvals one identity may have waiting at once; more are refused with
    /// 429 `too_many_pending_approvals`, so an agent in a loop cannot flood the approvers.
    pub max_pending_per_identity: u32,
    /// How long a just-in-time elevation request may wait for its approver.
    pub elevation_pending_seconds: i64,
    /// Where each new approval is announced (`POST`, Standard Webhooks signature).
    pub webhook_url: Option<String>,
    /// The webhook's signing secret, `whsec_<base64>` as Standard Webhooks prints it.
    pub webhook_secret: Option<String>,
    /// How many times one announcement is tried (1 to 10) before it is recorded as failed.
    pub webhook_attempts: u32,
    /// A PEM CA to trust, alone, for `webhook_url`.
    pub webhook_ca_file: Option<std::path::PathBuf>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            ttl_seconds: aim_domain::approval::DEFAULT_TTL_SECONDS,
            max_pending_per_identity: 10,
            elevation_pending_seconds: 3600,
            webhook_url: None,
            webhook_secret: None,
            webhook_attempts: 5,
            webhook_ca_file: None,
        }
    }
}

impl ApprovalsConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(60..=7 * 24 * 3600).contains(&self.ttl_seconds) {
            anyhow::bail!("[approvals] ttl_seconds must be from 60 to 604800");
        }
        if self.max_pending_per_identity == 0 {
            anyhow::bail!("[approvals] max_pending_per_identity must be at least 1");
        }
        if !(1..=10).contains(&self.webhook_attempts) {
            anyhow::bail!("[approvals] webhook_attempts must be from 1 to 10");
        }
        if !(60..=7 * 24 * 3600).contains(&self.elevation_pending_seconds) {
            anyhow::bail!("[approvals] elevation_pending_seconds must be from 60 to 604800");
        }
        Ok(())
    }
}

/// How a record is written into a sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// aim's own record (with its hashes), as one JSON object.
    #[default]
    Jsonl,
    Ocsf,
    Cef,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

/// One `[[audit_sinks]]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    File {
        name: String,
        path: PathBuf,
        #[serde(default)]
        format: SinkFormat,
    },
    Syslog {
        name: String,
        /// `host:port`
        address: String,
        #[serde(default)]
        transport: Transport,
        #[serde(default)]
        format: SinkFormat,
    },
    Webhook {
        name: String,
        /// Receives `POST` with a JSON array of records, oldest first, signed as Standard
        /// Webhooks specifies (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
        url: String,
        /// The signing secret, `whsec_<base64 of at least 24 random bytes>`, shared with
        /// the receiver.
        secret: String,
        /// A PEM CA to trust, alone, for `url`.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// Shared Signals: a CAEP Security Event Token pushed (RFC 8935) to `url` for each
    /// record that cuts an identity off (a lock, a suspension, a revoked token or key).
    Caep {
        name: String,
        /// The receiver's push endpoint.
        url: String,
        /// The SETs' `aud`; `url` if unset.
        #[serde(default)]
        audience: Option<String>,
        /// The environment variable holding the `Authorization` header value the receiver
        /// requires (`Bearer ...`), if it requires one.
        #[serde(default)]
        authorization_env: Option<String>,
        /// A PEM CA to trust, alone, for `url`.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::File { name, .. }
            | SinkConfig::Syslog { name, .. }
            | SinkConfig::Webhook { name, .. }
            | SinkConfig::Caep { name, .. } => name,
        }
    }
}

/// Where the first-start credential's file lives, and how long the credential outlives a
/// second admin.
#[derive(Debug, Clone)]
pub struct BootstrapPolicy {
    pub data_dir: PathBuf,
    pub ttl_hours: u32,
}

#[cfg(test)]
mod tests;

/// What the compliance report reads from the config rather than the store.
#[derive(Debug, Clone, Default)]
pub struct ReportSettings {
    /// The `[[audit_sinks]]` by name.
    pub sinks: Vec<String>,
    /// How often the audit chain is checkpointed, if it is.
    pub checkpoint_every_seconds: Option<u64>,
}
