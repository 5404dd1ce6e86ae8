//! Getting tokens: `client_credentials` with a client assertion, tasks, agent keys, join
//! tokens, and every way of getting it wrong refused with its own code and recorded.

use super::*;

crate::api_tests!(
    an_agent_gets_a_task_token_that_verifies_against_jwks,
    refusals_have_codes_and_events,
    ending_a_task_stops_its_tokens,
    p256_keys_work_and_revoked_keys_do_not,
    join_tokens_register_a_key_once,
    locked_and_expired_identities_lose_their_tokens,
);

mod cases {
    use super::*;
    pub async fn an_agent_gets_a_task_token_that_verifies_against_jwks(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-a", "EdDSA").await;
        let r = agent.open_task(s).await.unwrap();
        assert_eq!(r["token_type"], "DPoP", "bound to the agent's key");
        assert_eq!(r["expires_in"], 300, "autonomous agents get five minutes");
        let task = r["task_id"].as_str().unwrap().to_owned();
        assert_eq!(r["authorization_details"][0]["systems"], json!(["crm"]));

        let keys = jwks(s).await;
        let now = s.clock_now().as_millis() / 1000;
        let expect = Expect {
            issuer: &s.base,
            audience: "aim",
            now,
        };
        let token = r["access_token"].as_str().unwrap();
        let claims = aim_token::access::verify(token, &keys, &expect).unwrap();
        assert_eq!(claims.sub, "spiffe://aim.local/agent/agt-token-a");
        assert_eq!(claims.client_id, agent.identity.id.to_string());
        assert_eq!(claims.aim_task, task);
        assert_eq!(claims.scope, "crm");
        assert_eq!(
            claims.cnf.as_ref().map(|c| c.jkt.clone()),
            Some(agent.key.kid()),
            "cnf.jkt is the proof key's thumbprint"
        );
        assert_eq!(claims.exp - claims.iat, 300);

        // Getting a token counts as activity for the dormancy sweep.
        let seen = s.admin.identity(agent.identity.id).await.unwrap();
        assert_eq!(seen.last_seen_at, Some(s.clock_now()));
        // And the key it signed with, and the admin's credential, say when they were used.
        let keys = s.admin.agent_keys(agent.identity.id).await.unwrap();
        assert_eq!(keys[0].last_used_at, Some(s.clock_now()), "{keys:?}");
        let admin = s.admin.find_human("admin").await.unwrap();
        let credentials = s.admin.credentials(admin.id).await.unwrap();
        assert!(
            credentials
                .iter()
                .any(|c| c.last_used_at == Some(s.clock_now())),
            "{credentials:?}"
        );

        // More tokens for the same task, by naming it.
        let again = agent.continue_task(s, &task).await.unwrap();
        assert_eq!(again["task_id"], task.as_str());
        let t = s.admin.task(task.parse().unwrap()).await.unwrap();
        assert_eq!(t.triggered_by, "alice: TICKET-7");
        assert_eq!(t.subject.as_deref(), Some("customer:42"));

        // The record: the task opened once, two tokens issued, each with its jti, and the
        // token itself nowhere.
        let trace = s.admin.audit_trace(task.parse().unwrap()).await.unwrap();
        assert_eq!(trace.triggered_by, ["alice: TICKET-7"]);
        assert_eq!(trace.events[0].action.as_str(), "task.opened");
        assert_eq!(trace.tokens.len(), 2);
        assert_eq!(trace.tokens[0].jti, claims.jti);
        let all = serde_json::to_string(
            &s.admin
                .audit(&vec![("limit", "500".into())])
                .await
                .unwrap()
                .items,
        )
        .unwrap();
        assert!(!all.contains(token), "no token in the log");
    }

    pub async fn refusals_have_codes_and_events(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-b", "EdDSA").await;
        let id = agent.identity.id.to_string();
        let now = s.clock_now().as_millis() / 1000;
        let task = (
            "authorization_details",
            r#"[{"type":"aim_task","purpose":"p","systems":["crm"],"triggered_by":"t"}]"#,
        );
        let signed = |claims: Value| {
            agent
                .key
                .sign(json!({ "typ": "JWT", "kid": agent.key.kid() }), &claims)
                .unwrap()
        };
        let claims = |exp: Value| json!({ "iss": id, "sub": id, "aud": agent.endpoint, "exp": exp, "jti": uuid::Uuid::now_v7().to_string() });
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let none = format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": "JWT", "kid": agent.key.kid() })),
            b64(&claims(json!(now + 60)))
        );
        let mut other_aud = claims(json!(now + 60));
        other_aud["aud"] = json!("https://elsewhere/oauth/token");
        let stranger = ClientKey::generate("EdDSA").unwrap();
        let unknown_kid = stranger.assertion(&id, &agent.endpoint, now, 60).unwrap();
        let with_jwk = agent
            .key
            .sign(
                json!({ "typ": "JWT", "kid": agent.key.kid(), "jwk": stranger.public().to_json() }),
                &claims(json!(now + 60)),
            )
            .unwrap();
        let traversal = agent
            .key
            .sign(
                json!({ "typ": "JWT", "kid": "../../etc/passwd" }),
                &claims(json!(now + 60)),
            )
            .unwrap();
        let cases: Vec<(String, (&str, &str), &str)> = vec![
            (none, task, "alg_not_allowed"),
            (signed(claims(json!(now - 1))), task, "token_expired"),
            (signed(claims(json!(now + 3600))), task, "lifetime_too_long"),
            (signed(claims(json!("soon"))), task, "invalid_claim"),
            (signed(claims(Value::Null)), task, "invalid_claim"),
            (signed(other_aud), task, "wrong_audience"),
            (unknown_kid, task, "unknown_kid"),
            (with_jwk, task, "header_key_forbidden"),
            (traversal, task, "invalid_kid"),
            ("not.a.jwt".to_owned(), task, "malformed_token"),
            (
                agent.assertion(s),
                (
                    "authorization_details",
                    r#"[{"type":"aim_task","purpose":"p","systems":["payroll"],"triggered_by":"t"}]"#,
                ),
                "invalid_authorization_details",
            ),
            (
                agent.assertion(s),
                ("authorization_details", "{"),
                "invalid_authorization_details",
            ),
            (agent.assertion(s), ("scope", "everything"), "task_required"),
            (
                agent.assertion(s),
                ("task_id", "0190a0a0-0000-7000-8000-000000000000"),
                "invalid_task",
            ),
        ];
        let before = actions(s, "token.refused").await.len();
        for (assertion, task, expected) in &cases {
            let got = agent.token_with(assertion, *task).await;
            assert_eq!(code(got), *expected, "{assertion}");
        }
        // A replayed assertion: the first use works, the second is refused.
        let once = agent.assertion(s);
        agent.token_with(&once, task).await.unwrap();
        assert_eq!(code(agent.token_with(&once, task).await), "replayed");
        // DPoP at the token endpoint: required for autonomous agents, for this request,
        // fresh, and once.
        let proof_for = |method: &str, url: &str, skew: i64| {
            agent
                .key
                .dpop_proof(method, url, None, s.clock_now().as_millis() / 1000 + skew)
                .unwrap()
        };
        let dpop_cases: Vec<(Option<String>, &str)> = vec![
            (None, "dpop_required"),
            (Some(proof_for("GET", &agent.endpoint, 0)), "dpop_mismatch"),
            (
                Some(proof_for("POST", "http://elsewhere/oauth/token", 0)),
                "dpop_mismatch",
            ),
            (Some(proof_for("POST", &agent.endpoint, -120)), "dpop_stale"),
            (Some("garbage".into()), "invalid_dpop_proof"),
        ];
        for (proof, expected) in &dpop_cases {
            let got = agent
                .token_with_proof(&agent.assertion(s), task, proof.as_deref())
                .await;
            assert_eq!(code(got), *expected);
        }
        let proof = agent.proof();
        agent
            .token_with_proof(&agent.assertion(s), task, Some(&proof))
            .await
            .unwrap();
        assert_eq!(
            code(
                agent
                    .token_with_proof(&agent.assertion(s), task, Some(&proof))
                    .await
            ),
            "replayed",
            "a DPoP proof works once"
        );
        // No assertion at all, and the wrong grant.
        assert_eq!(
            code(
                agent
                    .http
                    .oauth_token(&[("grant_type", "client_credentials")], None)
                    .await
            ),
            "assertion_required"
        );
        assert_eq!(
            code(
                agent
                    .http
                    .oauth_token(&[("grant_type", "password")], None)
                    .await
            ),
            "unsupported_grant_type"
        );
        let refused = actions(s, "token.refused").await;
        assert_eq!(
            refused.len() - before,
            cases.len() + dpop_cases.len() + 4,
            "each refusal is an event"
        );
        assert!(
            refused
                .iter()
                .any(|e| e.reason == "replayed" && e.actor.id == id)
        );

        // A suspended identity gets nothing, even with a good assertion.
        c.sponsor_client
            .identity_action(agent.identity.id, "suspend", "paused")
            .await
            .unwrap();
        assert_eq!(code(agent.open_task(s).await), "identity_not_active");
    }

    pub async fn ending_a_task_stops_its_tokens(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-c", "EdDSA").await;
        let r = agent.open_task(s).await.unwrap();
        let task = r["task_id"].as_str().unwrap().to_owned();
        // A token on the task just before it ends: what it was issued on is fresh in the
        // issuing cache, and must not outlive the end.
        agent.continue_task(s, &task).await.unwrap();
        let ended = c
            .sponsor_client
            .end_task(task.parse().unwrap(), "done")
            .await
            .unwrap();
        assert_eq!(ended.end_reason, "done");
        assert_eq!(code(agent.continue_task(s, &task).await), "task_ended");
        assert_eq!(
            code(
                c.sponsor_client
                    .end_task(task.parse().unwrap(), "again")
                    .await
            ),
            "task_ended"
        );
        let revs: Vec<_> = s.db.store.revocations(0, 100).await.unwrap();
        assert!(
            revs.iter()
                .any(|r| r.kind.as_str() == "task" && r.value == task)
        );
        // A task past its deadline ends by itself.
        let r = agent.open_task(s).await.unwrap();
        let task = r["task_id"].as_str().unwrap().to_owned();
        s.clock.advance_millis(3_601_000);
        assert_eq!(code(agent.continue_task(s, &task).await), "task_ended");
        let state =
            s.db.store
                .task(task.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(state.state, aim_domain::task::TaskState::Open);
    }

    pub async fn p256_keys_work_and_revoked_keys_do_not(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-d", "ES256").await;
        agent.open_task(s).await.unwrap();
        let keys = c
            .sponsor_client
            .agent_keys(agent.identity.id)
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, "ES256");
        assert_eq!(keys[0].kid, agent.key.kid());
        // The same key twice is a conflict; a private key is refused outright.
        assert_eq!(
            code(
                c.sponsor_client
                    .add_agent_key(agent.identity.id, &agent.key.public().to_json(), "again")
                    .await
            ),
            "key_already_registered"
        );
        let mut private = agent.key.public().to_json();
        private["d"] = json!("AAAA");
        assert_eq!(
            code(
                c.sponsor_client
                    .add_agent_key(agent.identity.id, &private, "oops")
                    .await
            ),
            "invalid_key"
        );
        // Someone else's sponsor cannot add keys.
        let (_, other) = s
            .human("other-sponsor", &[aim_domain::human::Role::Sponsor])
            .await;
        assert_eq!(
            code(
                other
                    .add_agent_key(
                        agent.identity.id,
                        &ClientKey::generate("EdDSA").unwrap().public().to_json(),
                        "x"
                    )
                    .await
            ),
            "forbidden"
        );
        c.sponsor_client
            .revoke_agent_key(agent.identity.id, &agent.key.kid(), "lost laptop")
            .await
            .unwrap();
        assert_eq!(code(agent.open_task(s).await), "key_revoked");
    }

    pub async fn join_tokens_register_a_key_once(s: &TestServer) {
        let c = cast(s).await;
        let identity = active_identity(s, &c, "agt-join-a").await;
        let issued = c
            .sponsor_client
            .create_join_token(identity.id, None)
            .await
            .unwrap();
        let secret = issued.token.clone();
        assert!(secret.starts_with("aimjoin_"));
        let key = ClientKey::generate("EdDSA").unwrap();
        let url = format!("{}/v1/join", s.base);
        let now = || s.clock_now().as_millis() / 1000;
        let proof = |k: &ClientKey| k.dpop_proof("POST", &url, None, now()).unwrap();
        let anon = s.client(None);
        let jwk = key.public().to_json();

        // The proof must come from the key being registered, and must be there.
        let other = ClientKey::generate("EdDSA").unwrap();
        assert_eq!(
            code(anon.join(&secret, &jwk, "w", Some(&proof(&other))).await),
            "dpop_key_mismatch"
        );
        assert_eq!(
            code(anon.join(&secret, &jwk, "w", None).await),
            "dpop_required"
        );
        // Then it works, once.
        let k = anon
            .join(&secret, &jwk, "worker-1", Some(&proof(&key)))
            .await
            .unwrap();
        assert_eq!((k.identity_id, k.kid.clone()), (identity.id, key.kid()));
        assert!(k.created_by.starts_with("join-token:"));
        let another = ClientKey::generate("EdDSA").unwrap();
        assert_eq!(
            code(
                anon.join(
                    &secret,
                    &another.public().to_json(),
                    "w",
                    Some(&proof(&another))
                )
                .await
            ),
            "join_token_invalid",
            "single use"
        );
        assert_eq!(
            code(
                anon.join("aimjoin_nonsense", &jwk, "w", Some(&proof(&key)))
                    .await
            ),
            "join_token_invalid"
        );
        // An expired one is refused too.
        let short = c
            .sponsor_client
            .create_join_token(identity.id, Some(60))
            .await
            .unwrap();
        s.clock.advance_millis(61_000);
        assert_eq!(
            code(
                anon.join(
                    &short.token,
                    &another.public().to_json(),
                    "w",
                    Some(&proof(&another))
                )
                .await
            ),
            "join_token_invalid"
        );
        // Only the sponsor (or an admin) makes them, and within limits.
        let (_, other_sponsor) = s
            .human("js-other", &[aim_domain::human::Role::Sponsor])
            .await;
        assert_eq!(
            code(other_sponsor.create_join_token(identity.id, None).await),
            "forbidden"
        );
        assert_eq!(
            code(
                c.sponsor_client
                    .create_join_token(identity.id, Some(5))
                    .await
            ),
            "validation_failed"
        );
        // The joined key gets tokens.
        let agent = Agent {
            endpoint: format!("{}/oauth/token", s.base),
            identity,
            key,
            http: s.client(None),
            clock: s.clock.clone(),
        };
        agent.open_task(s).await.unwrap();
        assert_eq!(actions(s, "join.refused").await.len(), 5);
    }

    pub async fn locked_and_expired_identities_lose_their_tokens(s: &TestServer) {
        let c = cast(s).await;
        let locked = Agent::new(s, &c, "agt-lock-a", "EdDSA").await;
        let r = locked.open_task(s).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        c.sponsor_client
            .identity_action(locked.identity.id, "lock", "suspicious traffic")
            .await
            .unwrap();
        assert!(!s.admin.introspect(&token).await.unwrap().active);
        assert_eq!(code(locked.open_task(s).await), "identity_not_active");

        // An identity past its end of life is expired by the sweep; its tokens die with it.
        let expiring = Agent::new(s, &c, "agt-expire-a", "EdDSA").await;
        let r = expiring.open_task(s).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        assert!(s.admin.introspect(&token).await.unwrap().active);
        s.clock.advance_days(31);
        s.admin.run_sweep().await.unwrap();
        let i = s.admin.identity(expiring.identity.id).await.unwrap();
        assert_eq!(i.state, aim_domain::lifecycle::LifecycleState::Expired);
        assert!(!s.admin.introspect(&token).await.unwrap().active);
        assert_eq!(code(expiring.open_task(s).await), "identity_not_active");
        let revs = s.admin.revocations(0).await.unwrap();
        let kinds: Vec<(String, String)> = revs
            .items
            .iter()
            .map(|r| (r.kind.as_str().to_owned(), r.value.clone()))
            .collect();
        for id in [locked.identity.id, expiring.identity.id] {
            assert!(
                kinds.contains(&("identity".to_owned(), id.to_string())),
                "{kinds:?}"
            );
        }
    }
}
