//! A lease keeps every other writer out, so taking one is bounded: only an identity that
//! may write the record leases it, an identity and a task hold only so many, and renewing
//! never keeps one past its longest hold. Named after the attacks.

use super::*;

#[tokio::test]
async fn reader_cannot_block_writers_with_a_lease() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start(backend).await;
        let c = cast(&s).await;
        let reader = Caller::new(&s, &c, "agt-only-reads").await;
        let writer = Caller::new(&s, &c, "agt-writes").await;
        let policies = format!(
            r#"@id("read") permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("write") permit(principal == Aim::Identity::"{}", action == Aim::Action::"write", resource is Aim::Resource);"#,
            writer.agent.identity.id
        );
        apply(&s, &policies).await;
        let lease = lease_of(&record("42"));
        let (status, body) = reader.call(&s, "POST", "/v1/leases", &lease).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("write_not_allowed")),
            "{body}"
        );
        let write = json!({ "action": "write", "resource": record("42") });
        let (_, d) = writer.ask(&s, write).await;
        assert_eq!(d["decision"], "allow", "nobody holds the record: {d}");
        s.stop().await;
    }
}

#[tokio::test]
async fn agent_cannot_lease_a_whole_system_or_hold_a_record_forever() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start_with(backend, |c| {
            c.leases.max_per_task = 2;
            c.leases.max_per_identity = 3;
            c.leases.max_hold_seconds = 900;
        })
        .await;
        let c = cast(&s).await;
        apply(&s, WRITERS).await;
        let me = Caller::new(&s, &c, "agt-greedy").await;
        let lease = |n: u32, ttl: i64| {
            let mut r = record("42");
            r["id"] = json!(format!("crm/customers/42/claims/{n}"));
            let mut l = lease_of(&r);
            l["ttl_seconds"] = json!(ttl);
            l
        };
        let (status, first) = me.call(&s, "POST", "/v1/leases", &lease(1, 900)).await;
        assert_eq!(status, 201, "{first}");
        assert_eq!(
            me.call(&s, "POST", "/v1/leases", &lease(2, 60)).await.0,
            201
        );
        let (status, body) = me.call(&s, "POST", "/v1/leases", &lease(3, 60)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("too_many_leases")),
            "{body}"
        );
        // Renewing one it holds is not a new lease.
        assert_eq!(
            me.call(&s, "POST", "/v1/leases", &lease(2, 60)).await.0,
            201
        );
        // Releasing one makes room.
        let release = format!("/v1/leases/{}/release", first["id"].as_str().unwrap());
        assert_eq!(me.call(&s, "POST", &release, &json!({})).await.0, 200);
        let (status, third) = me.call(&s, "POST", "/v1/leases", &lease(3, 900)).await;
        assert_eq!(status, 201, "{third}");

        // Renewed four minutes later for another fifteen: it still ends fifteen minutes
        // after it was first taken.
        let taken: aim_domain::Timestamp =
            serde_json::from_value(third["acquired_at"].clone()).unwrap();
        s.clock.advance_millis(240_000);
        let (status, renewed) = me.call(&s, "POST", "/v1/leases", &lease(3, 900)).await;
        assert_eq!(status, 201, "{renewed}");
        assert_eq!(
            serde_json::from_value::<aim_domain::Timestamp>(renewed["expires_at"].clone()).unwrap(),
            taken.plus_seconds(900),
            "{renewed}"
        );
        s.stop().await;
    }
}
