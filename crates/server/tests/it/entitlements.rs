//! What an approver signed off on cannot be widened by one person: a change that widens an
//! active identity's reach waits for an approver who did not ask for it; what narrows it
//! applies at once. Named after the attacks.

use aim_domain::human::Role;
use aim_domain::identity::IdentityPatch;
use aim_domain::risk::{DataSensitivity, Level};

use crate::fixtures::{ClockExt, active_identity, cast, code};

crate::api_tests!(
    sponsor_cannot_widen_approved_identity,
    admin_cannot_approve_the_widening_it_asked_for,
    identity_cannot_join_a_team_nobody_knows,
);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    /// The sponsor adds `billing` to an approved agent and lowers its criticality: both
    /// wait, the agent reaches nothing new, and an approver decides. Narrowing (a higher
    /// sensitivity) applies at once.
    pub async fn sponsor_cannot_widen_approved_identity(s: &TestServer) {
        let c = cast(s).await;
        let mut patch = crate::fixtures::request(s, "agt-widen", c.sponsor.id);
        patch.criticality = Level::Medium;
        let i = c.sponsor_client.request_identity(&patch).await.unwrap();
        c.approver_client
            .identity_action(i.id, "approve", "ok")
            .await
            .unwrap();

        let wider = IdentityPatch {
            systems: Some(vec!["crm".into(), "billing".into()]),
            criticality: Some(Level::Low),
            data_sensitivity: Some(DataSensitivity::Confidential),
            ..IdentityPatch::default()
        };
        let resp = reqwest::Client::new()
            .patch(format!("{}/v1/identities/{}", s.base, i.id))
            .bearer_auth(c.sponsor_client.token().unwrap())
            .json(&wider)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "accepted, not applied");
        let after = s.admin.identity(i.id).await.unwrap();
        assert_eq!(after.systems, ["crm"], "nothing gained before approval");
        assert_eq!(after.criticality, Level::Medium);
        assert_eq!(
            after.data_sensitivity,
            DataSensitivity::Confidential,
            "a narrowing change applies at once"
        );
        let pending = after.pending_change.clone().unwrap();
        assert_eq!(pending.fields, ["systems", "criticality"]);
        assert_eq!(pending.requested_by, c.sponsor.id);

        // The sponsor is not an approver; an approver who did not ask decides.
        assert_eq!(
            code(
                c.sponsor_client
                    .identity_action(i.id, "change/approve", "mine")
                    .await
            ),
            "forbidden"
        );
        let approved = c
            .approver_client
            .identity_action(i.id, "change/approve", "billing access reviewed")
            .await
            .unwrap();
        assert_eq!(approved.systems, ["billing", "crm"]);
        assert_eq!(approved.criticality, Level::Low);
        assert!(approved.pending_change.is_none());
        assert_eq!(
            code(
                c.approver_client
                    .identity_action(i.id, "change/approve", "again")
                    .await
            ),
            "not_pending"
        );
        let events = crate::fixtures::all_events(s).await;
        let on_it = crate::fixtures::actions_on(&events, i.id);
        assert!(
            on_it.ends_with(&["identity.changed", "identity.change_approved"]),
            "{on_it:?}"
        );

        // A rejected widening leaves the identity as it was.
        let more = IdentityPatch {
            labels: Some([("tier".to_owned(), "gold".to_owned())].into()),
            ..IdentityPatch::default()
        };
        c.sponsor_client.change_identity(i.id, &more).await.unwrap();
        let rejected = c
            .approver_client
            .identity_action(i.id, "change/reject", "no")
            .await
            .unwrap();
        assert!(rejected.labels.is_empty() && rejected.pending_change.is_none());
    }

    /// Separation of duties holds for admins too: the one who asked does not approve.
    pub async fn admin_cannot_approve_the_widening_it_asked_for(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-admin-widen").await;
        let wider = IdentityPatch {
            systems: Some(vec!["crm".into(), "hr".into()]),
            ..IdentityPatch::default()
        };
        s.admin.change_identity(i.id, &wider).await.unwrap();
        assert_eq!(
            code(s.admin.identity_action(i.id, "change/approve", "").await),
            "self_approval_forbidden"
        );
        let (_, other_admin) = s.human("root2", &[Role::Admin]).await;
        let done = other_admin
            .identity_action(i.id, "change/approve", "")
            .await
            .unwrap();
        assert_eq!(done.systems, ["crm", "hr"]);
        assert!(done.updated_at <= s.clock_now());
    }

    /// A misspelt team would silently put the identity under nobody's group policies, or
    /// under an attacker-chosen group's grants once someone creates it.
    pub async fn identity_cannot_join_a_team_nobody_knows(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-team").await;
        let patch = IdentityPatch {
            owner_team: Some("clams".into()),
            ..IdentityPatch::default()
        };
        assert_eq!(
            code(c.sponsor_client.change_identity(i.id, &patch).await),
            "unknown_group"
        );
        // A group a human is in is known; moving there still waits for an approver.
        let groups = aim_domain::human::HumanPatch {
            groups: Some(vec!["finance".into()]),
            ..Default::default()
        };
        s.admin.change_human(c.approver.id, &groups).await.unwrap();
        let patch = IdentityPatch {
            owner_team: Some("finance".into()),
            ..IdentityPatch::default()
        };
        let changed = c
            .sponsor_client
            .change_identity(i.id, &patch)
            .await
            .unwrap();
        assert_eq!(changed.owner_team.as_deref(), Some("claims"));
        assert_eq!(changed.pending_change.unwrap().fields, ["owner_team"]);
    }
}
