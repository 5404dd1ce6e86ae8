//! Detectors on counts: a spike in calls a minute or an hour, a burst of denials (probing),
//! a task reaching many more distinct records or subjects than its tasks do (enumeration).
//! Each holds the count, with this call, against the identity's own threshold (SPOT, set
//! for a false-positive rate of 1e-3 per closed window, see [`super::profile::Threshold`])
//! and never below a floor: twice the highest value it has had, and an absolute minimum,
//! so a quiet identity is not flagged for its second call in a minute. Each fires once,
//! when its count first crosses the bar. Run before the call is learnt from.

use super::detect::{Anomaly, Detector, Severity, history};
use super::profile::{Observation, Profile, Spread, Window};
use super::spot::Threshold;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// The bar a count must pass: the identity's threshold once set, at least twice the top of
/// its highest bucket so far and at least `floor`.
fn bar(threshold: &Threshold, spread: &Spread, floor: u64) -> u64 {
    let own = threshold.level().map_or(0, |z| z.ceil() as u64);
    own.max(spread.highest() * 4).max(floor)
}

/// An anomaly of a count past its `bar`.
fn past(
    detector: Detector,
    severity: Severity,
    observed: String,
    bar: u64,
    explanation: String,
) -> Anomaly {
    Anomaly {
        detector,
        severity,
        observed,
        baseline: format!("at most {bar}"),
        explanation,
    }
}

/// The count in `window` once this call at `at` is in it.
fn with_this(window: &Window, at: i64, length: i64) -> u64 {
    if at.div_euclid(length) * length == window.start {
        u64::from(window.count) + 1
    } else {
        1
    }
}

/// The count-based anomalies of `o` against `profile`.
pub fn bursts(profile: &Profile, o: &Observation<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    if profile.events == 0 {
        return found;
    }
    let at = o.at.as_millis();
    let t = &profile.thresholds;
    let rates = [
        (
            "minute",
            &profile.minute,
            MINUTE_MS,
            &t.per_minute,
            &profile.per_minute,
            20,
        ),
        (
            "hour",
            &profile.hour,
            HOUR_MS,
            &t.per_hour,
            &profile.per_hour,
            200,
        ),
    ];
    for (unit, window, length, threshold, spread, floor) in rates {
        let count = with_this(window, at, length);
        let bar = bar(threshold, spread, floor);
        if count == bar + 1 {
            let history = history(profile);
            found.push(past(Detector::RateSpike, Severity::Medium, format!("{count} calls in a {unit}"), bar, format!(
                    "{count} calls in one {unit}, past its bar of {bar} (its busiest {unit}s: {} to {}) {history}",
                    spread.highest(),
                    (spread.highest() * 2).saturating_sub(1)
                )));
        }
    }
    if o.denied {
        let count = with_this(&profile.denied_minute, at, MINUTE_MS);
        let bar = bar(&t.denied_per_minute, &profile.denied_per_minute, 10);
        if count == bar + 1 {
            let history = history(profile);
            found.push(past(
                Detector::DenialBurst,
                Severity::High,
                format!("{count} denied calls in a minute"),
                bar,
                format!(
                    "{count} denied calls in one minute (probing?), past its bar of {bar} {history}"
                ),
            ));
        }
    }
    found.extend(enumeration(profile, o));
    found
}

/// Many more distinct resources or subjects in this task than its tasks reach.
fn enumeration(profile: &Profile, o: &Observation<'_>) -> Vec<Anomaly> {
    let mut found = Vec::new();
    let Some(reach) = profile.task.as_ref().filter(|r| Some(r.task) == o.task) else {
        return found;
    };
    let key = profile.key();
    let t = &profile.thresholds;
    let kinds = [
        (
            "records",
            Some(o.resource),
            &reach.resources,
            &t.task_resources,
            &profile.task_resources,
            100,
        ),
        (
            "subjects",
            o.subject,
            &reach.subjects,
            &t.task_subjects,
            &profile.task_subjects,
            50,
        ),
    ];
    for (kind, item, distinct, threshold, spread, floor) in kinds {
        // Most calls change no register: nothing to count then.
        let Some(item) = item.filter(|i| distinct.would_change(key, i)) else {
            continue;
        };
        let mut now = distinct.clone();
        now.insert(key, item);
        let (before, count) = (distinct.count().round() as u64, now.count().round() as u64);
        let bar = bar(threshold, spread, floor);
        if before <= bar && count > bar {
            let history = history(profile);
            found.push(past(
                Detector::Enumeration,
                Severity::High,
                format!("{count} distinct {kind} in task {}", reach.task),
                bar,
                format!(
                    "about {count} distinct {kind} in one task, past its bar of {bar} (its tasks reach {} to {}) {history}",
                    spread.highest(),
                    (spread.highest() * 2).saturating_sub(1)
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::testing::{HOUR, KEY, MINUTE, MONDAY, call, manufacturing};
    use crate::ids::TaskId;
    use crate::time::{DAY_MS, Timestamp};

    /// Runs `calls` through `profile` as they would arrive: each checked, then learnt.
    fn replay<'a>(
        profile: &mut Profile,
        calls: impl IntoIterator<Item = Observation<'a>>,
    ) -> Vec<Anomaly> {
        let mut found = Vec::new();
        for o in calls {
            found.extend(bursts(profile, &o));
            profile.learn(&o);
        }
        found
    }

    #[test]
    fn a_rate_spike_is_found_once_and_ordinary_weeks_find_none() {
        let mut p = manufacturing();
        assert!(
            p.thresholds.per_minute.level().is_some(),
            "its minutes set a threshold"
        );
        // A third week like the first two: nothing.
        let resources: Vec<String> = (0..7).map(|i| format!("sensors/line-{i}")).collect();
        let mut ordinary = Vec::new();
        for day in [14, 15, 16, 17, 18] {
            for minute in (8 * 60..17 * 60).step_by(2) {
                let at = MONDAY + day * DAY_MS + minute * MINUTE;
                ordinary.push(call(at, "sensors", &resources[(minute % 7) as usize]));
            }
        }
        let found = replay(&mut p, ordinary);
        assert!(found.is_empty(), "{found:?}");
        // Then 40 reads in one minute.
        let at = MONDAY + 21 * DAY_MS + 10 * HOUR;
        let spike = (0..40).map(|i| call(at + i * 1_000, "sensors", &resources[1]));
        let found = replay(&mut p, spike);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].detector, found[0].severity),
            (Detector::RateSpike, Severity::Medium)
        );
        assert_eq!(found[0].observed, "21 calls in a minute");
        assert!(
            found[0]
                .explanation
                .starts_with("21 calls in one minute, past its bar of 20"),
            "{}",
            found[0].explanation
        );
    }

    #[test]
    fn many_denials_in_a_minute_are_probing() {
        let mut p = manufacturing();
        let at = MONDAY + 21 * DAY_MS + 10 * HOUR;
        let targets: Vec<String> = (0..30).map(|i| format!("hr-payroll/{i}")).collect();
        let probing = targets.iter().enumerate().map(|(i, r)| {
            let mut o = call(at + i as i64 * 1_500, "sensors", r);
            o.denied = true;
            o
        });
        let found = replay(&mut p, probing);
        // Thirty calls in 45 seconds are a rate spike too.
        let kinds: Vec<_> = found.iter().map(|a| (a.detector, a.severity)).collect();
        assert_eq!(
            kinds,
            [
                (Detector::DenialBurst, Severity::High),
                (Detector::RateSpike, Severity::Medium)
            ]
        );
        assert_eq!(found[0].observed, "11 denied calls in a minute");
    }

    #[test]
    fn a_task_reaching_far_more_records_than_its_tasks_do_is_enumeration() {
        let mut p = Profile::new(KEY, Timestamp::from_millis(MONDAY));
        // 100 tasks, each reading 3–7 customer records of one or two customers.
        let mut at = MONDAY;
        let mut calls = Vec::new();
        for t in 0..100i64 {
            let task = TaskId::new();
            for r in 0..(3 + t % 5) {
                let mut o = call(at, "crm", "");
                o.task = Some(task);
                calls.push((
                    o,
                    format!("crm/customers/{}", t * 10 + r),
                    format!("customer:{}", t * 2 + r % 2),
                ));
                at += 20 * MINUTE;
            }
        }
        for (mut o, resource, subject) in calls.iter().cloned() {
            o.resource = &resource;
            o.subject = Some(&subject);
            assert!(bursts(&p, &o).is_empty());
            p.learn(&o);
        }
        assert!(
            p.thresholds.task_resources.level().is_some(),
            "{:?} {:?}",
            p.thresholds.task_resources,
            p.task_resources
        );
        // A task that walks through 300 customers' records.
        let task = TaskId::new();
        let mut found = Vec::new();
        for i in 0..300 {
            let (resource, subject) = (
                format!("crm/customers/{}", 5_000 + i),
                format!("customer:{}", 2_000 + i),
            );
            let mut o = call(at + i * 10_000, "crm", &resource);
            o.task = Some(task);
            o.subject = Some(&subject);
            found.extend(bursts(&p, &o));
            p.learn(&o);
        }
        let kinds: Vec<(Detector, Severity, bool)> = found
            .iter()
            .map(|a| (a.detector, a.severity, a.observed.contains("records")))
            .collect();
        assert_eq!(
            kinds,
            [
                (Detector::Enumeration, Severity::High, false),
                (Detector::Enumeration, Severity::High, true)
            ],
            "{found:?}"
        );
    }
}
