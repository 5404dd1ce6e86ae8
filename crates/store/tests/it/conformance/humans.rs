//! Humans, their credentials, the first admin, and what a departure does.

use super::*;

conformance!(
    humans_round_trip_and_unique_user_names,
    human_lists_filter_and_page,
    stale_versions_are_refused,
    departure_orphans_live_identities_in_one_transaction,
    credentials_by_hash_until_revoked,
    bootstrap_happens_once,
    the_last_admin_stays,
);

fn admin(user: &str) -> aim_domain::human::Human {
    let mut h = human(user);
    h.roles = vec![aim_domain::human::Role::Admin];
    h
}

/// `h` without its admin role, as written next, and the version it was read at.
fn demoted(h: &aim_domain::human::Human) -> (aim_domain::human::Human, i64) {
    let mut next = h.clone();
    next.roles = vec![aim_domain::human::Role::Sponsor];
    next.version += 1;
    (next, h.version)
}

/// Two admins demote each other at the same moment, from two replicas: one of the two
/// writes is refused, every time.
#[tokio::test]
async fn two_admins_demoting_each_other_leave_one() {
    for backend in Backend::enabled() {
        for round in 0..5 {
            let t = TestStore::new(backend).await;
            let other = t.second_store().await;
            let (a, b) = (admin("a@example.com"), admin("b@example.com"));
            for h in [&a, &b] {
                t.store
                    .insert_human(h, &event("human.created", h.id))
                    .await
                    .unwrap();
            }
            let ((a2, va), (b2, vb)) = (demoted(&a), demoted(&b));
            let (ea, eb) = (event("human.changed", a2.id), event("human.changed", b2.id));
            let (ra, rb) = tokio::join!(
                t.store.update_human(&a2, va, &ea),
                other.update_human(&b2, vb, &eb),
            );
            let refused = [&ra, &rb]
                .into_iter()
                .filter(|r| matches!(r, Err(StoreError::Conflict(Refusal::LastAdmin))))
                .count();
            assert!(
                ra.is_ok() || rb.is_ok(),
                "{backend:?} round {round}: {ra:?} {rb:?}"
            );
            assert_eq!(refused, 1, "{backend:?} round {round}: {ra:?} {rb:?}");
            t.cleanup().await;
        }
    }
}

mod cases {
    use super::*;

    /// The only admin cannot lose the role, or depart; with a second admin, they can.
    pub async fn the_last_admin_stays(s: &DynStore) {
        let a = admin("only@example.com");
        s.insert_human(&a, &event("human.created", a.id))
            .await
            .unwrap();
        let (a2, v) = demoted(&a);
        let e = s
            .update_human(&a2, v, &event("human.changed", a.id))
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::Conflict(Refusal::LastAdmin)),
            "{e:?}"
        );
        let mut gone = a.clone();
        gone.depart(t0());
        gone.version += 1;
        let e = s
            .update_human_sponsorships(&gone, v, &event("human.departed", a.id), t0())
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::Conflict(Refusal::LastAdmin)),
            "{e:?}"
        );
        assert_eq!(
            s.human(a.id).await.unwrap().unwrap().roles,
            a.roles,
            "nothing changed"
        );
        let b = admin("second@example.com");
        s.insert_human(&b, &event("human.created", b.id))
            .await
            .unwrap();
        s.update_human(&a2, v, &event("human.changed", a.id))
            .await
            .unwrap();
    }

    pub async fn humans_round_trip_and_unique_user_names(s: &DynStore) {
        let alice = human("alice@example.com");
        s.insert_human(&alice, &event("human.created", alice.id))
            .await
            .unwrap();
        assert_eq!(s.human(alice.id).await.unwrap().as_ref(), Some(&alice));
        let by_name = s.human_by_user_name("ALICE@example.COM").await.unwrap();
        assert_eq!(by_name.map(|h| h.id), Some(alice.id));
        let mut again = human("Alice@Example.com");
        again.id = aim_domain::ids::HumanId::new();
        let e = s
            .insert_human(&again, &event("human.created", again.id))
            .await
            .unwrap_err();
        assert!(matches!(conflict(e), Refusal::UserNameTaken(_)));
        assert!(s.human(again.id).await.unwrap().is_none());
    }

    pub async fn human_lists_filter_and_page(s: &DynStore) {
        let mut ids = Vec::new();
        for i in 0..5 {
            let h = human(&format!("user{i}"));
            s.insert_human(&h, &event("human.created", h.id))
                .await
                .unwrap();
            ids.push(h.id);
        }
        let page1 = s
            .list_humans(&HumanFilter::default(), None, 2)
            .await
            .unwrap();
        let page2 = s
            .list_humans(&HumanFilter::default(), Some(page1[1].id), 10)
            .await
            .unwrap();
        let all: Vec<_> = page1.iter().chain(page2.iter()).map(|h| h.id).collect();
        assert_eq!(all, ids);
        let f = HumanFilter {
            user_name: Some("USER3".into()),
            ..Default::default()
        };
        let one = s.list_humans(&f, None, 10).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].user_name, "user3");
        let f = HumanFilter {
            external_id: Some("ext-user2".into()),
            ..Default::default()
        };
        assert_eq!(s.list_humans(&f, None, 10).await.unwrap()[0].id, ids[2]);
        let (rows, total) = s
            .list_humans_offset(&HumanFilter::default(), 3, 10)
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            rows.iter().map(|h| h.id).collect::<Vec<_>>(),
            ids[3..].to_vec()
        );
    }

    pub async fn stale_versions_are_refused(s: &DynStore) {
        let mut h = human("bob");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let read_version = h.version;
        h.display_name = Some("Robert".into());
        h.version += 1;
        s.update_human(&h, read_version, &event("human.changed", h.id))
            .await
            .unwrap();
        let mut stale = h.clone();
        stale.display_name = Some("Bobby".into());
        stale.version += 1;
        let e = s
            .update_human(&stale, read_version, &event("human.changed", h.id))
            .await
            .unwrap_err();
        assert_eq!(conflict(e), Refusal::ConcurrentUpdate);
        assert_eq!(
            s.human(h.id)
                .await
                .unwrap()
                .unwrap()
                .display_name
                .as_deref(),
            Some("Robert")
        );

        let mut i = identity("agt-stale-one", h.id);
        s.insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
        let v = i.version;
        i.transition(
            Transition::Approve,
            StateCause::Approved,
            "ok",
            t0(),
            &GovernanceConfig::default(),
        )
        .unwrap();
        s.update_identity(&i, v, &event("identity.approved", i.id))
            .await
            .unwrap();
        let e = s
            .update_identity(&i, v, &event("identity.approved", i.id))
            .await
            .unwrap_err();
        assert_eq!(conflict(e), Refusal::ConcurrentUpdate);
    }

    pub async fn departure_orphans_live_identities_in_one_transaction(s: &DynStore) {
        let mut h = human("heidi");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let live = identity("agt-orphan-live", h.id);
        let mut gone = identity("agt-orphan-gone", h.id);
        gone.transition(
            Transition::Decommission,
            StateCause::Decommissioned,
            "x",
            t0(),
            &GovernanceConfig::default(),
        )
        .unwrap();
        for i in [&live, &gone] {
            s.insert_identity(i, &event("identity.requested", i.id))
                .await
                .unwrap();
        }
        let v = h.version;
        h.depart(t0().plus_days(1));
        h.version += 1;
        let changes = s
            .update_human_sponsorships(&h, v, &event("human.departed", h.id), t0().plus_days(1))
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0, live.id);
        assert!(changes[0].1.seq > 0);
        let stored = s.identity(live.id).await.unwrap().unwrap();
        assert_eq!(stored.orphaned_since, Some(t0().plus_days(1)));
        assert_eq!(stored.version, live.version + 1);
        assert_eq!(
            s.identity(gone.id).await.unwrap().unwrap().orphaned_since,
            None
        );
        assert_eq!(
            s.human(h.id).await.unwrap().unwrap().state,
            HumanState::Departed
        );
        // A stale write changes neither the human nor the identities.
        let e = s
            .update_human_sponsorships(&h, v, &event("human.departed", h.id), t0())
            .await
            .unwrap_err();
        assert_eq!(conflict(e), Refusal::ConcurrentUpdate);
        // Return clears the orphan flag.
        let v = h.version;
        h.reactivate(t0().plus_days(2));
        h.version += 1;
        let changes = s
            .update_human_sponsorships(&h, v, &event("human.reactivated", h.id), t0().plus_days(2))
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            s.identity(live.id).await.unwrap().unwrap().orphaned_since,
            None
        );
    }

    pub async fn credentials_by_hash_until_revoked(s: &DynStore) {
        let h = human("ivan");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let c = Credential {
            id: CredentialId::new(),
            human_id: h.id,
            label: "laptop".into(),
            created_at: t0(),
            last_used_at: None,
            revoked_at: None,
        };
        let hash = [7u8; 32];
        s.insert_credential(&c, &hash, &event("credential.created", c.id))
            .await
            .unwrap();
        let (got, who) = s.credential_by_hash(&hash).await.unwrap().unwrap();
        assert_eq!(got, c);
        assert_eq!(who.id, h.id);
        assert!(s.credential_by_hash(&[8u8; 32]).await.unwrap().is_none());
        assert_eq!(s.credentials_of(h.id).await.unwrap().len(), 1);
        assert!(
            s.revoke_credential(c.id, t0(), &event("credential.revoked", c.id))
                .await
                .unwrap()
        );
        assert!(
            !s.revoke_credential(c.id, t0(), &event("credential.revoked", c.id))
                .await
                .unwrap()
        );
        assert!(s.credential_by_hash(&hash).await.unwrap().is_none());
        assert_eq!(
            s.credentials_of(h.id).await.unwrap()[0].revoked_at,
            Some(t0())
        );
    }

    pub async fn bootstrap_happens_once(s: &DynStore) {
        let admin = human("admin");
        let c = Credential {
            id: CredentialId::new(),
            human_id: admin.id,
            label: "bootstrap".into(),
            created_at: t0(),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(
            s.bootstrap(&admin, &c, &[1u8; 32], &event("human.created", admin.id))
                .await
                .unwrap()
        );
        let other = human("admin2");
        let c2 = Credential {
            id: CredentialId::new(),
            human_id: other.id,
            ..c.clone()
        };
        assert!(
            !s.bootstrap(&other, &c2, &[2u8; 32], &event("human.created", other.id))
                .await
                .unwrap()
        );
        assert!(s.human(other.id).await.unwrap().is_none());
        assert!(s.credential_by_hash(&[2u8; 32]).await.unwrap().is_none());
        assert_eq!(s.events(0, 100).await.unwrap().len(), 1);
    }
}
