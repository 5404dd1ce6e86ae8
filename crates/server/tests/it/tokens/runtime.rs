//! What decisions do beyond policies, over HTTP: human approval of one exact action (with
//! its signed webhook), leases against conflicting writes, grants and just-in-time
//! elevation that expire by themselves.

use std::sync::{Arc, Mutex};

use aim_domain::human::{NewHuman, Role};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

const REFUNDS: &str = r#"@id("claims-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("refunds") @approval("sponsor, group:finance-approvers")
permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource is Aim::Resource);
"#;

const WRITERS: &str = r#"@id("claims-rw")
permit(principal in Aim::Group::"claims", action in [Aim::Action::"read", Aim::Action::"write"], resource is Aim::Resource);
"#;

const WEBHOOK_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

async fn apply(s: &TestServer, text: &str) {
    let (status, body) = post(
        s,
        "/v1/policies",
        &s.admin_token,
        &json!({ "sources": [{ "name": "p.cedar", "text": text }] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

fn record(customer: &str) -> Value {
    json!({
        "type": "Resource",
        "id": format!("crm/customers/{customer}"),
        "system": "crm",
        "attrs": { "type": "customer_record", "sensitivity": "confidential", "subject": format!("customer:{customer}") },
    })
}

/// An agent with an open task, calling aim with its token and a fresh proof each time.
struct Caller {
    agent: Agent,
    token: String,
    task: String,
}

impl Caller {
    async fn new(s: &TestServer, c: &Cast, name: &str) -> Caller {
        let agent = Agent::new(s, c, name, "EdDSA").await;
        let r = agent.open_task(s).await.unwrap();
        Caller {
            token: r["access_token"].as_str().unwrap().to_owned(),
            task: r["task_id"].as_str().unwrap().to_owned(),
            agent,
        }
    }

    async fn call(&self, s: &TestServer, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", s.base);
        let proof = self
            .agent
            .key
            .dpop_proof(
                method,
                &url,
                Some(&self.token),
                s.clock_now().as_millis() / 1000,
            )
            .unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = reqwest::Client::new()
            .request(m, url)
            .header("Authorization", format!("DPoP {}", self.token))
            .header("DPoP", proof)
            .json(body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn ask(&self, s: &TestServer, body: Value) -> (u16, Value) {
        self.call(s, "POST", "/v1/authorize", &body).await
    }
}

/// A webhook receiver on loopback that keeps what it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
    let got: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Checks a Standard Webhooks signature the way a receiver would.
fn verify(headers: &HeaderMap, body: &str) {
    use aws_lc_rs::hmac;
    let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let (id, ts) = (h("webhook-id"), h("webhook-timestamp"));
    let key = hmac::Key::new(hmac::HMAC_SHA256, WEBHOOK_KEY);
    let expected = STANDARD.encode(hmac::sign(&key, format!("{id}.{ts}.{body}").as_bytes()));
    let sigs = h("webhook-signature");
    assert!(
        sigs.split(' ').any(|s| s == format!("v1,{expected}")),
        "{sigs}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts.parse::<i64>().unwrap()).abs() < 300);
}

#[tokio::test]
async fn approvals_hold_one_exact_action_for_a_human() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let (url, got) = receiver().await;
        let s = TestServer::start_with(backend, |c| {
            c.approvals.webhook_url = Some(url);
            c.approvals.webhook_secret = Some(format!("whsec_{}", STANDARD.encode(WEBHOOK_KEY)));
            c.approvals.max_pending_per_identity = 3;
        })
        .await;
        approval_flow(&s, &got).await;
        s.stop().await;
    }
}

async fn approval_flow(s: &TestServer, got: &Mutex<Vec<(HeaderMap, String)>>) {
    let c = cast(s).await;
    apply(s, REFUNDS).await;
    let me = Caller::new(s, &c, "agt-refunds").await;
    let write = |args: &str, approval: Option<&str>| {
        let mut b =
            json!({ "action": "write", "resource": record("42"), "call": { "args_hash": args } });
        if let Some(a) = approval {
            b["approval_id"] = json!(a);
        }
        b
    };

    // Required: a pending approval holds the exact action.
    let (status, d) = me.ask(s, write("h1", None)).await;
    assert_eq!(
        (status, d["decision"].as_str()),
        (200, Some("approval_required")),
        "{d}"
    );
    let id = d["approval_id"].as_str().unwrap().to_owned();
    assert!(d["approval_expires_at"].is_string(), "{d}");
    assert_eq!(
        d["approvers"],
        json!(["group:finance-approvers", "sponsor"])
    );
    // Asking again for the same action finds the same approval.
    let (_, again) = me.ask(s, write("h1", None)).await;
    assert_eq!(again["approval_id"], id.as_str());

    let (status, page) = get_as(s, "/v1/approvals", c.approver_client.token().unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let a = &items[0];
    assert_eq!(
        (a["id"].as_str(), a["state"].as_str(), a["action"].as_str()),
        (Some(id.as_str()), Some("pending"), Some("write"))
    );
    assert_eq!(
        (
            a["identity_id"].as_str(),
            a["task_id"].as_str(),
            a["resource_id"].as_str(),
            a["args_hash"].as_str()
        ),
        (
            Some(me.agent.identity.id.to_string().as_str()),
            Some(me.task.as_str()),
            Some("crm/customers/42"),
            Some("h1")
        )
    );

    // Announced by a signed webhook.
    let mut waited = 0;
    while got.lock().unwrap().is_empty() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1, "one announcement per approval");
        let (headers, body) = &got[0];
        verify(headers, body);
        let msg: Value = serde_json::from_str(body).unwrap();
        assert_eq!(msg["type"], "approval.requested");
        assert_eq!(msg["data"]["id"], id.as_str());
        assert_eq!(headers["webhook-id"], format!("msg_{id}").as_str());
    }

    // Not yet decided: retrying is denied.
    let (_, d) = me.ask(s, write("h1", Some(&id))).await;
    assert_eq!(
        (d["decision"].as_str(), d["code"].as_str()),
        (Some("deny"), Some("approval_pending")),
        "{d}"
    );

    // The identity never approves itself; nor does a human the policy did not name; nor
    // anyone without a reason.
    let path = format!("/v1/approvals/{id}/approve");
    let (status, body) = me
        .call(s, "POST", &path, &json!({ "reason": "I approve myself" }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("self_approval_forbidden")),
        "{body}"
    );
    let (status, body) = post(
        s,
        &path,
        c.approver_client.token().unwrap(),
        &json!({ "reason": "ok" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("not_an_approver")),
        "{body}"
    );
    let sponsor = c.sponsor_client.token().unwrap().to_owned();
    let (status, body) = post(s, &path, &sponsor, &json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("reason_required")),
        "{body}"
    );

    // A member of the named group approves.
    let fay = s
        .admin
        .create_human(&NewHuman {
            user_name: "fay".into(),
            display_name: None,
            email: None,
            external_id: None,
            roles: vec![Role::Approver],
            groups: vec!["finance-approvers".into()],
        })
        .await
        .unwrap();
    let fay_token = s.admin.create_credential(fay.id, "t").await.unwrap().secret;
    let (status, body) = post(
        s,
        &path,
        &fay_token,
        &json!({ "reason": "refund checked against the claim" }),
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    assert_eq!(body["decided_by"], fay.id.to_string().as_str());
    let (status, body) = post(
        s,
        &format!("/v1/approvals/{id}/deny"),
        &sponsor,
        &json!({ "reason": "late" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_pending")),
        "{body}"
    );

    // Changed arguments need a new approval.
    let (_, d) = me.ask(s, write("h2", Some(&id))).await;
    assert_eq!(
        (d["decision"].as_str(), d["code"].as_str()),
        (Some("deny"), Some("approval_mismatch")),
        "{d}"
    );
    // One successful retry ...
    let (status, d) = me.ask(s, write("h1", Some(&id))).await;
    assert_eq!(
        (status, d["decision"].as_str()),
        (200, Some("allow")),
        "{d}"
    );
    assert_eq!(d["policies"], json!(["refunds", format!("approval/{id}")]));
    // ... and a second is denied.
    let (_, d) = me.ask(s, write("h1", Some(&id))).await;
    assert_eq!(
        (d["decision"].as_str(), d["code"].as_str()),
        (Some("deny"), Some("approval_used")),
        "{d}"
    );
    let (_, shown) = me
        .call(s, "GET", &format!("/v1/approvals/{id}"), &json!({}))
        .await;
    assert_eq!(shown["state"], "used");

    // Every step is on the record.
    let decisions = actions(s, "decision").await;
    let outcomes: Vec<&str> = decisions.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "approval_required",
            "approval_required",
            "deny",
            "deny",
            "allow",
            "deny"
        ]
    );
    assert_eq!(
        decisions[4].trail.policies,
        ["refunds".to_owned(), format!("approval/{id}")]
    );
    assert_eq!(actions(s, "approval.requested").await.len(), 1);
    assert_eq!(actions(s, "approval.approved").await.len(), 1);

    // A flood is capped per identity.
    for args in ["f1", "f2", "f3"] {
        let (status, d) = me.ask(s, write(args, None)).await;
        assert_eq!(
            (status, d["decision"].as_str()),
            (200, Some("approval_required")),
            "{d}"
        );
    }
    let (status, body) = me.ask(s, write("f4", None)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_pending_approvals")),
        "{body}"
    );
    let (status, d) = me.ask(s, write("f1", None)).await;
    assert_eq!(
        status, 200,
        "an action already waiting is not a new request: {d}"
    );

    // A denied approval is a deny, with the approver's reason; an unknown id too.
    let (_, pending) = get_as(s, "/v1/approvals", &sponsor).await;
    let f2 = pending["items"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(pending["items"][1]["args_hash"], "f2");
    let (status, _) = post(
        s,
        &format!("/v1/approvals/{f2}/deny"),
        &sponsor,
        &json!({ "reason": "not this customer" }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, d) = me.ask(s, write("f2", Some(&f2))).await;
    assert_eq!(
        (d["decision"].as_str(), d["code"].as_str()),
        (Some("deny"), Some("approval_denied")),
        "{d}"
    );
    assert!(
        d["reasons"].to_string().contains("not this customer"),
        "{d}"
    );
    let (_, d) = me
        .ask(s, write("f3", Some("01a205bb-f02d-7784-8dcf-59bb9cbbc239")))
        .await;
    assert_eq!(d["code"], "approval_not_found", "{d}");

    // Approvals expire: nobody can decide one after 15 minutes.
    let (_, pending) = get_as(s, "/v1/approvals", &sponsor).await;
    let f1 = pending["items"][0]["id"].as_str().unwrap().to_owned();
    s.clock.advance_millis(15 * 60 * 1000);
    let (status, body) = post(
        s,
        &format!("/v1/approvals/{f1}/approve"),
        &sponsor,
        &json!({ "reason": "ok" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("expired")),
        "{body}"
    );
    let (_, pending) = get_as(s, "/v1/approvals", &sponsor).await;
    assert_eq!(pending["items"], json!([]));
    let (_, all) = get_as(s, "/v1/approvals?state=all", &sponsor).await;
    let states: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["used", "expired", "denied", "expired"]);
}

#[tokio::test]
async fn an_undeliverable_webhook_is_on_the_record() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        // A port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let s = TestServer::start_with(backend, |c| {
            c.approvals.webhook_url = Some(url);
            c.approvals.webhook_secret = Some(format!("whsec_{}", STANDARD.encode(WEBHOOK_KEY)));
            c.approvals.webhook_attempts = 2;
        })
        .await;
        let c = cast(&s).await;
        apply(&s, REFUNDS).await;
        let me = Caller::new(&s, &c, "agt-unheard").await;
        let (_, d) = me
            .ask(&s, json!({ "action": "write", "resource": record("42") }))
            .await;
        let id = d["approval_id"].as_str().unwrap().to_owned();
        let mut failed = Vec::new();
        for _ in 0..100 {
            failed = actions(&s, "approval.webhook_failed").await;
            if !failed.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].target_id, format!("msg_{id}"));
        assert!(
            failed[0].reason.starts_with("after 2 attempts"),
            "{}",
            failed[0].reason
        );
        // The approval does not depend on it: it waits in the list.
        let (_, page) = get_as(&s, "/v1/approvals", c.sponsor_client.token().unwrap()).await;
        assert_eq!(page["items"][0]["id"], id.as_str());
        s.stop().await;
    }
}

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
        let lease = json!({ "record": { "system": "crm", "type": "Resource", "id": "crm/customers/42" }, "ttl_seconds": 120 });
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

        let write = json!({ "action": "write", "resource": record("42") });
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
        let (_, shown) = b
            .call(
                s,
                "GET",
                &format!("/v1/leases/{}", held["id"].as_str().unwrap()),
                &json!({}),
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

        // Leases: only agents take them, for a sane time.
        let record = json!({ "system": "crm", "type": "Resource", "id": "crm/1" });
        let (status, body) = me
            .call(
                s,
                "POST",
                "/v1/leases",
                &json!({ "record": record, "ttl_seconds": 0 }),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        let (status, body) = me
            .call(
                s,
                "POST",
                "/v1/leases",
                &json!({ "record": record, "ttl_seconds": 901 }),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
        let (status, _) = post(s, "/v1/leases", &admin, &json!({ "record": record })).await;
        assert_eq!(status, 403);
        let (status, held) = me
            .call(s, "POST", "/v1/leases", &json!({ "record": record }))
            .await;
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
