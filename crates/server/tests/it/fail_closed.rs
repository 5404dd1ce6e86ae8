//! When the store cannot write, changes fail closed (503, nothing applied, reads still
//! answer) and service comes back by itself once the store can write again.

use aim_domain::lifecycle::LifecycleState;

use crate::api_tests;
use crate::fixtures::{active_identity, cast, code};

api_tests!(writes_fail_closed_and_recover);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn writes_fail_closed_and_recover(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-fail-closed").await;
        let events_before = crate::fixtures::all_events(s).await.len();

        let lock = s.db.hold_write_lock().await;
        let r = c
            .sponsor_client
            .identity_action(i.id, "suspend", "during the outage")
            .await;
        assert_eq!(
            r.as_ref().err().and_then(|e| e.status()),
            Some(503),
            "{r:?}"
        );
        assert_eq!(code(r), "store_unavailable");
        let r = s.admin.set_human_active(c.approver.id, false, "left").await;
        assert_eq!(code(r), "store_unavailable");
        // Reads still answer, and show nothing changed.
        assert_eq!(
            s.admin.identity(i.id).await.unwrap().state,
            LifecycleState::Active
        );
        lock.release().await;

        // Back by itself: the same request now goes through, and the chain is intact with
        // exactly the events of what was applied.
        let x = c
            .sponsor_client
            .identity_action(i.id, "suspend", "after the outage")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Suspended);
        let after = crate::fixtures::all_events(s).await;
        assert_eq!(
            after.len(),
            events_before + 1,
            "no event for the failed write"
        );
        assert_eq!(after.last().unwrap().reason, "after the outage");
        let verdict = aim_store::verify_chain(s.db.store.as_ref(), None)
            .await
            .unwrap();
        assert_eq!(verdict, Ok(after.len() as i64));
    }
}
