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
