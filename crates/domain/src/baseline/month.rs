//! A normal month for 50 identities of four kinds, generated with a fixed seed, run through
//! the detectors as the decision path runs them ([`check`]): how often each would step up
//! (a medium finding) or lock (a high one). Issue 16's false-positive test.

use std::net::IpAddr;

use super::detect::Anomaly;
use super::profile::{Observation, Profile};
use super::respond::Response;
use super::sketch::SketchKey;
use super::testing::{MONDAY, Rng};
use super::watch::{Rules, Seen, check};
use crate::ids::TaskId;
use crate::risk::DataSensitivity;
use crate::time::{DAY_MS, Timestamp};

const DAYS: i64 = 35;

/// How an identity works.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Weekdays in its office hours (a time zone of its own), a call every 1–5 minutes.
    Office,
    /// Around the clock, busier by day: about 2 calls a minute by day, 0.5 by night.
    Service,
    /// Every night at 02:00 for about an hour, 20–80 calls a minute.
    Batch,
    /// Mondays at 06:00, a report of 200–400 calls.
    Weekly,
}

/// One identity's month of calls, as (time, system, resource, subject, task, key, network).
struct Call {
    at: i64,
    system: usize,
    resource: String,
    subject: String,
    task: TaskId,
    key: usize,
}

fn month(kind: Kind, rng: &mut Rng) -> Vec<Call> {
    let mut calls = Vec::new();
    let zone = rng.range(0, 17) as i64 - 8;
    let systems = rng.range(2, 5) as usize;
    let mut task = TaskId::new();
    let mut in_task = 0;
    let mut push = |calls: &mut Vec<Call>, rng: &mut Rng, at: i64, day: i64| {
        if in_task == 0 {
            task = TaskId::new();
            in_task = rng.range(5, 30);
        }
        in_task -= 1;
        // Mostly a few dozen familiar records, now and then a new one.
        let record = if rng.uniform() < 0.02 {
            rng.range(1_000, 1_000_000)
        } else {
            (rng.exponential() * 8.0) as u64
        };
        calls.push(Call {
            at,
            system: (rng.next_u64() as usize) % systems,
            resource: format!("records/{record}"),
            subject: format!("customer:{}", record % 97),
            task,
            // A key rotated once, mid-month.
            key: usize::from(day >= 20),
        });
    };
    for day in 0..DAYS {
        let weekday = (day % 7) as u8;
        let volume = 0.5 + rng.uniform();
        let start = MONDAY + day * DAY_MS;
        match kind {
            Kind::Office if weekday < 5 => {
                let mut at = start + (8 - zone) * 3_600_000;
                let end = at + (9.0 * volume.min(1.2) * 3_600_000.0) as i64;
                while at < end {
                    push(&mut calls, rng, at, day);
                    at += ((1.0 + 4.0 * rng.uniform()) * 60_000.0) as i64;
                }
            }
            Kind::Service => {
                let mut at = start;
                while at < start + DAY_MS {
                    let hour = (at - start) / 3_600_000;
                    let busy = if (8..20).contains(&hour) { 2.0 } else { 0.5 };
                    push(&mut calls, rng, at, day);
                    at += (rng.exponential() * 60_000.0 / (busy * volume)) as i64 + 1;
                }
            }
            Kind::Batch => {
                let mut at = start + 2 * 3_600_000;
                let end = at + (3_600_000.0 * volume) as i64;
                let per_minute = rng.range(20, 80) as f64;
                while at < end {
                    push(&mut calls, rng, at, day);
                    at += (rng.exponential() * 60_000.0 / per_minute) as i64 + 1;
                }
            }
            Kind::Weekly if weekday == 0 => {
                let mut at = start + 6 * 3_600_000;
                for _ in 0..rng.range(200, 400) {
                    push(&mut calls, rng, at, day);
                    at += rng.range(100, 2_000) as i64;
                }
            }
            _ => {}
        }
    }
    calls
}

const SYSTEMS: [&str; 4] = ["crm", "billing", "tickets", "warehouse"];

/// One identity's month, run.
struct Month {
    events: u64,
    /// What would have been stepped up or locked: the week (0 = the first), the response
    /// and the finding that called for it.
    acted: Vec<(i64, Response, Anomaly)>,
    profile: Profile,
    source: IpAddr,
}

/// The identity of these months: a high-risk autonomous agent (the strictest defaults: a
/// high finding locks, a medium one steps up), registered for [`SYSTEMS`].
fn strictest() -> crate::identity::Identity {
    super::testing::agent("agt-month", &SYSTEMS)
}

/// What is done about `o` against `profile`, as the decision path does it
/// ([`check`]), the call learnt from; `None` for `observe`. A step-up on an ordinary call
/// of the month is approved by its sponsor, which accepts it as live.
fn answer(
    profile: &mut Profile,
    o: &Observation<'_>,
    identity: &crate::identity::Identity,
) -> Option<(Response, Anomaly)> {
    let seen = Seen {
        at: o.at,
        action: o.action.to_owned(),
        system: o.system.to_owned(),
        resource_type: o.resource_type.to_owned(),
        resource: o.resource.to_owned(),
        sensitivity: o.sensitivity,
        tool: o.tool.map(str::to_owned),
        subject: o.subject.map(str::to_owned),
        task: o.task,
        key: o.key.map(str::to_owned),
        ip: o.source.map(|s| s.to_string()),
        denied: o.denied,
        forwarded: false,
    };
    let v = check(profile, &seen, identity, &Rules::default());
    let cause = v.cause().cloned()?;
    Some((v.response, cause))
}

/// Runs one identity's month of `kind`.
fn run(kind: Kind, rng: &mut Rng) -> Month {
    const SENSITIVITY: [DataSensitivity; 4] = [
        DataSensitivity::Confidential,
        DataSensitivity::Internal,
        DataSensitivity::Internal,
        DataSensitivity::Public,
    ];
    let keys = ["jkt-a", "jkt-b"];
    let source: IpAddr = IpAddr::from([10, 20, rng.range(0, 250) as u8, rng.range(1, 250) as u8]);
    let calls = month(kind, rng);
    let identity = strictest();
    let mut profile = Profile::new(SketchKey::generate(), Timestamp::from_millis(MONDAY));
    let mut acted = Vec::new();
    for c in &calls {
        let o = Observation {
            at: Timestamp::from_millis(c.at),
            action: "read",
            system: SYSTEMS[c.system],
            resource_type: "record",
            resource: &c.resource,
            sensitivity: Some(SENSITIVITY[c.system]),
            tool: None,
            subject: Some(&c.subject),
            task: Some(c.task),
            key: Some(keys[c.key]),
            source: Some(source),
            denied: false,
        };
        if let Some((response, why)) = answer(&mut profile, &o, &identity) {
            acted.push(((c.at - MONDAY) / (7 * DAY_MS), response, why));
            if response == Response::StepUp {
                profile.accept(&o);
            }
        }
    }
    Month {
        events: calls.len() as u64,
        acted,
        profile,
        source,
    }
}

#[test]
fn a_normal_month_for_fifty_identities_locks_none_and_steps_up_at_most_once_a_week() {
    let mut rng = Rng(2026);
    let kinds = [Kind::Office, Kind::Service, Kind::Batch, Kind::Weekly];
    let (mut events, mut step_ups, mut identity_weeks) = (0, 0, 0);
    let mut by_detector = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..50 {
        let kind = kinds[i % kinds.len()];
        let Month {
            events: n, acted, ..
        } = run(kind, &mut rng);
        events += n;
        let locks: Vec<_> = acted
            .iter()
            .filter(|(_, r, _)| *r == Response::Lock)
            .collect();
        assert!(
            locks.is_empty(),
            "identity {i} ({kind:?}) would be locked: {locks:?}"
        );
        for week in 0..(DAYS / 7) {
            let steps = acted.iter().filter(|(w, _, _)| *w == week).count();
            assert!(
                steps <= 1,
                "identity {i} ({kind:?}), week {week}: {steps} step-ups: {acted:?}"
            );
            step_ups += steps;
            identity_weeks += 1;
        }
        for (_, _, a) in &acted {
            *by_detector.entry(a.detector.as_str()).or_insert(0) += 1;
        }
    }
    eprintln!(
        "a normal month, 50 identities, {events} calls, each with a high-risk autonomous agent's responses: 0 locks, {step_ups} step-ups over {identity_weeks} identity-weeks; by detector {by_detector:?}"
    );
    assert!(events > 300_000, "{events}");
}

/// Misbehaviour injected after a normal month, and the least that must be done about it.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// The seed case: restricted payroll data, a system it is not registered for.
    ReadsPayroll,
    /// Ten times its busiest minute, at least 60 calls, in one minute.
    RateSpike,
    /// 40 denied calls in 40 seconds.
    Probing,
    /// One task through 600 records of 600 customers, a call every 5 seconds.
    Enumeration,
    /// A key never seen, from a network never seen.
    StolenKey,
}

impl Misbehaviour {
    fn least(self) -> Response {
        match self {
            Misbehaviour::RateSpike | Misbehaviour::StolenKey => Response::StepUp,
            _ => Response::Lock,
        }
    }
}

/// The strongest response to `m` injected into `month`'s identity, the day after.
fn inject(month: &Month, m: Misbehaviour) -> Option<Response> {
    let mut profile = month.profile.clone();
    let at = MONDAY + DAYS * DAY_MS + 11 * 3_600_000;
    let (resources, subjects): (Vec<String>, Vec<String>) = (0..600)
        .map(|i| {
            (
                format!("records/{}", 5_000_000 + i),
                format!("customer:{}", 9_000 + i),
            )
        })
        .unzip();
    let base = |at: i64| Observation {
        at: Timestamp::from_millis(at),
        action: "read",
        system: "crm",
        resource_type: "record",
        resource: "records/1",
        sensitivity: Some(DataSensitivity::Confidential),
        tool: None,
        subject: Some("customer:1"),
        task: profile.task.as_ref().map(|t| t.task),
        key: Some("jkt-b"),
        source: Some(month.source),
        denied: false,
    };
    let calls: Vec<Observation<'_>> = match m {
        Misbehaviour::ReadsPayroll => vec![Observation {
            system: "hr-payroll",
            resource: "hr-payroll/salaries",
            sensitivity: Some(DataSensitivity::Restricted),
            ..base(at)
        }],
        Misbehaviour::RateSpike => {
            let n = (profile.per_minute.highest() * 20).max(60) as i64;
            (0..n).map(|i| base(at + i * 50_000 / n)).collect()
        }
        Misbehaviour::Probing => (0..40)
            .map(|i| Observation {
                denied: true,
                ..base(at + i * 1_000)
            })
            .collect(),
        Misbehaviour::Enumeration => {
            let task = Some(TaskId::new());
            (0..600)
                .map(|i| Observation {
                    resource: &resources[i],
                    subject: Some(&subjects[i]),
                    task,
                    ..base(at + i as i64 * 5_000)
                })
                .collect()
        }
        Misbehaviour::StolenKey => vec![Observation {
            key: Some("jkt-stolen"),
            source: Some(IpAddr::from([198, 51, 100, 7])),
            ..base(at)
        }],
    };
    let identity = strictest();
    let mut strongest = None;
    for o in &calls {
        if let Some((response, _)) = answer(&mut profile, o, &identity) {
            strongest = strongest.max(Some(response));
        }
    }
    strongest
}

#[test]
fn misbehaviour_injected_into_the_same_population_is_caught() {
    let mut rng = Rng(2026);
    let kinds = [Kind::Office, Kind::Service, Kind::Batch, Kind::Weekly];
    let months: Vec<Month> = (0..50)
        .map(|i| run(kinds[i % kinds.len()], &mut rng))
        .collect();
    let scenarios = [
        Misbehaviour::ReadsPayroll,
        Misbehaviour::RateSpike,
        Misbehaviour::Probing,
        Misbehaviour::Enumeration,
        Misbehaviour::StolenKey,
    ];
    let mut report = Vec::new();
    for m in scenarios {
        let caught = months
            .iter()
            .filter(|month| inject(month, m) >= Some(m.least()))
            .count();
        report.push(format!("{m:?} {caught}/50"));
        assert_eq!(caught, 50, "{m:?}: caught in {caught} of 50 identities");
    }
    eprintln!(
        "detection with the strictest defaults: {}",
        report.join(", ")
    );
}
