//! What is out of character in one call, against the profile learnt before it: each
//! finding names the detector, its severity, what was observed and the baseline it was
//! held against, in words an analyst can check ("first access to system `hr-payroll`;
//! baseline systems: `sensors`, `maintenance-log` over 2,916 events in 9 days").
//!
//! These detectors are the first-of-a-kind ones: a system, a sensitivity, a key, a
//! network, an hour or a weekday never seen, a return after an unusually long idle. Run
//! before the call is learnt from.

use crate::risk::DataSensitivity;
use crate::time::DAY_MS;

use super::profile::{Observation, Profile, hour_of_week, network};

str_enum! {
    /// What an anomaly was found by.
    pub enum Detector {
        NewSystem => "new_system",
        HigherSensitivity => "higher_sensitivity",
        RateSpike => "rate_spike",
        OffHours => "off_hours",
        DenialBurst => "denial_burst",
        Enumeration => "enumeration",
        NewKey => "new_key",
        NewNetwork => "new_network",
        AfterIdle => "after_idle",
    }
}

str_enum! {
    /// How far out of character.
    pub enum Severity {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
}

/// One thing out of character in one call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anomaly {
    pub detector: Detector,
    pub severity: Severity,
    /// The unusual value (`hr-payroll`, `restricted`, `Sunday 03:00`).
    pub observed: String,
    /// What it was held against (`sensors, maintenance-log`).
    pub baseline: String,
    /// Both, in a sentence.
    pub explanation: String,
}

/// What the identity was registered for: the systems its purpose names.
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    pub systems: &'a [String],
}

/// The anomalies in `o` against `profile` (the calls before it).
pub fn first_of_a_kind(
    profile: &Profile,
    o: &Observation<'_>,
    registered: Registered<'_>,
) -> Vec<Anomaly> {
    let mut found = Vec::new();
    if profile.events == 0 {
        return found;
    }
    if profile.systems.count(o.system) == 0 {
        let outside = !registered.systems.iter().any(|s| s == o.system);
        let names = quoted(&profile.systems.names());
        let history = history(profile);
        found.push(Anomaly {
            detector: Detector::NewSystem,
            severity: if outside {
                Severity::High
            } else {
                Severity::Medium
            },
            observed: o.system.to_owned(),
            baseline: names.clone(),
            explanation: format!(
                "first access to system `{}`{}; baseline systems: {names} {history}",
                o.system,
                if outside {
                    ", not among its registered systems"
                } else {
                    ""
                },
            ),
        });
    }
    if let Some(s) = o.sensitivity {
        let highest = profile.highest_sensitivity();
        if highest.is_none_or(|h| s > h) {
            let before = highest.map_or("none recorded".to_owned(), |h| format!("`{h}`"));
            let steps = highest.map_or(0, |h| rank(s) - rank(h));
            let history = history(profile);
            found.push(Anomaly {
                detector: Detector::HigherSensitivity,
                severity: if s == DataSensitivity::Restricted || steps >= 2 {
                    Severity::High
                } else {
                    Severity::Medium
                },
                observed: s.as_str().to_owned(),
                baseline: highest.map_or(String::new(), |h| h.as_str().to_owned()),
                explanation: format!(
                    "first `{s}` data, on `{}`; the most sensitive before: {before} {history}",
                    o.resource
                ),
            });
        }
    }
    found.extend(credentials(profile, o));
    found.extend(timing(profile, o));
    found
}

/// A key or a source network never seen.
fn credentials(profile: &Profile, o: &Observation<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    if let Some(key) = o.key
        && profile.keys.count(key) == 0
        && !profile.keys.is_empty()
    {
        let names = quoted(&profile.keys.names());
        let history = history(profile);
        found.push(Anomaly {
            detector: Detector::NewKey,
            severity: Severity::Medium,
            observed: key.to_owned(),
            baseline: names.clone(),
            explanation: format!("a key never used before (`{key}`); keys used: {names} {history}"),
        });
    }
    if let Some(source) = o.source {
        let net = network(source);
        if profile.networks.count(&net) == 0 && !profile.networks.is_empty() {
            let names = quoted(&profile.networks.names());
            let history = history(profile);
            found.push(Anomaly {
                detector: Detector::NewNetwork,
                severity: Severity::Low,
                observed: net.clone(),
                baseline: names.clone(),
                explanation: format!(
                    "a call from a network never seen (`{net}`, address {source}); networks seen: {names} {history}"
                ),
            });
        }
    }
    found
}

/// An hour of the day or a day of the week it never works, and a return after an idle
/// longer than any before (and a week at least).
fn timing(profile: &Profile, o: &Observation<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let h = hour_of_week(o.at);
    let (day, hour) = (h / 24, h % 24);
    let hours = &profile.hours;
    let at_hour: u32 = (0..7)
        .map(|d| hours.get(d * 24 + hour).copied().unwrap_or(0))
        .sum();
    let on_day: u32 = (0..24)
        .map(|x| hours.get(day * 24 + x).copied().unwrap_or(0))
        .sum();
    // Only once there is a week of history to know its hours and days by.
    let weeks = (profile.last.as_millis() - profile.first.as_millis()) / (7 * DAY_MS);
    if weeks >= 1 && (at_hour == 0 || on_day == 0) {
        let observed = format!("{} {hour:02}:00 UTC", DAYS[day]);
        let worked = working_hours(hours);
        let history = history(profile);
        found.push(Anomaly {
            detector: Detector::OffHours,
            severity: if at_hour == 0 && on_day == 0 {
                Severity::Medium
            } else {
                Severity::Low
            },
            explanation: format!(
                "activity on {observed}, {}; it works {worked} {history}",
                match (at_hour == 0, on_day == 0) {
                    (true, true) => "an hour and a day it never works",
                    (true, false) => "an hour it never works",
                    _ => "a day it never works",
                }
            ),
            observed,
            baseline: worked,
        });
    }
    let idle_days = (o.at.as_millis() - profile.last.as_millis()) / DAY_MS;
    let longest_minutes = profile.idle_minutes.highest() * 2;
    if idle_days >= 7 && (idle_days * 24 * 60) as u64 > longest_minutes {
        let longest = format!("{} days", longest_minutes.div_ceil(24 * 60));
        let history = history(profile);
        found.push(Anomaly {
            detector: Detector::AfterIdle,
            severity: Severity::Medium,
            observed: format!("{idle_days} days"),
            baseline: longest.clone(),
            explanation: format!(
                "a call after {idle_days} days idle; its longest idle before: under {longest} {history}"
            ),
        });
    }
    found
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Which days and hours (UTC) it has worked, in words: "Monday–Friday, 08:00–16:59 UTC".
fn working_hours(hours: &[u32]) -> String {
    let days: Vec<&str> = (0..7)
        .filter(|d| (0..24).any(|h| hours.get(d * 24 + h).is_some_and(|&n| n > 0)))
        .map(|d| DAYS[d])
        .collect();
    let active: Vec<usize> = (0..24)
        .filter(|h| (0..7).any(|d| hours.get(d * 24 + h).is_some_and(|&n| n > 0)))
        .collect();
    let span = match (active.first(), active.last()) {
        (Some(a), Some(b)) => format!("{a:02}:00–{b:02}:59 UTC"),
        _ => "no hours yet".to_owned(),
    };
    format!("on {} between {span}", days.join(", "))
}

fn rank(s: DataSensitivity) -> i32 {
    DataSensitivity::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or(0) as i32
}

fn quoted(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    if names.len() > SHOWN {
        out.push(format!("and {} more", names.len() - SHOWN));
    }
    if out.is_empty() {
        return "none".to_owned();
    }
    out.join(", ")
}

/// "over 2,916 events in 9 days".
pub(super) fn history(p: &Profile) -> String {
    let days = (p.last.as_millis() - p.first.as_millis()) / DAY_MS;
    let mut events = p.events.to_string();
    let mut at = events.len() as isize - 3;
    while at > 0 {
        events.insert(at as usize, ',');
        at -= 3;
    }
    format!(
        "over {events} events in {days} day{}",
        if days == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::baseline::testing::{HOUR, KEY, MINUTE, MONDAY, call, manufacturing};
    use crate::time::Timestamp;

    /// The anomalies in `o` for the manufacturing agent's registration.
    fn in_character(p: &Profile, o: &Observation<'_>) -> Vec<Anomaly> {
        let systems = registered();
        first_of_a_kind(p, o, Registered { systems: &systems })
    }

    fn registered() -> Vec<String> {
        vec!["sensors".into(), "maintenance-log".into()]
    }

    fn detectors(found: &[Anomaly]) -> Vec<(Detector, Severity)> {
        found.iter().map(|a| (a.detector, a.severity)).collect()
    }

    #[test]
    fn the_manufacturing_agent_reading_hr_payroll_is_out_of_character_twice() {
        let p = manufacturing();
        let systems = registered();
        // Wednesday of the third week, 10:00: a working hour.
        let at = MONDAY + 16 * DAY_MS + 10 * HOUR;
        let mut payroll = call(at, "hr-payroll", "hr-payroll/salaries");
        payroll.sensitivity = Some(DataSensitivity::Restricted);
        let found = first_of_a_kind(&p, &payroll, Registered { systems: &systems });
        assert_eq!(
            detectors(&found),
            [
                (Detector::NewSystem, Severity::High),
                (Detector::HigherSensitivity, Severity::High)
            ]
        );
        assert_eq!(
            found[0].explanation,
            "first access to system `hr-payroll`, not among its registered systems; baseline \
             systems: `sensors`, `maintenance-log` over 2,916 events in 10 days"
        );
        assert_eq!(found[0].observed, "hr-payroll");
        assert_eq!(found[0].baseline, "`sensors`, `maintenance-log`");
        assert_eq!(
            found[1].explanation,
            "first `restricted` data, on `hr-payroll/salaries`; the most sensitive before: \
             `internal` over 2,916 events in 10 days"
        );
        // A registered system it has not used yet is a lesser surprise.
        let mut systems = registered();
        systems.push("hr-payroll".into());
        let mut read = call(at, "hr-payroll", "hr-payroll/salaries");
        read.sensitivity = Some(DataSensitivity::Confidential);
        let found = first_of_a_kind(&p, &read, Registered { systems: &systems });
        assert_eq!(
            detectors(&found),
            [
                (Detector::NewSystem, Severity::Medium),
                (Detector::HigherSensitivity, Severity::Medium)
            ]
        );
    }

    #[test]
    fn a_call_in_character_finds_nothing() {
        let p = manufacturing();
        let at = MONDAY + 15 * DAY_MS + 9 * HOUR + 5 * MINUTE;
        let found = in_character(&p, &call(at, "sensors", "sensors/line-2"));
        assert!(found.is_empty(), "{found:?}");
        // Nor anything at all before the first call.
        let empty = Profile::new(KEY, Timestamp::from_millis(MONDAY));
        assert!(in_character(&empty, &call(at, "hr-payroll", "x")).is_empty());
    }

    #[test]
    fn a_new_key_from_a_new_network() {
        let p = manufacturing();
        let at = MONDAY + 15 * DAY_MS + 9 * HOUR;
        let mut o = call(at, "sensors", "sensors/line-2");
        o.key = Some("jkt-2");
        o.source = Some(IpAddr::from([203, 0, 113, 9]));
        let found = in_character(&p, &o);
        assert_eq!(
            detectors(&found),
            [
                (Detector::NewKey, Severity::Medium),
                (Detector::NewNetwork, Severity::Low)
            ]
        );
        assert_eq!(found[1].observed, "203.0.113.0/24");
        assert!(
            found[1]
                .explanation
                .contains("networks seen: `10.1.2.0/24`"),
            "{}",
            found[1].explanation
        );
    }

    #[test]
    fn sunday_night_and_a_return_after_a_month() {
        let p = manufacturing();
        // Sunday of the second week, 03:00.
        let sunday = MONDAY + 13 * DAY_MS + 3 * HOUR;
        let found = in_character(&p, &call(sunday, "sensors", "sensors/line-1"));
        assert_eq!(detectors(&found), [(Detector::OffHours, Severity::Medium)]);
        assert_eq!(found[0].observed, "Sunday 03:00 UTC");
        assert!(
            found[0].explanation.ends_with(
                "it works on Monday, Tuesday, Wednesday, Thursday, Friday between 08:00–16:59 UTC over 2,916 events in 10 days"
            ),
            "{}",
            found[0].explanation
        );
        // A weekday at 07:00: an hour it never works, on a day it does.
        let early = MONDAY + 14 * DAY_MS + 7 * HOUR;
        let found = in_character(&p, &call(early, "sensors", "sensors/line-1"));
        assert_eq!(detectors(&found), [(Detector::OffHours, Severity::Low)]);
        // Five weeks on (a Monday, 09:00): idle far longer than its nights and weekends.
        let back = MONDAY + 35 * DAY_MS + 9 * HOUR;
        let found = in_character(&p, &call(back, "sensors", "sensors/line-1"));
        assert_eq!(detectors(&found), [(Detector::AfterIdle, Severity::Medium)]);
        assert_eq!(found[0].observed, "24 days");
        assert_eq!(
            found[0].baseline, "3 days",
            "its weekends, rounded up to a power of two"
        );
    }
}
