//! Leases against a second writer, grants and elevations that expire, refused requests,
//! and the kept live state of a token seeing changes at once.

use super::*;

crate::api_tests!(
    leases_keep_a_second_writer_out,
    grants_and_elevations_expire,
    bad_grants_and_leases_are_refused,
    a_token_used_again_sees_changes_at_once,
);

mod cases {
    use super::*;

    pub async fn leases_keep_a_second_writer_out(s: &TestServer) {
        let c = cast(s).await;
        apply(s, WRITERS).await;
        let a = Caller::new(s, &c, "agt-lease-a").await;
        let b = Caller::new(s, &c, "agt-lease-b").await;
        let mut lease = lease_of(&record("42"));
        lease["ttl_seconds"] = json!(120);
        // Before anyone holds the record, b may write: what is kept of that answer ("no
        // lease") must not outlive the lease a takes next.
        let write = json!({ "action": "write", "resource": record("42") });
        let (_, d) = b.ask(s, write.clone()).await;
        assert_eq!(d["decision"], "allow", "{d}");
        let (status, held) = a.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(status, 201, "{held}");
        assert_eq!(held["identity_name"], "agt-lease-a");

        let (status, body) = b.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("conflict_of_authority")),
            "{body}"
        );
        assert_eq!(body["holder"]["identity_name"], "agt-lease-a");
        assert!(
            body["message"].as_str().unwrap().contains("agt-lease-a"),
            "{body}"
        );

        let (_, d) = b.ask(s, write.clone()).await;
        assert_eq!(
            (
                d["decision"].as_str(),
                d["code"].as_str(),
                d["policies"][0].as_str()
            ),
            (
                Some("deny"),
                Some("conflict_of_authority"),
                Some("aim/conflict-of-authority")
            ),
            "{d}"
        );
        assert_eq!(
            d["holder"]["identity_id"],
            a.agent.identity.id.to_string().as_str()
        );
        assert!(
            d["reasons"][0].as_str().unwrap().contains("agt-lease-a"),
            "{d}"
        );
        // Reading is not writing; the holder writes.
        let (_, d) = b
            .ask(s, json!({ "action": "read", "resource": record("42") }))
            .await;
        assert_eq!(d["decision"], "allow", "{d}");
        let (_, d) = a.ask(s, write.clone()).await;
        assert_eq!(d["decision"], "allow", "{d}");
        // A lease outside the task's systems is refused.
        let elsewhere =
            json!({ "record": { "system": "billing", "type": "Resource", "id": "b/1" } });
        let (status, _) = a.call(s, "POST", "/v1/leases", &elsewhere).await;
        assert_eq!(status, 403);

        // The task ends: its lease goes with it, and the other writer may write.
        let (status, _) = a
            .call(s, "POST", &format!("/v1/tasks/{}/end", a.task), &json!({}))
            .await;
        assert_eq!(status, 200);
        let (_, shown) = get_as(
            s,
            &format!("/v1/leases/{}", held["id"].as_str().unwrap()),
            &s.admin_token,
        )
        .await;
        assert!(
            shown["release_reason"]
                .as_str()
                .unwrap()
                .starts_with("task ended"),
            "{shown}"
        );
        let (_, d) = b.ask(s, write.clone()).await;
        assert_eq!(d["decision"], "allow", "{d}");
        let (status, mine) = b.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(status, 201, "{mine}");
        let (status, released) = b
            .call(
                s,
                "POST",
                &format!("/v1/leases/{}/release", mine["id"].as_str().unwrap()),
                &json!({ "reason": "written" }),
            )
            .await;
        assert_eq!(
            (status, released["release_reason"].as_str()),
            (200, Some("written")),
            "{released}"
        );
        assert_eq!(actions(s, "lease.acquired").await.len(), 2);
        assert_eq!(actions(s, "lease.released").await.len(), 1);
    }

    pub async fn a_token_used_again_sees_changes_at_once(s: &TestServer) {
        // The live state behind a token is kept briefly between calls; a change made
        // meanwhile (here a suspension, then a task's end) is seen by the very next call.
        let c = cast(s).await;
        let me = Caller::new(s, &c, "agt-kept").await;
        let path = format!("/v1/tasks/{}", me.task);
        for _ in 0..3 {
            assert_eq!(me.call(s, "GET", &path, &json!({})).await.0, 200);
        }
        c.sponsor_client
            .identity_action(me.agent.identity.id, "suspend", "paused")
            .await
            .unwrap();
        let (status, body) = me.call(s, "GET", &path, &json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("token_revoked")),
            "{body}"
        );

        let other = Caller::new(s, &c, "agt-kept-b").await;
        let path = format!("/v1/tasks/{}", other.task);
        assert_eq!(other.call(s, "GET", &path, &json!({})).await.0, 200);
        let (status, _) = post(
            s,
            &format!("{path}/end"),
            c.sponsor_client.token().unwrap(),
            &json!({}),
        )
        .await;
        assert_eq!(status, 200);
        let (status, body) = other.call(s, "GET", &path, &json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("task_ended")),
            "{body}"
        );
    }

    pub async fn bad_grants_and_leases_are_refused(s: &TestServer) {
        let c = cast(s).await;
        let me = Caller::new(s, &c, "agt-refused").await;
        let admin = s.admin_token.clone();
        let grant = |extra: &Value| {
            let mut g = json!({ "grantee": { "group": "claims" }, "action": "read", "system": "crm", "reason": "r" });
            for (k, v) in extra.as_object().unwrap() {
                g[k] = v.clone();
            }
            g
        };
        let cases = [
            (
                json!({ "grantee": { "identity": "01a205bb-f02d-7784-8dcf-59bb9cbbc239" } }),
                404,
                "not_found",
            ),
            (
                json!({ "expires_at": "2026-03-01T08:00:00Z" }),
                422,
                "expiry_in_past",
            ),
            (
                json!({ "expires_at": "2026-03-02T08:00:00Z", "duration_seconds": 60 }),
                422,
                "validation_failed",
            ),
            (json!({ "resource_id": "crm/1" }), 422, "validation_failed"),
            (json!({ "reason": "  " }), 422, "reason_required"),
            (json!({ "system": "crm billing" }), 422, "validation_failed"),
            (
                json!({ "grantee": { "team": "claims" } }),
                422,
                "invalid_body",
            ),
        ];
        for (extra, status, code) in cases {
            let (got, body) = post(s, "/v1/grants", &admin, &grant(&extra)).await;
            assert_eq!(
                (got, body["code"].as_str()),
                (status, Some(code)),
                "{extra}: {body}"
            );
        }
        let (status, body) = post(
            s,
            "/v1/grants",
            c.sponsor_client.token().unwrap(),
            &grant(&json!({})),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        assert!(
            actions(s, "grant.added").await.is_empty(),
            "nothing was granted"
        );
        // Elevation requests: only agents ask, within their task's systems and 8 hours.
        let ask = json!({ "action": "write", "system": "crm", "reason": "r", "duration_seconds": 9 * 3600 });
        let (status, body) = me.call(s, "POST", "/v1/grants/requests", &ask).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        let (status, _) = post(s, "/v1/grants/requests", &admin, &ask).await;
        assert_eq!(status, 403);
        let elsewhere = json!({ "action": "write", "system": "billing", "reason": "r", "duration_seconds": 600 });
        let (status, _) = me.call(s, "POST", "/v1/grants/requests", &elsewhere).await;
        assert_eq!(status, 403);

        // Leases: only agents that may write the record take them, for a sane time.
        let lease = lease_of(&record("42"));
        let (status, body) = me.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("write_not_allowed")),
            "no policy lets it write: {body}"
        );
        apply(s, WRITERS).await;
        let mut nameless = lease.clone();
        nameless["attrs"] = json!({});
        let (status, body) = me.call(s, "POST", "/v1/leases", &nameless).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("write_not_allowed")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("names no subject"),
            "decided on the record as a write would see it: {body}"
        );
        let mut record = lease.clone();
        record["ttl_seconds"] = json!(0);
        let (status, body) = me.call(s, "POST", "/v1/leases", &record).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        record["ttl_seconds"] = json!(901);
        let (status, body) = me.call(s, "POST", "/v1/leases", &record).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        let (status, _) = post(s, "/v1/leases", &admin, &lease).await;
        assert_eq!(status, 403);
        let (status, held) = me.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(status, 201, "{held}");
        let release = format!("/v1/leases/{}/release", held["id"].as_str().unwrap());
        let (status, _) = post(s, &release, c.sponsor_client.token().unwrap(), &json!({})).await;
        assert_eq!(
            status, 403,
            "a sponsor does not release an agent's lease; an admin may"
        );
        let (status, _) = post(s, &release, &admin, &json!({ "reason": "stuck agent" })).await;
        assert_eq!(status, 200);
        let (status, body) = post(s, &release, &admin, &json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("not_pending")),
            "{body}"
        );
    }

    pub async fn grants_and_elevations_expire(s: &TestServer) {
        let c = cast(s).await;
        let me = Caller::new(s, &c, "agt-granted").await;
        // No policy at all: everything is denied until granted.
        let ask = |action: &str| json!({ "action": action, "resource": record("42"), "principal": { "identity": me.agent.identity.id } });
        let decide = |action: &'static str| {
            let body = ask(action);
            async move { post(s, "/v1/authorize", &s.admin_token, &body).await.1 }
        };
        assert_eq!(decide("read").await["decision"], "deny");

        // The claims group may read the crm for ten minutes.
        let deadline = s.clock_now().plus_seconds(600);
        let (status, g) = post(
            s,
            "/v1/grants",
            &s.admin_token,
            &json!({
                "grantee": { "group": "claims" }, "action": "read", "system": "crm",
                "reason": "claims backlog", "expires_at": deadline,
            }),
        )
        .await;
        assert_eq!(status, 201, "{g}");
        let d = decide("read").await;
        assert_eq!(
            (d["decision"].as_str(), d["policies"][0].as_str()),
            (
                Some("allow"),
                Some(format!("grant/{}", g["id"].as_str().unwrap()).as_str())
            ),
            "{d}"
        );
        assert_eq!(decide("write").await["decision"], "deny");
        // A forbid still wins over a grant.
        apply(s, "@id(\"lockdown\") forbid(principal, action, resource);").await;
        assert_eq!(decide("read").await["policies"][0], "lockdown");
        apply(s, "").await;
        assert_eq!(decide("read").await["decision"], "allow");

        // The agent asks for write on one record, for five minutes.
        let (status, req) = me
            .call(s, "POST", "/v1/grants/requests", &json!({
                "action": "write", "system": "crm", "resource_type": "Resource", "resource_id": "crm/customers/42",
                "reason": "correct the address, TICKET-7", "duration_seconds": 300,
            }))
            .await;
        assert_eq!(
            (status, req["state"].as_str()),
            (201, Some("requested")),
            "{req}"
        );
        let rid = req["id"].as_str().unwrap().to_owned();
        assert_eq!(
            decide("write").await["decision"],
            "deny",
            "not before it is approved"
        );
        let (status, body) = me
            .call(
                s,
                "POST",
                &format!("/v1/grants/{rid}/approve"),
                &json!({ "reason": "me" }),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("self_approval_forbidden")),
            "{body}"
        );
        let (status, approved) = post(
            s,
            &format!("/v1/grants/{rid}/approve"),
            c.sponsor_client.token().unwrap(),
            &json!({ "reason": "ok for TICKET-7" }),
        )
        .await;
        assert_eq!(
            (status, approved["state"].as_str()),
            (200, Some("active")),
            "{approved}"
        );
        assert_eq!(decide("write").await["decision"], "allow");

        // Five minutes later the elevation is gone; at ten the group's grant too.
        s.clock.advance_millis(300 * 1000);
        assert_eq!(decide("write").await["decision"], "deny");
        assert_eq!(decide("read").await["decision"], "allow");
        s.clock.advance_millis(300 * 1000);
        assert_eq!(decide("read").await["decision"], "deny");
        let (_, shown) = get_as(s, &format!("/v1/grants/{rid}"), &s.admin_token).await;
        assert_eq!(shown["state"], "expired");

        // Revoked grants stop at once.
        let (_, g) = post(s, "/v1/grants", &s.admin_token, &json!({
            "grantee": { "identity": me.agent.identity.id }, "action": "read", "system": "crm", "reason": "again",
        }))
        .await;
        assert_eq!(decide("read").await["decision"], "allow");
        let (status, _) = post(
            s,
            &format!("/v1/grants/{}/revoke", g["id"].as_str().unwrap()),
            &s.admin_token,
            &json!({ "reason": "done" }),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(decide("read").await["decision"], "deny");
        let (_, listed) = get_as(
            s,
            &format!("/v1/grants?identity={}", me.agent.identity.id),
            c.sponsor_client.token().unwrap(),
        )
        .await;
        assert_eq!(listed["items"][1]["state"], "revoked", "{listed}");
        for action in [
            "grant.added",
            "grant.requested",
            "grant.approved",
            "grant.revoked",
        ] {
            assert!(!actions(s, action).await.is_empty(), "{action}");
        }
    }
}
