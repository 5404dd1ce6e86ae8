//! Policy versions on both backends: append only, optimistic concurrency, the event.

use aim_domain::Refusal;
use aim_store::{AuditFilter, DynStore, PolicyVersion, StoreError};
use aim_testkit::{Backend, TestStore};
use serde_json::json;

use crate::fixtures::{event, t0};

#[tokio::test]
async fn policy_versions() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let t = TestStore::new(backend).await;
        run(&t.store).await;
        t.cleanup().await;
    }
}

fn version(text: &str) -> PolicyVersion {
    PolicyVersion {
        version: 0,
        sources: json!([{ "name": "a.cedar", "text": text }]),
        links: json!([]),
        digest: format!("digest of {text}"),
        created_at: t0(),
        created_by: "alice".into(),
        comment: "first".into(),
        rollback_of: None,
    }
}

async fn run(s: &DynStore) {
    assert_eq!(s.latest_policy_version().await.unwrap(), 0);
    assert!(s.policy_version(None).await.unwrap().is_none());
    let e = event("policy.applied", "policies").detail(json!({ "files": 1 }));
    let v1 = s
        .insert_policy_version(&version("one"), 0, &e)
        .await
        .unwrap();
    assert_eq!(v1, 1);
    let v2 = s
        .insert_policy_version(&version("two"), 1, &e)
        .await
        .unwrap();
    assert_eq!(v2, 2);
    // Based on version 1 while 2 is in force: refused, nothing written.
    let stale = s.insert_policy_version(&version("three"), 1, &e).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict(Refusal::PolicyChanged {
                expected: 1,
                latest: 2
            }))
        ),
        "{stale:?}"
    );
    assert_eq!(s.latest_policy_version().await.unwrap(), 2);
    let newest = s.policy_version(None).await.unwrap().unwrap();
    assert_eq!(
        (newest.version, newest.sources[0]["text"].as_str()),
        (2, Some("two"))
    );
    let first = s.policy_version(Some(1)).await.unwrap().unwrap();
    assert_eq!(
        first,
        PolicyVersion {
            version: 1,
            ..version("one")
        }
    );
    assert!(s.policy_version(Some(9)).await.unwrap().is_none());
    let mut rollback = version("one");
    rollback.rollback_of = Some(1);
    assert_eq!(s.insert_policy_version(&rollback, 2, &e).await.unwrap(), 3);
    let all: Vec<i64> = s
        .policy_versions(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(all, [3, 2, 1]);
    let page: Vec<i64> = s
        .policy_versions(Some(3), 1)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(page, [2]);
    assert_eq!(
        s.policy_version(None).await.unwrap().unwrap().rollback_of,
        Some(1)
    );
    // Each version's event carries its number.
    let filter = AuditFilter {
        action: Some(aim_domain::event::AuditAction::PolicyApplied),
        ..AuditFilter::default()
    };
    let events = s.audit(&filter, 0, 10).await.unwrap();
    let mut versions: Vec<i64> = events
        .iter()
        .map(|e| e.detail["version"].as_i64().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3]);
}
