//! The event log as a hash chain: intact after real use, and each kind of tampering done
//! directly in SQL is caught at the first bad record, on both backends.

use aim_domain::audit::ChainBreak;
use aim_store::verify_chain;
use aim_testkit::{Backend, TestStore};

use crate::fixtures::{event, human, identity};

/// A store with ten chained events, and the SQL that lifts the append-only triggers (an
/// attacker with database access can do that too).
async fn ten_events(backend: Backend) -> TestStore {
    let t = TestStore::new(backend).await;
    let h = human("chain-owner");
    t.store
        .insert_human(&h, &event("human.created", h.id))
        .await
        .unwrap();
    for n in 0..4 {
        let i = identity(&format!("agt-chain-{n}"), h.id);
        t.store
            .insert_identity(&i, &event("identity.requested", i.id))
            .await
            .unwrap();
    }
    for n in 0..5 {
        let trail = aim_domain::event::Trail {
            act: vec!["agent-parent".into()],
            task_id: format!("task-{n}"),
            jti: format!("jti-{n}"),
            policies: vec!["policy-a".into()],
            ..Default::default()
        };
        t.store
            .append_event(&event("request.refused", n).denied().trail(trail))
            .await
            .unwrap();
    }
    let lift = match backend {
        Backend::Sqlite => "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
        Backend::Postgres => "DROP TRIGGER events_no_update ON events;",
    };
    t.raw(lift).await;
    t
}

async fn verdict(t: &TestStore) -> Result<i64, ChainBreak> {
    verify_chain(t.store.as_ref(), None)
        .await
        .expect("store readable")
}

macro_rules! chain_test {
    ($name:ident, $tamper:expr, $check:expr) => {
        #[tokio::test]
        async fn $name() {
            for backend in Backend::enabled() {
                eprintln!("backend: {backend:?}");
                let t = ten_events(backend).await;
                let tamper: &str = $tamper;
                if !tamper.is_empty() {
                    t.raw(tamper).await;
                }
                let got = verdict(&t).await;
                let check: fn(Result<i64, ChainBreak>) = $check;
                check(got);
                t.cleanup().await;
            }
        }
    };
}

chain_test!(untouched_log_verifies, "", |r| assert_eq!(r, Ok(10)));

chain_test!(
    an_edited_field_is_named,
    "UPDATE events SET reason = 'nothing happened' WHERE seq = 5",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 5 }))
);

chain_test!(
    an_edited_task_is_named,
    "UPDATE events SET task_id = 'task-x' WHERE seq = 8",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 8 }))
);

chain_test!(
    an_edited_delegation_chain_is_named,
    "UPDATE events SET act = '[]' WHERE seq = 7",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 7 }))
);

chain_test!(
    an_edited_timestamp_is_named,
    "UPDATE events SET at = at + 1 WHERE seq = 2",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 2 }))
);

chain_test!(
    a_deleted_record_is_named,
    "DELETE FROM events WHERE seq = 5",
    |r| assert_eq!(
        r,
        Err(ChainBreak::Missing {
            expected: 5,
            found: 6
        })
    )
);

chain_test!(
    two_swapped_records_are_named,
    "UPDATE events SET seq = -5 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = 6; \
     UPDATE events SET seq = 6 WHERE seq = -5;",
    |r| assert_eq!(r.unwrap_err().first_bad(), 5)
);

chain_test!(
    an_inserted_forged_record_is_named,
    // Make room at 5 and copy record 4's hashes onto a forged record there.
    "UPDATE events SET seq = seq + 1000 WHERE seq >= 5; UPDATE events SET seq = seq - 999 WHERE seq >= 1005; \
     INSERT INTO events (seq, at, actor_kind, actor_id, action, target_type, target_id, outcome, reason, detail, request_id, source, prev_hash, hash) \
     SELECT 5, at, actor_kind, actor_id, 'identity.approved', target_type, target_id, outcome, 'forged', detail, request_id, source, hash, hash \
     FROM events WHERE seq = 4; \
     UPDATE chain_head SET seq = seq + 1;",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 5 }))
);

chain_test!(
    a_forged_tail_record_is_named,
    "INSERT INTO events (seq, at, actor_kind, actor_id, action, target_type, target_id, outcome, reason, detail, request_id, source, prev_hash, hash) \
     SELECT 11, at, actor_kind, actor_id, action, target_type, target_id, outcome, 'forged', detail, request_id, source, hash, prev_hash \
     FROM events WHERE seq = 10;",
    |r| assert_eq!(r, Err(ChainBreak::Altered { seq: 11 }))
);

chain_test!(
    a_truncated_tail_is_caught_against_the_head,
    "DELETE FROM events WHERE seq > 7",
    |r| assert_eq!(r, Err(ChainBreak::Truncated { last: 7, head: 10 }))
);

/// The append-only triggers themselves refuse edits made through ordinary SQL.
#[tokio::test]
async fn triggers_refuse_update_and_delete() {
    for backend in Backend::enabled() {
        let t = TestStore::new(backend).await;
        t.store
            .append_event(&event("request.refused", 1).denied())
            .await
            .unwrap();
        let (url_or_file, is_pg) = match t.pg_schema() {
            Some((url, schema)) => (format!("{url}|{schema}"), true),
            None => (t.dir.path().join("aim.db").display().to_string(), false),
        };
        let refused = if is_pg {
            let (url, schema) = url_or_file.split_once('|').unwrap();
            use sqlx::Connection;
            let opts = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
                .unwrap()
                .options([("search_path", schema)]);
            let mut c = sqlx::PgConnection::connect_with(&opts).await.unwrap();
            sqlx::query("UPDATE events SET reason = 'x'")
                .execute(&mut c)
                .await
                .is_err()
                && sqlx::query("DELETE FROM events")
                    .execute(&mut c)
                    .await
                    .is_err()
        } else {
            use sqlx::Connection;
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&url_or_file);
            let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
            sqlx::query("UPDATE events SET reason = 'x'")
                .execute(&mut c)
                .await
                .is_err()
                && sqlx::query("DELETE FROM events")
                    .execute(&mut c)
                    .await
                    .is_err()
        };
        assert!(refused, "{backend:?}");
        assert_eq!(verdict(&t).await, Ok(1));
        t.cleanup().await;
    }
}

/// Several writers on each of two replicas append at once: one chain, no forks, every
/// acknowledged append present exactly once. (On SQLite, one replica with many writers.)
#[tokio::test]
async fn concurrent_appends_from_two_replicas_form_one_chain() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let t = TestStore::new(backend).await;
        let stores = match t.replica().await {
            Some(second) => vec![t.store.clone(), second],
            None => vec![t.store.clone()],
        };
        let per_writer = 40;
        let mut tasks = Vec::new();
        for (r, store) in stores.iter().enumerate() {
            for w in 0..4 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for n in 0..per_writer {
                        let e =
                            event("request.refused", format!("replica{r}-writer{w}-{n}")).denied();
                        seqs.push(store.append_event(&e).await.unwrap());
                    }
                    seqs
                }));
            }
        }
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        acknowledged.sort_unstable();
        let total = (stores.len() * 4 * per_writer) as i64;
        assert_eq!(
            acknowledged,
            (1..=total).collect::<Vec<_>>(),
            "every append got its own number"
        );
        assert_eq!(verdict(&t).await, Ok(total), "one intact chain");
        let events = t.store.events(0, 10_000).await.unwrap();
        let mut prevs: Vec<&str> = events.iter().map(|e| e.prev_hash.as_str()).collect();
        prevs.sort_unstable();
        prevs.dedup();
        assert_eq!(
            prevs.len(),
            events.len(),
            "no two records share a previous hash"
        );
        let mut targets: Vec<&str> = events.iter().map(|e| e.target_id.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        assert_eq!(targets.len() as i64, total, "each append exactly once");
        t.cleanup().await;
    }
}

/// Writers that fail (a taken name) while others write at the same moment undo only their
/// own work: with group commit they share a transaction, each in its own savepoint.
#[tokio::test]
async fn failing_writers_do_not_undo_their_neighbours() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let t = TestStore::new(backend).await;
        let h = human("neighbour");
        t.store
            .insert_human(&h, &event("human.created", h.id))
            .await
            .unwrap();
        let taken = identity("agt-taken-name", h.id);
        t.store
            .insert_identity(&taken, &event("identity.requested", taken.id))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..40 {
            let store = t.store.clone();
            let sponsor = h.id;
            tasks.push(tokio::spawn(async move {
                // Every third writer reuses the taken name and must fail.
                let name = if n % 3 == 0 {
                    "agt-taken-name".to_owned()
                } else {
                    format!("agt-neighbour-{n}")
                };
                let i = identity(&name, sponsor);
                (
                    n,
                    store
                        .insert_identity(&i, &event("identity.requested", i.id))
                        .await
                        .is_ok(),
                )
            }));
        }
        for task in tasks {
            let (n, ok) = task.await.unwrap();
            assert_eq!(ok, n % 3 != 0, "writer {n}");
        }
        for n in (0..40).filter(|n| n % 3 != 0) {
            assert!(
                t.store
                    .identity_by_name(&format!("agt-neighbour-{n}"))
                    .await
                    .unwrap()
                    .is_some(),
                "{n}"
            );
        }
        // 2 setup events + 26 successful writers; the 14 failures left nothing behind.
        assert_eq!(verdict(&t).await, Ok(2 + 26));
        t.cleanup().await;
    }
}
