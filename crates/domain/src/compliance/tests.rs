use std::collections::BTreeMap;

use super::posture::{Audit, Behaviour, Decisions, Discovery, Humans, Registry, Tokens, Tools};
use super::*;
use crate::discovery::FindingKind;

const NOW: i64 = 1_800_000_000_000;

fn named(names: &[&str]) -> Named {
    let mut n = Named::default();
    for x in names {
        n.add(x);
    }
    n
}

/// A posture with nothing wrong: every control aim can answer is met.
fn clean() -> Posture {
    Posture {
        at: Timestamp::from_millis(NOW),
        registry: Registry {
            live: 12,
            agents: 5,
            ..Registry::default()
        },
        humans: Humans {
            active: 4,
            admins: 1,
            approvers: 1,
        },
        tokens: Tokens {
            max_token_seconds: 300,
            max_delegation_depth: 4,
        },
        decisions: Decisions {
            policy_version: 3,
            live_grants: 2,
        },
        behaviour: Behaviour {
            mode: "enforce".to_owned(),
            profiles: 5,
        },
        audit: Audit {
            events: 900,
            latest_checkpoint: Some(Timestamp::from_millis(NOW - 30_000)),
            checkpoint_every_seconds: Some(60),
            sinks: vec!["siem".to_owned()],
        },
        tools: Tools {
            gateways_connected: 2,
            gateways_behind: 0,
            seen: 3,
            ..Tools::default()
        },
        discovery: Discovery {
            sources: vec!["aws-prod: aws_credential_report".to_owned()],
            cloud_sources: true,
            accounts: 40,
            unlinked: 0,
            findings: BTreeMap::new(),
            per_human: Some(13.0),
        },
    }
}

fn control<'a>(e: &'a Evaluation, id: &str) -> &'a Control {
    e.controls
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| unreachable!("no control {id}"))
}

/// The names every failing check of a control gives.
fn names_of(c: &Control) -> Vec<String> {
    c.checks
        .iter()
        .filter(|k| k.status != Status::Met)
        .flat_map(|k| k.names.clone())
        .collect()
}

#[test]
fn every_framework_has_its_entries() {
    let e = evaluate(&clean());
    let ids = |f: Framework| -> Vec<String> {
        e.controls
            .iter()
            .filter(|c| c.framework == f)
            .map(|c| c.id.clone())
            .collect()
    };
    let nhi: Vec<String> = (1..=10).map(|i| format!("NHI{i}")).collect();
    assert_eq!(ids(Framework::OwaspNhi), nhi);
    let asi: Vec<String> = (1..=10).map(|i| format!("ASI{i:02}")).collect();
    assert_eq!(ids(Framework::OwaspAgentic), asi);
    let csf = ids(Framework::NistCsf);
    for i in 1..=6 {
        assert!(csf.contains(&format!("PR.AA-0{i}")), "{csf:?}");
    }
    let rmf = ids(Framework::NistAiRmf);
    for function in ["GOVERN", "MAP", "MEASURE", "MANAGE"] {
        assert!(rmf.iter().any(|i| i.starts_with(function)), "{rmf:?}");
    }
    assert!(ids(Framework::CsaMaestro).contains(&"L7".to_owned()));
    assert_eq!(e.frameworks.len(), Framework::ALL.len());
}

#[test]
fn a_clean_posture_meets_what_aim_can_answer() {
    let e = evaluate(&clean());
    for c in &e.controls {
        let scoped = c.checks.iter().any(|k| k.status == Status::Partial);
        match c.status {
            Status::Met => assert!(!scoped),
            Status::Partial => assert!(scoped, "{} is partial without a scope note", c.id),
            Status::NotApplicable => assert_eq!(c.id, "PR.AA-06"),
            Status::NotMet => unreachable!("{} not met: {:?}", c.id, c.checks),
        }
    }
    assert_eq!(control(&e, "NHI1").status, Status::Met);
    assert_eq!(control(&e, "ASI06").status, Status::Partial);
    // Scope notes (ASI01, 04, 05, 06) keep the score under 100.
    assert!(e.score < 100.0 && e.score > 90.0, "{}", e.score);
    let nhi = &e.frameworks[0];
    assert_eq!(
        (nhi.framework, nhi.met, nhi.score),
        (Framework::OwaspNhi, 10, 100.0)
    );
}

#[test]
fn registry_violations_name_the_identities() {
    let mut p = clean();
    p.registry.orphaned = named(&["billing-agent"]);
    p.registry.bearer = named(&["legacy-etl"]);
    let e = evaluate(&p);
    let nhi1 = control(&e, "NHI1");
    assert_eq!(nhi1.status, Status::Partial);
    assert_eq!(names_of(nhi1), ["billing-agent"]);
    let failing = nhi1.checks.iter().find(|k| k.status == Status::NotMet);
    assert_eq!(
        failing.map(|k| k.detail.as_str()),
        Some("1 of 12 live identities")
    );
    // NHI4 is answered by key binding and discovery: the bearer exception alone fails it.
    assert_eq!(names_of(control(&e, "NHI4")), ["legacy-etl"]);
    assert_eq!(control(&e, "PR.AA-03").status, Status::Partial);
    // Controls that do not ask about either stay met.
    assert_eq!(control(&e, "NHI8").status, Status::Met);
}

#[test]
fn discovery_findings_name_the_accounts_and_their_kind() {
    let mut p = clean();
    p.discovery.findings.insert(
        FindingKind::HumanUse,
        named(&["aws-prod/svc-deploy", "corp-ad/svc-sql"]),
    );
    p.discovery
        .findings
        .insert(FindingKind::Dormant, named(&["corp-ad/svc-backup"]));
    let e = evaluate(&p);
    let nhi10 = control(&e, "NHI10");
    assert_eq!(nhi10.status, Status::NotMet);
    assert_eq!(
        names_of(nhi10),
        [
            "aws-prod/svc-deploy (human_use)",
            "corp-ad/svc-sql (human_use)"
        ]
    );
    assert_eq!(
        nhi10.checks[0].detail,
        "2 human_use of 40 discovered accounts"
    );
    assert_eq!(
        names_of(control(&e, "NHI1")),
        ["corp-ad/svc-backup (dormant)"]
    );
    assert_eq!(control(&e, "NHI5").status, Status::Met);

    // An acknowledged finding is an accepted risk: still counted, and said so.
    p.discovery
        .findings
        .get_mut(&FindingKind::HumanUse)
        .unwrap()
        .acknowledged = 1;
    let e = evaluate(&p);
    let nhi10 = control(&e, "NHI10");
    assert_eq!((nhi10.status, nhi10.checks[0].count), (Status::NotMet, 2));
    assert_eq!(
        nhi10.checks[0].detail,
        "2 human_use (1 acknowledged) of 40 discovered accounts"
    );
}

#[test]
fn nothing_imported_is_not_assessed_and_not_an_inventory() {
    let mut p = clean();
    p.discovery = Discovery::default();
    let e = evaluate(&p);
    let nhi10 = control(&e, "NHI10");
    assert_eq!(nhi10.status, Status::Partial);
    assert!(nhi10.checks[0].detail.starts_with("not assessed"));
    assert_eq!(control(&e, "ID.AM-02").status, Status::NotMet);
    assert_eq!(control(&e, "NHI6").status, Status::Partial);
}

#[test]
fn mechanisms_turned_off_fail_the_controls_that_need_them() {
    let mut p = clean();
    p.behaviour.mode = "off".to_owned();
    p.audit.sinks.clear();
    p.tokens.max_token_seconds = 7 * 86_400;
    p.humans = Humans {
        active: 1,
        admins: 1,
        approvers: 0,
    };
    let e = evaluate(&p);
    assert_eq!(control(&e, "PR.PS-04").status, Status::Partial);
    assert_eq!(control(&e, "ASI10").status, Status::Partial);
    assert_eq!(control(&e, "ASI09").status, Status::Partial);
    assert_eq!(control(&e, "L5").status, Status::NotMet);
    assert_eq!(control(&e, "NHI7").status, Status::Partial);
    assert!(e.score < evaluate(&clean()).score);
}

#[test]
fn token_lifetime_thresholds() {
    let at = |s| {
        let mut p = clean();
        p.tokens.max_token_seconds = s;
        checks::token_lifetime(&p).status
    };
    assert_eq!(at(checks::SHORT_TOKEN_SECONDS), Status::Met);
    assert_eq!(at(checks::SHORT_TOKEN_SECONDS + 1), Status::Partial);
    assert_eq!(at(86_400), Status::Partial);
    assert_eq!(at(86_401), Status::NotMet);
}

#[test]
fn a_stale_checkpoint_is_partial() {
    let mut p = clean();
    p.audit.latest_checkpoint = Some(Timestamp::from_millis(NOW - 120_000));
    assert_eq!(checks::audit_chain(&p).status, Status::Met);
    p.audit.latest_checkpoint = Some(Timestamp::from_millis(NOW - 121_000));
    assert_eq!(checks::audit_chain(&p).status, Status::Partial);
    p.audit.latest_checkpoint = None;
    assert_eq!(checks::audit_chain(&p).status, Status::Partial);
}

#[test]
fn named_keeps_every_count_and_the_first_names() {
    let mut n = Named::default();
    for i in 0..100 {
        n.add(&format!("agent-{i}"));
    }
    assert_eq!((n.count, n.names.len()), (100, posture::NAMED));
    assert_eq!(n.names[0], "agent-0");
}

#[test]
fn scores_weigh_partial_half_and_skip_not_applicable() {
    let mk = |status| Control {
        framework: Framework::NistCsf,
        id: String::new(),
        title: String::new(),
        status,
        checks: Vec::new(),
    };
    let cs = [
        mk(Status::Met),
        mk(Status::Partial),
        mk(Status::NotMet),
        mk(Status::NotApplicable),
    ];
    let s = score(Framework::NistCsf, cs.iter());
    assert_eq!((s.met, s.partial, s.not_met, s.score), (1, 1, 1, 50.0));
    assert_eq!(score(Framework::NistCsf, [].iter()).score, 100.0);
    // A control weighs what its checks do: one of three checks failing costs a third.
    let p = clean();
    let mut c = Control::new(
        Framework::OwaspNhi,
        "X",
        "x",
        vec![
            checks::orphaned(&p),
            checks::dormant(&p),
            checks::bearer(&p),
        ],
    );
    assert_eq!(c.weight(), Some(1.0));
    c.checks[0].status = Status::NotMet;
    c.checks[1].status = Status::Partial;
    assert_eq!(c.weight(), Some(0.5));
    assert_eq!(score(Framework::OwaspNhi, [c].iter()).score, 50.0);
}

#[test]
fn the_guide_names_every_control() {
    let guide = include_str!("../../../../docs/compliance.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for c in evaluate(&clean()).controls {
        assert!(
            guide.contains(&c.id),
            "docs/compliance.md does not name {}",
            c.id
        );
    }
}
