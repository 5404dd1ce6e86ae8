//! Approvals, grants and leases on both backends: conditional state changes, single use,
//! the cap on open approvals, grant revisions and expiry, one lease per record and its
//! release at task end and on lock; behavioural baselines, never replaced by one that
//! learnt less.

use aim_domain::approval::{ActionApproval, ApprovalState, ApprovedAction};
use aim_domain::grant::{Grant, GrantState, Grantee, NewGrant, Scope};
use aim_domain::identity::Identity;
use aim_domain::ids::{ApprovalId, LeaseId, TaskId};
use aim_domain::lease::{Lease, Record};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::task::{Task, TaskState};
use aim_store::{Acquired, AuditFilter, Claim, DynStore, SavedBaseline, Spent};

use crate::fixtures::{event, human, identity, t0};

cases!(approvals, grants, leases, baselines);

/// An active identity with one open task.
async fn agent(s: &DynStore, name: &str) -> (Identity, Task) {
    let h = human(&format!("owner-of-{name}"));
    s.insert_human(&h, &event("human.created", h.id))
        .await
        .unwrap();
    let mut i = identity(name, h.id);
    i.state = LifecycleState::Active;
    s.insert_identity(&i, &event("identity.requested", i.id))
        .await
        .unwrap();
    let task = Task {
        id: TaskId::new(),
        identity_id: i.id,
        purpose: "claims".into(),
        systems: vec!["crm".into()],
        subject: None,
        triggered_by: "alice: T-1".into(),
        state: TaskState::Open,
        opened_at: t0(),
        deadline: t0().plus_seconds(3600),
        ended_at: None,
        end_reason: String::new(),
    };
    assert!(
        s.insert_task(&task, &[event("task.opened", task.id)], &[])
            .await
            .unwrap()
    );
    (i, task)
}

const LIMITS: aim_domain::lease::LeaseLimits = aim_domain::lease::LeaseLimits {
    max_per_identity: 32,
    max_per_task: 16,
    max_hold_seconds: 3600,
};

async fn count(s: &DynStore, action: &str) -> usize {
    s.audit(
        &AuditFilter {
            action: Some(aim_domain::event::AuditAction::parse(action).unwrap()),
            ..AuditFilter::default()
        },
        0,
        1000,
    )
    .await
    .unwrap()
    .len()
}

mod approvals {
    use super::*;

    fn pending(i: &Identity, task: &Task, args: &str) -> ActionApproval {
        ActionApproval {
            id: ApprovalId::new(),
            action: ApprovedAction {
                identity_id: i.id,
                task_id: task.id,
                action: "write".into(),
                resource_type: "Resource".into(),
                resource_id: "crm/customers/42".into(),
                system: "crm".into(),
                args_hash: Some(args.into()),
                target_digest: "d1".into(),
            },
            approvers: vec!["sponsor".into()],
            policies: vec!["refunds".into()],
            policy_version: 3,
            triggered_by: task.triggered_by.clone(),
            sponsor_id: i.sponsor_id,
            state: ApprovalState::Pending,
            requested_at: t0(),
            expires_at: t0().plus_seconds(900),
            decided_by: None,
            decided_at: None,
            reason: String::new(),
            used_at: None,
        }
    }

    pub async fn run(s: &DynStore) {
        let (i, task) = agent(s, "agt-approvals").await;
        let e = event("approval.requested", "x");
        let a = pending(&i, &task, "h1");
        assert!(s.insert_approval(&a, 2, t0(), &e).await.unwrap());
        assert_eq!(
            s.open_approval_for(&a.action, t0()).await.unwrap(),
            Some(a.clone())
        );
        let other = pending(&i, &task, "h2");
        assert_eq!(
            s.open_approval_for(&other.action, t0()).await.unwrap(),
            None
        );
        assert!(s.insert_approval(&other, 2, t0(), &e).await.unwrap());
        // The cap counts open approvals only: a third is refused and not written.
        let third = pending(&i, &task, "h3");
        assert!(!s.insert_approval(&third, 2, t0(), &e).await.unwrap());
        assert_eq!(s.approval(third.id).await.unwrap(), None);
        assert_eq!(count(s, "approval.requested").await, 2);
        // Expired ones no longer count, nor are they listed as pending.
        let later = t0().plus_seconds(901);
        let third = ActionApproval {
            expires_at: later.plus_seconds(900),
            ..third
        };
        assert!(s.insert_approval(&third, 2, later, &e).await.unwrap());
        let open = s
            .list_approvals(Some(ApprovalState::Pending), Some(i.id), later, None, 10)
            .await
            .unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            s.list_approvals(None, None, later, None, 10)
                .await
                .unwrap()
                .len(),
            3
        );

        // Decided once: the second change from `pending` loses.
        let mut approved = a.clone();
        approved.state = ApprovalState::Approved;
        assert!(
            s.update_approval(
                &approved,
                ApprovalState::Pending,
                &event("approval.approved", "x")
            )
            .await
            .unwrap()
        );
        let mut denied = a.clone();
        denied.state = ApprovalState::Denied;
        assert!(
            !s.update_approval(
                &denied,
                ApprovalState::Pending,
                &event("approval.denied", "x")
            )
            .await
            .unwrap()
        );
        assert_eq!(count(s, "approval.denied").await, 0);

        // Spent once; a replayed claim spends nothing.
        let mut used = approved.clone();
        used.state = ApprovalState::Used;
        used.used_at = Some(t0());
        let claim = |id: &str| Claim {
            id: id.into(),
            expires_at: t0().plus_seconds(60),
        };
        assert!(
            s.use_once("dpop:seen", t0().plus_seconds(60))
                .await
                .unwrap()
        );
        assert_eq!(
            s.spend_approval(
                &used,
                t0(),
                &event("decision", "x"),
                vec![claim("dpop:seen")]
            )
            .await
            .unwrap(),
            Spent::Replayed
        );
        assert_eq!(
            s.approval(a.id).await.unwrap().unwrap().state,
            ApprovalState::Approved
        );
        assert!(matches!(
            s.spend_approval(&used, t0(), &event("decision", "x"), vec![claim("dpop:1")])
                .await
                .unwrap(),
            Spent::Yes(_)
        ));
        assert_eq!(
            s.spend_approval(&used, t0(), &event("decision", "x"), vec![claim("dpop:2")])
                .await
                .unwrap(),
            Spent::Gone
        );
        assert_eq!(count(s, "decision").await, 1);
        assert_eq!(s.approval(a.id).await.unwrap().unwrap(), used);
    }
}

mod grants {
    use super::*;

    fn grant(i: &Identity, expires: Option<aim_domain::time::Timestamp>) -> Grant {
        NewGrant {
            grantee: Grantee::Identity(i.id),
            scope: Scope {
                action: "read".into(),
                system: "crm".into(),
                resource_type: None,
                resource_id: None,
            },
            reason: "claims work".into(),
            expires_at: expires,
            duration_seconds: None,
        }
        .into_grant("human:test".into(), t0())
        .unwrap()
    }

    pub async fn run(s: &DynStore) {
        let (i, _) = agent(s, "agt-grants").await;
        assert_eq!(s.grants_revision().await.unwrap(), 0);
        let forever = grant(&i, None);
        let brief = grant(&i, Some(t0().plus_seconds(60)));
        s.insert_grant(&forever, &event("grant.added", forever.id))
            .await
            .unwrap();
        s.insert_grant(&brief, &event("grant.added", brief.id))
            .await
            .unwrap();
        assert_eq!(s.grants_revision().await.unwrap(), 2);
        let (rev, live) = s.live_grants(t0()).await.unwrap();
        assert_eq!((rev, live.len()), (2, 2));
        let (_, live) = s.live_grants(t0().plus_seconds(60)).await.unwrap();
        assert_eq!(live, vec![forever.clone()]);

        let mut revoked = forever.clone();
        revoked
            .revoke(aim_domain::ids::HumanId::new(), "done", t0())
            .unwrap();
        let e = event("grant.revoked", forever.id);
        assert!(
            s.update_grant(&revoked, GrantState::Active, &e)
                .await
                .unwrap()
        );
        assert!(
            !s.update_grant(&revoked, GrantState::Active, &e)
                .await
                .unwrap()
        );
        assert_eq!(s.grants_revision().await.unwrap(), 3);
        assert_eq!(s.grant(forever.id).await.unwrap(), Some(revoked));
        let key = format!("identity:{}", i.id);
        let active = s
            .list_grants(Some(GrantState::Active), Some(&key), None, 10)
            .await
            .unwrap();
        assert_eq!(active, vec![brief]);
        assert_eq!(s.list_grants(None, None, None, 10).await.unwrap().len(), 2);
        assert_eq!(count(s, "grant.revoked").await, 1);
    }
}

mod leases {
    use super::*;

    fn lease(i: &Identity, task: &Task, id: &str, seconds: i64) -> Lease {
        Lease {
            id: LeaseId::new(),
            record: Record {
                system: "crm".into(),
                kind: "Resource".into(),
                id: id.into(),
            },
            identity_id: i.id,
            identity_name: i.name.clone(),
            task_id: task.id,
            acquired_at: t0(),
            expires_at: t0().plus_seconds(seconds),
            released_at: None,
            release_reason: String::new(),
        }
    }

    pub async fn run(s: &DynStore) {
        let (a, task_a) = agent(s, "agt-lease-a").await;
        let (b, task_b) = agent(s, "agt-lease-b").await;
        let e = event("lease.acquired", "x");
        let first = lease(&a, &task_a, "crm/1", 60);
        assert_eq!(
            s.acquire_lease(&first, &LIMITS, t0(), &e).await.unwrap(),
            Acquired::Held(first.clone())
        );
        // Another identity is refused and told who holds it.
        let theirs = lease(&b, &task_b, "crm/1", 60);
        assert_eq!(
            s.acquire_lease(&theirs, &LIMITS, t0(), &e).await.unwrap(),
            Acquired::Conflict(first.clone())
        );
        // The holder renews its own.
        let renew = lease(&a, &task_a, "crm/1", 120);
        let Acquired::Held(renewed) = s.acquire_lease(&renew, &LIMITS, t0(), &e).await.unwrap()
        else {
            panic!("the holder renews");
        };
        assert_eq!(
            (renewed.id, renewed.expires_at),
            (first.id, renew.expires_at)
        );
        assert_eq!(count(s, "lease.acquired").await, 2);
        // Once expired, another identity may take it.
        let after = t0().plus_seconds(121);
        assert_eq!(s.held_lease(&first.record, after).await.unwrap(), None);
        assert!(matches!(
            s.acquire_lease(&theirs, &LIMITS, after, &e).await.unwrap(),
            Acquired::Held(_)
        ));
        assert_eq!(
            s.lease(first.id).await.unwrap().unwrap().release_reason,
            "expired"
        );

        // Released when its task ends.
        let on_2 = lease(&a, &task_a, "crm/2", 60);
        s.acquire_lease(&on_2, &LIMITS, t0(), &e).await.unwrap();
        assert!(
            s.end_task(
                task_a.id,
                t0(),
                "ended by the agent",
                &event("task.ended", task_a.id)
            )
            .await
            .unwrap()
        );
        let released = s.lease(on_2.id).await.unwrap().unwrap();
        assert_eq!(released.released_at, Some(t0()));
        assert_eq!(s.held_lease(&on_2.record, t0()).await.unwrap(), None);

        // Released when its identity is locked.
        let on_3 = lease(&b, &task_b, "crm/3", 60);
        s.acquire_lease(&on_3, &LIMITS, t0(), &e).await.unwrap();
        let mut locked = b.clone();
        locked.state = LifecycleState::Locked;
        locked.version += 1;
        s.update_identity(&locked, b.version, &event("identity.locked", b.id))
            .await
            .unwrap();
        assert_eq!(s.held_lease(&on_3.record, t0()).await.unwrap(), None);
        assert_eq!(
            s.lease(on_3.id).await.unwrap().unwrap().release_reason,
            "identity locked"
        );

        // Released by hand, once.
        let on_4 = lease(&a, &task_a, "crm/4", 60);
        s.acquire_lease(&on_4, &LIMITS, t0(), &e).await.unwrap();
        let r = event("lease.released", on_4.id);
        assert!(s.release_lease(on_4.id, t0(), "done", &r).await.unwrap());
        assert!(!s.release_lease(on_4.id, t0(), "done", &r).await.unwrap());
        assert_eq!(count(s, "lease.released").await, 1);
    }
}

mod baselines {
    use super::*;

    pub async fn run(s: &DynStore) {
        let (a, _) = agent(s, "agt-baseline-a").await;
        let (b, _) = agent(s, "agt-baseline-b").await;
        assert_eq!(s.baseline(a.id).await.unwrap(), None);
        let saved = |identity, profile: &str, events| SavedBaseline {
            identity,
            profile: profile.into(),
            events,
        };
        s.save_baselines(&[saved(a.id, "a-10", 10), saved(b.id, "b-3", 3)], t0())
            .await
            .unwrap();
        assert_eq!(s.baseline(a.id).await.unwrap().as_deref(), Some("a-10"));
        // A replica that learnt less does not overwrite; one that learnt more does.
        s.save_baselines(&[saved(a.id, "a-9", 9), saved(b.id, "b-4", 4)], t0())
            .await
            .unwrap();
        assert_eq!(s.baseline(a.id).await.unwrap().as_deref(), Some("a-10"));
        assert_eq!(s.baseline(b.id).await.unwrap().as_deref(), Some("b-4"));
        s.save_baselines(&[], t0()).await.unwrap();
    }
}
