//! Tokens say where they may be used, and proof of possession is the default: a token for
//! a gateway is refused by aim's own API, an unknown resource gets no token, a bearer token
//! takes an admin's recorded opt-in, and a bearer token is never handed on. Named after the
//! attacks.

use super::*;

const TOOLS: &str = "https://tools.example/mcp";

#[tokio::test]
async fn token_for_another_resource_is_refused_by_aim() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start_with(backend, |c| {
            c.tokens.resources = vec![TOOLS.to_owned()];
        })
        .await;
        let c = cast(&s).await;
        let agent = Agent::new(&s, &c, "agt-audience", "EdDSA").await;
        let details = json!([{ "type": "aim_task", "purpose": "p", "systems": ["crm"], "triggered_by": "t" }]).to_string();
        let ask = |resource: &'static str| {
            let assertion = agent.assertion(&s);
            let proof = agent.proof();
            let details = details.clone();
            let http = agent.http.clone();
            async move {
                http.oauth_token(
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", ASSERTION),
                        ("client_assertion", assertion.as_str()),
                        ("authorization_details", details.as_str()),
                        ("resource", resource),
                    ],
                    Some(&proof),
                )
                .await
            }
        };
        assert_eq!(code(ask("https://evil.example/").await), "invalid_target");
        let r = ask(TOOLS).await.unwrap();
        let (token, task) = (r.access_token, r.task_id);
        let v = s.admin.introspect(&token).await.unwrap();
        assert_eq!((v.active, v.aud.as_deref()), (true, Some(TOOLS)));

        // Presented to aim's own API, it is refused.
        let path = format!("/v1/tasks/{task}");
        let now = s.clock_now().as_millis() / 1000;
        let proof = agent
            .key
            .dpop_proof("GET", &format!("{}{path}", s.base), Some(&token), now)
            .unwrap();
        let (status, body) =
            agent_call(&s, reqwest::Method::GET, &path, &token, Some(&proof)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("wrong_audience")),
            "{body}"
        );
        s.stop().await;
    }
}

crate::api_tests!(
    bearer_token_needs_an_admin_opt_in,
    bearer_subject_token_cannot_be_exchanged,
);

mod cases {
    use super::*;

    /// Without a proof there is no token, whatever the identity's autonomy, until an admin
    /// opts it into bearer tokens with a reason; withdrawing that brings DPoP back.
    pub async fn bearer_token_needs_an_admin_opt_in(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-bearer", "EdDSA").await;
        let task = json!([{ "type": "aim_task", "purpose": "p", "systems": ["crm"], "triggered_by": "t" }]).to_string();
        let without_proof = || {
            let assertion = agent.assertion(s);
            let task = task.clone();
            let agent = &agent;
            async move {
                agent
                    .token_with_proof(&assertion, ("authorization_details", &task), None)
                    .await
            }
        };
        assert_eq!(code(without_proof().await), "dpop_required");
        let path = format!("/v1/identities/{}/bearer", agent.identity.id);
        let allow =
            json!({ "allowed": true, "reason": "legacy client without DPoP, ticket SEC-9" });
        let (status, _) = post(s, &path, c.sponsor_client.token().unwrap(), &allow).await;
        assert_eq!(status, 403, "sponsors do not weaken their own identities");
        let (status, body) = post(s, &path, &s.admin_token, &json!({ "allowed": true })).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed"))
        );
        let (status, body) = post(s, &path, &s.admin_token, &allow).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["bearer_reason"], allow["reason"]);
        let r = without_proof().await.unwrap();
        assert_eq!(r["token_type"], "Bearer");
        let on_record = actions(s, "identity.bearer_allowed").await;
        assert_eq!(on_record.len(), 1);
        assert_eq!(on_record[0].reason, allow["reason"].as_str().unwrap());

        let (status, _) = post(s, &path, &s.admin_token, &json!({ "allowed": false })).await;
        assert_eq!(status, 200);
        assert_eq!(code(without_proof().await), "dpop_required");
    }

    /// A bearer token is whatever anyone holding it says it is: it cannot be exchanged for
    /// a sub-agent's token.
    pub async fn bearer_subject_token_cannot_be_exchanged(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-bearer-parent", "EdDSA").await;
        let b = Agent::new(s, &c, "agt-bearer-child", "EdDSA").await;
        let path = format!("/v1/identities/{}/bearer", a.identity.id);
        let (status, _) = post(
            s,
            &path,
            &s.admin_token,
            &json!({ "allowed": true, "reason": "legacy" }),
        )
        .await;
        assert_eq!(status, 200);
        let task = json!([{ "type": "aim_task", "purpose": "p", "systems": ["crm"], "triggered_by": "t" }]).to_string();
        let r = a
            .token_with_proof(&a.assertion(s), ("authorization_details", &task), None)
            .await
            .unwrap();
        let bearer = r["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            code(a.exchange(s, &bearer, &b, None).await),
            "bound_subject_token_required"
        );
    }
}
