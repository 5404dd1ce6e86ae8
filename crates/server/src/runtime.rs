//! What decisions use besides the policy set: the live grants (cached, reloaded when their
//! revision moves), the approvals config, and the webhook that announces approvals.

pub mod webhook;

use std::sync::Arc;

use aim_domain::time::Timestamp;
use aim_enforce::Snapshot;
use aim_enforce::amend::Grants;
use aim_store::DynStore;
use serde::Deserialize;

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
            ttl_seconds: aim_domain::step_up::DEFAULT_TTL_SECONDS,
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

#[derive(Debug)]
pub struct Runtime {
    pub approvals: ApprovalsConfig,
    pub leases: aim_domain::lease::LeaseLimits,
    pub webhook: Option<webhook::Webhook>,
    grants: Snapshot<Grants>,
}

impl Runtime {
    pub async fn load(
        store: &DynStore,
        approvals: ApprovalsConfig,
        leases: aim_domain::lease::LeaseLimits,
        now: Timestamp,
    ) -> anyhow::Result<Self> {
        approvals.check()?;
        leases.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        let webhook = match (&approvals.webhook_url, &approvals.webhook_secret) {
            (Some(url), Some(secret)) => Some(webhook::Webhook::new(
                url,
                secret,
                approvals.webhook_ca_file.as_deref(),
            )?),
            (None, None) => None,
            _ => anyhow::bail!(
                "[approvals] webhook_url and webhook_secret go together: a webhook is always signed"
            ),
        };
        let (revision, grants) = store.live_grants(now).await?;
        Ok(Runtime {
            approvals,
            leases,
            webhook,
            grants: Snapshot::new(Grants { revision, grants }),
        })
    }

    /// The live grants now.
    pub fn grants(&self) -> Arc<Grants> {
        self.grants.current()
    }

    /// Reloads the live grants if they changed (here or on another replica).
    pub async fn refresh_grants(&self, store: &DynStore, now: Timestamp) -> anyhow::Result<()> {
        let revision = store.grants_revision().await?;
        if revision == self.grants().revision {
            return Ok(());
        }
        let (revision, grants) = store.live_grants(now).await?;
        self.grants
            .replace_if(Grants { revision, grants }, |new, old| {
                new.revision >= old.revision
            });
        Ok(())
    }
}

/// Picks up grants changed on other replicas, every five seconds.
pub async fn background(state: crate::AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = state.clock.now();
        if let Err(e) = state.runtime.refresh_grants(&state.store, now).await {
            tracing::error!(error = %e, "could not refresh the grants");
        }
    }
}
