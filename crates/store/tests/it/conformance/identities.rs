//! Identities: round trips, filters, pages, duplicates, sweeps, imports, and the events
//! every change appends.

use super::*;

conformance!(
    identities_round_trip_and_names_are_never_reused,
    identity_filters,
    identity_pagination_visits_each_once,
    duplicates_are_found,
    sweep_candidates_match_each_rule,
    import_is_all_or_nothing,
    every_change_appends_its_event,
    trails_round_trip_and_filter,
    ids_are_named,
    being_seen_clears_dormancy_and_outdates_stale_writes,
);

mod cases {
    use super::*;

    /// A token for a dormant identity clears the flag, on the record; a write of the
    /// identity as read before cannot put an older `last_seen_at` back.
    pub async fn being_seen_clears_dormancy_and_outdates_stale_writes(s: &DynStore) {
        use aim_domain::event::AuditAction;
        let h = human("dora");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let mut i = identity("agt-sleepy", h.id);
        s.insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
        let v = i.version;
        i.dormant = true;
        i.version += 1;
        s.update_identity(&i, v, &event("identity.flagged_dormant", i.id))
            .await
            .unwrap();
        let read = s.identity(i.id).await.unwrap().unwrap();
        let at = t0().plus_days(40);
        let again = event("identity.active_again", i.id);
        assert!(s.touch_identity(i.id, None, at, &again).await.unwrap());
        let now = s.identity(i.id).await.unwrap().unwrap();
        assert!(!now.dormant, "seen again: no longer dormant");
        assert_eq!(now.last_seen_at, Some(at));
        assert_eq!(now.version, read.version + 1);
        let log = s.events(0, 100).await.unwrap();
        assert_eq!(log.last().unwrap().action, AuditAction::IdentityActiveAgain);
        // Within the hour: nothing written, nothing recorded.
        assert!(
            !s.touch_identity(i.id, None, at.plus_millis(60_000), &again)
                .await
                .unwrap()
        );
        assert_eq!(s.events(0, 100).await.unwrap().len(), log.len());
        // A sweep that read the identity before it was seen cannot write it back.
        let mut stale = read.clone();
        stale.version += 1;
        let e = s
            .update_identity(
                &stale,
                read.version,
                &event("identity.flagged_dormant", i.id),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::Conflict(Refusal::ConcurrentUpdate)),
            "{e:?}"
        );
        assert_eq!(
            s.identity(i.id).await.unwrap().unwrap().last_seen_at,
            Some(at)
        );
        // Seen again later while not dormant: telemetry only, no record.
        let later = at.plus_days(1);
        assert!(s.touch_identity(i.id, None, later, &again).await.unwrap());
        assert_eq!(s.events(0, 100).await.unwrap().len(), log.len());
    }

    /// Identities by name, humans by user name, anything else left out; more ids than one
    /// query takes.
    pub async fn ids_are_named(s: &DynStore) {
        let h = human("nora");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let i = identity("agt-named", h.id);
        s.insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
        let stranger = uuid::Uuid::now_v7();
        let mut ids = vec![i.id.as_uuid(), h.id.as_uuid(), stranger];
        ids.extend((0..600).map(|_| uuid::Uuid::now_v7()));
        ids.push(i.id.as_uuid());
        let names = s.names(&ids).await.unwrap();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[&i.id.as_uuid()], "agt-named");
        assert_eq!(names[&h.id.as_uuid()], h.user_name);
        assert!(s.names(&[]).await.unwrap().is_empty());
    }

    pub async fn identities_round_trip_and_names_are_never_reused(s: &DynStore) {
        let h = human("carol");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let mut i = identity("agt-round-trip", h.id);
        s.insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
        assert_eq!(s.identity(i.id).await.unwrap().as_ref(), Some(&i));
        assert_eq!(
            s.identity_by_name("agt-round-trip")
                .await
                .unwrap()
                .map(|x| x.id),
            Some(i.id)
        );
        let v = i.version;
        i.transition(
            Transition::Decommission,
            StateCause::Decommissioned,
            "done",
            t0(),
            &GovernanceConfig::default(),
        )
        .unwrap();
        s.update_identity(&i, v, &event("identity.decommissioned", i.id))
            .await
            .unwrap();
        let again = identity("agt-round-trip", h.id);
        let e = s
            .insert_identity(&again, &event("identity.requested", again.id))
            .await
            .unwrap_err();
        assert!(matches!(conflict(e), Refusal::NameTaken(_)));
        assert!(s.identity(again.id).await.unwrap().is_none());
    }

    pub async fn identity_filters(s: &DynStore) {
        let a = human("dave");
        let b = human("erin");
        for h in [&a, &b] {
            s.insert_human(h, &event("human.created", h.id))
                .await
                .unwrap();
        }
        let mut x = identity("agt-filter-x", a.id);
        let mut y = identity("bot-filter-y", b.id);
        y.kind = IdentityKind::Bot;
        y.risk.tier = RiskTier::High;
        y.expires_at = t0().plus_days(10);
        y.dormant = true;
        y.possible_duplicate = true;
        x.orphaned_since = Some(t0());
        let cfg = GovernanceConfig::default();
        x.transition(Transition::Approve, StateCause::Approved, "", t0(), &cfg)
            .unwrap();
        for i in [&x, &y] {
            s.insert_identity(i, &event("identity.requested", i.id))
                .await
                .unwrap();
        }
        let names = |f: IdentityFilter| async move {
            s.list_identities(&f, None, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        };
        let x_only = vec!["agt-filter-x".to_owned()];
        let y_only = vec!["bot-filter-y".to_owned()];
        assert_eq!(
            names(IdentityFilter {
                state: Some(LifecycleState::Active),
                ..Default::default()
            })
            .await,
            x_only
        );
        assert_eq!(
            names(IdentityFilter {
                kind: Some(IdentityKind::Bot),
                ..Default::default()
            })
            .await,
            y_only
        );
        assert_eq!(
            names(IdentityFilter {
                sponsor_id: Some(a.id),
                ..Default::default()
            })
            .await,
            x_only
        );
        assert_eq!(
            names(IdentityFilter {
                risk_tier: Some(RiskTier::High),
                ..Default::default()
            })
            .await,
            y_only
        );
        let soon = Some(t0().plus_days(11));
        assert_eq!(
            names(IdentityFilter {
                expiring_before: soon,
                ..Default::default()
            })
            .await,
            y_only
        );
        assert_eq!(
            names(IdentityFilter {
                dormant: Some(true),
                ..Default::default()
            })
            .await,
            y_only
        );
        assert_eq!(
            names(IdentityFilter {
                dormant: Some(false),
                ..Default::default()
            })
            .await,
            x_only
        );
        assert_eq!(
            names(IdentityFilter {
                orphaned: Some(true),
                ..Default::default()
            })
            .await,
            x_only
        );
        assert_eq!(
            names(IdentityFilter {
                orphaned: Some(false),
                ..Default::default()
            })
            .await,
            y_only
        );
        assert_eq!(
            names(IdentityFilter {
                possible_duplicate: Some(true),
                ..Default::default()
            })
            .await,
            y_only
        );
        assert_eq!(
            names(IdentityFilter {
                name_prefix: Some("agt-".into()),
                ..Default::default()
            })
            .await,
            x_only
        );
        assert_eq!(
            names(IdentityFilter {
                name_prefix: Some("bot-filter-y".into()),
                ..Default::default()
            })
            .await,
            y_only
        );
        assert!(
            names(IdentityFilter {
                name_prefix: Some("agt-%".into()),
                ..Default::default()
            })
            .await
            .is_empty()
        );
        let both = IdentityFilter {
            kind: Some(IdentityKind::Bot),
            sponsor_id: Some(a.id),
            ..Default::default()
        };
        assert!(names(both).await.is_empty());
    }

    pub async fn identity_pagination_visits_each_once(s: &DynStore) {
        let h = human("frank");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let mut want = Vec::new();
        for n in 0..23 {
            let i = identity(&format!("agt-page-{n:03}"), h.id);
            s.insert_identity(&i, &event("identity.requested", i.id))
                .await
                .unwrap();
            want.push(i.id);
        }
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .list_identities(&IdentityFilter::default(), after.as_ref(), 5)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|i| IdentityCursor::Id(i.id));
            got.extend(page.into_iter().map(|i| i.id));
        }
        assert_eq!(got, want);
        // A name prefix pages in name order, resuming after a name.
        let late = identity("agt-page-01", h.id);
        s.insert_identity(&late, &event("identity.requested", late.id))
            .await
            .unwrap();
        let f = IdentityFilter {
            name_prefix: Some("agt-page-01".into()),
            ..Default::default()
        };
        let mut names = Vec::new();
        let mut after = None;
        loop {
            let page = s.list_identities(&f, after.as_ref(), 4).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(IdentityCursor::Name(last.name.clone()));
            names.extend(page.into_iter().map(|i| i.name));
        }
        let mut want: Vec<String> = (10..20).map(|n| format!("agt-page-{n:03}")).collect();
        want.insert(0, "agt-page-01".into());
        assert_eq!(
            names, want,
            "name order, the newest first because it sorts first"
        );
    }

    pub async fn duplicates_are_found(s: &DynStore) {
        let h = human("grace");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let a = identity("agt-dup-a", h.id);
        let mut b = identity("agt-dup-b", h.id);
        b.purpose = a.purpose.to_uppercase();
        s.insert_identity(&a, &event("identity.requested", a.id))
            .await
            .unwrap();
        assert!(
            !s.duplicate_exists(&a.duplicate_key(), a.id).await.unwrap(),
            "itself is no duplicate"
        );
        assert!(s.duplicate_exists(&b.duplicate_key(), b.id).await.unwrap());
        b.systems.push("other".into());
        assert!(!s.duplicate_exists(&b.duplicate_key(), b.id).await.unwrap());
    }

    pub async fn sweep_candidates_match_each_rule(s: &DynStore) {
        let cfg = GovernanceConfig::default();
        let h = human("judy");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let mk = |name: &str| {
            let mut i = identity(name, h.id);
            i.transition(Transition::Approve, StateCause::Approved, "", t0(), &cfg)
                .unwrap();
            i.decided_at = Some(t0());
            i.attestation_due_at = Some(t0().plus_days(90));
            i
        };
        let mut expiring = mk("agt-sweep-expiring");
        expiring.expires_at = t0().plus_days(5);
        let mut orphan = mk("agt-sweep-orphan");
        orphan.orphaned_since = Some(t0().plus_days(1));
        let mut overdue = mk("agt-sweep-overdue");
        overdue.attestation_due_at = Some(t0().plus_days(2));
        let fresh = {
            let mut i = mk("agt-sweep-fresh");
            i.seen(t0().plus_days(9));
            i
        };
        let quiet = mk("agt-sweep-quiet");
        for i in [&expiring, &orphan, &overdue, &fresh, &quiet] {
            s.insert_identity(i, &event("identity.requested", i.id))
                .await
                .unwrap();
        }
        let at = |d: u32| t0().plus_days(d);
        let t = SweepThresholds {
            expires_at: at(5),
            orphaned_since: at(1),
            attestation_due_at: at(2),
            last_activity_at: at(0),
        };
        let mut got: Vec<_> = s
            .sweep_candidates(&t, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        got.sort();
        // `quiet`'s last activity is its approval at t0: it is a dormancy candidate too.
        let mut want = vec![
            "agt-sweep-expiring",
            "agt-sweep-orphan",
            "agt-sweep-overdue",
            "agt-sweep-quiet",
        ];
        // Every active identity here was decided at t0, so each is also a dormancy candidate
        // except `fresh`, seen on day 9.
        want.sort();
        assert_eq!(got, want);
        let none = SweepThresholds {
            expires_at: at(4),
            orphaned_since: at(0),
            attestation_due_at: at(1),
            last_activity_at: t0().plus_millis(-1),
        };
        assert!(s.sweep_candidates(&none, 100).await.unwrap().is_empty());
        assert_eq!(
            s.sweep_candidates(&t, 2).await.unwrap().len(),
            2,
            "limit holds"
        );
    }

    pub async fn import_is_all_or_nothing(s: &DynStore) {
        let h = human("kim");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let a = identity("agt-import-a", h.id);
        let b = identity("agt-import-b", h.id);
        let clash = identity("agt-import-a", h.id);
        let before = s.events(0, 1000).await.unwrap().len();
        let bad = vec![
            (a.clone(), event("identity.imported", a.id)),
            (b.clone(), event("identity.imported", b.id)),
            (clash.clone(), event("identity.imported", clash.id)),
        ];
        let e = s.import_identities(&bad).await.unwrap_err();
        assert!(matches!(conflict(e), Refusal::NameTaken(_)));
        assert!(
            s.identity(a.id).await.unwrap().is_none(),
            "no half-applied import"
        );
        assert_eq!(s.events(0, 1000).await.unwrap().len(), before);
        s.import_identities(&bad[..2]).await.unwrap();
        assert!(s.identity(b.id).await.unwrap().is_some());
    }

    pub async fn every_change_appends_its_event(s: &DynStore) {
        let h = human("liam");
        s.insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let i = identity("agt-events-one", h.id);
        s.insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
        let refused = event("request.refused", "x").denied();
        let seq = s.append_event(&refused).await.unwrap();
        let all = s.events(0, 10).await.unwrap();
        let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["human.created", "identity.requested", "request.refused"]
        );
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all[2].seq, seq);
        assert_eq!(all[2].outcome, aim_domain::event::Outcome::Denied);
        assert_eq!(s.events(all[0].seq, 10).await.unwrap().len(), 2);
    }

    pub async fn trails_round_trip_and_filter(s: &DynStore) {
        use aim_domain::event::{ModelDecision, Outcome, Trail};
        use aim_domain::ids::TaskId;
        let task = TaskId::new();
        let other = TaskId::new();
        let trail = |task: TaskId, jti: &str| Trail {
            act: vec!["agent-a".into(), "agent-root\nforged".into()],
            task_id: task.to_string(),
            session_id: "sess-1".into(),
            jti: jti.into(),
            triggered_by: "TICKET-7 \u{1b}[31m".into(),
            policies: vec!["policy-1".into()],
            model_decision: Some(ModelDecision {
                rationale: "the user asked for it\n\"quoted\"".into(),
                tool_call_id: String::new(),
            }),
        };
        s.append_event(&event("task.opened", task).trail(Trail {
            task_id: task.to_string(),
            ..Trail::default()
        }))
        .await
        .unwrap();
        for (t, jti) in [(task, "j-1"), (other, "j-2"), (task, "j-3")] {
            s.append_event(
                &event("decision", "crm")
                    .trail(trail(t, jti))
                    .outcome(Outcome::ApprovalRequired),
            )
            .await
            .unwrap();
        }
        s.append_event(&event("request.refused", "x").denied())
            .await
            .unwrap();
        let of_task = aim_store::AuditFilter {
            task: Some(task),
            ..Default::default()
        };
        let got = s.audit(&of_task, 0, 100).await.unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].trail.task_id, task.to_string());
        assert_eq!(got[1].trail, trail(task, "j-1"), "the trail round-trips");
        assert_eq!(got[1].outcome, Outcome::ApprovalRequired);
        let of_token = aim_store::AuditFilter {
            jti: Some("j-2".into()),
            ..Default::default()
        };
        let got = s.audit(&of_token, 0, 100).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].trail.task_id, other.to_string());
        assert_eq!(
            aim_store::verify_chain(s.as_ref(), None).await.unwrap(),
            Ok(5),
            "trails are covered by the chain"
        );
    }
}
