//! Bad input gets a 4xx with a machine-readable code, and the store is left unchanged.

use aim_domain::human::Role;
use serde_json::{Value, json};

use crate::api_tests;
use crate::fixtures::{ClockExt, cast, event_count, request};

api_tests!(
    bad_bodies_change_nothing,
    bad_ids_and_unknown_routes,
    sponsor_must_exist_and_be_active,
    reasons_cannot_forge_lines
);

/// Sends a raw request and returns the status and the parsed body.
async fn raw(
    s: &aim_testkit::TestServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", s.base))
        .bearer_auth(&s.admin_token)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// What is sent (name, content type, body) and what must come back (status, code).
type Case = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

async fn identity_count(s: &aim_testkit::TestServer) -> usize {
    s.db.store
        .list_identities(&Default::default(), None, 1000)
        .await
        .unwrap()
        .len()
}

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn reasons_cannot_forge_lines(s: &TestServer) {
        let c = cast(s).await;
        let i = crate::fixtures::active_identity(s, &c, "agt-forgery").await;
        let events = event_count(s).await;
        for evil in [
            "ok\n2026-01-01 admin approved everything",
            "\u{1b}[2Kcleared",
            &"x".repeat(1001),
        ] {
            let r = c
                .sponsor_client
                .identity_action(i.id, "suspend", evil)
                .await;
            assert_eq!(crate::fixtures::code(r), "validation_failed", "{evil:?}");
        }
        let x = s.admin.identity(i.id).await.unwrap();
        assert_eq!(
            x.state,
            aim_domain::lifecycle::LifecycleState::Active,
            "nothing applied"
        );
        // Three refusals recorded, no change.
        assert_eq!(event_count(s).await, events + 3);
    }

    pub async fn bad_bodies_change_nothing(s: &TestServer) {
        let c = cast(s).await;
        let good = serde_json::to_value(request(s, "agt-good-one", c.sponsor.id)).unwrap();
        let with = |k: &str, v: Value| {
            let mut b = good.clone();
            b[k] = v;
            serde_json::to_vec(&b).unwrap()
        };
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("purpose");
        let cases: Vec<Case> = vec![
            (
                "malformed",
                Some("application/json"),
                b"{\"name\": ".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "not json",
                Some("application/json"),
                b"name=agt".to_vec(),
                400,
                "malformed_json",
            ),
            (
                "unknown field",
                Some("application/json"),
                with("colour", json!("red")),
                422,
                "invalid_body",
            ),
            (
                "invalid enum",
                Some("application/json"),
                with("kind", json!("robot")),
                422,
                "invalid_body",
            ),
            (
                "wrong type",
                Some("application/json"),
                with("systems", json!("crm")),
                422,
                "invalid_body",
            ),
            (
                "wrong type number",
                Some("application/json"),
                with("purpose", json!(42)),
                422,
                "invalid_body",
            ),
            (
                "bad timestamp",
                Some("application/json"),
                with("expires_at", json!("next week")),
                422,
                "invalid_body",
            ),
            (
                "missing field",
                Some("application/json"),
                serde_json::to_vec(&missing).unwrap(),
                422,
                "invalid_body",
            ),
            (
                "no content type",
                None,
                serde_json::to_vec(&good).unwrap(),
                415,
                "unsupported_media_type",
            ),
            (
                "oversized",
                Some("application/json"),
                with("purpose", json!("x".repeat(1024 * 1024 + 10))),
                413,
                "body_too_large",
            ),
            (
                "deeply nested",
                Some("application/json"),
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
                422,
                "invalid_body",
            ),
            (
                "control chars",
                Some("application/json"),
                with("purpose", json!("ok\u{1b}[2J")),
                422,
                "validation_failed",
            ),
            (
                "past expiry",
                Some("application/json"),
                with("expires_at", json!(s.clock_now().plus_days(0).to_string())),
                422,
                "expiry_in_past",
            ),
        ];
        for (what, ct, body, status, code) in cases {
            let identities = identity_count(s).await;
            let events = event_count(s).await;
            let (got_status, got) = raw(s, "POST", "/v1/identities", ct, body).await;
            assert_eq!(
                (got_status, got["code"].as_str()),
                (status, Some(code)),
                "{what}: {got}"
            );
            assert!(
                got["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: a message"
            );
            assert_eq!(
                identity_count(s).await,
                identities,
                "{what}: no identity stored"
            );
            // Exactly one new event: the refusal itself.
            let after = s.db.store.events(0, 10_000).await.unwrap();
            assert_eq!(after.len(), events + 1, "{what}");
            let last = after.last().unwrap();
            assert_eq!(
                (last.action.as_str(), last.reason.as_str()),
                ("request.refused", code),
                "{what}"
            );
        }
        // The good body still works.
        let (status, _) = raw(
            s,
            "POST",
            "/v1/identities",
            Some("application/json"),
            serde_json::to_vec(&good).unwrap(),
        )
        .await;
        assert_eq!(status, 201);
    }

    pub async fn bad_ids_and_unknown_routes(s: &TestServer) {
        let (status, body) = raw(s, "GET", "/v1/identities/not-a-uuid", None, vec![]).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_id")));
        let (status, body) = raw(
            s,
            "GET",
            &format!("/v1/identities/{}", uuid_v7()),
            None,
            vec![],
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        let (status, body) = raw(
            s,
            "POST",
            &format!("/v1/identities/{}/suspend", uuid_v7()),
            None,
            vec![],
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        let (status, body) = raw(s, "GET", "/v1/nothing-here", None, vec![]).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("no_route")));
        let (status, body) = raw(
            s,
            "POST",
            "/v1/humans",
            Some("application/json"),
            br#"{"user_name": "x", "roles": ["root"]}"#.to_vec(),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    }

    pub async fn sponsor_must_exist_and_be_active(s: &TestServer) {
        let (gone, _) = s.human("gone", &[Role::Sponsor]).await;
        s.admin
            .set_human_active(gone.id, false, "left")
            .await
            .unwrap();
        let identities = identity_count(s).await;
        let r = s
            .admin
            .request_identity(&request(
                s,
                "agt-ghost-sponsor",
                aim_domain::ids::HumanId::new(),
            ))
            .await;
        assert_eq!(crate::fixtures::code(r), "sponsor_not_found");
        let r = s
            .admin
            .request_identity(&request(s, "agt-gone-sponsor", gone.id))
            .await;
        assert_eq!(crate::fixtures::code(r), "sponsor_inactive");
        assert_eq!(identity_count(s).await, identities);
    }
}

fn uuid_v7() -> String {
    aim_domain::ids::IdentityId::new().to_string()
}
