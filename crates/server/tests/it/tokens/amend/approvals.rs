//! Human approval of one exact action: pending, announced by a signed webhook, decided
//! by a named human with a reason, spent by one retry; expiry, floods, undeliverable
//! webhooks.

use std::sync::{Arc, Mutex};

use aim_domain::human::{NewHuman, Role};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

/// A webhook receiver on loopback that keeps what it was sent.
pub(crate) async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, String)>>>) {
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
pub(crate) fn verify(headers: &HeaderMap, body: &str) {
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
    // The page names the identity it holds by id, for people reading it.
    assert_eq!(
        page["names"][me.agent.identity.id.to_string()].as_str(),
        Some(me.agent.identity.name.as_str()),
        "{page}"
    );

    // Announced by a signed webhook.
    aim_testkit::eventually("the approval is announced", || async {
        (!got.lock().unwrap().is_empty()).then_some(())
    })
    .await;
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
        let failed = aim_testkit::eventually("the webhook's failure is recorded", || async {
            Some(actions(&s, "approval.webhook_failed").await).filter(|f| !f.is_empty())
        })
        .await;
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
