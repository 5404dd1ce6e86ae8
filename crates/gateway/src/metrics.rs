//! Prometheus metrics, served on the admin listener (`GET /metrics`, OpenMetrics text):
//!
//! | metric | what |
//! |---|---|
//! | `aim_gateway_requests_total{kind, outcome, status, code}` | requests by `http` / `mcp`, `forwarded` / `refused`, the status answered and the refusal's code |
//! | `aim_gateway_decisions_total{taken, why}` | decisions `taken` at the `gateway` or by `aim`, and why aim took it (`approval`, `lease`, `sponsor`, `tool_not_pinned`, `unknown_key`, `not_synced`, `no_keys`) |
//! | `aim_gateway_decision_seconds{call}` | time to a decision on the record: `gateway` (taken here), `authorize` (asked of aim), and aim's `verify`, `list` |
//! | `aim_gateway_upstream_seconds{upstream}` | from forwarding to the upstream's answer headers |
//! | `aim_gateway_revocation_epoch` | the newest revocation applied |
//! | `aim_gateway_feed_silence_seconds` | since aim's feed was last heard (an entry or a heartbeat) |
//! | `aim_gateway_stale` | 1 while the gateway refuses everything for not hearing aim |
//! | `aim_gateway_journal_backlog_bytes` | journaled records aim does not have yet (about; alert if it grows: the gateway refuses appends past 1 GiB and sends records to aim directly) |
//! | `aim_gateway_dynamic_leases{state}` | dynamic Vault secrets `held` for running tasks, and `revoking` (their task ended; Vault has not taken the revocation yet: alert if it stays above 0) |
//! | `aim_gateway_lease_revocations_total{outcome}` | revocations Vault took (`revoked`), and those it refused or did not finish in 30 s (`failed`, tried again 3 s later) |
//!
//! The gateway keeps no cache of decisions: each call is decided (see `docs/architecture.md`).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::feed::Heard;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub status: u16,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TakenLabels {
    pub taken: &'static str,
    pub why: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

fn latency() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The gateway's metrics and the registry they are encoded from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    taken: Family<TakenLabels, Counter>,
    decision: Family<CallLabels, Histogram, fn() -> Histogram>,
    upstream: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    epoch: Gauge,
    silence: Gauge<f64, AtomicU64>,
    stale: Gauge,
    leases: Family<LeaseLabels, Gauge>,
    revocations: Family<OutcomeLabels, Counter>,
    backlog: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let decision =
            Family::<CallLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let upstream =
            Family::<UpstreamLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let (epoch, silence, stale) = (
            Gauge::default(),
            Gauge::<f64, AtomicU64>::default(),
            Gauge::default(),
        );
        registry.register(
            "aim_gateway_requests",
            "Requests by kind (http, mcp), outcome, status answered and refusal code",
            requests.clone(),
        );
        registry.register(
            "aim_gateway_decision_seconds",
            "Time waiting for aim (authorize, verify, list)",
            decision.clone(),
        );
        registry.register(
            "aim_gateway_upstream_seconds",
            "From forwarding to the upstream's answer headers",
            upstream.clone(),
        );
        registry.register(
            "aim_gateway_revocation_epoch",
            "The newest revocation applied",
            epoch.clone(),
        );
        registry.register(
            "aim_gateway_feed_silence_seconds",
            "Since aim's revocation feed was last heard",
            silence.clone(),
        );
        registry.register(
            "aim_gateway_stale",
            "1 while every call is refused for not hearing aim",
            stale.clone(),
        );
        let taken = Family::<TakenLabels, Counter>::default();
        registry.register(
            "aim_gateway_decisions",
            "Decisions by where they were taken (gateway, aim) and why aim took one",
            taken.clone(),
        );
        let leases = Family::<LeaseLabels, Gauge>::default();
        registry.register(
            "aim_gateway_dynamic_leases",
            "Dynamic Vault secrets held for running tasks, and waiting to be revoked",
            leases.clone(),
        );
        let revocations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "aim_gateway_lease_revocations",
            "Revocations of dynamic Vault secrets, by outcome (revoked, failed)",
            revocations.clone(),
        );
        let backlog = Gauge::default();
        registry.register(
            "aim_gateway_journal_backlog_bytes",
            "Journaled records aim does not have yet, in bytes (about)",
            backlog.clone(),
        );
        Self {
            backlog,
            registry,
            requests,
            taken,
            decision,
            upstream,
            epoch,
            silence,
            stale,
            leases,
            revocations,
        }
    }
}

impl Metrics {
    pub fn request(&self, kind: &'static str, status: u16, refused: Option<&str>) {
        let labels = RequestLabels {
            kind,
            outcome: if refused.is_some() {
                "refused"
            } else {
                "forwarded"
            },
            status,
            code: refused.unwrap_or_default().to_owned(),
        };
        self.requests.get_or_create(&labels).inc();
    }

    pub fn decided(&self, call: &'static str, took: Duration) {
        self.decision
            .get_or_create(&CallLabels { call })
            .observe(took.as_secs_f64());
    }

    /// A decision taken here (`why` empty) or by aim, and why.
    pub fn taken(&self, taken: &'static str, why: &'static str) {
        self.taken.get_or_create(&TakenLabels { taken, why }).inc();
    }

    pub fn upstream(&self, upstream: &str, took: Duration) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Dynamic-secret leases held for tasks, and waiting to be revoked.
    pub fn leases(&self, held: usize, revoking: usize) {
        for (state, n) in [("held", held), ("revoking", revoking)] {
            self.leases
                .get_or_create(&LeaseLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A pass of revocations: how many Vault took, and how many failed.
    pub fn revocations(&self, pass: crate::credential::Revoked) {
        for (outcome, n) in [("revoked", pass.revoked), ("failed", pass.failed)] {
            self.revocations
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n as u64);
        }
    }

    /// Bytes journaled that aim does not have yet.
    pub fn journal_backlog(&self, bytes: u64) {
        self.backlog.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text, with the feed's state read now.
    pub fn encode(&self, heard: &Arc<Heard>) -> String {
        self.epoch.set(heard.epoch());
        self.silence
            .set(heard.silence().map_or(f64::INFINITY, |d| d.as_secs_f64()));
        self.stale.set(i64::from(heard.stale().is_some()));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_the_feed_are_exposed() {
        let m = Metrics::default();
        let heard = Arc::new(Heard::new(Duration::from_secs(5)));
        m.request("mcp", 401, Some("token_revoked"));
        m.request("http", 200, None);
        m.decided("authorize", Duration::from_millis(3));
        m.leases(2, 1);
        m.revocations(crate::credential::Revoked {
            revoked: 3,
            failed: 1,
        });
        m.taken("aim", "lease");
        m.journal_backlog(4096);
        let text = m.encode(&heard);
        assert!(
            text.contains("aim_gateway_journal_backlog_bytes 4096"),
            "{text}"
        );
        assert!(
            text.contains(r#"aim_gateway_decisions_total{taken="aim",why="lease"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"aim_gateway_dynamic_leases{state="held"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"aim_gateway_dynamic_leases{state="revoking"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"aim_gateway_lease_revocations_total{outcome="revoked"} 3"#)
                && text.contains(r#"aim_gateway_lease_revocations_total{outcome="failed"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"aim_gateway_requests_total{kind="mcp",outcome="refused",status="401",code="token_revoked"} 1"#), "{text}");
        assert!(text.contains(r#"aim_gateway_requests_total{kind="http",outcome="forwarded",status="200",code=""} 1"#), "{text}");
        assert!(
            text.contains(r#"aim_gateway_decision_seconds_count{call="authorize"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("aim_gateway_stale 1"),
            "never heard: stale\n{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
