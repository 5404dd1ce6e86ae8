//! One call held against its identity's baseline, the same way live and in a backtest:
//! the first-of-a-kind and count detectors run against the profile as it was before the
//! call, the response is chosen, and the call is learnt from. A call stepped up or refused
//! by a lock is learnt for its counts only (it must not make its own kind familiar, or its
//! retry would pass unquestioned); once a human approves it, or an admin marks its finding
//! as expected, its kind is accepted.
//!
//! What the baseline made of a call is written into the call's decision record
//! (`detail.behaviour`, a [`Verdict`], with whether the rules denied it; the key and the
//! caller's address are in every decision record's `detail.caller`); [`Seen::from_record`]
//! reads the observation back, so a backtest replays exactly what the live detectors saw. `Verdict::n` is the call's place in its identity's history:
//! calls are replayed in that order, whatever order their records were committed in.

use std::net::IpAddr;

use serde_json::Value;

use crate::decision::Target;
use crate::event::{ActorKind, AuditAction, Event, Outcome};
use crate::identity::Identity;
use crate::ids::{IdentityId, TaskId};
use crate::risk::{DataSensitivity, RiskTier};
use crate::time::Timestamp;

use super::burst::bursts;
use super::detect::{Anomaly, Detector, Registered, first_of_a_kind};
use super::profile::{Learning, Observation, Profile};
use super::respond::{Response, Responses, respond};

/// One call as a baseline sees it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at: Timestamp,
    pub action: String,
    pub system: String,
    pub resource_type: String,
    pub resource: String,
    pub sensitivity: Option<DataSensitivity>,
    pub tool: Option<String>,
    pub subject: Option<String>,
    pub task: Option<TaskId>,
    pub key: Option<String>,
    pub ip: Option<String>,
    /// Whether the rules (policies, grants, leases) denied it.
    pub denied: bool,
    /// Whether it was let through before the baseline saw it (decided in a gateway, its
    /// record held against the baseline when it reached aim): a step-up can no longer hold
    /// it, so it is only a finding, and the call is learnt; a lock still locks.
    pub forwarded: bool,
}

impl Seen {
    /// The call `action` on `target` under `task`, made with `key` from `ip` at `at`.
    pub fn of(
        at: Timestamp,
        action: &str,
        target: &Target,
        task: Option<TaskId>,
        key: Option<&str>,
        ip: Option<&str>,
        denied: bool,
    ) -> Self {
        let attr = |name: &str| target.attrs.get(name).and_then(Value::as_str);
        Self {
            at,
            action: action.to_owned(),
            system: target.system.clone(),
            resource_type: attr("type").unwrap_or(&target.kind).to_owned(),
            resource: target.id.clone(),
            sensitivity: attr("sensitivity").and_then(|s| DataSensitivity::parse(s).ok()),
            tool: (target.kind == "Tool").then(|| attr("name").unwrap_or(&target.id).to_owned()),
            subject: target.subject().map(str::to_owned),
            task,
            key: key.map(str::to_owned),
            ip: ip.filter(|ip| !ip.is_empty()).map(str::to_owned),
            denied,
            forwarded: false,
        }
    }

    /// The observation the profile learns from.
    pub fn observation(&self) -> Observation<'_> {
        Observation {
            at: self.at,
            action: &self.action,
            system: &self.system,
            resource_type: &self.resource_type,
            resource: &self.resource,
            sensitivity: self.sensitivity,
            tool: self.tool.as_deref(),
            subject: self.subject.as_deref(),
            task: self.task,
            key: self.key.as_deref(),
            source: self.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()),
            denied: self.denied,
        }
    }

    /// The call a decision record describes, the identity it was about and what its
    /// baseline made of it, if the record carries a verdict.
    pub fn from_record(event: &Event) -> Option<(IdentityId, Seen, Verdict)> {
        if event.action != AuditAction::Decision {
            return None;
        }
        let verdict: Verdict =
            serde_json::from_value(event.detail.get("behaviour")?.clone()).ok()?;
        let mut seen = Self::described(event, verdict.denied)?;
        seen.forwarded = event.detail.get("gateway").is_some();
        Some((verdict.identity, seen, verdict))
    }

    /// The call a gateway's decision record describes, and the identity it was about: as
    /// its baseline sees it when the record reaches aim, the call already let through.
    pub fn from_gateway_record(event: &Event) -> Option<(IdentityId, Seen)> {
        if event.action != AuditAction::Decision || event.actor.kind != ActorKind::Identity {
            return None;
        }
        let identity = event.actor.id.parse().ok()?;
        let mut seen = Self::described(event, event.outcome == Outcome::Deny)?;
        seen.forwarded = true;
        Some((identity, seen))
    }

    /// The call a decision record describes (its key and address from `detail.caller`),
    /// with whether the rules denied it, which the record's outcome may not say.
    fn described(event: &Event, denied: bool) -> Option<Seen> {
        let d = &event.detail;
        let caller = |name: &str| {
            d.get("caller")
                .and_then(|c| c.get(name))
                .and_then(Value::as_str)
        };
        let target = Target {
            kind: event.target_type.clone(),
            id: event.target_id.clone(),
            system: d.get("system")?.as_str()?.to_owned(),
            attrs: d
                .get("attrs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            tags: Default::default(),
        };
        Some(Seen::of(
            event.at,
            d.get("action")?.as_str()?,
            &target,
            event.trail.task_id.parse().ok(),
            caller("key"),
            caller("ip"),
            denied,
        ))
    }
}

/// What an identity's baseline made of one call: on its decision record as
/// `detail.behaviour`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub identity: IdentityId,
    /// The call's place in its identity's history (0 for its first).
    pub n: u64,
    /// Whether the identity was still learning: then only a system outside its
    /// registered ones is enforced.
    pub learning: bool,
    pub response: Response,
    /// The detector whose finding called for the response, when it is not `observe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<Detector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// Whether the rules denied the call before the baseline had its say.
    #[serde(default)]
    pub denied: bool,
}

impl Verdict {
    /// The finding behind the response, if the response is more than `observe`.
    pub fn cause(&self) -> Option<&Anomaly> {
        let because = self.because?;
        self.anomalies.iter().find(|a| a.detector == because)
    }

    /// Whether the call's kind was left unlearnt: it was stepped up or refused, and not
    /// (yet) let through by a human.
    pub fn held(&self) -> bool {
        self.response >= Response::StepUp
    }
}

/// A call and what its identity's baseline made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub seen: Seen,
    pub verdict: Verdict,
}

/// The prefix of the labels that set an identity's own responses.
pub const RESPONSE_LABEL: &str = "aim.behaviour/";

/// How baselines respond: the learning period, the responses per risk tier (the defaults
/// by tier and autonomy where not set) and the detectors kept observing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub learning: Learning,
    /// The responses for identities of a tier, overriding the defaults.
    pub tiers: Vec<(RiskTier, Responses)>,
    /// Detectors whose findings are recorded but never acted on.
    pub observing: Vec<Detector>,
    /// Whether any finding is acted on at all (`false`: every detector observes).
    pub observe_only: bool,
}

impl Rules {
    /// The responses for `identity`: its own labels (`aim.behaviour/high`, `.../medium`,
    /// `.../low`, each `observe`, `step_up` or `lock`; a change of labels waits for an
    /// approver like any other that widens what it may do), else its tier's, else the
    /// defaults for its tier and autonomy.
    pub fn responses(&self, identity: &Identity) -> Responses {
        let tier = identity.risk.tier;
        let mut r = self.tiers.iter().find(|(t, _)| *t == tier).map_or_else(
            || Responses::default_for(tier, identity.autonomy),
            |(_, r)| *r,
        );
        let own = |severity: &str| {
            identity
                .labels
                .get(&format!("{RESPONSE_LABEL}{severity}"))
                .and_then(|v| Response::parse(v).ok())
        };
        r.high = own("high").unwrap_or(r.high);
        r.medium = own("medium").unwrap_or(r.medium);
        r.low = own("low").unwrap_or(r.low);
        r
    }
}

/// Holds `seen` against `profile`, chooses the response and learns from it.
pub fn check(profile: &mut Profile, seen: &Seen, identity: &Identity, rules: &Rules) -> Verdict {
    let o = seen.observation();
    let learning = profile.learning(rules.learning, seen.at);
    let registered = Registered {
        systems: &identity.systems,
    };
    let mut anomalies = first_of_a_kind(profile, &o, registered);
    anomalies.extend(bursts(profile, &o));
    let chosen = if rules.observe_only {
        None
    } else {
        respond(
            rules.responses(identity),
            &anomalies,
            learning,
            &rules.observing,
        )
    };
    let (response, because) = match chosen {
        // Too late to hold a call already let through: a finding, and a lock still locks.
        Some((Response::StepUp, _)) if seen.forwarded => (Response::Observe, None),
        Some((r, a)) if r > Response::Observe => (r, Some(a.detector)),
        _ => (Response::Observe, None),
    };
    let verdict = Verdict {
        identity: identity.id,
        n: profile.events,
        learning,
        response,
        because,
        anomalies,
        denied: seen.denied,
    };
    if verdict.held() {
        profile.count(&o);
    } else {
        profile.learn(&o);
    }
    verdict
}

/// Whether a decision record with `verdict` let the call through after all (a human
/// approved it): its kind is then accepted into the baseline.
pub fn approved_after(verdict: &Verdict, outcome: Outcome) -> bool {
    verdict.held() && verdict.response == Response::StepUp && outcome == Outcome::Allow
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::baseline::sketch::SketchKey;
    use crate::event::{Actor, Trail};
    use crate::time::DAY_MS;

    fn target(system: &str, id: &str, sensitivity: &str) -> Target {
        Target {
            kind: "Resource".into(),
            id: id.into(),
            system: system.into(),
            attrs: json!({ "type": "table", "sensitivity": sensitivity, "subject": "plant:7" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            tags: Default::default(),
        }
    }

    fn agent() -> Identity {
        let i = crate::baseline::testing::agent("agt-line-3", &["sensors", "maintenance-log"]);
        assert_eq!(i.risk.tier, RiskTier::High);
        i
    }

    /// The record the decision point writes, with the verdict in it.
    fn record(seen: &Seen, task: TaskId, verdict: &Verdict, target: &Target) -> Event {
        Event::new(
            seen.at,
            Actor::identity(verdict.identity),
            AuditAction::Decision,
            &target.kind,
            &target.id,
        )
        .detail(json!({
            "action": seen.action,
            "system": target.system,
            "attrs": target.attrs,
            "caller": { "key": seen.key, "ip": seen.ip },
            "behaviour": verdict,
        }))
        .trail(Trail {
            task_id: task.to_string(),
            ..Trail::default()
        })
    }

    #[test]
    fn the_record_gives_back_the_call_the_live_detectors_saw() {
        let identity = agent();
        let mut profile = Profile::new(SketchKey([7; 16]), Timestamp::from_millis(0));
        let task = TaskId::new();
        let t = target("hr-payroll", "salaries", "restricted");
        let seen = Seen::of(
            Timestamp::from_millis(DAY_MS),
            "read",
            &t,
            Some(task),
            Some("jkt-1"),
            Some("10.1.2.3"),
            true,
        );
        let verdict = check(&mut profile, &seen, &identity, &Rules::default());
        let (who, back, kept) = Seen::from_record(&record(&seen, task, &verdict, &t)).unwrap();
        assert_eq!((who, &back, &kept), (identity.id, &seen, &verdict));
        assert_eq!(back.sensitivity, Some(DataSensitivity::Restricted));
        assert_eq!(back.subject.as_deref(), Some("plant:7"));
    }

    #[test]
    fn a_held_call_does_not_make_its_kind_familiar_until_a_human_lets_it_through() {
        let identity = agent();
        let mut profile = Profile::new(SketchKey([7; 16]), Timestamp::from_millis(0));
        let rules = Rules {
            learning: Learning { days: 0, events: 3 },
            ..Rules::default()
        };
        let task = Some(TaskId::new());
        for i in 0..5 {
            let seen = Seen::of(
                Timestamp::from_millis(i * 60_000),
                "read",
                &target("sensors", "line-3", "internal"),
                task,
                None,
                None,
                false,
            );
            assert_eq!(
                check(&mut profile, &seen, &identity, &rules).response,
                Response::Observe
            );
        }
        let payroll = Seen::of(
            Timestamp::from_millis(6 * 60_000),
            "read",
            &target("hr-payroll", "salaries", "restricted"),
            task,
            None,
            None,
            false,
        );
        let first = check(&mut profile, &payroll, &identity, &rules);
        assert_eq!(
            (first.response, first.because),
            (Response::Lock, Some(Detector::NewSystem))
        );
        assert_eq!(first.n, 5);
        assert!(first.cause().unwrap().explanation.contains("hr-payroll"));
        // Refused, so still unfamiliar: the same call again is found again.
        let again = check(&mut profile, &payroll, &identity, &rules);
        assert_eq!(again.because, Some(Detector::NewSystem));
        assert_eq!(profile.events, 7);
        profile.accept(&payroll.observation());
        let after = check(&mut profile, &payroll, &identity, &rules);
        assert_eq!(after.response, Response::Observe, "{:?}", after.anomalies);
    }

    #[test]
    fn responses_follow_the_tier_overrides_and_the_observing_detectors() {
        let identity = agent();
        let step_up = Responses {
            high: Response::StepUp,
            medium: Response::StepUp,
            low: Response::Observe,
        };
        let mut rules = Rules {
            tiers: vec![(RiskTier::High, step_up)],
            ..Rules::default()
        };
        assert_eq!(rules.responses(&identity), step_up);
        rules.tiers.clear();
        assert_eq!(rules.responses(&identity).high, Response::Lock);
        // Its own labels come first; one that names no response is left out.
        let mut own = identity.clone();
        own.labels
            .insert("aim.behaviour/high".into(), "step_up".into());
        own.labels
            .insert("aim.behaviour/low".into(), "sometimes".into());
        let r = rules.responses(&own);
        assert_eq!(
            (r.high, r.medium, r.low),
            (Response::StepUp, Response::StepUp, Response::Observe)
        );
        let mut profile = Profile::new(SketchKey([1; 16]), Timestamp::from_millis(0));
        let quiet = Seen::of(
            Timestamp::from_millis(0),
            "read",
            &target("sensors", "a", "internal"),
            None,
            None,
            None,
            false,
        );
        check(&mut profile, &quiet, &identity, &rules);
        let odd = Seen {
            system: "hr-payroll".into(),
            ..quiet.clone()
        };
        rules.observing = vec![Detector::NewSystem, Detector::HigherSensitivity];
        let v = check(&mut profile.clone(), &odd, &identity, &rules);
        assert_eq!((v.response, v.anomalies.len()), (Response::Observe, 1));
        rules.observing.clear();
        rules.observe_only = true;
        let v = check(&mut profile, &odd, &identity, &rules);
        assert_eq!((v.response, v.because), (Response::Observe, None));
    }
}
