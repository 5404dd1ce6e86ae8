//! `POST /oauth/token`: an agent with a registered key gets a task-scoped access token that
//! any holder of the JWKS verifies; each way of getting it wrong is refused with its own
//! code and recorded.

use aim_client::Client;
use aim_domain::identity::Identity;
use aim_testkit::TestServer;
use aim_token::access::{Expect, TrustedKeys};
use aim_token::client::ClientKey;
use serde_json::{Value, json};

use crate::api_tests;
use crate::fixtures::{Cast, ClockExt, active_identity, cast, code};

api_tests!(
    an_agent_gets_a_task_token_that_verifies_against_jwks,
    refusals_have_codes_and_events,
    ending_a_task_stops_its_tokens,
    p256_keys_work_and_revoked_keys_do_not,
    introspection_and_revocation_follow_live_state,
    signing_keys_rotate_and_revoke,
    agents_call_aim_with_dpop_bound_tokens,
    delegation_narrows_and_dies_with_its_parent,
    join_tokens_register_a_key_once,
    revocations_stream_to_gateways,
    locked_and_expired_identities_lose_their_tokens,
);

/// Reads server-sent events from `resp` until one `revocation` event arrives; returns its
/// id and data.
async fn next_revocation(resp: &mut reqwest::Response, buf: &mut String) -> (i64, Value) {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            if field("event:").as_deref() == Some("revocation") {
                let id = field("id:").unwrap().parse().unwrap();
                let data = serde_json::from_str(&field("data:").unwrap()).unwrap();
                return (id, data);
            }
            continue;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), resp.chunk())
            .await
            .expect("a revocation within 5 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

impl Agent {
    /// Exchanges `parent` (held by `self`) for a token for `sub`: `sub` signs the actor
    /// assertion, `self` signs the DPoP proof for its own token.
    async fn exchange(
        &self,
        s: &TestServer,
        parent: &str,
        sub: &Agent,
        scope: Option<&str>,
    ) -> aim_client::Result<Value> {
        let now = s.clock_now().as_millis() / 1000;
        let actor = sub.assertion(s);
        let proof = self
            .key
            .dpop_proof("POST", &self.endpoint, Some(parent), now)
            .unwrap();
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", parent),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("actor_token", actor.as_str()),
            ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ];
        if let Some(sc) = scope {
            form.push(("scope", sc));
        }
        self.http.oauth_token(&form, Some(&proof)).await
    }
}

/// An agent's request to aim: `Authorization: DPoP <token>` and, if given, a `DPoP` proof.
async fn agent_call(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    proof: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", s.base))
        .header("Authorization", format!("DPoP {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Agent {
    identity: Identity,
    key: ClientKey,
    http: Client,
    endpoint: String,
    clock: aim_domain::time::FakeClock,
}

impl Agent {
    async fn new(s: &TestServer, c: &Cast, name: &str, alg: &str) -> Agent {
        let identity = active_identity(s, c, name).await;
        let key = ClientKey::generate(alg).unwrap();
        c.sponsor_client
            .add_agent_key(identity.id, &key.public().to_json(), "test key")
            .await
            .unwrap();
        let http = s.client(None);
        let meta: Value =
            reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        Agent {
            identity,
            key,
            http,
            clock: s.clock.clone(),
            endpoint: meta["token_endpoint"].as_str().unwrap().to_owned(),
        }
    }

    fn assertion(&self, s: &TestServer) -> String {
        let now = s.clock_now().as_millis() / 1000;
        self.key
            .assertion(&self.identity.id.to_string(), &self.endpoint, now, 60)
            .unwrap()
    }

    /// A fresh DPoP proof for the token endpoint.
    fn proof(&self) -> String {
        use aim_domain::Clock;
        let now = self.clock.now().as_millis() / 1000;
        self.key
            .dpop_proof("POST", &self.endpoint, None, now)
            .unwrap()
    }

    async fn token_with(&self, assertion: &str, task: (&str, &str)) -> aim_client::Result<Value> {
        let proof = self.proof();
        self.token_with_proof(assertion, task, Some(&proof)).await
    }

    async fn token_with_proof(
        &self,
        assertion: &str,
        task: (&str, &str),
        proof: Option<&str>,
    ) -> aim_client::Result<Value> {
        self.http
            .oauth_token(
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION),
                    ("client_assertion", assertion),
                    task,
                ],
                proof,
            )
            .await
    }

    async fn open_task(&self, s: &TestServer) -> aim_client::Result<Value> {
        let details = json!([{
            "type": "aim_task",
            "purpose": "triage the claim",
            "systems": ["crm"],
            "subject": "customer:42",
            "triggered_by": "alice: TICKET-7",
        }])
        .to_string();
        self.token_with(&self.assertion(s), ("authorization_details", &details))
            .await
    }

    async fn continue_task(&self, s: &TestServer, task: &str) -> aim_client::Result<Value> {
        self.token_with(&self.assertion(s), ("task_id", task)).await
    }
}

async fn jwks(s: &TestServer) -> TrustedKeys {
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    TrustedKeys::from_jwks(&jwks).unwrap()
}

async fn actions(s: &TestServer, action: &str) -> Vec<aim_domain::event::Event> {
    s.admin
        .audit(&vec![
            ("action", action.to_owned()),
            ("limit", "500".into()),
        ])
        .await
        .unwrap()
        .items
}

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
        assert_eq!(trace.events[0].action, "task.opened");
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
        assert!(revs.iter().any(|r| r.kind == "task" && r.value == task));
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

    pub async fn introspection_and_revocation_follow_live_state(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-e", "EdDSA").await;
        let active = |v: &Value| v["active"].as_bool().unwrap();
        let token = |r: Value| r["access_token"].as_str().unwrap().to_owned();

        let first = token(agent.open_task(s).await.unwrap());
        let v = s.admin.introspect(&first).await.unwrap();
        assert!(active(&v), "{v}");
        assert_eq!(v["client_id"], agent.identity.id.to_string());
        assert!(!active(&s.admin.introspect("garbage").await.unwrap()));
        // Sponsors revoke (RFC 7009); the token is dead at once, and revoking again is fine.
        c.sponsor_client.revoke_token(&first).await.unwrap();
        c.sponsor_client.revoke_token(&first).await.unwrap();
        assert!(!active(&s.admin.introspect(&first).await.unwrap()));
        // Sponsors may not introspect; auditors may.
        assert_eq!(code(c.sponsor_client.introspect(&first).await), "forbidden");

        let second = token(agent.open_task(s).await.unwrap());
        assert!(active(&s.admin.introspect(&second).await.unwrap()));
        c.sponsor_client
            .identity_action(agent.identity.id, "suspend", "paused")
            .await
            .unwrap();
        assert!(!active(&s.admin.introspect(&second).await.unwrap()));
        c.sponsor_client
            .identity_action(agent.identity.id, "resume", "back")
            .await
            .unwrap();
        assert!(
            !active(&s.admin.introspect(&second).await.unwrap()),
            "resuming does not revive tokens issued before the suspension"
        );
        s.clock.advance_millis(1000);
        let third = token(agent.open_task(s).await.unwrap());
        assert!(active(&s.admin.introspect(&third).await.unwrap()));

        // The list gateways follow: the token and the identity, each with its epoch.
        let list = s.admin.revocations(0).await.unwrap();
        let kinds: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"token") && kinds.contains(&"identity"),
            "{list}"
        );
        let epoch = list["epoch"].as_i64().unwrap();
        assert!(
            s.admin.revocations(epoch).await.unwrap()["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(actions(s, "token.revoked").await.len(), 2);
    }

    pub async fn signing_keys_rotate_and_revoke(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-f", "EdDSA").await;
        let token = |r: Value| r["access_token"].as_str().unwrap().to_owned();
        let old_token = token(agent.open_task(s).await.unwrap());
        let keys = s.admin.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        let old = keys[0]["kid"].as_str().unwrap().to_owned();
        assert_eq!(
            code(c.sponsor_client.rotate_signing_key().await),
            "forbidden"
        );

        let keys = s.admin.rotate_signing_key().await.unwrap();
        assert_eq!(keys.len(), 2);
        let current: Vec<_> = keys.iter().filter(|k| k["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_ne!(current[0]["kid"], old.as_str());
        assert!(
            keys.iter().all(|k| k["published"] == true),
            "the old key still verifies: {keys:?}"
        );
        assert!(jwks(s).await.contains(&old));
        assert_eq!(
            s.admin.introspect(&old_token).await.unwrap()["active"],
            true
        );
        let new_token = token(agent.open_task(s).await.unwrap());
        assert_eq!(
            s.admin.introspect(&new_token).await.unwrap()["active"],
            true
        );

        s.admin
            .revoke_signing_key(&old, "compromised")
            .await
            .unwrap();
        assert_eq!(
            s.admin.introspect(&old_token).await.unwrap()["active"],
            false
        );
        assert_eq!(
            s.admin.introspect(&new_token).await.unwrap()["active"],
            true
        );
        assert!(!jwks(s).await.contains(&old), "a revoked key leaves JWKS");
        assert_eq!(
            code(s.admin.revoke_signing_key(&old, "again").await),
            "not_found"
        );
    }

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

    pub async fn delegation_narrows_and_dies_with_its_parent(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-deleg-a", "EdDSA").await;
        let b = Agent::new(s, &c, "agt-deleg-b", "ES256").await;
        let cc = Agent::new(s, &c, "agt-deleg-c", "EdDSA").await;
        let r = a.open_task(s).await.unwrap();
        let token_a = r["access_token"].as_str().unwrap().to_owned();
        let task = r["task_id"].as_str().unwrap().to_owned();
        let keys = jwks(s).await;
        let now = s.clock_now().as_millis() / 1000;
        let expect = Expect {
            issuer: &s.base,
            audience: "aim",
            now,
        };
        let claims_a = aim_token::access::verify(&token_a, &keys, &expect).unwrap();

        let r = a.exchange(s, &token_a, &b, Some("crm")).await.unwrap();
        assert_eq!(
            r["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(r["token_type"], "DPoP");
        let token_b = r["access_token"].as_str().unwrap().to_owned();
        let claims_b = aim_token::access::verify(&token_b, &keys, &expect).unwrap();
        assert_eq!(claims_b.sub, "spiffe://aim.local/agent/agt-deleg-b");
        assert_eq!(claims_b.act.as_ref().unwrap().sub, claims_a.sub);
        assert_eq!(
            claims_b.cnf.as_ref().unwrap().jkt,
            b.key.kid(),
            "bound to the sub-agent's key"
        );
        assert_eq!(claims_b.aim_parents, vec![claims_a.jti.clone()]);
        assert_eq!(claims_b.aim_task, task);
        assert!(claims_b.exp <= claims_a.exp);

        // The sub-agent uses its token with its own proofs.
        let path = format!("/v1/tasks/{task}");
        let p = b
            .key
            .dpop_proof("GET", &format!("{}{path}", s.base), Some(&token_b), now)
            .unwrap();
        assert_eq!(
            agent_call(s, reqwest::Method::GET, &path, &token_b, Some(&p))
                .await
                .0,
            200
        );

        // One more hop, then the refusals.
        let r = b.exchange(s, &token_b, &cc, None).await.unwrap();
        let token_c = r["access_token"].as_str().unwrap().to_owned();
        let claims_c = aim_token::access::verify(&token_c, &keys, &expect).unwrap();
        assert_eq!(
            claims_c.act.as_ref().unwrap().chain(),
            vec![claims_b.sub.clone(), claims_a.sub.clone()]
        );
        assert_eq!(
            claims_c.aim_parents,
            vec![claims_b.jti.clone(), claims_a.jti.clone()]
        );
        assert_eq!(
            code(cc.exchange(s, &token_c, &a, None).await),
            "delegation_cycle"
        );
        assert_eq!(
            code(a.exchange(s, &token_a, &b, Some("payroll")).await),
            "scope_not_held"
        );
        let no_actor = a
            .http
            .oauth_token(
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", token_a.as_str()),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                ],
                Some(
                    &a.key
                        .dpop_proof("POST", &a.endpoint, Some(&token_a), now)
                        .unwrap(),
                ),
            )
            .await;
        assert_eq!(code(no_actor), "actor_token_required", "no impersonation");
        // Someone holding A's token but not A's key cannot exchange it.
        let thief_proof = b
            .key
            .dpop_proof("POST", &a.endpoint, Some(&token_a), now)
            .unwrap();
        let stolen = a
            .http
            .oauth_token(
                &[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", token_a.as_str()),
                    (
                        "subject_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    ),
                    ("actor_token", cc.assertion(s).as_str()),
                    ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ],
                Some(&thief_proof),
            )
            .await;
        assert_eq!(code(stolen), "dpop_key_mismatch");

        // The trace nests each delegated token under the one it came from.
        let trace = s.admin.audit_trace(task.parse().unwrap()).await.unwrap();
        let root = trace.tokens.iter().find(|t| t.jti == claims_a.jti).unwrap();
        assert_eq!(root.tokens[0].jti, claims_b.jti);
        assert_eq!(root.tokens[0].tokens[0].jti, claims_c.jti);

        // Revoking the parent revokes every descendant.
        for t in [&token_a, &token_b, &token_c] {
            assert_eq!(s.admin.introspect(t).await.unwrap()["active"], true);
        }
        c.sponsor_client.revoke_token(&token_a).await.unwrap();
        for t in [&token_a, &token_b, &token_c] {
            assert_eq!(s.admin.introspect(t).await.unwrap()["active"], false);
        }
    }

    pub async fn join_tokens_register_a_key_once(s: &TestServer) {
        let c = cast(s).await;
        let identity = active_identity(s, &c, "agt-join-a").await;
        let issued = c
            .sponsor_client
            .create_join_token(identity.id, None)
            .await
            .unwrap();
        let secret = issued["token"].as_str().unwrap().to_owned();
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
                    short["token"].as_str().unwrap(),
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

    pub async fn revocations_stream_to_gateways(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-stream-a", "EdDSA").await;
        let start = s.admin.revocations(0).await.unwrap()["epoch"]
            .as_i64()
            .unwrap();
        let open = |last: Option<i64>| {
            let mut req = reqwest::Client::new()
                .get(format!("{}/v1/revocations/stream?since={start}", s.base))
                .bearer_auth(&s.admin_token);
            if let Some(l) = last {
                req = req.header("Last-Event-ID", l.to_string());
            }
            req.send()
        };
        let mut resp = open(None).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut buf = String::new();

        let r = agent.open_task(s).await.unwrap();
        let task = r["task_id"].as_str().unwrap().to_owned();
        c.sponsor_client
            .end_task(task.parse().unwrap(), "done")
            .await
            .unwrap();
        let (first, data) = next_revocation(&mut resp, &mut buf).await;
        assert_eq!(
            (data["kind"].as_str(), data["value"].as_str()),
            (Some("task"), Some(task.as_str()))
        );

        // A gateway that reconnects from the last id it saw gets only what came after.
        drop(resp);
        let r = agent.open_task(s).await.unwrap();
        c.sponsor_client
            .revoke_token(r["access_token"].as_str().unwrap())
            .await
            .unwrap();
        let mut resp = open(Some(first)).await.unwrap();
        let mut buf = String::new();
        let (second, data) = next_revocation(&mut resp, &mut buf).await;
        assert!(second > first);
        assert_eq!(data["kind"], "token");
        // Nobody without a credential follows it; sponsors may not read the list either.
        let denied = reqwest::Client::new()
            .get(format!("{}/v1/revocations/stream", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);
        assert_eq!(code(c.sponsor_client.revocations(0).await), "forbidden");
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
        assert_eq!(s.admin.introspect(&token).await.unwrap()["active"], false);
        assert_eq!(code(locked.open_task(s).await), "identity_not_active");

        // An identity past its end of life is expired by the sweep; its tokens die with it.
        let expiring = Agent::new(s, &c, "agt-expire-a", "EdDSA").await;
        let r = expiring.open_task(s).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        assert_eq!(s.admin.introspect(&token).await.unwrap()["active"], true);
        s.clock.advance_days(31);
        s.admin.run_sweep().await.unwrap();
        let i = s.admin.identity(expiring.identity.id).await.unwrap();
        assert_eq!(i.state, aim_domain::lifecycle::LifecycleState::Expired);
        assert_eq!(s.admin.introspect(&token).await.unwrap()["active"], false);
        assert_eq!(code(expiring.open_task(s).await), "identity_not_active");
        let revs = s.admin.revocations(0).await.unwrap();
        let kinds: Vec<(String, String)> = revs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap().to_owned(),
                    r["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for id in [locked.identity.id, expiring.identity.id] {
            assert!(
                kinds.contains(&("identity".to_owned(), id.to_string())),
                "{kinds:?}"
            );
        }
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
