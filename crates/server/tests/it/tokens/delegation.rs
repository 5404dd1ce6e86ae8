//! Delegation by token exchange: narrower, bound to the sub-agent, dead with its parent.

use super::*;

crate::api_tests!(delegation_narrows_and_dies_with_its_parent,);

impl Agent {
    /// Exchanges `parent` (held by `self`) for a token for `sub`: `sub` signs the actor
    /// assertion, `self` signs the DPoP proof for its own token.
    pub(super) async fn exchange(
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
        self.http
            .oauth_token(&form, Some(&proof))
            .await
            .map(as_json)
    }
}

mod cases {
    use super::*;
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
            assert!(s.admin.introspect(t).await.unwrap().active);
        }
        c.sponsor_client.revoke_token(&token_a).await.unwrap();
        for t in [&token_a, &token_b, &token_c] {
            assert!(!s.admin.introspect(t).await.unwrap().active);
        }
    }
}
