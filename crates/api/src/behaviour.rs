//! Behavioural baselines: a backtest of the detectors over the recorded history, and why an
//! identity was stepped up or locked.

use aim_domain::baseline::detect::{Anomaly, Detector};
use aim_domain::baseline::respond::Response;
use aim_domain::ids::IdentityId;
use aim_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// `POST /v1/behaviour/backtest`: replay the recorded decisions through the detectors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BacktestBody {
    /// Report the calls of the last this many milliseconds (each identity's whole history is
    /// replayed, so its baseline is what it was then). Default: 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<i64>,
    /// Detectors to enforce although the configuration keeps them observing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub enforce: Vec<Detector>,
    /// Enforce every detector, as `mode = "enforce"` would, even if the server observes.
    #[serde(default)]
    pub enforce_all: bool,
}

/// What the backtest found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backtest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub since: Timestamp,
    /// Whether the rules replayed are the ones live (no detector enforced only here): the
    /// replayed responses must then match the recorded ones.
    pub same_rules: bool,
    /// Decision records read, and those carrying a baseline verdict (replayed).
    pub records: u64,
    pub replayed: u64,
    pub identities: u64,
    /// Calls in the window, and what the replay would do about them.
    pub in_window: u64,
    pub would_step_up: u64,
    pub would_lock: u64,
    /// What was done about them live.
    pub stepped_up: u64,
    pub locked: u64,
    /// Calls whose replayed verdict equals the recorded one (with the same rules), and
    /// those that differ (listed, at most 100).
    pub matched: u64,
    pub mismatched: u64,
    pub mismatches: Vec<Mismatch>,
    /// Calls learnt live that are not on the record (the write failed or the proof was
    /// replayed): the replay cannot see them, so it may differ after them.
    pub unrecorded: u64,
    /// The calls in the window the replay finds anomalous, newest last (at most 500).
    pub findings: Vec<BacktestFinding>,
}

impl Backtest {
    /// An empty report of calls since `since`.
    pub fn new(since: Timestamp, same_rules: bool) -> Self {
        Self {
            since,
            same_rules,
            records: 0,
            replayed: 0,
            identities: 0,
            in_window: 0,
            would_step_up: 0,
            would_lock: 0,
            stepped_up: 0,
            locked: 0,
            matched: 0,
            mismatched: 0,
            mismatches: Vec::new(),
            unrecorded: 0,
            findings: Vec::new(),
        }
    }
}

/// One call the replay finds anomalous.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BacktestFinding {
    pub seq: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    pub identity_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub would: Response,
    /// What was done live (`None` if the call carried no verdict then).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub live: Option<Response>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub anomalies: Vec<Anomaly>,
}

/// A call whose replayed verdict is not the recorded one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mismatch {
    pub seq: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub recorded: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub replayed: serde_json::Value,
}

/// `GET /v1/identities/{id}/why`: the identity's state and the findings behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Why {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    pub name: String,
    pub state: String,
    pub state_cause: String,
    pub state_reason: String,
    /// Its baseline, if it has made a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    /// Its findings (`anomaly.detected`) and what was done about them (`identity.locked`
    /// by its baseline, `anomaly.expected`), oldest first: the last 100 of the last 90 days.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub events: Vec<aim_domain::event::Event>,
}

/// What an identity's baseline has learnt, in brief.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineSummary {
    pub events: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub first: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub last: Timestamp,
    pub learning: bool,
    pub systems: Vec<String>,
    pub tools: Vec<String>,
    pub networks: Vec<String>,
    pub bytes: u64,
}

/// `POST /v1/identities/{id}/behaviour/expected`: an admin says a finding was expected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExpectedBody {
    /// The sequence number of the finding (`anomaly.detected`).
    pub finding: i64,
    pub reason: String,
}
