//! What decisions use besides the policy set: the live grants (cached, reloaded when their
//! revision moves), the approvals config, and the webhook that announces approvals.

pub mod webhook;

use std::sync::Arc;

use aim_domain::Clock;
use aim_domain::event::{Actor, AuditAction, Event, Outcome};
use aim_domain::time::Timestamp;
use aim_enforce::Snapshot;
use aim_enforce::amend::Grants;
use aim_store::DynStore;
use serde_json::{Value, json};

use crate::config::ApprovalsConfig;

#[derive(Debug)]
pub struct Decisions {
    pub approvals: ApprovalsConfig,
    pub leases: aim_domain::lease::LeaseLimits,
    pub webhook: Option<webhook::Webhook>,
    grants: Snapshot<Grants>,
}

impl Decisions {
    pub async fn load(
        store: &DynStore,
        approvals: ApprovalsConfig,
        leases: aim_domain::lease::LeaseLimits,
        now: Timestamp,
    ) -> anyhow::Result<Self> {
        let webhook = match (&approvals.webhook_url, &approvals.webhook_secret) {
            (Some(url), Some(secret)) => Some(webhook::Webhook::new(
                url,
                secret,
                approvals.webhook_ca_file.as_deref(),
            )?),
            // `Config::check` refused one without the other.
            _ => None,
        };
        let (revision, grants) = store.live_grants(now).await?;
        Ok(Decisions {
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

    /// Sends `{type, timestamp, data}` as message `id` over the webhook, if there is one,
    /// in the background, retrying; a delivery that never succeeds is recorded. `kind` is
    /// the audit action of what is announced (`approval.requested`, `grant.requested`).
    pub fn announce(
        &self,
        store: &DynStore,
        clock: &Arc<dyn Clock>,
        id: String,
        kind: AuditAction,
        data: Value,
    ) {
        let Some(hook) = self.webhook.clone() else {
            return;
        };
        let body = json!({
            "type": kind.as_str(),
            "timestamp": clock.now().to_string(),
            "data": data,
        })
        .to_string();
        let (store, clock) = (store.clone(), clock.clone());
        let attempts = self.approvals.webhook_attempts;
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_millis(500);
            let mut last = String::new();
            for attempt in 1..=attempts {
                match hook.post(&id, &body).await {
                    Ok(()) => return,
                    Err(e) => last = e.to_string(),
                }
                if attempt < attempts {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
            tracing::error!(webhook = %hook.url(), message = %id, error = %last, "could not deliver the approval webhook");
            let event = Event::new(
                clock.now(),
                Actor::system("approvals"),
                AuditAction::ApprovalWebhookFailed,
                "approval",
                &id,
            )
            .outcome(Outcome::Denied)
            .reason(format!("after {attempts} attempts: {last}"));
            if let Err(e) = store.append_event(&event).await {
                tracing::error!(error = %e, "could not record the failed webhook");
            }
        });
    }
}
