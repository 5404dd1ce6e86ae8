//! The revocation feed gateways follow. One reader per replica follows the revocation list
//! and fans each new entry out to every gateway connected here; it reads the moment the
//! store's generation moves, which a write committed here moves, and on PostgreSQL a
//! write committed on any other replica too (its `NOTIFY`), with a poll every second as a
//! floor. Gateways acknowledge what they applied (`POST /v1/gateway/acks`), and a lock
//! answers how many connected gateways did and how fast ([`acknowledged`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aim_api::gateway::Acknowledged;
use aim_domain::agent_key::Revocation;
use aim_domain::time::Timestamp;
use aim_store::DynStore;
use tokio::sync::broadcast;

/// How long a gateway counts as connected after its last acknowledgement (it acknowledges
/// every heartbeat, each second).
pub const PRESENCE: Duration = Duration::from_secs(5);
/// How often the feed says it is alive when nothing else happens.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a lock waits for connected gateways to acknowledge it.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// Of the gateways' acknowledgements `(gateway, epoch, at)`, how many gateways are connected
/// (acknowledged within [`PRESENCE`] of `now`), and how many of those are behind `epoch`.
pub fn presence(acks: &[(String, i64, Timestamp)], epoch: i64, now: Timestamp) -> (u64, u64) {
    let since = now.plus_millis(-(PRESENCE.as_millis() as i64));
    let connected: Vec<_> = acks.iter().filter(|(_, _, at)| *at >= since).collect();
    let behind = connected.iter().filter(|(_, e, _)| *e < epoch).count();
    (connected.len() as u64, behind as u64)
}

/// This replica's feed: the newest epoch it has read, and the entries as they come.
#[derive(Debug)]
pub struct Feed {
    entries: broadcast::Sender<Revocation>,
    epoch: AtomicI64,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            entries: broadcast::channel(1024).0,
            epoch: AtomicI64::new(0),
        }
    }
}

impl Feed {
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.entries.subscribe()
    }

    /// The newest epoch the reader has fanned out.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }
}

/// The replica's one reader: never returns.
pub async fn follow(store: DynStore, feed: Arc<Feed>) {
    let mut epoch = loop {
        match store.latest_epoch().await {
            Ok(e) => break e,
            Err(e) => {
                tracing::error!(error = %e, "revocation feed: cannot read the list; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    feed.epoch.store(epoch, Ordering::Release);
    loop {
        let seen = store.generation().current();
        match store.revocations(epoch, 500).await {
            Ok(batch) => {
                let full = batch.len() == 500;
                for r in batch {
                    epoch = r.epoch;
                    feed.epoch.store(epoch, Ordering::Release);
                    // No gateway connected is not an error.
                    let _ = feed.entries.send(r);
                }
                if full {
                    continue;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "revocation feed: cannot read the list; retrying");
            }
        }
        tokio::select! {
            () = store.generation().moved_from(seen) => {}
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

/// Waits (at most two seconds) until every gateway connected to any replica has
/// acknowledged the newest revocation (the lock just committed), and says how many did, of
/// how many, how fast. The lock is applied whatever this finds: a store that cannot be read
/// here is logged and the answer says no gateway was seen to acknowledge, never fails the lock.
pub async fn acknowledged(
    store: &DynStore,
    now: impl Fn() -> Timestamp,
    since: Instant,
) -> Acknowledged {
    let mut epoch = None;
    loop {
        let at = now();
        let read = match epoch {
            Some(e) => store.gateway_acks().await.map(|acks| (e, acks)),
            None => match store.latest_epoch().await {
                Ok(e) => {
                    epoch = Some(e);
                    store.gateway_acks().await.map(|acks| (e, acks))
                }
                Err(err) => Err(err),
            },
        };
        let waited = since.elapsed();
        let (e, acks) = match read {
            Ok(r) => r,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the gateways' acknowledgements");
                if waited >= ACK_WAIT {
                    return Acknowledged {
                        epoch: epoch.unwrap_or_default(),
                        acknowledged: 0,
                        connected: 0,
                        millis: waited.as_secs_f64() * 1000.0,
                    };
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let connected: Vec<_> = acks
            .iter()
            .filter(|(_, _, acked)| {
                at.as_millis() - acked.as_millis() <= PRESENCE.as_millis() as i64
            })
            .collect();
        let done = connected.iter().filter(|(_, acked, _)| *acked >= e).count();
        if done == connected.len() || waited >= ACK_WAIT {
            return Acknowledged {
                epoch: e,
                acknowledged: done as u32,
                connected: connected.len() as u32,
                millis: waited.as_secs_f64() * 1000.0,
            };
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_counts_recent_acknowledgements_and_those_behind() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let at = |ago_ms: i64| now.plus_millis(-ago_ms);
        let acks = vec![
            ("gw-a".to_owned(), 7, at(0)),
            ("gw-b".to_owned(), 6, at(PRESENCE.as_millis() as i64)),
            ("gw-c".to_owned(), 7, at(PRESENCE.as_millis() as i64 + 1)),
        ];
        // gw-c is gone; of the two connected, gw-b has not reached epoch 7.
        assert_eq!(presence(&acks, 7, now), (2, 1));
        assert_eq!(presence(&acks, 6, now), (2, 0));
        assert_eq!(presence(&[], 7, now), (0, 0));
    }
}
