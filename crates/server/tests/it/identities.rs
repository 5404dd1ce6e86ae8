use aim_domain::human::Role;
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::{DataSensitivity, Level, RiskTier};

use crate::api_tests;
use crate::fixtures::{ClockExt, active_identity, cast, code, request};

api_tests!(
    request_then_approve,
    naming_policy_is_enforced,
    names_are_unique_and_never_reused,
    same_sponsor_purpose_systems_is_flagged,
    separation_of_duties,
    lifecycle_over_http,
    attestation_moves_the_due_date,
    changes_recompute_risk,
    lists_filter_and_paginate,
    every_change_is_an_event,
);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn request_then_approve(s: &TestServer) {
        let c = cast(s).await;
        let i = c
            .sponsor_client
            .request_identity(&request(s, "agt-claims-triage", c.sponsor.id))
            .await
            .unwrap();
        assert_eq!(i.state, LifecycleState::Requested);
        assert_eq!(i.created_by, c.sponsor.id);
        assert_eq!(i.risk.tier, RiskTier::Low);
        assert!(!i.risk.reasons.is_empty());
        let a = c
            .approver_client
            .identity_action(i.id, "approve", "looks right")
            .await
            .unwrap();
        assert_eq!(a.state, LifecycleState::Active);
        assert_eq!(a.decided_by, Some(c.approver.id));
        assert_eq!(a.attestation_due_at, Some(s.clock_now().plus_days(90)));
        let shown = s.admin.find_identity("agt-claims-triage").await.unwrap();
        assert_eq!(shown, a);
    }

    pub async fn naming_policy_is_enforced(s: &TestServer) {
        let c = cast(s).await;
        for bad in ["claims-bot", "AGT-upper", "agt-x", "agt-has space"] {
            let r = c
                .sponsor_client
                .request_identity(&request(s, bad, c.sponsor.id))
                .await;
            assert_eq!(code(r), "naming_policy_violation", "{bad}");
        }
    }

    pub async fn names_are_unique_and_never_reused(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-unique-name").await;
        let r = c
            .sponsor_client
            .request_identity(&request(s, "agt-unique-name", c.sponsor.id))
            .await;
        assert_eq!(code(r), "name_taken");
        c.sponsor_client
            .identity_action(i.id, "decommission", "done")
            .await
            .unwrap();
        let r = c
            .sponsor_client
            .request_identity(&request(s, "agt-unique-name", c.sponsor.id))
            .await;
        assert_eq!(code(r), "name_taken");
    }

    pub async fn same_sponsor_purpose_systems_is_flagged(s: &TestServer) {
        let c = cast(s).await;
        let first = c
            .sponsor_client
            .request_identity(&request(s, "agt-dup-first", c.sponsor.id))
            .await
            .unwrap();
        assert!(!first.possible_duplicate);
        let mut r = request(s, "agt-dup-second", c.sponsor.id);
        r.purpose = "  AGT-DUP-FIRST does   its job".into();
        let second = c.sponsor_client.request_identity(&r).await.unwrap();
        assert!(
            second.possible_duplicate,
            "same sponsor, purpose and systems"
        );
        let listed = s
            .admin
            .identities(&vec![("possible_duplicate", "true".into())])
            .await
            .unwrap();
        assert_eq!(
            listed.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![second.id]
        );
        let mut r = request(s, "agt-dup-third", c.sponsor.id);
        r.purpose = "agt-dup-first does its job".into();
        r.systems = vec!["crm".into(), "billing".into()];
        assert!(
            !c.sponsor_client
                .request_identity(&r)
                .await
                .unwrap()
                .possible_duplicate
        );
    }

    pub async fn separation_of_duties(s: &TestServer) {
        let c = cast(s).await;
        // The requester cannot approve their own request, even as admin and approver.
        let (boss, boss_client) = s
            .human("boss", &[Role::Admin, Role::Approver, Role::Sponsor])
            .await;
        let own = boss_client
            .request_identity(&request(s, "agt-own-request", boss.id))
            .await
            .unwrap();
        assert_eq!(
            code(boss_client.identity_action(own.id, "approve", "").await),
            "self_approval_forbidden"
        );
        assert_eq!(
            code(boss_client.identity_action(own.id, "reject", "no").await),
            "self_approval_forbidden"
        );
        // For a high-risk identity its sponsor cannot approve, even when someone else requested it.
        let (sponsor_approver, sa_client) = s.human("sara", &[Role::Approver, Role::Sponsor]).await;
        let mut high = request(s, "agt-high-risk", sponsor_approver.id);
        high.data_sensitivity = DataSensitivity::Restricted;
        let high = boss_client.request_identity(&high).await.unwrap();
        assert_eq!(high.risk.tier, RiskTier::High);
        assert_eq!(
            code(sa_client.identity_action(high.id, "approve", "").await),
            "sponsor_approval_forbidden"
        );
        // A sponsor without the approver role cannot approve at all.
        assert_eq!(
            code(
                c.sponsor_client
                    .identity_action(high.id, "approve", "")
                    .await
            ),
            "forbidden"
        );
        let ok = c
            .approver_client
            .identity_action(high.id, "approve", "reviewed")
            .await
            .unwrap();
        assert_eq!(ok.state, LifecycleState::Active);
        // Rejection needs a reason.
        let other = c
            .sponsor_client
            .request_identity(&request(s, "agt-to-reject", c.sponsor.id))
            .await
            .unwrap();
        assert_eq!(
            code(
                c.approver_client
                    .identity_action(other.id, "reject", "")
                    .await
            ),
            "reason_required"
        );
        let r = c
            .approver_client
            .identity_action(other.id, "reject", "no business need")
            .await
            .unwrap();
        assert_eq!(r.state, LifecycleState::Rejected);
        assert_eq!(r.state_reason, "no business need");
    }

    pub async fn lifecycle_over_http(s: &TestServer) {
        let c = cast(s).await;
        let i = c
            .sponsor_client
            .request_identity(&request(s, "agt-lifecycle", c.sponsor.id))
            .await
            .unwrap();
        // Illegal from requested.
        for action in ["suspend", "resume", "lock", "unlock"] {
            let r = s.admin.identity_action(i.id, action, "why").await;
            assert_eq!(code(r), "illegal_transition", "{action} from requested");
        }
        c.approver_client
            .identity_action(i.id, "approve", "")
            .await
            .unwrap();
        assert_eq!(
            code(s.admin.identity_action(i.id, "approve", "").await),
            "illegal_transition"
        );
        assert_eq!(
            code(s.admin.identity_action(i.id, "resume", "").await),
            "illegal_transition"
        );
        let x = c
            .sponsor_client
            .identity_action(i.id, "suspend", "investigating")
            .await
            .unwrap();
        assert_eq!(
            (x.state, x.state_reason.as_str()),
            (LifecycleState::Suspended, "investigating")
        );
        let x = c
            .sponsor_client
            .identity_action(i.id, "resume", "")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Active);
        let x = c
            .sponsor_client
            .identity_action(i.id, "lock", "leaked key")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Locked);
        assert_eq!(
            code(c.sponsor_client.identity_action(i.id, "resume", "").await),
            "illegal_transition"
        );
        // Only an admin unlocks, and only with a reason.
        assert_eq!(
            code(
                c.sponsor_client
                    .identity_action(i.id, "unlock", "fixed")
                    .await
            ),
            "forbidden"
        );
        assert_eq!(
            code(s.admin.identity_action(i.id, "unlock", "").await),
            "reason_required"
        );
        let x = s
            .admin
            .identity_action(i.id, "unlock", "key rotated")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Active);
        let x = c
            .sponsor_client
            .identity_action(i.id, "decommission", "retired")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Decommissioned);
        for action in [
            "approve",
            "suspend",
            "resume",
            "lock",
            "unlock",
            "decommission",
            "attest",
        ] {
            let r = s.admin.identity_action(i.id, action, "why").await;
            assert!(
                matches!(
                    code(r).as_str(),
                    "illegal_transition" | "state_forbids_action"
                ),
                "{action} after decommission"
            );
        }
    }

    pub async fn attestation_moves_the_due_date(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-attest-me").await;
        s.clock.advance_days(10);
        let a = c
            .sponsor_client
            .identity_action(i.id, "attest", "still needed")
            .await
            .unwrap();
        assert_eq!(a.last_attested_at, Some(s.clock_now()));
        assert_eq!(a.attestation_due_at, Some(s.clock_now().plus_days(90)));
        let (other, other_client) = s.human("olga", &[Role::Sponsor]).await;
        let _ = other;
        assert_eq!(
            code(other_client.identity_action(i.id, "attest", "").await),
            "forbidden"
        );
    }

    pub async fn changes_recompute_risk(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-risk-change").await;
        assert_eq!(i.risk.tier, RiskTier::Low);
        let patch = aim_domain::identity::IdentityPatch {
            criticality: Some(Level::High),
            ..Default::default()
        };
        let x = c
            .sponsor_client
            .change_identity(i.id, &patch)
            .await
            .unwrap();
        assert_eq!(x.risk.tier, RiskTier::High);
        assert!(
            x.risk.reasons.iter().any(|r| r.contains("criticality")),
            "{:?}",
            x.risk.reasons
        );
        assert_eq!(
            x.attestation_due_at,
            Some(s.clock_now().plus_days(30)),
            "high risk attests every 30 days"
        );
        let too_long = aim_domain::identity::IdentityPatch {
            expires_at: Some(s.clock_now().plus_days(91)),
            ..Default::default()
        };
        assert_eq!(
            code(c.sponsor_client.change_identity(i.id, &too_long).await),
            "lifetime_too_long"
        );
    }

    pub async fn lists_filter_and_paginate(s: &TestServer) {
        let c = cast(s).await;
        let mut ids = Vec::new();
        for n in 0..7 {
            let i = c
                .sponsor_client
                .request_identity(&request(s, &format!("agt-list-{n}"), c.sponsor.id))
                .await
                .unwrap();
            ids.push(i.id);
        }
        c.approver_client
            .identity_action(ids[0], "approve", "")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = vec![("limit", "3".to_owned())];
            if let Some(cur) = &cursor {
                params.push(("cursor", cur.clone()));
            }
            let page = s.admin.identities(&params).await.unwrap();
            seen.extend(page.items.iter().map(|i| i.id));
            match page.next_cursor {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, ids);
        let active = s
            .admin
            .identities(&vec![("state", "active".into())])
            .await
            .unwrap();
        assert_eq!(active.items.len(), 1);
        let by_sponsor = s
            .admin
            .identities(&vec![
                ("sponsor_id", c.sponsor.id.to_string()),
                ("name_prefix", "agt-list-".into()),
            ])
            .await
            .unwrap();
        assert_eq!(by_sponsor.items.len(), 7);
        let soon = s.clock_now().plus_days(31).to_string();
        assert_eq!(
            s.admin
                .identities(&vec![("expiring_before", soon)])
                .await
                .unwrap()
                .items
                .len(),
            7
        );
        assert_eq!(
            code(
                s.admin
                    .identities(&vec![("state", "sleeping".into())])
                    .await
            ),
            "invalid_query"
        );
        assert_eq!(
            code(s.admin.identities(&vec![("limit", "0".into())]).await),
            "invalid_limit"
        );
        assert_eq!(
            code(
                s.admin
                    .identities(&vec![("cursor", "not-ours".into())])
                    .await
            ),
            "invalid_cursor"
        );
        assert_eq!(
            code(s.admin.identities(&vec![("colour", "red".into())]).await),
            "invalid_query"
        );
    }

    pub async fn every_change_is_an_event(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-evented").await;
        c.sponsor_client
            .identity_action(i.id, "suspend", "pause")
            .await
            .unwrap();
        let events = crate::fixtures::all_events(s).await;
        let mine = crate::fixtures::actions_on(&events, i.id);
        assert_eq!(
            mine,
            [
                "identity.requested",
                "identity.approved",
                "identity.suspended"
            ]
        );
        let suspended = events
            .iter()
            .find(|e| e.action.as_str() == "identity.suspended")
            .unwrap();
        assert_eq!(suspended.actor.id, c.sponsor.id.to_string());
        assert_eq!(suspended.reason, "pause");
        // Sponsors cannot read the event log.
        assert_eq!(code(c.sponsor_client.audit(&vec![]).await), "forbidden");
    }
}

/// With `auto_approve_low_risk`, a low-risk request is active at once and the approval is on
/// the record as the system's; anything riskier still waits for a human.
#[tokio::test]
async fn low_risk_auto_approval_when_configured() {
    for backend in aim_testkit::Backend::enabled() {
        let s = aim_testkit::TestServer::start_with(backend, |c| {
            c.governance.auto_approve_low_risk = true
        })
        .await;
        let c = cast(&s).await;
        let low = c
            .sponsor_client
            .request_identity(&request(&s, "agt-auto-low", c.sponsor.id))
            .await
            .unwrap();
        assert_eq!((low.state, low.decided_by), (LifecycleState::Active, None));
        let mut medium = request(&s, "agt-auto-medium", c.sponsor.id);
        medium.impact = Level::Medium;
        let medium = c.sponsor_client.request_identity(&medium).await.unwrap();
        assert_eq!(medium.state, LifecycleState::Requested);
        let events = crate::fixtures::all_events(&s).await;
        let approved = events
            .iter()
            .find(|e| e.action.as_str() == "identity.approved")
            .unwrap();
        assert_eq!(
            (approved.actor.id.as_str(), approved.target_id.clone()),
            ("auto-approval", low.id.to_string())
        );
        s.stop().await;
    }
}
