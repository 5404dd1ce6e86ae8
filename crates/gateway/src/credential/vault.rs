//! Secrets read from HashiCorp Vault or OpenBao at the moment of use:
//!
//! - a **KV v2** secret (`path = "secret/data/crm"`): `data.data.<field>`;
//! - a **dynamic secret** (`dynamic = true`, `path = "database/creds/crm-agent"`, or any
//!   engine's credentials endpoint): one lease per task, made on the task's first call and
//!   reused for its calls until shortly before the lease runs out, and revoked
//!   (`PUT /v1/sys/leases/revoke`) as soon as the gateway hears the task ended or its
//!   identity was locked. A credential that lives exactly as long as the task that needed
//!   it, and that nobody (aim included) keeps.
//!
//! A revocation Vault refuses is tried again every few seconds until it is taken, and one
//! slow revocation does not hold up the others (they run side by side). A
//! gateway that stops revokes every lease it holds; one that is killed forgets them, and
//! they end at their TTL, which is why a role's `default_ttl` should be the longest a task
//! may run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use super::{Revoked, Secret, Unavailable, invalid, read_local, sensitive};
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// `https://vault.internal:8200`
    pub addr: String,
    /// The read path: KV v2 `<mount>/data/<path>` (`secret/data/crm`), or with
    /// `dynamic = true` a credentials endpoint (`database/creds/crm-agent`).
    pub path: String,
    /// The member of the secret's data to inject (`api_key`, `password`).
    pub field: String,
    /// The member holding the user name, for `kind = "basic"` (`username`).
    #[serde(default)]
    pub username_field: Option<String>,
    /// A dynamic secret: leased per task, revoked when the task ends.
    #[serde(default)]
    pub dynamic: bool,
    /// The gateway's Vault token, from this environment variable or file.
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Where a Vault secret is read, checked at start.
#[derive(Debug)]
pub(super) struct Vault {
    addr: Url,
    url: Url,
    field: String,
    username_field: Option<String>,
    token: HeaderValue,
    namespace: Option<String>,
    /// `Some` for a dynamic secret: the leases held, by task.
    leases: Option<Leases>,
}

/// How long a revocation may take. Vault abandons a revocation whose caller hung up, and a
/// database engine's revocation (revoke grants, reassign, `DROP ROLE`, each committed) takes
/// seconds on a busy database: a short deadline would give up on it again and again, and
/// the credential would live on to its TTL. Revocation is off the request path, so waiting
/// costs no call anything.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A lease held for a task.
#[derive(Debug, Clone)]
struct Held {
    lease_id: String,
    identity: String,
    secret: Secret,
    /// Until when it is used for the task's calls (before the lease itself runs out).
    until: Instant,
}

#[derive(Debug, Default)]
struct Leases {
    held: Mutex<HashMap<String, Held>>,
    /// Leases whose task ended but whose revocation Vault has not taken yet.
    unrevoked: Mutex<Vec<Held>>,
    /// One lease made at a time: two first calls of a task make one lease, not two.
    making: tokio::sync::Mutex<()>,
}

/// The task a call is made under, and its identity: what a lease is held for.
#[derive(Debug, Clone, Copy)]
pub struct ForTask<'a> {
    pub task: &'a str,
    pub identity: &'a str,
}

impl Vault {
    pub(super) fn new(what: &str, v: VaultConfig, plain_http: bool) -> Result<Self, ConfigError> {
        let addr = crate::config::checked_url(&format!("{what}.vault.addr"), &v.addr, plain_http)?;
        let path = v.path.trim_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            || path.starts_with("sys/")
        {
            return Err(invalid(format!(
                "{what}.vault.path: {:?} is not a secret's path",
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
        Ok(Self {
            addr,
            url,
            field: v.field,
            username_field: v.username_field,
            token: sensitive(&format!("{what}.vault token"), &token)?,
            namespace: v.namespace,
            leases: v.dynamic.then(Leases::default),
        })
    }

    pub(super) fn dynamic(&self) -> bool {
        self.leases.is_some()
    }

    pub(super) fn names_user(&self) -> bool {
        self.username_field.is_some()
    }

    /// The secret for a call: a KV read, or the task's lease (made on its first call).
    pub(super) async fn read(
        &self,
        http: &reqwest::Client,
        task: Option<ForTask<'_>>,
    ) -> Result<Secret, Unavailable> {
        let Some(leases) = &self.leases else {
            let body = self.get(http).await?;
            return self.secret(&body["data"]["data"]);
        };
        let task =
            task.ok_or_else(|| Unavailable("a dynamic secret needs the call's task".into()))?;
        if let Some(s) = leases.fresh(task.task) {
            return Ok(s);
        }
        let _making = leases.making.lock().await;
        if let Some(s) = leases.fresh(task.task) {
            return Ok(s);
        }
        let body = self.get(http).await?;
        let secret = self.secret(&body["data"])?;
        let lease_id = body["lease_id"]
            .as_str()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                Unavailable(format!(
                    "{} gave no lease: is it a dynamic secret?",
                    self.url.path()
                ))
            })?;
        let lasts = Duration::from_secs(body["lease_duration"].as_u64().unwrap_or(0));
        let held = Held {
            lease_id: lease_id.to_owned(),
            identity: task.identity.to_owned(),
            secret: secret.clone(),
            // Replaced a tenth of its life before it runs out (at least a second before).
            until: Instant::now() + lasts.saturating_sub((lasts / 10).max(Duration::from_secs(1))),
        };
        tracing::info!(task = task.task, lease = %held.lease_id, seconds = lasts.as_secs(), "leased a dynamic secret for the task");
        if let Ok(mut map) = leases.held.lock()
            && let Some(old) = map.insert(task.task.to_owned(), held)
            && let Ok(mut unrevoked) = leases.unrevoked.lock()
        {
            // Replaced before it ran out: revoked now rather than left to its TTL.
            unrevoked.push(old);
        }
        Ok(secret)
    }

    /// Revokes the leases of tasks that `ended` says ended (and retries those Vault
    /// refused before); forgets those that ran out by themselves.
    pub(super) async fn revoke_ended(
        &self,
        http: &reqwest::Client,
        ended: &super::Ended<'_>,
    ) -> Revoked {
        let Some(leases) = &self.leases else {
            return Revoked::default();
        };
        let mut due: Vec<Held> = leases
            .unrevoked
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default();
        if let Ok(mut map) = leases.held.lock() {
            let gone: Vec<String> = map
                .iter()
                .filter(|(task, h)| ended(task, &h.identity) || h.until <= Instant::now())
                .map(|(task, _)| task.clone())
                .collect();
            // A lease no longer used (its task ended, or it was about to run out and a
            // new one replaces it) is revoked, not left to its TTL.
            due.extend(gone.iter().filter_map(|task| map.remove(task)));
        }
        let revoked = futures_util::future::join_all(due.into_iter().map(|h| async move {
            let outcome = self.revoke(http, &h.lease_id).await;
            (h, outcome)
        }))
        .await;
        let mut pass = Revoked::default();
        for (h, outcome) in revoked {
            match outcome {
                Ok(()) => {
                    pass.revoked += 1;
                    tracing::info!(lease = %h.lease_id, "revoked the dynamic secret of an ended task")
                }
                Err(e) => {
                    pass.failed += 1;
                    tracing::warn!(lease = %h.lease_id, error = %e.0, "Vault did not revoke a lease; trying again");
                    if let Ok(mut u) = leases.unrevoked.lock() {
                        u.push(h);
                    }
                }
            }
        }
        pass
    }

    /// How many leases are held for tasks, and how many wait to be revoked.
    pub(super) fn lease_counts(&self) -> (usize, usize) {
        self.leases.as_ref().map_or((0, 0), |l| {
            (
                l.held.lock().map_or(0, |m| m.len()),
                l.unrevoked.lock().map_or(0, |u| u.len()),
            )
        })
    }

    fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: Url,
    ) -> reqwest::RequestBuilder {
        let mut req = http
            .request(method, url)
            .header("x-vault-token", self.token.clone());
        if let Some(ns) = &self.namespace {
            req = req.header("x-vault-namespace", ns);
        }
        req
    }

    async fn get(&self, http: &reqwest::Client) -> Result<serde_json::Value, Unavailable> {
        let resp = self
            .request(http, reqwest::Method::GET, self.url.clone())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Unavailable(format!(
                "Vault answered {status} for {}",
                self.url.path()
            )));
        }
        resp.json()
            .await
            .map_err(|e| Unavailable(format!("Vault's answer is not JSON: {e}")))
    }

    async fn revoke(&self, http: &reqwest::Client, lease_id: &str) -> Result<(), Unavailable> {
        let url = self
            .addr
            .join("v1/sys/leases/revoke")
            .map_err(|e| Unavailable(e.to_string()))?;
        let resp = self
            .request(http, reqwest::Method::PUT, url)
            .timeout(REVOKE_TIMEOUT)
            .json(&serde_json::json!({ "lease_id": lease_id }))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Unavailable(format!(
                "Vault answered {status} to the revocation"
            )))
        }
    }

    fn secret(&self, data: &serde_json::Value) -> Result<Secret, Unavailable> {
        let field = |name: &str| {
            data[name].as_str().map(str::to_owned).ok_or_else(|| {
                Unavailable(format!("{} has no string field {name:?}", self.url.path()))
            })
        };
        Ok(Secret {
            value: field(&self.field)?,
            username: self.username_field.as_deref().map(field).transpose()?,
        })
    }

    /// What went wrong reaching Vault, with the cause (reqwest's own message names only the
    /// URL): refused, reset, no answer in time.
    fn unreachable(&self, e: &reqwest::Error) -> Unavailable {
        if e.is_timeout() {
            return Unavailable(format!("Vault at {} did not answer in time", self.origin()));
        }
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            why = format!("{why}: {c}");
            cause = c.source();
        }
        Unavailable(format!("Vault at {}: {why}", self.origin()))
    }

    fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl Leases {
    /// The task's lease, while it is to be used.
    fn fresh(&self, task: &str) -> Option<Secret> {
        let map = self.held.lock().ok()?;
        map.get(task)
            .filter(|h| Instant::now() < h.until)
            .map(|h| h.secret.clone())
    }
}
