//! Refused requests on the record without letting a flood write the record. Every refusal
//! (a request without a valid credential, a refused token request, a refused join) is an
//! audit event, but each is a durable, hash-chained write that shares the writer with
//! decisions: anyone could grow the log without bound and slow `/v1/authorize`. So per
//! source address, the first few refusals of a window are recorded one by one, and the rest
//! are counted and recorded as one event per source and window, with the count and the
//! codes: nothing is dropped silently, and a flood costs a few records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::time::Timestamp;
use aim_store::DynStore;
use serde_json::json;

/// Sources tracked at once; beyond it, new sources share one window (`*`).
const MAX_SOURCES: usize = 10_000;

#[derive(Debug)]
struct Window {
    started: Instant,
    first_at: Timestamp,
    recorded: u32,
    /// Refusals counted, not recorded, by their code.
    counted: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub struct Refusals {
    per_window: u32,
    window: Duration,
    sources: Mutex<HashMap<String, Window>>,
}

impl Refusals {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window: window.max(Duration::from_secs(1)),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Records `event`, a refusal from `source` with `code`, or counts it for the window's
    /// summary. A summary that is due for `source` is written first.
    pub async fn record(&self, store: &DynStore, source: &str, code: &str, event: Event) {
        let (write, due) = self.take(source, code, event.at);
        if let Some(summary) = due {
            append(store, &summary).await;
        }
        if write {
            append(store, &event).await;
        }
    }

    /// Whether to write this refusal, and the summary of `source`'s last window if it ended.
    fn take(&self, source: &str, code: &str, at: Timestamp) -> (bool, Option<Event>) {
        let Ok(mut sources) = self.sources.lock() else {
            return (true, None);
        };
        let key = if sources.len() >= MAX_SOURCES && !sources.contains_key(source) {
            "*"
        } else {
            source
        };
        let now = Instant::now();
        let mut due = None;
        if let Some(w) = sources.get(key)
            && now.duration_since(w.started) >= self.window
        {
            due = sources
                .remove(key)
                .and_then(|w| summary(key, &w, at, self.window));
        }
        let w = sources.entry(key.to_owned()).or_insert_with(|| Window {
            started: now,
            first_at: at,
            recorded: 0,
            counted: BTreeMap::new(),
        });
        if w.recorded < self.per_window {
            w.recorded += 1;
            (true, due)
        } else {
            *w.counted.entry(code.to_owned()).or_default() += 1;
            (false, due)
        }
    }

    /// Writes the summaries of every window that has ended (run every window).
    /// How long one window lasts: summaries are written once per window.
    pub fn window(&self) -> Duration {
        self.window
    }

    pub async fn flush(&self, store: &DynStore, at: Timestamp) {
        let due: Vec<Event> = {
            let Ok(mut sources) = self.sources.lock() else {
                return;
            };
            let now = Instant::now();
            let ended: Vec<String> = sources
                .iter()
                .filter(|(_, w)| now.duration_since(w.started) >= self.window)
                .map(|(k, _)| k.clone())
                .collect();
            ended
                .into_iter()
                .filter_map(|k| {
                    let w = sources.remove(&k)?;
                    summary(&k, &w, at, self.window)
                })
                .collect()
        };
        for e in &due {
            append(store, e).await;
        }
    }
}

/// The one record of a window's counted refusals, if any were counted.
fn summary(source: &str, w: &Window, at: Timestamp, window: Duration) -> Option<Event> {
    let count: u64 = w.counted.values().sum();
    if count == 0 {
        return None;
    }
    Some(
        Event::new(
            at,
            Actor::anonymous(),
            AuditAction::RequestRefused,
            "source",
            source,
        )
        .denied()
        .reason(format!(
            "{count} more refused requests from {source} in {} s, counted, not recorded one by one",
            window.as_secs()
        ))
        .detail(json!({
            "count": count,
            "codes": w.counted,
            "since": w.first_at,
            "window_seconds": window.as_secs(),
        }))
        .from_request("", source),
    )
}

async fn append(store: &DynStore, e: &Event) {
    if let Err(err) = store.append_event(e).await {
        tracing::error!(error = %err, "could not record a refused request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_not_recorded() {
        let r = Refusals::new(3, Duration::from_secs(3600));
        let at = Timestamp::from_millis(0);
        let written: usize = (0..1000)
            .filter(|_| r.take("10.0.0.9", "unauthenticated", at).0)
            .count();
        assert_eq!(written, 3);
        assert!(
            r.take("10.0.0.8", "unauthenticated", at).0,
            "another source is its own"
        );
        let sources = r.sources.lock().unwrap();
        let w = &sources["10.0.0.9"];
        assert_eq!(w.counted["unauthenticated"], 997);
        let s = summary("10.0.0.9", w, at, Duration::from_secs(10)).unwrap();
        assert_eq!(s.detail["count"], 997);
    }
}
