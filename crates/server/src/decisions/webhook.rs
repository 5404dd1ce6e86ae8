//! Announcing approvals over a signed webhook, as Standard Webhooks specifies: the body is
//! `{"type", "timestamp", "data"}`; `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`) go in
//! headers, so any Standard Webhooks library verifies it. Delivery is tried
//! `[approvals] webhook_attempts` times with backoff from half a second, doubling (same id,
//! so the receiver can de-duplicate); a delivery that never succeeds is logged and recorded
//! as an audit event (`approval.webhook_failed`). The approval itself does not depend on it: approvers
//! can always list what waits for them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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

/// `request` with the JSON `body` and the Standard Webhooks headers that sign it as
/// message `id`, now.
pub fn signed(
    request: reqwest::RequestBuilder,
    key: &hmac::Key,
    id: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let signature = sign(key, id, timestamp, &body);
    request
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
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

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts one message, signed.
    pub async fn post(&self, id: &str, body: &str) -> anyhow::Result<()> {
        let resp = signed(
            self.http.post(self.url.clone()),
            &self.key,
            id,
            body.to_owned(),
        )
        .send()
        .await?;
        if !resp.status().is_success() {
            anyhow::bail!("the receiver answered {}", resp.status());
        }
        Ok(())
    }
}
