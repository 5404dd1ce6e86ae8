//! The credential tables on both backends: agent keys, single-use ids, tasks and the
//! revocation list, signing keys.

use aim_domain::Refusal;
use aim_domain::agent_key::{AgentKey, RevocationKind};
use aim_domain::ids::TaskId;
use aim_domain::lifecycle::LifecycleState;
use aim_domain::task::{Task, TaskState};
use aim_store::{AuditFilter, DynStore, Hangs, NewRevocation, SigningKeyRow, StoreError};

use crate::fixtures::{event, human, identity, t0};

cases!(
    agent_keys,
    single_use_ids,
    tasks_end_once_and_are_revoked,
    tasks_follow_their_identity,
    signing_keys
);

async fn an_identity(s: &DynStore) -> aim_domain::identity::Identity {
    let h = human(&format!("owner-{}", uuid::Uuid::now_v7()));
    s.insert_human(&h, &event("human.created", h.id))
        .await
        .unwrap();
    let i = identity(
        &format!("agt-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        h.id,
    );
    s.insert_identity(&i, &event("identity.requested", i.id))
        .await
        .unwrap();
    i
}

fn revocation(kind: &str, value: &str) -> NewRevocation {
    NewRevocation {
        kind: RevocationKind::parse(kind).unwrap(),
        value: value.to_owned(),
        reason: "test".into(),
        expires_at: t0().plus_days(1),
    }
}

mod agent_keys {
    use super::*;
    pub async fn run(s: &DynStore) {
        let i = an_identity(s).await;
        let key = AgentKey {
            identity_id: i.id,
            kid: "kid-1".into(),
            jwk: serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": "abc" }),
            alg: "EdDSA".into(),
            label: "laptop".into(),
            created_at: t0(),
            created_by: "human:x".into(),
            revoked_at: None,
            last_used_at: None,
        };
        s.insert_agent_key(&key, &event("agent_key.added", i.id))
            .await
            .unwrap();
        match s
            .insert_agent_key(&key, &event("agent_key.added", i.id))
            .await
        {
            Err(StoreError::Conflict(Refusal::KeyAlreadyRegistered(k))) => assert_eq!(k, "kid-1"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.agent_keys(i.id).await.unwrap(), vec![key.clone()]);
        assert_eq!(s.agent_key(i.id, "kid-1").await.unwrap(), Some(key.clone()));
        assert_eq!(s.agent_key(i.id, "kid-2").await.unwrap(), None);
        let value = format!("{}:kid-1", i.id);
        assert!(
            s.revoke_agent_key(
                i.id,
                "kid-1",
                t0(),
                &revocation("agent_key", &value),
                &event("agent_key.revoked", i.id)
            )
            .await
            .unwrap()
        );
        assert!(
            !s.revoke_agent_key(
                i.id,
                "kid-1",
                t0(),
                &revocation("agent_key", &value),
                &event("agent_key.revoked", i.id)
            )
            .await
            .unwrap()
        );
        assert_eq!(
            s.agent_key(i.id, "kid-1")
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(t0())
        );
        assert_eq!(
            s.revoked_at(RevocationKind::AgentKey, &value)
                .await
                .unwrap(),
            Some(t0())
        );
        assert_eq!(
            s.revoked_at(RevocationKind::AgentKey, "other")
                .await
                .unwrap(),
            None
        );
    }
}

mod single_use_ids {
    use super::*;
    pub async fn run(s: &DynStore) {
        let later = t0().plus_millis(300_000);
        assert!(s.use_once("assertion:a:j1", later).await.unwrap());
        assert!(
            !s.use_once("assertion:a:j1", later).await.unwrap(),
            "a replay"
        );
        assert!(s.use_once("assertion:a:j2", later).await.unwrap());
        // Once expired, the id is forgotten (its token could not be accepted anyway).
        assert_eq!(s.forget_used(later.plus_millis(1)).await.unwrap(), 2);
        assert!(s.use_once("assertion:a:j1", later).await.unwrap());
        // Concurrent copies: exactly one wins, for plain claims and for claimed appends.
        let before = s.events(0, 10_000).await.unwrap().len();
        let mut tasks = Vec::new();
        for n in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                if n % 2 == 0 {
                    s.use_once("proof:x", later).await.unwrap()
                } else {
                    let claim = aim_store::Claim {
                        id: "assertion:y".into(),
                        expires_at: later,
                    };
                    s.append_claimed(&event("token.issued", n), vec![claim])
                        .await
                        .unwrap()
                        .is_some()
                }
            }));
        }
        let mut wins = [0, 0];
        for (n, t) in tasks.into_iter().enumerate() {
            wins[n % 2] += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, [1, 1]);
        let after = s.events(0, 10_000).await.unwrap();
        assert_eq!(
            after.len(),
            before + 1,
            "only the winning claim's event is written"
        );
        assert!(
            aim_store::verify_chain(s.as_ref(), None)
                .await
                .unwrap()
                .is_ok()
        );
    }
}

fn open_task(i: &aim_domain::identity::Identity, systems: &[&str]) -> Task {
    Task {
        id: TaskId::new(),
        identity_id: i.id,
        purpose: "triage".into(),
        systems: systems.iter().map(|s| (*s).to_owned()).collect(),
        subject: None,
        triggered_by: "alice: TICKET-1".into(),
        state: TaskState::Open,
        opened_at: t0(),
        deadline: t0().plus_millis(3_600_000),
        ended_at: None,
        end_reason: String::new(),
    }
}

/// Removing a system from an identity narrows its open tasks in the same write; leaving
/// `active` ends them (revoking their tokens): a sub-agent's token for the task dies too.
mod tasks_follow_their_identity {
    use super::*;
    pub async fn run(s: &DynStore) {
        let mut i = an_identity(s).await;
        let v = i.version;
        i.state = LifecycleState::Active;
        i.systems = vec!["billing".into(), "crm".into()];
        i.version += 1;
        s.update_identity(&i, v, &event("identity.approved", i.id))
            .await
            .unwrap();
        let both = open_task(&i, &["billing", "crm"]);
        let crm = open_task(&i, &["crm"]);
        for t in [&both, &crm] {
            assert!(
                s.insert_task(t, &[event("task.opened", t.id)], &[])
                    .await
                    .unwrap()
            );
        }

        let v = i.version;
        i.systems = vec!["crm".into()];
        i.version += 1;
        s.update_identity(&i, v, &event("identity.changed", i.id))
            .await
            .unwrap();
        let narrowed = s.task(both.id).await.unwrap().unwrap();
        assert_eq!(narrowed.systems, vec!["crm".to_owned()]);
        assert_eq!(narrowed.state, TaskState::Open);
        assert_eq!(s.task(crm.id).await.unwrap().unwrap(), crm, "untouched");
        let actions = |action: &'static str| async move {
            s.audit(
                &AuditFilter {
                    action: Some(aim_domain::event::AuditAction::parse(action).unwrap()),
                    ..AuditFilter::default()
                },
                0,
                100,
            )
            .await
            .unwrap()
        };
        let events = actions("task.narrowed").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].target_id, both.id.to_string());

        let v = i.version;
        i.state = LifecycleState::Suspended;
        i.state_changed_at = t0().plus_millis(10);
        i.updated_at = t0().plus_millis(10);
        i.version += 1;
        s.update_identity(&i, v, &event("identity.suspended", i.id))
            .await
            .unwrap();
        for t in [&both, &crm] {
            let ended = s.task(t.id).await.unwrap().unwrap();
            assert_eq!(
                (ended.state, ended.end_reason.as_str()),
                (TaskState::Ended, "identity suspended")
            );
            assert_eq!(
                s.revoked_at(RevocationKind::Task, &t.id.to_string())
                    .await
                    .unwrap(),
                Some(t0().plus_millis(10))
            );
        }
        assert_eq!(actions("task.ended").await.len(), 2);
        assert!(
            aim_store::verify_chain(s.as_ref(), None)
                .await
                .unwrap()
                .is_ok()
        );
    }
}

mod tasks_end_once_and_are_revoked {
    use super::*;
    pub async fn run(s: &DynStore) {
        let i = an_identity(s).await;
        let task = Task {
            id: TaskId::new(),
            identity_id: i.id,
            purpose: "triage".into(),
            systems: vec!["crm".into()],
            subject: Some("customer:42".into()),
            triggered_by: "alice: TICKET-1".into(),
            state: TaskState::Open,
            opened_at: t0(),
            deadline: t0().plus_millis(3_600_000),
            ended_at: None,
            end_reason: String::new(),
        };
        let claim = |id: &str| aim_store::Claim {
            id: id.into(),
            expires_at: t0().plus_seconds(60),
        };
        let opened = [
            event("task.opened", task.id),
            event("token.issued", task.id),
        ];
        let records = s.events(0, 10_000).await.unwrap().len();
        assert!(
            s.insert_task(&task, &opened, &[claim("assertion:t1"), claim("dpop:t1")])
                .await
                .unwrap()
        );
        assert_eq!(s.events(0, 10_000).await.unwrap().len(), records + 2);
        // A replayed claim: no task, no record, and the claim that was new is spent.
        let replay = Task {
            id: TaskId::new(),
            ..task.clone()
        };
        assert!(
            !s.insert_task(&replay, &opened, &[claim("dpop:t2"), claim("assertion:t1")])
                .await
                .unwrap()
        );
        assert_eq!(s.task(replay.id).await.unwrap(), None);
        assert_eq!(s.events(0, 10_000).await.unwrap().len(), records + 2);
        assert!(
            !s.use_once("dpop:t2", t0().plus_seconds(60)).await.unwrap(),
            "the new claim stayed used"
        );
        assert_eq!(s.task(task.id).await.unwrap(), Some(task.clone()));
        assert_eq!(
            s.list_tasks(Some(i.id), true, None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(s.overdue_tasks(t0(), 10).await.unwrap().is_empty());
        assert_eq!(s.overdue_tasks(task.deadline, 10).await.unwrap().len(), 1);
        let before = s.revocations(0, 100).await.unwrap().len();
        let at = t0().plus_millis(1000);
        assert!(
            s.end_task(task.id, at, "done", &event("task.ended", task.id))
                .await
                .unwrap()
        );
        assert!(
            !s.end_task(task.id, at, "again", &event("task.ended", task.id))
                .await
                .unwrap()
        );
        let ended = s.task(task.id).await.unwrap().unwrap();
        assert_eq!(
            (ended.state, ended.ended_at, ended.end_reason.as_str()),
            (TaskState::Ended, Some(at), "done")
        );
        assert!(
            s.list_tasks(Some(i.id), true, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let revs = s.revocations(0, 100).await.unwrap();
        assert_eq!(revs.len(), before + 1);
        let last = revs.last().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.value.clone(), last.expires_at),
            ("task", task.id.to_string(), task.deadline)
        );
        assert!(s.revocations(last.epoch, 100).await.unwrap().is_empty());
        assert_eq!(
            s.revoked_at(RevocationKind::Task, &task.id.to_string())
                .await
                .unwrap(),
            Some(at)
        );
        // The live state of a token of this task, in one read: the identity, its
        // sponsor's state, the task, and the latest revocations that could match.
        fn hangs(identity: &str, delegator: aim_domain::ids::IdentityId) -> Hangs<'_> {
            Hangs {
                always: vec![(RevocationKind::Token, "never")],
                earlier: vec![(RevocationKind::Identity, identity)],
                delegators: vec![delegator, aim_domain::ids::IdentityId::new()],
            }
        }
        let live = s
            .live_context(i.id, task.id, &hangs("other", i.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.context.identity.id, i.id);
        assert_eq!(live.context.task.as_ref().map(|t| t.id), Some(task.id));
        assert_eq!(
            (
                live.task_revoked_at,
                live.always_revoked_at,
                live.earlier_revoked_at
            ),
            (Some(at), None, None)
        );
        assert_eq!(
            live.delegators_active, 0,
            "neither a requested identity nor an unknown one is active"
        );
        let id = i.id.to_string();
        s.revoke(
            &revocation("identity", &id),
            at,
            &event("identity.locked", &id),
        )
        .await
        .unwrap();
        let live = s
            .live_context(i.id, task.id, &hangs(&id, i.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (live.always_revoked_at, live.earlier_revoked_at),
            (None, Some(at))
        );
        s.revoke(
            &revocation("token", "never"),
            at.plus_millis(5),
            &event("token.revoked", &id),
        )
        .await
        .unwrap();
        let live = s
            .live_context(i.id, task.id, &hangs(&id, i.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.always_revoked_at, Some(at.plus_millis(5)));
        assert!(
            s.live_context(
                aim_domain::ids::IdentityId::new(),
                task.id,
                &Hangs::default()
            )
            .await
            .unwrap()
            .is_none()
        );
    }
}

mod signing_keys {
    use super::*;
    pub async fn run(s: &DynStore) {
        let row = |kid: &str, at| SigningKeyRow {
            kid: kid.into(),
            alg: "EdDSA".into(),
            public_jwk: "{}".into(),
            sealed_private: vec![1, 2, 3],
            created_at: at,
            retire_at: at.plus_days(30),
            revoked_at: None,
        };
        let created = |kid: &str| event("signing_key.created", kid);
        assert!(
            s.insert_signing_key(&row("k1", t0()), &[], &created("k1"))
                .await
                .unwrap()
        );
        // A second key while k1 can still sign: refused (another replica made one first)...
        assert!(
            !s.insert_signing_key(&row("k0", t0()), &[], &created("k0"))
                .await
                .unwrap()
        );
        // ...unless k1 is one this replica cannot open.
        assert!(
            s.insert_signing_key(
                &row("k2", t0().plus_days(1)),
                &["k1".into()],
                &created("k2")
            )
            .await
            .unwrap()
        );
        let keys = s.signing_keys().await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["k2", "k1"]
        );
        assert_eq!(keys[1], row("k1", t0()));
        assert!(
            s.revoke_signing_key(
                "k1",
                t0(),
                &revocation("signing_key", "k1"),
                &event("signing_key.revoked", "k1")
            )
            .await
            .unwrap()
        );
        assert!(
            !s.revoke_signing_key(
                "k1",
                t0(),
                &revocation("signing_key", "k1"),
                &event("signing_key.revoked", "k1")
            )
            .await
            .unwrap()
        );
        assert_eq!(s.signing_keys().await.unwrap()[1].revoked_at, Some(t0()));
    }
}

/// Gateways' acknowledgements only move forward and move no generation; a change committed
/// through one replica moves the generation of the other (PostgreSQL's NOTIFY), which is
/// what makes a lock on one replica seen at once by the others.
#[tokio::test]
async fn acknowledgements_and_changes_heard_across_replicas() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let t = aim_testkit::TestStore::new(backend).await;
        let s = &t.store;
        assert_eq!(s.latest_epoch().await.unwrap(), 0);
        let before = s.generation().current();
        s.gateway_ack("gw-1", 5, t0()).await.unwrap();
        s.gateway_ack("gw-1", 3, t0().plus_millis(1000))
            .await
            .unwrap();
        s.gateway_ack("gw-2", 1, t0()).await.unwrap();
        assert_eq!(
            s.gateway_acks().await.unwrap(),
            [
                ("gw-1".to_owned(), 5, t0().plus_millis(1000)),
                ("gw-2".to_owned(), 1, t0()),
            ]
        );
        assert_eq!(
            s.generation().current(),
            before,
            "an acknowledgement changes nothing a token hangs on"
        );

        let i = an_identity(s).await;
        let revocation = NewRevocation {
            kind: RevocationKind::Identity,
            value: i.id.to_string(),
            reason: "locked".into(),
            expires_at: t0().plus_seconds(600),
        };
        s.revoke(&revocation, t0(), &event("identity.locked", i.id))
            .await
            .unwrap();
        let last = s.revocations(0, 100).await.unwrap().pop().unwrap();
        assert_eq!(s.latest_epoch().await.unwrap(), last.epoch);

        if let Some(other) = t.replica().await {
            let seen = other.generation().current();
            let h = human(&format!("someone-{}", uuid::Uuid::now_v7()));
            s.insert_human(&h, &event("human.created", h.id))
                .await
                .unwrap();
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                other.generation().moved_from(seen),
            )
            .await
            .expect("the other replica heard the change");
        }
        t.cleanup().await;
    }
}
