//! What the gateway hears from aim: the revocation feed (`GET /v1/gateway/feed`) and its
//! heartbeat. Each entry is applied to a local list checked on every request before and
//! after aim decides, so a lock holds here the moment it is heard even if a decision raced
//! it; each entry applied, and each heartbeat, is acknowledged (`POST /v1/gateway/acks`),
//! which is what a lock's answer counts. A gateway that has heard nothing for longer than
//! its staleness limit refuses everything (503 `gateway_stale`) until it hears again; the
//! feed reconnects by itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aim_domain::agent_key::{Revocation, RevocationKind};
use aim_token::claims::AccessClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;

/// What the gateway has heard, and when it last heard anything.
#[derive(Debug)]
pub struct Heard {
    staleness: Duration,
    last: Mutex<Option<Instant>>,
    epoch: AtomicI64,
    /// Revoked values by kind, with the instant (ms) of their revocation.
    revoked: Mutex<HashMap<(RevocationKind, String), (i64, i64)>>,
    /// Moves on each revocation applied: open streams check whether it ends them.
    applied: tokio::sync::watch::Sender<i64>,
    /// The policy version and grants revision in force at aim, as its heartbeat last said.
    versions: tokio::sync::watch::Sender<(i64, i64)>,
}

impl Heard {
    pub fn new(staleness: Duration) -> Self {
        Self {
            staleness,
            last: Mutex::new(None),
            epoch: AtomicI64::new(0),
            revoked: Mutex::new(HashMap::new()),
            applied: tokio::sync::watch::Sender::new(0),
            versions: tokio::sync::watch::Sender::new((0, 0)),
        }
    }

    /// The policy version and grants revision aim's heartbeat last named.
    pub fn versions(&self) -> tokio::sync::watch::Receiver<(i64, i64)> {
        self.versions.subscribe()
    }

    /// Changes each time a revocation is applied.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<i64> {
        self.applied.subscribe()
    }

    /// How long since aim was last heard, if that is past the staleness limit (or it
    /// never was).
    pub fn stale(&self) -> Option<Option<Duration>> {
        let last = *self.last.lock().ok()?;
        match last {
            None => Some(None),
            Some(at) if at.elapsed() > self.staleness => Some(Some(at.elapsed())),
            Some(_) => None,
        }
    }

    /// Since aim was last heard (`None`: never).
    pub fn silence(&self) -> Option<Duration> {
        self.last.lock().ok()?.map(|at| at.elapsed())
    }

    /// The newest epoch applied.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn heard(&self, epoch: i64) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
        self.epoch.fetch_max(epoch, Ordering::AcqRel);
    }

    fn apply(&self, r: &Revocation) {
        if let Ok(mut revoked) = self.revoked.lock() {
            // By aim's clock, as its entries tell it: an entry past its expiry can match no
            // live token.
            let now = r.at.as_millis();
            revoked.retain(|_, (_, expires)| *expires > now);
            revoked.insert(
                (r.kind, r.value.clone()),
                (r.at.as_millis(), r.expires_at.as_millis()),
            );
        }
        self.applied.send_replace(r.epoch);
    }

    /// Whether what this gateway heard ended `task` (or locked, suspended... `identity`,
    /// which ends its tasks).
    pub fn ended(&self, task: &str, identity: &str) -> bool {
        let Ok(revoked) = self.revoked.lock() else {
            return false;
        };
        revoked.contains_key(&(RevocationKind::Task, task.to_owned()))
            || revoked.contains_key(&(RevocationKind::Identity, identity.to_owned()))
    }

    /// Whether what this gateway heard revokes `token` (read without checking its
    /// signature: this can only refuse, never allow).
    pub fn revokes(&self, token: &str) -> bool {
        let Ok(revoked) = self.revoked.lock() else {
            return true;
        };
        // Most of the time nothing is revoked: the token is not even read.
        if revoked.is_empty() {
            return false;
        }
        let Some((kid, claims)) = unverified(token) else {
            return false;
        };
        let issued = claims.issued_ms();
        let has = |kind, value: &str| revoked.get(&(kind, value.to_owned())).map(|(at, _)| *at);
        let delegators = claims
            .act
            .as_ref()
            .and_then(|a| a.client_ids())
            .unwrap_or_default();
        has(RevocationKind::Token, &claims.jti).is_some()
            || claims
                .aim_parents
                .iter()
                .any(|p| has(RevocationKind::Token, p).is_some())
            || has(RevocationKind::Task, &claims.aim_task).is_some()
            || kid.is_some_and(|k| has(RevocationKind::SigningKey, &k).is_some())
            || std::iter::once(claims.client_id.as_str())
                .chain(delegators)
                .any(|id| has(RevocationKind::Identity, id).is_some_and(|at| issued <= at))
    }
}

/// The task a token names, read without checking its signature (to key what this gateway
/// remembers for the task; aim checks everything again).
pub fn task_of(token: &str) -> Option<String> {
    unverified(token).map(|(_, c)| c.aim_task)
}

/// A token's `kid` and claims, unverified.
fn unverified(token: &str) -> Option<(Option<String>, AccessClaims)> {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .map(str::to_owned);
    Some((kid, claims))
}

/// Follows aim's feed for as long as the gateway runs, reconnecting after any failure.
pub async fn follow(aim: aim_client::Client, heard: std::sync::Arc<Heard>) {
    loop {
        match listen(&aim, &heard).await {
            Ok(()) => tracing::warn!("aim closed the revocation feed; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "the revocation feed failed; reconnecting"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One connection to the feed, until it ends.
async fn listen(aim: &aim_client::Client, heard: &Heard) -> Result<(), String> {
    // Resume after what was applied; on a first connection, from now on.
    let since = (heard.epoch() > 0).then(|| heard.epoch());
    let response = aim.gateway_feed(since).await.map_err(|e| e.to_string())?;
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = body.next().await {
        buffer.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        while let Some(end) = find(&buffer, b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            if let Some(epoch) = event(heard, &String::from_utf8_lossy(&block))
                && let Err(e) = aim.gateway_ack(epoch).await
            {
                tracing::warn!(error = %e, "could not acknowledge the feed");
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Applies one server-sent event; returns the epoch to acknowledge.
fn event(heard: &Heard, block: &str) -> Option<i64> {
    let mut kind = "message";
    let mut data = String::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    match kind {
        "hello" | "heartbeat" => {
            let beat = serde_json::from_str::<serde_json::Value>(&data).ok()?;
            let epoch = beat.get("epoch")?.as_i64()?;
            if let (Some(policy), Some(grants)) = (
                beat.get("policy_version").and_then(|v| v.as_i64()),
                beat.get("grants_revision").and_then(|v| v.as_i64()),
            ) {
                heard.versions.send_if_modified(|now| {
                    let moved = *now != (policy, grants);
                    *now = (policy, grants);
                    moved
                });
            }
            heard.heard(epoch);
            Some(heard.epoch())
        }
        "revocation" => {
            let r: Revocation = serde_json::from_str(&data).ok()?;
            heard.apply(&r);
            heard.heard(r.epoch);
            tracing::info!(kind = %r.kind.as_str(), value = %r.value, epoch = r.epoch, "revocation applied");
            Some(heard.epoch())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_that_never_heard_from_aim_is_stale() {
        let heard = Heard::new(Duration::from_millis(50));
        assert_eq!(heard.stale(), Some(None));
        assert_eq!(
            event(&heard, "event: heartbeat\ndata: {\"epoch\": 7}\n"),
            Some(7)
        );
        assert_eq!(heard.stale(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(heard.stale(), Some(Some(_))));
    }
}
