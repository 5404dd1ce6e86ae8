//! Announcing approvals over a signed webhook, as Standard Webhooks specifies: the body is
//! `{"type", "timestamp", "data"}`; `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`) go in
//! headers, so any Standard Webhooks library verifies it. Delivery is tried
//! `[approvals] webhook_attempts` times with backoff from half a second, doubling (same id,
//! so the receiver can de-duplicate); a delivery that never succeeds is logged and recorded
//! as an audit event (`approval.webhook_failed`). The approval itself does not depend on it: approvers
//! can always list what waits for them.

use aim_domain::event::AuditAction;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::state::AppState;

#[derive(Clone)]
pub struct Webhook {
    url: reqwest::Url,
    key: hmac::Key,
    http: reqwest::Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The signature header's value for one message.
pub fn sign(key: &hmac::Key, id: &str, timestamp: i64, body: &str) -> String {
    let tag = hmac::sign(key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The key of a `whsec_<base64>` secret.
pub fn key(secret: &str) -> anyhow::Result<hmac::Key> {
    let b64 = secret
        .strip_prefix("whsec_")
        .context("the webhook secret must look like whsec_<base64>")?;
    let bytes = STANDARD
        .decode(b64)
        .context("the webhook secret after whsec_ is not base64")?;
    if bytes.len() < 24 {
        anyhow::bail!("the webhook secret must hold at least 24 random bytes");
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

impl Webhook {
    pub fn new(url: &str, secret: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).context("[approvals] webhook_url is not a URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("[approvals] webhook_url must be http or https");
        }
        Ok(Webhook {
            url,
            key: key(secret)?,
            http: crate::outbound::client(ca_file, Duration::from_secs(10))
                .context("[approvals] webhook client")?,
        })
    }

    async fn post(&self, id: &str, body: &str) -> anyhow::Result<()> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let resp = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&self.key, id, timestamp, body))
            .body(body.to_owned())
            .send()
            .await?;
        if !resp.status().is_success() {
            anyhow::bail!("the receiver answered {}", resp.status());
        }
        Ok(())
    }
}

/// Sends `{type, timestamp, data}` as message `id` in the background, retrying.
/// `kind` is the audit action of what is announced (`approval.requested`, `grant.requested`).
pub fn announce(state: &AppState, id: String, kind: AuditAction, data: Value) {
    let Some(hook) = state.runtime.webhook.clone() else {
        return;
    };
    let body = json!({
        "type": kind.as_str(),
        "timestamp": state.clock.now().to_string(),
        "data": data,
    })
    .to_string();
    let state = state.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(500);
        let mut last = String::new();
        let attempts = state.runtime.approvals.webhook_attempts;
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
        tracing::error!(webhook = %hook.url, message = %id, error = %last, "could not deliver the approval webhook");
        let event = aim_domain::event::Event::new(
            state.clock.now(),
            aim_domain::event::Actor::system("approvals"),
            AuditAction::ApprovalWebhookFailed,
            "approval",
            &id,
        )
        .outcome(aim_domain::event::Outcome::Denied)
        .reason(format!("after {attempts} attempts: {last}"));
        if let Err(e) = state.store.append_event(&event).await {
            tracing::error!(error = %e, "could not record the failed webhook");
        }
    });
}
