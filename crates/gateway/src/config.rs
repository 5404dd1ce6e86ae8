//! `gateway.toml`: where the gateway listens and is reached, the aim it asks, the upstreams
//! it may call and the routes that turn a request into a question. Everything is checked
//! when the file is read: a gateway with a bad route does not start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

use crate::credential::{Format, Injected, SecretConfig, read_local};
use crate::net::Cidr;
use crate::route::{Route, Template};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where `/healthz` and `/readyz` answer, apart from agents' traffic (none if unset).
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// The URL agents reach this gateway at: the audience their tokens must name (the
    /// RFC 8707 `resource` they ask aim for) and the base of their DPoP proofs' `htu`.
    pub resource: String,
    pub aim: AimConfig,
    /// The largest request body read (it is read whole: its hash binds an approval to
    /// exactly these arguments). Default 1 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Plain HTTP to a host other than loopback (upstreams, aim, the resource) is refused
    /// unless this is set.
    #[serde(default)]
    pub allow_plain_http: bool,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// MCP servers behind upstreams, by name (see [`crate::mcp::config`]).
    #[serde(default)]
    pub mcp: BTreeMap<String, crate::mcp::config::McpConfig>,
    /// A journal on this gateway's disk where durable routes' records are made durable
    /// before the call goes on, then sent to aim (see [`crate::journal`]); none if unset.
    #[serde(default)]
    pub journal: Option<JournalConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Its folder (made if missing), on a disk that keeps what it syncs; one gateway's own.
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AimConfig {
    /// aim's base URL.
    pub url: String,
    /// The gateway's credential (a human with the `gateway` role): from this environment
    /// variable or file.
    #[serde(flatten)]
    pub credential: Secret,
    /// The issuer agents' tokens name, for the protected resource metadata; aim's URL by
    /// default.
    #[serde(default)]
    pub issuer: Option<String>,
    /// How long to wait for aim's answer before refusing the call. Default 5000.
    #[serde(default = "default_aim_timeout")]
    pub timeout_ms: u64,
    /// Not having heard from aim's revocation feed (an entry or its heartbeat, each
    /// second) for longer than this, the gateway refuses everything until it has.
    /// Default 5000.
    #[serde(default = "default_aim_timeout")]
    pub staleness_ms: u64,
    /// Where decisions are taken: `auto` (the default: here when the record need not wait
    /// for aim, that is on a batched route or with a `[journal]`; else by aim), `gateway`
    /// (here, with aim's policy set, grants, keys and live state, whatever the route; without
    /// a journal the record still goes to aim before forwarding on a durable route) or `aim` (every decision asked of aim, `POST /v1/gateway/authorize`). Measured
    /// side by side in `BENCHMARKS.md`.
    #[serde(default)]
    pub decide: crate::decide::Where,
}

/// A secret read at start from an environment variable or a file, never from the config
/// file itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    #[serde(default)]
    pub credential_env: Option<String>,
    #[serde(default)]
    pub credential_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub url: String,
    /// Removed from the front of the request path before forwarding (`/crm` →
    /// `/records/42` for `/crm/records/42`).
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Addresses outside the public internet (loopback, private, link-local, ...) this
    /// upstream may resolve to, as CIDRs. Any other such address is refused, at start for
    /// an address in the URL and at each connection for a name.
    #[serde(default)]
    pub allow_addresses: Vec<String>,
    /// How long the upstream may take to answer. Default 30000.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: u64,
    /// What the gateway adds to each request (the agent's token never goes upstream).
    #[serde(default)]
    pub credential: Option<CredentialConfig>,
}

/// The credential an upstream gets; its value from a file or the environment, aim
/// (`aim_secret`) or Vault/OpenBao (`vault`), see [`crate::credential`].
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialConfig {
    /// `<name>: <value>` (an API key header).
    Header {
        name: String,
        #[serde(flatten)]
        value: SecretConfig,
    },
    /// `Authorization: Bearer <value>`.
    Bearer {
        #[serde(flatten)]
        value: SecretConfig,
    },
    /// `Authorization: Basic base64(<username>:<value>)`; the user name given here, or
    /// read with the secret (`vault = { username_field = "username", ... }`, as a
    /// database engine's dynamic credentials give it).
    Basic {
        #[serde(default)]
        username: Option<String>,
        #[serde(flatten)]
        value: SecretConfig,
    },
    /// `Authorization: Bearer <access token>` obtained from the upstream's authorization
    /// server with the client credentials grant, reused until shortly before it expires.
    /// The client secret comes from any source a credential may (`credential_env`,
    /// `aim_secret`, `vault`, ...).
    Oauth {
        token_url: String,
        client_id: String,
        #[serde(default)]
        scope: Option<String>,
        #[serde(flatten)]
        client_secret: SecretConfig,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub upstream: String,
    /// `GET`, `POST`, ... or `*` for any.
    pub method: String,
    /// `/crm/records/{id}`; `{name}` matches one segment, a last `{*name}` the rest.
    pub path: String,
    /// The Cedar action the request is (`read`, `write`, ...).
    pub action: String,
    pub resource: TargetConfig,
    /// `durable` (the default): the decision is on aim's record before the request is
    /// forwarded. `batched`: the record is queued and sent within milliseconds; a gateway
    /// that dies loses what is queued (see `docs/gateway.md`).
    #[serde(default)]
    pub audit: crate::decide::Audit,
}

/// The resource a request acts on; `id` and literal attributes may use `{param}` from the
/// path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    #[serde(rename = "type", default = "default_kind")]
    pub kind: String,
    pub system: String,
    pub id: String,
    /// Attribute name → where its value comes from: `"{param}"` (the path),
    /// `"query:<name>"`, `"body:<JSON pointer>"` (`body:/subject`), or a literal.
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

fn default_kind() -> String {
    "Resource".into()
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_aim_timeout() -> u64 {
    5_000
}
fn default_upstream_timeout() -> u64 {
    30_000
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// An upstream as checked: its URL, the addresses it may reach, its credential read.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub url: Url,
    pub strip_prefix: Option<String>,
    pub allow: Vec<Cidr>,
    pub timeout_ms: u64,
    pub credential: Option<Injected>,
}

/// The whole configuration, checked.
#[derive(Debug)]
pub struct Checked {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub resource: String,
    pub aim_url: String,
    pub aim_credential: String,
    pub issuer: String,
    pub aim_timeout_ms: u64,
    pub staleness_ms: u64,
    pub decide: crate::decide::Where,
    pub journal: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub upstreams: Vec<Upstream>,
    pub routes: Vec<Route>,
    pub mcp: Vec<crate::mcp::config::Server>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Checked, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.check()
    }

    /// Checks every part and reads the secrets it names.
    pub fn check(self) -> Result<Checked, ConfigError> {
        let plain = self.allow_plain_http;
        let resource = checked_url("resource", &self.resource, plain)?;
        if resource.query().is_some() || resource.fragment().is_some() {
            return Err(invalid("resource: a resource has no query or fragment"));
        }
        let aim_url = checked_url("aim.url", &self.aim.url, plain)?;
        let aim_credential = read_local(
            "aim",
            self.aim.credential.credential_env.as_ref(),
            self.aim.credential.credential_file.as_ref(),
        )?;
        let mut upstreams = Vec::new();
        for (name, u) in self.upstreams {
            upstreams.push(upstream(name, u, plain)?);
        }
        let mut routes = Vec::new();
        for (i, r) in self.routes.into_iter().enumerate() {
            let Some(at) = upstreams.iter().position(|u| u.name == r.upstream) else {
                return Err(invalid(format!(
                    "routes[{i}]: no upstream is called {:?}",
                    r.upstream
                )));
            };
            let template = Template::parse(&r.path)
                .map_err(|e| invalid(format!("routes[{i}] ({}): {e}", r.path)))?;
            let mut route = Route::new(at, &r.method, template, r.action, r.resource)
                .map_err(|e| invalid(format!("routes[{i}] ({}): {e}", r.path)))?;
            route.audit = r.audit;
            routes.push(route);
        }
        let mcp = crate::mcp::config::check(self.mcp, &upstreams)?;
        let aim_base = aim_url.as_str().trim_end_matches('/').to_owned();
        Ok(Checked {
            listen: self.listen,
            admin_listen: self.admin_listen,
            resource: resource.as_str().trim_end_matches('/').to_owned(),
            issuer: self.aim.issuer.unwrap_or_else(|| aim_base.clone()),
            aim_url: aim_base,
            aim_credential,
            aim_timeout_ms: self.aim.timeout_ms,
            staleness_ms: self.aim.staleness_ms,
            decide: self.aim.decide,
            journal: self.journal.map(|j| j.path),
            max_body_bytes: self.max_body_bytes,
            upstreams,
            routes,
            mcp,
        })
    }
}

/// `raw` as a URL the gateway may call: HTTPS, or plain HTTP to loopback or when allowed;
/// no credentials in it.
pub(crate) fn checked_url(what: &str, raw: &str, plain_allowed: bool) -> Result<Url, ConfigError> {
    let u = Url::parse(raw).map_err(|e| invalid(format!("{what}: {raw:?} is not a URL: {e}")))?;
    match u.scheme() {
        "https" => {}
        "http" if plain_allowed || crate::net::is_loopback_host(&u) => {}
        "http" => {
            return Err(invalid(format!(
                "{what}: plain HTTP to {raw:?} is refused (set allow_plain_http = true to allow it)"
            )));
        }
        other => return Err(invalid(format!("{what}: scheme {other:?} is not http(s)"))),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(format!(
            "{what}: credentials do not belong in a URL; use a credential setting"
        )));
    }
    Ok(u)
}

fn upstream(name: String, u: UpstreamConfig, plain: bool) -> Result<Upstream, ConfigError> {
    let what = format!("upstreams.{name}");
    let url = checked_url(&format!("{what}.url"), &u.url, plain)?;
    let allow = u
        .allow_addresses
        .iter()
        .map(|c| Cidr::parse(c).map_err(|e| invalid(format!("{what}.allow_addresses: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    // An address written in the URL is checked now; a name at each connection.
    if let Some(ip) = crate::net::literal_ip(&url) {
        crate::net::check(ip, &allow).map_err(|e| invalid(format!("{what}.url: {e}")))?;
    }
    let credential = match u.credential {
        None => None,
        Some(CredentialConfig::Header {
            name: header,
            value,
        }) => {
            let name =
                reqwest::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    invalid(format!(
                        "{what}.credential: {header:?} is not a header name"
                    ))
                })?;
            if crate::upstream::is_reserved(&name) {
                return Err(invalid(format!(
                    "{what}.credential: {header:?} is a header the gateway sets itself"
                )));
            }
            Some(Injected::new(
                &what,
                name,
                Format::Prefixed(""),
                value,
                plain,
            )?)
        }
        Some(CredentialConfig::Bearer { value }) => Some(Injected::new(
            &what,
            reqwest::header::AUTHORIZATION,
            Format::Prefixed("Bearer "),
            value,
            plain,
        )?),
        Some(CredentialConfig::Basic { username, value }) => Some(Injected::new(
            &what,
            reqwest::header::AUTHORIZATION,
            Format::Basic(username),
            value,
            plain,
        )?),
        Some(CredentialConfig::Oauth {
            token_url,
            client_id,
            scope,
            client_secret,
        }) => {
            let token_url =
                checked_url(&format!("{what}.credential.token_url"), &token_url, plain)?;
            let secret = Injected::new(
                &format!("{what}.credential client secret"),
                reqwest::header::AUTHORIZATION,
                Format::Prefixed(""),
                client_secret,
                plain,
            )?;
            if secret.dynamic() {
                return Err(invalid(format!(
                    "{what}.credential: an OAuth client secret is not leased per task (dynamic = false)"
                )));
            }
            Some(Injected::oauth(crate::credential::OAuthClient {
                token_url,
                client_id,
                scope,
                secret: Box::new(secret),
            }))
        }
    };
    Ok(Upstream {
        name,
        url,
        strip_prefix: u.strip_prefix,
        allow,
        timeout_ms: u.timeout_ms,
        credential,
    })
}
