//! The credential the gateway injects into an upstream request (the agent's own token never
//! goes upstream), and where it comes from:
//!
//! - `credential_env` / `credential_file`: read once at start;
//! - `aim_secret = "<name>"`: stored in aim, sealed under aim's key-encryption key, handed
//!   only to gateway accounts (`GET /v1/gateway/upstream-secrets/{name}`);
//! - `vault = { addr, path, field, token_env | token_file }`: a KV v2 secret in HashiCorp
//!   Vault or OpenBao, read at the moment of use, so nothing long-lived is kept in aim.
//!
//! A secret read from aim or Vault is reused for `cache_ms` (30 s by default; 0: read for
//! every call). One that cannot be read refuses the call (503
//! `upstream_credential_unavailable`): nothing goes upstream without its credential.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::ConfigError;

/// Where a secret comes from, as written in `gateway.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    #[serde(default)]
    pub credential_env: Option<String>,
    #[serde(default)]
    pub credential_file: Option<PathBuf>,
    /// A secret kept in aim (`aim upstream-secret set NAME`).
    #[serde(default)]
    pub aim_secret: Option<String>,
    /// A KV v2 secret in Vault or OpenBao.
    #[serde(default)]
    pub vault: Option<VaultConfig>,
    /// How long a secret from aim or Vault is reused. Default 30000; 0: every call.
    #[serde(default)]
    pub cache_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// `https://vault.internal:8200`
    pub addr: String,
    /// The KV v2 read path: `<mount>/data/<path>` (`secret/data/crm`).
    pub path: String,
    /// The member of the secret's data to inject (`api_key`).
    pub field: String,
    /// The gateway's Vault token, from this environment variable or file.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// An OAuth 2.0 client of an upstream's authorization server (`kind = "oauth"`).
#[derive(Debug)]
pub struct OAuthClient {
    pub token_url: Url,
    pub client_id: String,
    pub scope: Option<String>,
    /// The client secret, from any source a secret may come from.
    pub secret: Box<Injected>,
}

/// A source checked at start.
#[derive(Debug)]
enum Source {
    Fixed(HeaderValue),
    Aim(String),
    Vault {
        url: Url,
        field: String,
        token: HeaderValue,
        namespace: Option<String>,
    },
    OAuth(OAuthClient),
}

/// The header the gateway sets on each request to one upstream.
pub struct Injected {
    pub name: HeaderName,
    /// `Bearer ` for an `Authorization` bearer credential, else empty.
    prefix: &'static str,
    source: Source,
    cache: Duration,
    /// The value and until when it may be used.
    cached: Mutex<Option<(HeaderValue, Instant)>>,
}

impl std::fmt::Debug for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // INVARIANT: an upstream credential is never printed.
        f.debug_struct("Injected")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why no credential could be had for a call.
#[derive(Debug, thiserror::Error)]
#[error("the credential for this upstream could not be read: {0}")]
pub struct Unavailable(pub String);

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

/// `v` as a header value that is never logged.
pub fn sensitive(what: &str, v: &str) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(v)
        .map_err(|_| invalid(format!("{what}: the value is not a valid header value")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A value from an environment variable or a file, trimmed and not empty.
pub fn read_local(
    what: &str,
    env: Option<&String>,
    file: Option<&PathBuf>,
) -> Result<String, ConfigError> {
    let value = match (env, file) {
        (Some(var), None) => std::env::var(var)
            .map_err(|_| invalid(format!("{what}: the environment variable {var} is not set")))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("{what}: cannot read {}: {e}", path.display())))?,
        _ => {
            return Err(invalid(format!(
                "{what}: give exactly one of an environment variable and a file"
            )));
        }
    };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(invalid(format!("{what}: the credential is empty")));
    }
    Ok(value)
}

impl Injected {
    /// Checks `s` for the header `name` (with `prefix` before the secret), reading what is
    /// read once now.
    pub fn new(
        what: &str,
        name: HeaderName,
        prefix: &'static str,
        s: SecretConfig,
        plain_http: bool,
    ) -> Result<Self, ConfigError> {
        let given = [
            s.credential_env.is_some() || s.credential_file.is_some(),
            s.aim_secret.is_some(),
            s.vault.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(invalid(format!(
                "{what}: give exactly one of credential_env or credential_file, aim_secret, vault"
            )));
        }
        let source = if let Some(n) = s.aim_secret {
            if !aim_domain::tool::valid_name(&n) {
                return Err(invalid(format!(
                    "{what}.aim_secret: {n:?} is not a secret name"
                )));
            }
            Source::Aim(n)
        } else if let Some(v) = s.vault {
            vault_source(what, v, plain_http)?
        } else {
            let value = read_local(what, s.credential_env.as_ref(), s.credential_file.as_ref())?;
            Source::Fixed(sensitive(what, &format!("{prefix}{value}"))?)
        };
        Ok(Self {
            name,
            prefix,
            source,
            cache: Duration::from_millis(s.cache_ms.unwrap_or(30_000)),
            cached: Mutex::new(None),
        })
    }

    /// An OAuth client's bearer token, obtained with the client credentials grant and
    /// reused until shortly before it expires.
    pub fn oauth(client: OAuthClient) -> Self {
        Self {
            name: reqwest::header::AUTHORIZATION,
            prefix: "Bearer ",
            source: Source::OAuth(client),
            cache: Duration::ZERO,
            cached: Mutex::new(None),
        }
    }

    /// The header's value for a call now: read again from aim or Vault once the cached one
    /// is older than `cache_ms`; an OAuth token again once it is about to expire.
    pub async fn value(
        &self,
        aim: &aim_client::Client,
        http: &reqwest::Client,
    ) -> Result<HeaderValue, Unavailable> {
        if let Source::Fixed(v) = &self.source {
            return Ok(v.clone());
        }
        if let Ok(cached) = self.cached.lock()
            && let Some((v, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(v.clone());
        }
        let (secret, lasts) = match &self.source {
            Source::Aim(name) => (
                aim.gateway_upstream_secret(name)
                    .await
                    .map(|s| s.value)
                    .map_err(|e| Unavailable(format!("aim: {e}")))?,
                self.cache,
            ),
            Source::Vault {
                url,
                field,
                token,
                namespace,
            } => (
                read_vault(http, url, field, token, namespace.as_deref()).await?,
                self.cache,
            ),
            Source::OAuth(client) => Box::pin(client_credentials(client, aim, http)).await?,
            Source::Fixed(_) => unreachable!("returned above"),
        };
        let mut value = HeaderValue::from_str(&format!("{}{secret}", self.prefix))
            .map_err(|_| Unavailable("the secret is not a valid header value".into()))?;
        value.set_sensitive(true);
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((value.clone(), Instant::now() + lasts));
        }
        Ok(value)
    }
}

fn vault_source(what: &str, v: VaultConfig, plain_http: bool) -> Result<Source, ConfigError> {
    let addr = crate::config::checked_url(&format!("{what}.vault.addr"), &v.addr, plain_http)?;
    let path = v.path.trim_matches('/');
    if path.is_empty()
        || path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(invalid(format!(
            "{what}.vault.path: {:?} is not a KV path",
            v.path
        )));
    }
    let url = addr
        .join(&format!("v1/{path}"))
        .map_err(|e| invalid(format!("{what}.vault: {e}")))?;
    let token = read_local(
        &format!("{what}.vault token"),
        v.token_env.as_ref(),
        v.token_file.as_ref(),
    )?;
    Ok(Source::Vault {
        url,
        field: v.field,
        token: sensitive(&format!("{what}.vault token"), &token)?,
        namespace: v.namespace,
    })
}

/// A token from the client's authorization server (RFC 6749 §4.4, the client
/// authenticated with HTTP Basic, §2.3.1), and how long to reuse it: until 30 s before it
/// expires (or for 60 s if the server does not say).
async fn client_credentials(
    c: &OAuthClient,
    aim: &aim_client::Client,
    http: &reqwest::Client,
) -> Result<(String, Duration), Unavailable> {
    let secret = c.secret.value(aim, http).await?;
    let secret = secret
        .to_str()
        .map_err(|_| Unavailable("the client secret is not text".into()))?;
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &c.scope {
        form.push(("scope", scope.as_str()));
    }
    let resp = http
        .post(c.token_url.clone())
        .basic_auth(&c.client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            Unavailable(format!(
                "the token endpoint {}: {e}",
                c.token_url.origin().ascii_serialization()
            ))
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Unavailable(format!("the token endpoint answered {status}")));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Unavailable(format!("the token endpoint's answer is not JSON: {e}")))?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| Unavailable("the token endpoint's answer has no access_token".into()))?;
    let lasts = body["expires_in"]
        .as_u64()
        .map_or(Duration::from_secs(60), |s| {
            Duration::from_secs(s.saturating_sub(30))
        });
    Ok((token.to_owned(), lasts))
}

/// One KV v2 read: `data.data.<field>` of `GET /v1/<mount>/data/<path>`.
async fn read_vault(
    http: &reqwest::Client,
    url: &Url,
    field: &str,
    token: &HeaderValue,
    namespace: Option<&str>,
) -> Result<String, Unavailable> {
    let mut req = http.get(url.clone()).header("x-vault-token", token.clone());
    if let Some(ns) = namespace {
        req = req.header("x-vault-namespace", ns);
    }
    let resp = req.send().await.map_err(|e| {
        Unavailable(format!(
            "Vault at {}: {e}",
            url.origin().ascii_serialization()
        ))
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Unavailable(format!(
            "Vault answered {status} for {}",
            url.path()
        )));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Unavailable(format!("Vault's answer is not JSON: {e}")))?;
    body["data"]["data"][field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Unavailable(format!("{} has no string field {field:?}", url.path())))
}
