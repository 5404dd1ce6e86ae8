//! A narrowed token stays narrow: what an agent reaches through aim is always
//! `task.systems ∩ token.scope ∩ identity.systems`, as they are now. Each test is named
//! after the attack it stops.

use super::*;

crate::api_tests!(
    narrowed_token_cannot_reach_other_system_of_task,
    removed_system_is_out_of_reach_of_open_tasks,
    revoking_write_around_http_reaches_the_next_call,
);

const ANYTHING: &str = r#"@id("rw")
permit(principal is Aim::Identity, action in [Aim::Action::"read", Aim::Action::"write"], resource is Aim::Resource);
"#;

fn on(system: &str, id: &str) -> Value {
    json!({
        "type": "Resource",
        "id": format!("{system}/{id}"),
        "system": system,
        "attrs": { "type": "ledger", "sensitivity": "internal" },
    })
}

/// `action` on `system` as the holder of `token` (signed for by `key`) asks it.
async fn decide(s: &TestServer, key: &ClientKey, token: &str, system: &str) -> Value {
    let (status, d) = agent_json(
        s,
        key,
        token,
        "POST",
        "/v1/authorize",
        &json!({ "action": "read", "resource": on(system, "7") }),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    d
}

mod cases {
    use super::*;

    /// Sub-agent B holds a token narrowed to `crm` out of a task on `crm` and `billing`:
    /// it is refused `billing` by every path an agent has (decisions, leases, elevation
    /// requests, a further exchange), and still allowed `crm`.
    pub async fn narrowed_token_cannot_reach_other_system_of_task(s: &TestServer) {
        let c = cast(s).await;
        apply(s, ANYTHING).await;
        let both = ["billing", "crm"];
        let a = Agent::on(s, &c, "agt-narrow-a", "EdDSA", &both).await;
        let b = Agent::on(s, &c, "agt-narrow-b", "EdDSA", &both).await;
        let cc = Agent::on(s, &c, "agt-narrow-c", "EdDSA", &both).await;
        let token_a = a.open_task_on(s, &both).await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            decide(s, &a.key, &token_a, "billing").await["decision"],
            "allow"
        );
        let r = a.exchange(s, &token_a, &b, Some("crm")).await.unwrap();
        assert_eq!(r["scope"], "crm");
        let token_b = r["access_token"].as_str().unwrap().to_owned();

        let d = decide(s, &b.key, &token_b, "crm").await;
        assert_eq!(d["decision"], "allow", "{d}");
        let d = decide(s, &b.key, &token_b, "billing").await;
        assert_eq!(d["decision"], "deny", "{d}");
        assert_eq!(d["policies"], json!(["aim/task-scope"]), "{d}");

        let (status, body) = agent_json(
            s,
            &b.key,
            &token_b,
            "POST",
            "/v1/leases",
            &json!({ "record": { "system": "billing", "type": "Resource", "id": "billing/7" } }),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
        let (status, body) = agent_json(
            s,
            &b.key,
            &token_b,
            "POST",
            "/v1/grants/requests",
            &json!({ "action": "write", "system": "billing", "reason": "r", "duration_seconds": 600 }),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        assert_eq!(
            code(b.exchange(s, &token_b, &cc, Some("billing")).await),
            "scope_not_held"
        );
        let r = b.exchange(s, &token_b, &cc, None).await.unwrap();
        assert_eq!(r["scope"], "crm", "a further hop gets no more than B had");

        // Introspection reports what the token may reach.
        assert_eq!(
            s.admin.introspect(&token_b).await.unwrap().scope.as_deref(),
            Some("crm")
        );
        assert_eq!(
            decide(s, &a.key, &token_a, "billing").await["decision"],
            "allow",
            "the delegator keeps its own reach"
        );
    }

    /// The sponsor takes `billing` away from an identity with a task open on it: its live
    /// token, a continuation of the task and a delegation out of it reach only `crm`.
    pub async fn removed_system_is_out_of_reach_of_open_tasks(s: &TestServer) {
        let c = cast(s).await;
        apply(s, ANYTHING).await;
        let both = ["billing", "crm"];
        let a = Agent::on(s, &c, "agt-shrink-a", "EdDSA", &both).await;
        let b = Agent::on(s, &c, "agt-shrink-b", "EdDSA", &both).await;
        let r = a.open_task_on(s, &both).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        let task = r["task_id"].as_str().unwrap().to_owned();
        assert_eq!(
            decide(s, &a.key, &token, "billing").await["decision"],
            "allow"
        );

        let narrower = aim_domain::identity::IdentityPatch {
            systems: Some(vec!["crm".into()]),
            ..Default::default()
        };
        c.sponsor_client
            .change_identity(a.identity.id, &narrower)
            .await
            .unwrap();
        let d = decide(s, &a.key, &token, "billing").await;
        assert_eq!(
            (d["decision"].as_str(), d["policies"][0].as_str()),
            (Some("deny"), Some("aim/task-scope")),
            "{d}"
        );
        assert_eq!(decide(s, &a.key, &token, "crm").await["decision"], "allow");
        let stored = s.admin.task(task.parse().unwrap()).await.unwrap();
        assert_eq!(stored.systems, vec!["crm".to_owned()], "the task narrowed");
        let again = a.continue_task(s, &task).await.unwrap();
        assert_eq!(again["scope"], "crm");
        let r = a.exchange(s, &token, &b, None).await.unwrap();
        assert_eq!(r["scope"], "crm");
        assert_eq!(
            code(a.exchange(s, &token, &b, Some("billing")).await),
            "scope_not_held"
        );
        let narrowed = actions(s, "task.narrowed").await;
        assert_eq!(narrowed.len(), 1);
        assert_eq!(narrowed[0].target_id, task);
    }

    /// The live state behind a token is cached between an agent's calls. A write that
    /// ends its task without going through the HTTP API (a background job, a direct store
    /// call) must still reach the very next call: the cache follows the store's commits,
    /// not a list of URLs.
    pub async fn revoking_write_around_http_reaches_the_next_call(s: &TestServer) {
        let c = cast(s).await;
        apply(s, ANYTHING).await;
        let a = Agent::on(s, &c, "agt-around-http", "EdDSA", &["crm"]).await;
        let r = a.open_task_on(s, &["crm"]).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        let task = aim_domain::ids::TaskId::parse(r["task_id"].as_str().unwrap()).unwrap();
        // Twice, so the second answer comes from the cache.
        for _ in 0..2 {
            assert_eq!(decide(s, &a.key, &token, "crm").await["decision"], "allow");
        }
        let event = aim_domain::event::Event::new(
            s.clock_now(),
            aim_domain::event::Actor::system("test"),
            aim_domain::event::AuditAction::TaskEnded,
            "task",
            task,
        );
        assert!(
            s.db.store
                .end_task(task, s.clock_now(), "ended behind the API's back", &event)
                .await
                .unwrap()
        );
        let (status, body) = agent_json(
            s,
            &a.key,
            &token,
            "POST",
            "/v1/authorize",
            &json!({ "action": "read", "resource": on("crm", "7") }),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("task_ended")),
            "{body}"
        );
    }
}
