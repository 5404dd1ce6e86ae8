//! An agent's calls through the gateway: allowed, denied, held for approval, refused for
//! an ambiguous path or a missing proof; what the upstream receives; what aim records.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aim_testkit::Backend;
use serde_json::json;

use crate::harness::{Setup, UPSTREAM_KEY};

#[tokio::test]
async fn an_allowed_call_carries_the_injected_credential_and_never_the_agents_token() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let a = &s.agent;
        // The agent tries to pass its own API key and aim headers along.
        let (status, _, body) = a
            .call(
                &s.gateway,
                "GET",
                "/crm/records/42?subject=customer:42",
                None,
                &[
                    ("x-api-key", "forged-by-the-agent"),
                    ("x-aim-identity", "someone-else"),
                    ("x-request-id", "req-gw-1"),
                    ("cookie", "session=agent"),
                    (
                        "aim-model-decision",
                        "the user asked for the customer's record",
                    ),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["uri"], "/records/42?subject=customer:42");
        let seen = s.seen();
        assert_eq!(seen.len(), 1);
        let h = &seen[0].headers;
        let all: Vec<_> = h.get_all("x-api-key").iter().collect();
        assert_eq!(
            all,
            [UPSTREAM_KEY],
            "only the gateway's credential goes upstream"
        );
        for gone in ["authorization", "dpop", "cookie"] {
            assert!(h.get(gone).is_none(), "{gone} reached the upstream");
        }
        for (name, value) in h {
            let v = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !v.contains(&a.token),
                "the agent's token reached the upstream in {name}"
            );
        }
        assert_eq!(h["x-aim-identity"], a.identity.id.to_string().as_str());
        assert_eq!(h["x-aim-task"], a.task.as_str());
        assert_eq!(h["x-request-id"], "req-gw-1");

        // The decision is on aim's record under the agent's task and request id, with the
        // question's attributes.
        let decisions = s.events("decision").await;
        let d = decisions.last().unwrap();
        assert_eq!(d.trail.task_id, a.task);
        assert_eq!(d.request_id, "req-gw-1");
        assert_eq!(d.outcome.as_str(), "allow");
        assert_eq!(d.detail["action"], "read");
        assert_eq!(
            (d.target_type.as_str(), d.target_id.as_str()),
            ("Resource", "crm/customers/42")
        );
        assert_eq!(d.detail["attrs"]["subject"], "customer:42");
        assert_eq!(d.detail["attrs"]["sensitivity"], "confidential");
        assert_eq!(
            d.detail["call"],
            json!({ "method": "GET", "path": "/crm/records/42" })
        );
        assert_eq!(d.trail.policies, ["crm-read"]);
        assert_eq!(d.actor.id, a.identity.id.to_string());
        // Taken at the gateway (aim's own decisions name no gateway), recorded by aim.
        assert_eq!(d.detail["gateway"], "gw-1");

        // The call follows its decision on the record, under the same task and token.
        let calls = aim_testkit::eventually("the call reaches the record", || async {
            Some(s.events("tool.called").await).filter(|c| !c.is_empty())
        })
        .await;
        let c = calls.last().expect("the call is on the record");
        assert_eq!(
            (c.trail.task_id.as_str(), c.trail.jti.as_str()),
            (a.task.as_str(), d.trail.jti.as_str())
        );
        assert_eq!(c.request_id, "req-gw-1");
        assert_eq!(c.target_id, "crm");
        assert_eq!(c.detail["status"], 200);
        assert_eq!(c.detail["resource"], "crm/customers/42");
        assert_eq!(
            c.detail["model_decision"],
            "the user asked for the customer's record"
        );
        assert!(c.detail["micros"].as_u64().unwrap() > 0);
        assert!(seen[0].headers.get("aim-model-decision").is_none());
        let trace = s
            .aim
            .admin
            .audit_trace(a.task.parse().unwrap())
            .await
            .unwrap();
        let trace = serde_json::to_string(&trace).unwrap();
        assert!(trace.contains("tool.called"), "{trace}");
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn a_call_no_policy_allows_is_denied_and_never_forwarded() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let (status, _, body) = s
            .agent
            .call(&s.gateway, "DELETE", "/crm/records/42", None, &[])
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("deny")),
            "{body}"
        );
        assert_eq!(body["decision"], "deny");
        assert!(s.seen().is_empty());
        let d = s.events("decision").await;
        assert_eq!(d.last().unwrap().outcome.as_str(), "deny");
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn an_action_held_for_approval_goes_through_once_after_it() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let args = json!({ "subject": "customer:42", "note": "refund approved by phone" });
        // A write of `body` to record 42, retried with `approval` if given: its status and code.
        let write = |body: serde_json::Value, approval: Option<String>| {
            let s = &s;
            async move {
                let headers: Vec<(&str, &str)> = approval
                    .as_deref()
                    .map(|id| ("aim-approval-id", id))
                    .into_iter()
                    .collect();
                let (status, _, answer) = s
                    .agent
                    .call(&s.gateway, "POST", "/crm/records/42", Some(body), &headers)
                    .await;
                (status, answer["code"].as_str().map(str::to_owned), answer)
            }
        };
        let (status, code, body) = write(args.clone(), None).await;
        assert_eq!(
            (status, code.as_deref()),
            (403, Some("approval_required")),
            "{body}"
        );
        let id = body["approval_id"].as_str().unwrap().to_owned();
        assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
        // Retried before approval: still waiting.
        let (status, code, _) = write(args.clone(), Some(id.clone())).await;
        assert_eq!((status, code.as_deref()), (403, Some("approval_pending")));
        assert!(s.seen().is_empty());

        s.sponsor
            .decide_approval(id.parse().unwrap(), "approve", "the customer called")
            .await
            .unwrap();
        // Other arguments are not what was approved.
        let other = json!({ "subject": "customer:42", "note": "and a bit more" });
        let (status, code, _) = write(other, Some(id.clone())).await;
        assert_eq!((status, code.as_deref()), (403, Some("approval_mismatch")));
        assert!(s.seen().is_empty());

        let (status, _, body) = write(args.clone(), Some(id.clone())).await;
        assert_eq!(status, 200, "{body}");
        let seen = s.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&seen[0].body).unwrap(),
            args
        );
        // Once.
        let (status, code, _) = write(args, Some(id)).await;
        assert_eq!((status, code.as_deref()), (403, Some("approval_used")));
        assert_eq!(s.seen().len(), 1);
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn a_call_without_a_token_or_proof_is_refused_with_where_to_get_one() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("{}/crm/records/42", s.gateway);
        let (status, headers, body) = crate::harness::send(http.get(&url)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{body}"
        );
        let challenge = headers["www-authenticate"].to_str().unwrap().to_owned();
        let metadata_url = format!("{}/.well-known/oauth-protected-resource", s.gateway);
        assert!(
            challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{challenge}"
        );
        let meta: serde_json::Value = http
            .get(&metadata_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["resource"], s.gateway.as_str());
        assert_eq!(meta["authorization_servers"], json!([s.aim.base]));
        assert_eq!(meta["dpop_bound_access_tokens_required"], true);

        // The token without its proof, and with a proof for another URL.
        let a = &s.agent;
        let no_proof = http
            .get(&url)
            .header("authorization", format!("DPoP {}", a.token));
        let (status, headers, body) = crate::harness::send(no_proof).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        let elsewhere = a.proof("GET", &format!("{}/crm/records/43", s.gateway));
        let wrong = http
            .get(&url)
            .header("authorization", format!("DPoP {}", a.token))
            .header("dpop", elsewhere);
        let (status, _, body) = crate::harness::send(wrong).await;
        assert_eq!(status, 401, "{body}");

        // A proof used once is refused the second time.
        let proof = a.proof("GET", &url);
        let once = || {
            http.get(&url)
                .header("authorization", format!("DPoP {}", a.token))
                .header("dpop", proof.clone())
        };
        assert_eq!(crate::harness::send(once()).await.0, 200);
        let (status, _, body) = crate::harness::send(once()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("dpop_replayed")),
            "{body}"
        );
        assert_eq!(s.seen().len(), 1);
        // The refusal without a token is on aim's record.
        let refused = s.events("request.refused").await;
        assert!(
            refused.iter().any(|e| e.reason == "unauthenticated"),
            "{refused:?}"
        );
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn an_ambiguous_path_is_refused_before_anything_decides_and_recorded() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let a = &s.agent;
        for path in [
            "/crm/records/%2E%2E",
            "/crm/records/..%2Fadmin",
            "/CRM/records/42",
            "/crm/Records/42",
            "/crm//records/42",
            "/crm/records/4%32",
            "/crm/records/%EF%BC%94%EF%BC%92",
            "/crm/records/42;admin",
        ] {
            let (status, body) = a.raw_get(&s.gateway, path).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (400, Some("non_canonical_path")),
                "{path}: {body}"
            );
        }
        let (status, _, body) = a.call(&s.gateway, "GET", "/crm/unknown", None, &[]).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("no_route")),
            "{body}"
        );
        let (status, _, body) = a
            .call(&s.gateway, "PUT", "/crm/records/42", None, &[])
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (405, Some("method_not_allowed")),
            "{body}"
        );
        assert!(s.seen().is_empty());
        assert!(s.events("decision").await.is_empty(), "nothing was decided");
        let refused = s.events("request.refused").await;
        let ambiguous = refused
            .iter()
            .filter(|e| e.reason == "non_canonical_path")
            .count();
        assert_eq!(ambiguous, 8, "{refused:?}");
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let s = Setup::start(Backend::Sqlite).await;
    let a = &s.agent;
    // The same agent's token for aim's own API, not for this gateway (RFC 8707).
    let key = aim_token::client::ClientKey::from_pem(&a.key.to_pem()).unwrap();
    let for_aim = crate::harness::agent_with_task(&s.aim, a.identity.clone(), key, None).await;
    let (status, _, body) = for_aim
        .call(&s.gateway, "GET", "/crm/records/42", None, &[])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("wrong_audience")),
        "{body}"
    );
    assert!(s.seen().is_empty());
    s.aim.stop().await;
}

#[tokio::test]
async fn when_aim_cannot_decide_nothing_is_forwarded() {
    let s = Setup::start(Backend::Sqlite).await;
    let (gateway, agent, seen) = (s.gateway.clone(), s.agent, s.seen);
    s.aim.stop().await;
    let (status, headers, body) = agent
        .call(&gateway, "GET", "/crm/records/42", None, &[])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("aim_unavailable")),
        "{body}"
    );
    assert!(headers.get("www-authenticate").is_none());
    assert!(seen.lock().unwrap().is_empty());
}

/// An upstream whose bearer token is kept in aim, read for every call (`cache_ms = 0`).
const FROM_AIM: &str = r#"
[upstreams.billing]
url = "http://127.0.0.1:UPSTREAM"
strip_prefix = "/billing"
allow_addresses = ["127.0.0.1/32"]
credential = { kind = "bearer", aim_secret = "billing-token", cache_ms = 0 }

[[routes]]
upstream = "billing"
method = "GET"
path = "/billing/invoices/{id}"
action = "read"
resource = { system = "crm", id = "crm/invoices/{id}", attrs = { type = "invoice", sensitivity = "internal" } }
"#;

#[tokio::test]
async fn a_credential_kept_in_aim_is_injected_as_it_is_now_and_none_means_no_call() {
    let s = Setup::start_with(Backend::Sqlite, FROM_AIM).await;
    let a = &s.agent;
    let call = || a.call(&s.gateway, "GET", "/billing/invoices/7", None, &[]);
    // Not stored yet: the call is refused and nothing reaches the upstream.
    let (status, _, body) = call().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("upstream_credential_unavailable")),
        "{body}"
    );
    assert!(s.seen().is_empty());
    let bearer = |i: usize| {
        s.seen()[i]
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for (i, token) in ["billing-token-1", "billing-token-2"]
        .into_iter()
        .enumerate()
    {
        s.aim
            .admin
            .put_upstream_secret(
                "billing-token",
                &aim_api::secrets::PutUpstreamSecret {
                    value: token.into(),
                    description: String::new(),
                    gateways: Vec::new(),
                },
            )
            .await
            .unwrap();
        let (status, _, body) = call().await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            bearer(i).as_deref(),
            Some(format!("Bearer {token}").as_str())
        );
        assert!(s.seen()[i].headers.get("dpop").is_none());
    }
    let reads = s.events("upstream_secret.read").await;
    assert_eq!(reads.len(), 2, "each read is on the record");
    s.aim.stop().await;
}

/// A token endpoint that takes `svc-gw`'s client credentials and counts what it issues.
async fn token_endpoint(issued: Arc<AtomicUsize>) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: String| {
                let issued = issued.clone();
                async move {
                    use base64::Engine;
                    let basic = base64::engine::general_purpose::STANDARD.encode("svc-gw:client-secret-9");
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v.to_str().unwrap() == format!("Basic {basic}"));
                    let grant = body.contains("grant_type=client_credentials") && body.contains("scope=erp.read");
                    if !authorized || !grant {
                        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "invalid_client" })));
                    }
                    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({ "access_token": format!("erp-at-{n}"), "token_type": "Bearer", "expires_in": 3600 })),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn an_oauth_upstream_gets_a_client_credentials_token_obtained_once_and_reused() {
    let issued = Arc::new(AtomicUsize::new(0));
    let tokens = token_endpoint(issued.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("erp-client-secret");
    std::fs::write(&secret, "client-secret-9\n").unwrap();
    let extra = format!(
        r#"
[upstreams.erp]
url = "http://127.0.0.1:UPSTREAM"
strip_prefix = "/erp"
allow_addresses = ["127.0.0.1/32"]
credential = {{ kind = "oauth", token_url = "http://{tokens}/token", client_id = "svc-gw", scope = "erp.read", credential_file = "{}" }}

[[routes]]
upstream = "erp"
method = "GET"
path = "/erp/orders/{{id}}"
action = "read"
resource = {{ system = "crm", id = "crm/orders/{{id}}", attrs = {{ type = "order", sensitivity = "internal" }} }}
"#,
        secret.display()
    );
    let s = Setup::start_with(Backend::Sqlite, &extra).await;
    for _ in 0..3 {
        let (status, _, body) = s
            .agent
            .call(&s.gateway, "GET", "/erp/orders/7", None, &[])
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token, reused until it nears expiry"
    );
    for seen in s.seen() {
        assert_eq!(
            seen.headers.get("authorization").unwrap(),
            "Bearer erp-at-1"
        );
    }
    s.aim.stop().await;
}

/// Credentials that could not work are refused when the gateway starts, with what to fix.
#[test]
fn an_upstream_credential_that_cannot_work_is_refused_at_start() {
    let vault = |extra: &str| {
        format!(
            r#"vault = {{ addr = "http://127.0.0.1:8200", path = "database/creds/crm", field = "password", token_env = "PATH"{extra} }}"#
        )
    };
    for (credential, says) in [
        (
            format!(
                r#"kind = "oauth", token_url = "http://127.0.0.1:9/token", client_id = "c", {}"#,
                vault(", dynamic = true")
            ),
            "not leased per task",
        ),
        (
            format!(r#"kind = "basic", {}"#, vault("")),
            "needs a username",
        ),
        (
            format!(
                r#"kind = "header", name = "x-key", {}"#,
                vault(r#", username_field = "username""#)
            ),
            "kind = \"basic\"",
        ),
    ] {
        let upstream = format!(
            "url = \"http://127.0.0.1:9000\"\nallow_addresses = [\"127.0.0.1/32\"]\ncredential = {{ {credential} }}"
        );
        let e = crate::harness::check_upstream(&upstream).expect_err(&upstream);
        assert!(e.contains(says), "{upstream}: {e}");
    }
    let dynamic = format!(
        r#"kind = "basic", {}"#,
        vault(r#", username_field = "username", dynamic = true"#)
    );
    crate::harness::check_upstream(&format!(
        "url = \"http://127.0.0.1:9000\"\nallow_addresses = [\"127.0.0.1/32\"]\ncredential = {{ {dynamic} }}"
    ))
    .unwrap();
}
