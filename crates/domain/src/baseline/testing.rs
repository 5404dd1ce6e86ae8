//! What the baseline's tests share: a call, and the seed case's manufacturing agent.

use std::net::IpAddr;

use super::profile::{Observation, Profile};
use super::sketch::SketchKey;
use crate::risk::DataSensitivity;
use crate::time::{DAY_MS, Timestamp};

pub const KEY: SketchKey = SketchKey(*b"0123456789abcdef");
/// Monday 2026-11-30 00:00 UTC.
pub const MONDAY: i64 = 1_795_996_800_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

/// A read of `resource` on `system` at `at` (ms), of internal data, with key `jkt-1` from
/// 10.1.2.3.
pub fn call<'a>(at: i64, system: &'a str, resource: &'a str) -> Observation<'a> {
    Observation {
        at: Timestamp::from_millis(at),
        action: "read",
        system,
        resource_type: "reading",
        resource,
        sensitivity: Some(DataSensitivity::Internal),
        tool: None,
        subject: None,
        task: None,
        key: Some("jkt-1"),
        source: Some(IpAddr::from([10, 1, 2, 3])),
        denied: false,
    }
}

/// The seed case's agent: reads sensor data every 2 minutes and writes the maintenance log
/// every 10, on weekdays 08:00–17:00 UTC, for nine working days over two weeks (2,916
/// calls).
pub fn manufacturing() -> Profile {
    let mut p = Profile::new(KEY, Timestamp::from_millis(MONDAY));
    for day in [0, 1, 2, 3, 4, 7, 8, 9, 10] {
        for minute in (8 * 60..17 * 60).step_by(2) {
            let at = MONDAY + day * DAY_MS + minute * MINUTE;
            let sensor = format!("sensors/line-{}", minute % 7);
            p.learn(&call(at, "sensors", &sensor));
            if minute % 10 == 0 {
                let mut write = call(at + 1_000, "maintenance-log", "maintenance-log/today");
                write.action = "write";
                p.learn(&write);
            }
        }
    }
    p
}

/// A fixed-seed generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Exponential with mean 1.
    pub fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }

    /// Uniform in `low..high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }
}

/// A registered, high-risk autonomous agent named `name`, for the systems `systems`.
pub fn agent(name: &str, systems: &[&str]) -> crate::identity::Identity {
    use crate::identity::{Autonomy, IdentityKind, IdentityRequest};
    use crate::risk::{DataSensitivity, Level};
    let request = IdentityRequest {
        name: name.into(),
        kind: IdentityKind::AiAgent,
        autonomy: Autonomy::Autonomous,
        sponsor_id: crate::ids::HumanId::new(),
        owner_team: None,
        purpose: "reads sensor data and writes maintenance logs".into(),
        systems: systems.iter().map(|s| s.to_string()).collect(),
        data_sensitivity: DataSensitivity::Internal,
        criticality: Level::High,
        impact: Level::Medium,
        labels: Default::default(),
        expires_at: Timestamp::from_millis(60 * crate::time::DAY_MS),
    };
    request
        .into_identity(
            crate::ids::IdentityId::new(),
            crate::ids::HumanId::new(),
            Timestamp::from_millis(0),
            &crate::naming::NamingPolicy::default(),
            &crate::governance::GovernanceConfig::default(),
        )
        .unwrap()
}
