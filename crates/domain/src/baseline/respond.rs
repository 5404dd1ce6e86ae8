//! What aim does about a call's findings: `observe` (a finding on the record only),
//! `step_up` (the action waits for a human's approval) or `lock` (the kill switch). Set
//! per severity, with defaults by risk tier and autonomy (lock a high-risk autonomous agent
//! on a high-severity finding; step up otherwise) that an identity may override; a detector
//! can be kept observing while it is backtested. While an identity is learning, only what
//! its registration says is enforced: a system outside its registered systems.

use crate::identity::Autonomy;
use crate::risk::RiskTier;

use super::detect::{Anomaly, Detector, Severity};

str_enum! {
    /// What is done about a finding, weakest first.
    pub enum Response {
        Observe => "observe",
        StepUp => "step_up",
        Lock => "lock",
    }
}

/// The response to each severity of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Responses {
    pub high: Response,
    pub medium: Response,
    pub low: Response,
}

impl Responses {
    /// The default for an identity of `tier` and `autonomy`.
    pub fn default_for(tier: RiskTier, autonomy: Autonomy) -> Self {
        let high = if tier == RiskTier::High && autonomy == Autonomy::Autonomous {
            Response::Lock
        } else {
            Response::StepUp
        };
        Self {
            high,
            medium: Response::StepUp,
            low: Response::Observe,
        }
    }

    fn to(&self, severity: Severity) -> Response {
        match severity {
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// The response to `found`, and the finding that called for it: the strongest any finding
/// calls for, none stronger than `observe` for a detector in `observing`, and while
/// `learning` only for a system outside the registered ones.
pub fn respond<'a>(
    responses: Responses,
    found: &'a [Anomaly],
    learning: bool,
    observing: &[Detector],
) -> Option<(Response, &'a Anomaly)> {
    // Of equals, the first found (a new system before the sensitivity it brings).
    found
        .iter()
        .rev()
        .map(|a| {
            let enforced = !observing.contains(&a.detector)
                && (!learning
                    || (a.detector == Detector::NewSystem && a.severity == Severity::High));
            let response = if enforced {
                responses.to(a.severity)
            } else {
                Response::Observe
            };
            (response, a)
        })
        .max_by_key(|(response, a)| (*response, a.severity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(detector: Detector, severity: Severity) -> Anomaly {
        Anomaly {
            detector,
            severity,
            observed: "x".into(),
            baseline: "y".into(),
            explanation: "x against y".into(),
        }
    }

    #[test]
    fn a_high_risk_autonomous_agent_is_locked_and_others_stepped_up() {
        let found = [
            finding(Detector::NewNetwork, Severity::Low),
            finding(Detector::NewSystem, Severity::High),
            finding(Detector::RateSpike, Severity::Medium),
        ];
        let agent = Responses::default_for(RiskTier::High, Autonomy::Autonomous);
        let (response, why) = respond(agent, &found, false, &[]).unwrap();
        assert_eq!(
            (response, why.detector),
            (Response::Lock, Detector::NewSystem)
        );
        for (tier, autonomy) in [
            (RiskTier::Medium, Autonomy::Autonomous),
            (RiskTier::High, Autonomy::Assistant),
            (RiskTier::Low, Autonomy::Automation),
        ] {
            let responses = Responses::default_for(tier, autonomy);
            let (response, why) = respond(responses, &found, false, &[]).unwrap();
            assert_eq!(
                (response, why.detector),
                (Response::StepUp, Detector::NewSystem),
                "{tier} {autonomy}"
            );
        }
        // A rate spike alone steps up; a new network alone is a finding only.
        let spike = [finding(Detector::RateSpike, Severity::Medium)];
        assert_eq!(
            respond(agent, &spike, false, &[]).unwrap().0,
            Response::StepUp
        );
        let network = [finding(Detector::NewNetwork, Severity::Low)];
        assert_eq!(
            respond(agent, &network, false, &[]).unwrap().0,
            Response::Observe
        );
        assert!(respond(agent, &[], false, &[]).is_none());
    }

    #[test]
    fn learning_enforces_only_the_registered_systems_and_observing_detectors_never_act() {
        let agent = Responses::default_for(RiskTier::High, Autonomy::Autonomous);
        let probing = [finding(Detector::DenialBurst, Severity::High)];
        assert_eq!(
            respond(agent, &probing, true, &[]).unwrap().0,
            Response::Observe
        );
        let outside = [finding(Detector::NewSystem, Severity::High)];
        assert_eq!(
            respond(agent, &outside, true, &[]).unwrap().0,
            Response::Lock
        );
        let registered = [finding(Detector::NewSystem, Severity::Medium)];
        assert_eq!(
            respond(agent, &registered, true, &[]).unwrap().0,
            Response::Observe
        );
        // A detector being backtested only observes.
        assert_eq!(
            respond(agent, &probing, false, &[Detector::DenialBurst])
                .unwrap()
                .0,
            Response::Observe
        );
        assert_eq!(
            respond(agent, &probing, false, &[]).unwrap().0,
            Response::Lock
        );
    }
}
