//! Each sweep rule driven by the fake clock, over HTTP.

use aim_domain::lifecycle::{LifecycleState, StateCause};

use crate::api_tests;
use crate::fixtures::{active_identity, cast, code};

api_tests!(
    end_of_life_expires,
    overdue_attestation_suspends_and_attesting_resumes,
    inactivity_flags_dormant,
    departed_sponsor_orphans_then_suspends,
    new_sponsor_rescues_an_orphan,
);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn end_of_life_expires(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-short-lived").await;
        s.clock.advance_days(29);
        let r = s.admin.run_sweep().await.unwrap();
        assert_eq!(r.expired, 0);
        s.clock.advance_days(1);
        let r = s.admin.run_sweep().await.unwrap();
        assert_eq!(r.expired, 1);
        let x = s.admin.identity(i.id).await.unwrap();
        assert_eq!(
            (x.state, x.state_cause),
            (LifecycleState::Expired, StateCause::EndOfLife)
        );
        assert!(x.state_reason.contains("end-of-life"), "{}", x.state_reason);
        assert_eq!(
            code(c.sponsor_client.identity_action(i.id, "resume", "").await),
            "illegal_transition"
        );
        let events = crate::fixtures::all_events(s).await;
        let e = events
            .iter()
            .find(|e| e.action.as_str() == "identity.expired")
            .unwrap();
        assert_eq!(
            (e.actor.kind.as_str(), e.actor.id.as_str()),
            ("system", "sweep")
        );
        assert_eq!(s.admin.run_sweep().await.unwrap().expired, 0, "once");
    }

    pub async fn overdue_attestation_suspends_and_attesting_resumes(s: &TestServer) {
        let c = cast(s).await;
        let mut req = crate::fixtures::request(s, "agt-needs-attesting", c.sponsor.id);
        req.expires_at = crate::fixtures::ClockExt::clock_now(s).plus_days(300);
        let i = c.sponsor_client.request_identity(&req).await.unwrap();
        c.approver_client
            .identity_action(i.id, "approve", "")
            .await
            .unwrap();
        // Due in 90 days, grace 7: still fine on day 96, suspended on day 97.
        for d in [10, 30, 50, 70, 90] {
            s.clock.advance_days(if d == 10 { 10 } else { 20 });
            c.sponsor_client
                .identity_action(i.id, "suspend", "")
                .await
                .ok();
            c.sponsor_client
                .identity_action(i.id, "resume", "")
                .await
                .ok();
        }
        // Activity above keeps it from being dormant; now let time pass to the due date.
        s.clock.advance_days(6);
        assert_eq!(
            s.admin
                .run_sweep()
                .await
                .unwrap()
                .suspended_attestation_overdue,
            0
        );
        s.clock.advance_days(1);
        let r = s.admin.run_sweep().await.unwrap();
        assert_eq!(r.suspended_attestation_overdue, 1, "{r:?}");
        let x = s.admin.identity(i.id).await.unwrap();
        assert_eq!(
            (x.state, x.state_cause),
            (LifecycleState::Suspended, StateCause::AttestationOverdue)
        );
        assert_eq!(
            code(c.sponsor_client.identity_action(i.id, "resume", "").await),
            "attestation_overdue"
        );
        let x = c
            .sponsor_client
            .identity_action(i.id, "attest", "reviewed")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Active);
    }

    pub async fn inactivity_flags_dormant(s: &TestServer) {
        let c = cast(s).await;
        let mut req = crate::fixtures::request(s, "agt-quiet", c.sponsor.id);
        req.expires_at = crate::fixtures::ClockExt::clock_now(s).plus_days(300);
        let i = c.sponsor_client.request_identity(&req).await.unwrap();
        c.approver_client
            .identity_action(i.id, "approve", "")
            .await
            .unwrap();
        s.clock.advance_days(29);
        assert_eq!(s.admin.run_sweep().await.unwrap().flagged_dormant, 0);
        s.clock.advance_days(1);
        assert_eq!(s.admin.run_sweep().await.unwrap().flagged_dormant, 1);
        let x = s.admin.identity(i.id).await.unwrap();
        assert!(x.dormant);
        assert_eq!(
            x.state,
            LifecycleState::Active,
            "flagged, not suspended, by default"
        );
        let dormant = s
            .admin
            .identities(&vec![("dormant", "true".into())])
            .await
            .unwrap();
        assert_eq!(dormant.items.len(), 1);
    }

    pub async fn departed_sponsor_orphans_then_suspends(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-orphaned").await;
        let out = s
            .admin
            .set_human_active(c.sponsor.id, false, "left the company")
            .await
            .unwrap();
        assert_eq!(out.identities_affected, 1);
        let x = s.admin.identity(i.id).await.unwrap();
        assert_eq!(
            x.orphaned_since,
            Some(crate::fixtures::ClockExt::clock_now(s))
        );
        let orphans = s
            .admin
            .identities(&vec![("orphaned", "true".into())])
            .await
            .unwrap();
        assert_eq!(orphans.items.len(), 1);
        s.clock.advance_days(6);
        assert_eq!(s.admin.run_sweep().await.unwrap().suspended_orphaned, 0);
        s.clock.advance_days(1);
        assert_eq!(s.admin.run_sweep().await.unwrap().suspended_orphaned, 1);
        let x = s.admin.identity(i.id).await.unwrap();
        assert_eq!(
            (x.state, x.state_cause),
            (LifecycleState::Suspended, StateCause::Orphaned)
        );
        assert_eq!(
            code(s.admin.identity_action(i.id, "resume", "").await),
            "identity_orphaned"
        );
        let events = crate::fixtures::all_events(s).await;
        let actions = crate::fixtures::actions_on(&events, i.id);
        assert_eq!(
            actions,
            [
                "identity.requested",
                "identity.approved",
                "identity.orphaned",
                "identity.suspended"
            ]
        );
    }

    pub async fn new_sponsor_rescues_an_orphan(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-rescued").await;
        s.admin
            .set_human_active(c.sponsor.id, false, "left")
            .await
            .unwrap();
        let (new_sponsor, new_client) = s.human("nora", &[aim_domain::human::Role::Sponsor]).await;
        let patch = aim_domain::identity::IdentityPatch {
            sponsor_id: Some(new_sponsor.id),
            ..Default::default()
        };
        // The departed sponsor's credential no longer works; an admin reassigns.
        let x = s.admin.change_identity(i.id, &patch).await.unwrap();
        assert_eq!((x.sponsor_id, x.orphaned_since), (new_sponsor.id, None));
        s.clock.advance_days(8);
        new_client
            .identity_action(i.id, "attest", "")
            .await
            .unwrap();
        let r = s.admin.run_sweep().await.unwrap();
        assert_eq!(r.suspended_orphaned, 0);
        assert_eq!(
            s.admin.identity(i.id).await.unwrap().state,
            LifecycleState::Active
        );
    }
}
