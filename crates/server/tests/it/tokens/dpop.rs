//! Proof of possession: agents call aim with DPoP-bound tokens, each proof checked and
//! used once; server nonces when required.

use super::*;

crate::api_tests!(agents_call_aim_with_dpop_bound_tokens,);

mod cases {
    use super::*;
    pub async fn agents_call_aim_with_dpop_bound_tokens(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-g", "ES256").await;
        let r = agent.open_task(s).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        let task = r["task_id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tasks/{task}");
        let url = format!("{}{path}", s.base);
        let now = s.clock_now().as_millis() / 1000;
        let proof = |key: &ClientKey, method: &str, url: &str, token: &str, at: i64| {
            key.dpop_proof(method, url, Some(token), at).unwrap()
        };
        let get = reqwest::Method::GET;

        let good = proof(&agent.key, "GET", &url, &token, now);
        let (status, body) = agent_call(s, get.clone(), &path, &token, Some(&good)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], task.as_str());

        let thief = ClientKey::generate("ES256").unwrap();
        let cases = [
            (None, "dpop_required"),
            (
                Some(proof(&thief, "GET", &url, &token, now)),
                "dpop_key_mismatch",
            ),
            (
                Some(proof(&agent.key, "POST", &url, &token, now)),
                "dpop_mismatch",
            ),
            (
                Some(proof(
                    &agent.key,
                    "GET",
                    &format!("{}/v1/tasks", s.base),
                    &token,
                    now,
                )),
                "dpop_mismatch",
            ),
            (
                Some(proof(&agent.key, "GET", &url, "another-token", now)),
                "dpop_mismatch",
            ),
            (
                Some(proof(&agent.key, "GET", &url, &token, now - 300)),
                "dpop_stale",
            ),
        ];
        for (p, expected) in &cases {
            let (status, body) = agent_call(s, get.clone(), &path, &token, p.as_deref()).await;
            assert_eq!(
                (status, body["code"].as_str().unwrap()),
                (401, *expected),
                "{body}"
            );
        }
        // N concurrent copies of one proof: exactly one gets through.
        let once = proof(&agent.key, "GET", &url, &token, now);
        let mut calls = Vec::new();
        for _ in 0..16 {
            let (base, path, token, once) =
                (s.base.clone(), path.clone(), token.clone(), once.clone());
            calls.push(tokio::spawn(async move {
                reqwest::Client::new()
                    .get(format!("{base}{path}"))
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", once)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for call in calls {
            statuses.push(call.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );

        // Its token reaches only its own task, and no human-only endpoint.
        let other = format!("/v1/tasks/{}", aim_domain::ids::TaskId::new());
        let p = proof(
            &agent.key,
            "GET",
            &format!("{}{other}", s.base),
            &token,
            now,
        );
        assert_eq!(
            agent_call(s, get.clone(), &other, &token, Some(&p)).await.0,
            404
        );
        let p = proof(
            &agent.key,
            "GET",
            &format!("{}/v1/identities", s.base),
            &token,
            now,
        );
        let (status, body) = agent_call(s, get.clone(), "/v1/identities", &token, Some(&p)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

        // The agent ends its task; the end is on record with its token's jti.
        let end = format!("{path}/end");
        let p = proof(&agent.key, "POST", &format!("{}{end}", s.base), &token, now);
        let (status, body) = agent_call(s, reqwest::Method::POST, &end, &token, Some(&p)).await;
        assert_eq!(
            (status, body["end_reason"].as_str()),
            (200, Some("ended by the agent")),
            "{body}"
        );
        let ended = actions(s, "task.ended").await;
        let record = ended.iter().find(|e| e.target_id == task).unwrap();
        assert_eq!(record.actor.kind, aim_domain::event::ActorKind::Identity);
        assert!(!record.trail.jti.is_empty());
        // And the token is dead with it.
        let p = proof(&agent.key, "GET", &url, &token, now);
        let (status, body) = agent_call(s, get, &path, &token, Some(&p)).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("task_ended")));
    }
}

/// With `tokens.dpop_nonce`, a proof without the server's nonce is answered with
/// `use_dpop_nonce` and a `DPoP-Nonce` header; a proof carrying it works.
#[tokio::test]
async fn dpop_nonces_when_required() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start_with(backend, |c| c.tokens.dpop_nonce = true).await;
        let c = cast(&s).await;
        let agent = Agent::new(&s, &c, "agt-nonce-a", "EdDSA").await;
        let details = r#"[{"type":"aim_task","purpose":"p","systems":["crm"],"triggered_by":"t"}]"#;
        let post = |proof: String, assertion: String| {
            reqwest::Client::new()
                .post(&agent.endpoint)
                .header("DPoP", proof)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION),
                    ("client_assertion", assertion.as_str()),
                    ("authorization_details", details),
                ])
                .send()
        };
        let resp = post(agent.proof(), agent.assertion(&s)).await.unwrap();
        assert_eq!(resp.status(), 400);
        let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            (body["error"].as_str(), body["code"].as_str()),
            (Some("use_dpop_nonce"), Some("use_dpop_nonce"))
        );
        let now = s.clock_now().as_millis() / 1000;
        let wrong = agent
            .key
            .dpop_proof_with_nonce("POST", &agent.endpoint, None, Some("made-up"), now)
            .unwrap();
        assert_eq!(
            post(wrong, agent.assertion(&s)).await.unwrap().status(),
            400
        );
        let proof = agent
            .key
            .dpop_proof_with_nonce("POST", &agent.endpoint, None, Some(&nonce), now)
            .unwrap();
        let resp = post(proof, agent.assertion(&s)).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("dpop-nonce"));
        // The nonce stays good into the next five-minute window, and not beyond.
        s.clock.advance_millis(300_000);
        let later = s.clock_now().as_millis() / 1000;
        let proof = agent
            .key
            .dpop_proof_with_nonce("POST", &agent.endpoint, None, Some(&nonce), later)
            .unwrap();
        assert_eq!(
            post(proof, agent.assertion(&s)).await.unwrap().status(),
            200
        );
        s.clock.advance_millis(600_000);
        let much_later = s.clock_now().as_millis() / 1000;
        let proof = agent
            .key
            .dpop_proof_with_nonce("POST", &agent.endpoint, None, Some(&nonce), much_later)
            .unwrap();
        assert_eq!(
            post(proof, agent.assertion(&s)).await.unwrap().status(),
            400
        );
        s.stop().await;
    }
}
