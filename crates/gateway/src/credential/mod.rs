//! The credential the gateway injects into an upstream request (the agent's own token never
//! goes upstream), and where it comes from:
//!
//! - `credential_env` / `credential_file`: read once at start;
//! - `aim_secret = "<name>"`: stored in aim, sealed under aim's key-encryption key, handed
//!   only to gateway accounts (`GET /v1/gateway/upstream-secrets/{name}`);
//! - `vault = { addr, path, field, token_env | token_file }`: a KV v2 secret in HashiCorp
//!   Vault or OpenBao, read at the moment of use, so nothing long-lived is kept in aim;
//!   with `dynamic = true`, a dynamic secret leased per task and revoked when the task
//!   ends ([`vault`]).
//!
//! It is injected as a header of its own (`kind = "header"`), a bearer token, or HTTP
//! Basic (`kind = "basic"`: a fixed `username`, or the secret's `username_field`).
//!
//! A secret read from aim or Vault is reused for `cache_ms` (30 s by default; 0: read for
//! every call). One that cannot be read refuses the call (503
//! `upstream_credential_unavailable`): nothing goes upstream without its credential.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::ConfigError;

pub mod vault;

pub use vault::{ForTask, VaultConfig};

/// Whether a task (by its id, and its identity's) has ended, as the gateway heard it.
pub type Ended<'a> = dyn Fn(&str, &str) -> bool + Send + Sync + 'a;

/// What a pass of revocations did: leases Vault revoked, and revocations it refused or did
/// not finish in time (kept, and tried again on the next pass).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    pub revoked: usize,
    pub failed: usize,
}

impl std::ops::Add for Revoked {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            revoked: self.revoked + o.revoked,
            failed: self.failed + o.failed,
        }
    }
}

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
    /// Read at start; the header's value made once.
    Fixed(HeaderValue),
    Aim(String),
    Vault(Box<vault::Vault>),
    OAuth(OAuthClient),
}

/// A secret as read, and the user name that goes with it where the source names one.
#[derive(Clone)]
pub(crate) struct Secret {
    value: String,
    username: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // INVARIANT: an upstream credential is never printed.
        f.debug_struct("Secret").finish_non_exhaustive()
    }
}

/// How a secret becomes the header's value.
#[derive(Debug, Clone)]
pub enum Format {
    /// The secret after a prefix (`Bearer `, or nothing for an API key header).
    Prefixed(&'static str),
    /// `Basic base64(user:secret)`: the user fixed in the configuration, or named by the
    /// secret itself (`username_field`).
    Basic(Option<String>),
}

/// The header the gateway sets on each request to one upstream.
pub struct Injected {
    pub name: HeaderName,
    format: Format,
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
    /// Checks `s` for the header `name` (its value made from the secret as `format` says),
    /// reading what is read once now.
    pub fn new(
        what: &str,
        name: HeaderName,
        format: Format,
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
        let mut local = None;
        let source = if let Some(n) = s.aim_secret {
            if !aim_domain::tool::valid_name(&n) {
                return Err(invalid(format!(
                    "{what}.aim_secret: {n:?} is not a secret name"
                )));
            }
            Source::Aim(n)
        } else if let Some(v) = s.vault {
            Source::Vault(Box::new(vault::Vault::new(what, v, plain_http)?))
        } else {
            let value = read_local(what, s.credential_env.as_ref(), s.credential_file.as_ref())?;
            local = Some(Secret {
                value,
                username: None,
            });
            Source::Fixed(HeaderValue::from_static(""))
        };
        let names_user = matches!(&source, Source::Vault(v) if v.names_user());
        match &format {
            Format::Basic(None) if !names_user => {
                return Err(invalid(format!(
                    "{what}: HTTP Basic needs a username, or a vault username_field"
                )));
            }
            Format::Basic(Some(_)) if names_user => {
                return Err(invalid(format!(
                    "{what}: give a username or a vault username_field, not both"
                )));
            }
            Format::Prefixed(_) if names_user => {
                return Err(invalid(format!(
                    "{what}: username_field is for kind = \"basic\""
                )));
            }
            _ => {}
        }
        let mut injected = Self {
            name,
            format,
            source,
            cache: Duration::from_millis(s.cache_ms.unwrap_or(30_000)),
            cached: Mutex::new(None),
        };
        if let Some(secret) = local {
            // Made once; a value that cannot be a header refuses the configuration.
            let value = injected
                .header(&secret)
                .map_err(|e| invalid(format!("{what}: {}", e.0)))?;
            injected.source = Source::Fixed(value);
        }
        Ok(injected)
    }

    /// An OAuth client's bearer token, obtained with the client credentials grant and
    /// reused until shortly before it expires.
    pub fn oauth(client: OAuthClient) -> Self {
        Self {
            name: reqwest::header::AUTHORIZATION,
            format: Format::Prefixed("Bearer "),
            source: Source::OAuth(client),
            cache: Duration::ZERO,
            cached: Mutex::new(None),
        }
    }

    /// The header's value for a call now, made under `task`: read again from aim or Vault
    /// once the cached one is older than `cache_ms`; an OAuth token again once it is about
    /// to expire; a dynamic secret once per task.
    pub async fn value(
        &self,
        aim: &aim_client::Client,
        http: &reqwest::Client,
        task: Option<ForTask<'_>>,
    ) -> Result<HeaderValue, Unavailable> {
        match &self.source {
            Source::Fixed(value) => return Ok(value.clone()),
            // Kept per task by the source itself.
            Source::Vault(v) if v.dynamic() => return self.header(&v.read(http, task).await?),
            _ => {}
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
                    .map(|s| Secret {
                        value: s.value,
                        username: None,
                    })
                    .map_err(|e| Unavailable(format!("aim: {e}")))?,
                self.cache,
            ),
            Source::Vault(v) => (v.read(http, task).await?, self.cache),
            Source::OAuth(client) => {
                let (token, lasts) = Box::pin(client_credentials(client, aim, http)).await?;
                (
                    Secret {
                        value: token,
                        username: None,
                    },
                    lasts,
                )
            }
            Source::Fixed(_) => unreachable!("returned above"),
        };
        let value = self.header(&secret)?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((value.clone(), Instant::now() + lasts));
        }
        Ok(value)
    }

    /// The header's value made from `secret`, marked sensitive (never logged).
    fn header(&self, secret: &Secret) -> Result<HeaderValue, Unavailable> {
        let text = match &self.format {
            Format::Prefixed(prefix) => format!("{prefix}{}", secret.value),
            Format::Basic(fixed) => {
                let user = fixed
                    .as_deref()
                    .or(secret.username.as_deref())
                    .unwrap_or_default();
                if user.contains(':') {
                    return Err(Unavailable("a Basic user name cannot hold `:`".into()));
                }
                let pair = format!("{user}:{}", secret.value);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| Unavailable("the secret is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Revokes the dynamic secrets of tasks that ended (`ended(task, identity)`).
    pub async fn revoke_ended(&self, http: &reqwest::Client, ended: &Ended<'_>) -> Revoked {
        match &self.source {
            Source::Vault(v) => v.revoke_ended(http, ended).await,
            _ => Revoked::default(),
        }
    }

    /// Whether the secret is leased per task (and has leases to revoke).
    pub fn dynamic(&self) -> bool {
        matches!(&self.source, Source::Vault(v) if v.dynamic())
    }

    /// Leases held for tasks, and leases waiting to be revoked.
    pub fn lease_counts(&self) -> (usize, usize) {
        match &self.source {
            Source::Vault(v) => v.lease_counts(),
            _ => (0, 0),
        }
    }
}

/// A token from the client's authorization server (RFC 6749 §4.4, the client
/// authenticated with HTTP Basic, §2.3.1), and how long to reuse it: until 30 s before it
/// expires (or for 60 s if the server does not say).
async fn client_credentials(
    c: &OAuthClient,
    aim: &aim_client::Client,
    http: &reqwest::Client,
) -> Result<(String, Duration), Unavailable> {
    let secret = c.secret.value(aim, http, None).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn from_file(dir: &std::path::Path, value: &str) -> SecretConfig {
        let file = dir.join("secret");
        std::fs::write(&file, value).unwrap();
        toml::from_str(&format!(
            "credential_file = {:?}",
            file.display().to_string()
        ))
        .unwrap()
    }

    fn vault(extra: &str) -> SecretConfig {
        toml::from_str(&format!(
            r#"vault = {{ addr = "http://127.0.0.1:8200", path = "database/creds/crm", field = "password", token_env = "PATH"{extra} }}"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn basic_is_the_user_and_the_secret_in_base64() {
        let dir = tempfile::tempdir().unwrap();
        let basic = Format::Basic(Some("svc-crm".into()));
        let injected = Injected::new(
            "t",
            reqwest::header::AUTHORIZATION,
            basic,
            from_file(dir.path(), "s3cret\n"),
            false,
        )
        .unwrap();
        let aim = aim_client::Client::new("http://127.0.0.1:1", None);
        let value = injected
            .value(&aim, &reqwest::Client::new(), None)
            .await
            .unwrap();
        // base64("svc-crm:s3cret")
        assert_eq!(value.to_str().unwrap(), "Basic c3ZjLWNybTpzM2NyZXQ=");
        assert!(value.is_sensitive());
        assert!(!format!("{injected:?}").contains("s3cret"));
    }

    #[test]
    fn a_user_name_comes_from_one_place_and_only_for_basic() {
        let dir = tempfile::tempdir().unwrap();
        let auth = || reqwest::header::AUTHORIZATION;
        let refused = |format: Format, s: SecretConfig| {
            Injected::new("t", auth(), format, s, true)
                .unwrap_err()
                .to_string()
        };
        let no_user = refused(Format::Basic(None), from_file(dir.path(), "x"));
        assert!(no_user.contains("needs a username"), "{no_user}");
        let both = refused(
            Format::Basic(Some("u".into())),
            vault(r#", username_field = "username""#),
        );
        assert!(both.contains("not both"), "{both}");
        let header = refused(
            Format::Prefixed(""),
            vault(r#", username_field = "username""#),
        );
        assert!(header.contains("kind = \"basic\""), "{header}");
        let sys = refused(
            Format::Prefixed(""),
            toml::from_str(r#"vault = { addr = "http://127.0.0.1:8200", path = "sys/leases/revoke", field = "x", token_env = "PATH" }"#).unwrap(),
        );
        assert!(sys.contains("not a secret's path"), "{sys}");
        let ok = Injected::new(
            "t",
            auth(),
            Format::Basic(None),
            vault(r#", username_field = "username", dynamic = true"#),
            true,
        )
        .unwrap();
        assert!(ok.dynamic());
    }

    /// A dynamic secret is leased for a task: a call without one gets nothing.
    #[tokio::test]
    async fn a_dynamic_secret_needs_the_call_s_task() {
        let injected = Injected::new(
            "t",
            reqwest::header::AUTHORIZATION,
            Format::Prefixed("Bearer "),
            vault(", dynamic = true"),
            true,
        )
        .unwrap();
        let aim = aim_client::Client::new("http://127.0.0.1:1", None);
        let e = injected
            .value(&aim, &reqwest::Client::new(), None)
            .await
            .unwrap_err();
        assert!(e.0.contains("task"), "{}", e.0);
    }
}
