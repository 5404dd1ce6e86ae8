//! Prometheus metrics of `aim serve`, on its admin listener (`admin_listen`: `/healthz`,
//! `/readyz`, `/metrics`), apart from the API's port:
//!
//! | metric | what |
//! |---|---|
//! | `aim_decisions_total{effect, via}` | decisions by `allow` / `deny` / `approval_required`, asked by an agent or a human (`api`) or a gateway (`gateway`) |
//! | `aim_decision_seconds{via}` | a decision's handling, the durable record included |
//! | `aim_tokens_issued_total` | access tokens issued |
//! | `aim_locks_total` | identities locked (one, or each of an emergency stop, or by a baseline) |
//! | `aim_behaviour_findings_total{detector, response}` | calls out of character for their identity's baseline, by the detector behind the response (or the first) and the response |
//! | `aim_revocation_epoch` | the newest revocation this replica's feed reader has seen |
//! | `aim_gateways_connected`, `aim_gateways_behind` | gateways that acknowledged within 5 s, and those of them not yet at the newest epoch |
//! | `aim_live_cache_hits_total`, `aim_live_cache_misses_total` | the token endpoint's cache of live state |

use std::time::Duration;

use aim_domain::decision::Effect;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What is read when Prometheus scrapes.
#[derive(Debug)]
pub struct Scraped {
    pub epoch: i64,
    /// Gateways connected, and how many of them are behind (`None`: the store did not say).
    pub gateways: Option<(i64, i64)>,
    /// The token endpoint's live-state cache: hits, misses.
    pub cache: (u64, u64),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    effect: &'static str,
    via: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    detector: &'static str,
    response: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViaLabels {
    via: &'static str,
}

fn latency() -> Histogram {
    // 50 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 18))
}

/// What `aim serve` counts.
#[derive(Debug)]
pub struct Metrics {
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Family<ViaLabels, Histogram, fn() -> Histogram>,
    tokens: Counter,
    locks: Counter,
    findings: Family<FindingLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            decisions: Family::default(),
            decision_seconds: Family::new_with_constructor(latency),
            tokens: Counter::default(),
            locks: Counter::default(),
            findings: Family::default(),
        }
    }
}

impl Metrics {
    /// A decision made (`via`: `api` or `gateway`), and how long it took.
    pub fn decided(&self, via: &'static str, effect: Effect, took: Duration) {
        self.decisions
            .get_or_create(&DecisionLabels {
                effect: effect.as_str(),
                via,
            })
            .inc();
        self.decision_seconds
            .get_or_create(&ViaLabels { via })
            .observe(took.as_secs_f64());
    }

    pub fn token_issued(&self) {
        self.tokens.inc();
    }

    pub fn locked(&self, n: u64) {
        self.locks.inc_by(n);
    }

    /// A call out of character: the detector behind the response and the response.
    pub fn found(&self, detector: &'static str, response: &'static str) {
        self.findings
            .get_or_create(&FindingLabels { detector, response })
            .inc();
    }

    /// The OpenMetrics text, with what is read at scrape time given.
    pub fn encode(&self, now: &Scraped) -> String {
        let mut r = Registry::default();
        r.register(
            "aim_decisions",
            "Decisions by effect and asker",
            self.decisions.clone(),
        );
        r.register(
            "aim_decision_seconds",
            "A decision's handling, its durable record included",
            self.decision_seconds.clone(),
        );
        r.register(
            "aim_tokens_issued",
            "Access tokens issued",
            self.tokens.clone(),
        );
        r.register("aim_locks", "Identities locked", self.locks.clone());
        r.register(
            "aim_behaviour_findings",
            "Calls out of character for their identity's baseline, by detector and response",
            self.findings.clone(),
        );
        let gauge = |v: i64| {
            let g = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
            g.set(v);
            g
        };
        r.register(
            "aim_revocation_epoch",
            "The newest revocation this replica has seen",
            gauge(now.epoch),
        );
        if let Some((connected, behind)) = now.gateways {
            r.register(
                "aim_gateways_connected",
                "Gateways that acknowledged the feed within 5 s",
                gauge(connected),
            );
            r.register(
                "aim_gateways_behind",
                "Connected gateways not yet at the newest revocation",
                gauge(behind),
            );
        }
        r.register(
            "aim_live_cache_hits",
            "Token requests answered from the live-state cache",
            ConstCounter::new(now.cache.0),
        );
        r.register(
            "aim_live_cache_misses",
            "Token requests that read the live state from the store",
            ConstCounter::new(now.cache.1),
        );
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &r).is_err() {
            tracing::error!("encoding the metrics failed");
        }
        out
    }
}
