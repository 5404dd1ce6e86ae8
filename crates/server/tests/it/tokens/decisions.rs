//! Runtime decisions over HTTP: policies applied strictly and versioned, an agent asking
//! with its DPoP-bound token under its task, admins testing explicit principals and
//! proposed sets; every decision on the record.

use super::*;

crate::api_tests!(
    policies_are_validated_versioned_and_rolled_back,
    an_agent_asks_under_its_task,
    admins_test_principals_and_proposed_sets,
    a_policy_reads_the_sponsor,
);

const CLAIMS_READ: &str = r#"@id("claims-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("refunds") @approval("sponsor")
permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource is Aim::Resource);
"#;

async fn apply(s: &TestServer, text: &str) -> (u16, Value) {
    post(
        s,
        "/v1/policies",
        &s.admin_token,
        &json!({ "sources": [{ "name": "claims.cedar", "text": text }], "comment": "test" }),
    )
    .await
}

fn record(customer: &str, system: &str) -> Value {
    json!({
        "type": "Resource",
        "id": format!("{system}/customers/{customer}"),
        "system": system,
        "attrs": { "type": "customer_record", "sensitivity": "confidential", "subject": format!("customer:{customer}") },
    })
}

mod cases {
    use super::*;

    pub async fn policies_are_validated_versioned_and_rolled_back(s: &TestServer) {
        let c = cast(s).await;
        // Nothing applied yet: version 0, and nothing is permitted.
        let (status, v) = get(s, "/v1/policies").await;
        assert_eq!((status, v["version"].as_i64()), (200, Some(0)), "{v}");

        let unsafe_read = "permit(principal, action, resource is Aim::Resource)\n  when { resource.subject == \"customer:42\" };";
        let (status, body) = apply(s, unsafe_read).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "invalid_policy");
        let p = &body["problems"][0];
        assert_eq!(
            (p["file"].as_str(), p["line"].as_i64(), p["code"].as_str()),
            (Some("claims.cedar"), Some(2), Some("validation_error")),
            "{body}"
        );
        assert!(p["column"].as_i64().unwrap() > 1);
        assert_eq!(
            get(s, "/v1/policies").await.1["version"],
            0,
            "nothing was applied"
        );

        let (status, body) = apply(s, CLAIMS_READ).await;
        assert_eq!(
            (status, body["version"].as_i64(), body["policies"].as_i64()),
            (201, Some(1), Some(2)),
            "{body}"
        );
        let (status, body) = apply(s, "forbid(principal, action, resource);").await;
        assert_eq!((status, body["version"].as_i64()), (201, Some(2)), "{body}");
        // Made against version 1 while 2 is in force: refused.
        let (status, body) = post(
            s,
            "/v1/policies",
            &s.admin_token,
            &json!({ "sources": [], "expected_version": 1 }),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("policy_changed")),
            "{body}"
        );
        // Two files of one name, and a sponsor applying: refused.
        let twice =
            json!({ "sources": [{ "name": "a", "text": "" }, { "name": "a", "text": "" }] });
        let (status, body) = post(s, "/v1/policies", &s.admin_token, &twice).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("duplicate_file_name")),
            "{body}"
        );
        let sponsor_token = c.sponsor_client.token().unwrap().to_owned();
        let (status, body) =
            post(s, "/v1/policies", &sponsor_token, &json!({ "sources": [] })).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );

        let (status, body) = post(
            s,
            "/v1/policies/rollback",
            &s.admin_token,
            &json!({ "version": 1 }),
        )
        .await;
        assert_eq!((status, body["version"].as_i64()), (201, Some(3)), "{body}");
        let (_, now) = get(s, "/v1/policies").await;
        assert_eq!(
            (now["version"].as_i64(), now["rollback_of"].as_i64()),
            (Some(3), Some(1))
        );
        assert_eq!(now["sources"][0]["text"], CLAIMS_READ);
        assert_eq!(
            now["digest"],
            get(s, "/v1/policies/versions/1").await.1["digest"]
        );
        let (_, history) = get(s, "/v1/policies/versions").await;
        let versions: Vec<i64> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [3, 2, 1]);
        let (status, _) = post(
            s,
            "/v1/policies/rollback",
            &s.admin_token,
            &json!({ "version": 99 }),
        )
        .await;
        assert_eq!(status, 404);

        assert_eq!(actions(s, "policy.applied").await.len(), 2);
        let rolled = actions(s, "policy.rolled_back").await;
        assert_eq!(rolled.len(), 1);
        assert_eq!(rolled[0].detail["version"], 3);
        assert_eq!(rolled[0].detail["rollback_of"], 1);
    }

    pub async fn an_agent_asks_under_its_task(s: &TestServer) {
        let c = cast(s).await;
        assert_eq!(apply(s, CLAIMS_READ).await.0, 201);
        let agent = Agent::new(s, &c, "agt-decide-a", "EdDSA").await;
        // The task is bound to customer 42 on the crm.
        let r = agent.open_task(s).await.unwrap();
        let token = r["access_token"].as_str().unwrap().to_owned();
        let task = r["task_id"].as_str().unwrap().to_owned();
        let url = format!("{}/v1/authorize", s.base);
        let ask = |body: Value| {
            let proof = agent
                .key
                .dpop_proof("POST", &url, Some(&token), s.clock_now().as_millis() / 1000)
                .unwrap();
            let token = token.clone();
            let url = url.clone();
            async move {
                let resp = reqwest::Client::new()
                    .post(url)
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", proof)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            }
        };
        let (status, d) = ask(json!({ "action": "read", "resource": record("42", "crm") })).await;
        assert_eq!(
            (status, d["decision"].as_str()),
            (200, Some("allow")),
            "{d}"
        );
        assert_eq!(
            (d["policies"][0].as_str(), d["policy_version"].as_i64()),
            (Some("claims-read"), Some(1))
        );

        let (_, d) = ask(json!({ "action": "read", "resource": record("43", "crm") })).await;
        assert_eq!(
            (d["decision"].as_str(), d["policies"][0].as_str()),
            (Some("deny"), Some("aim/scope-of-thought")),
            "{d}"
        );
        let (_, d) = ask(json!({ "action": "read", "resource": record("42", "billing") })).await;
        assert_eq!(d["policies"][0], "aim/task-scope", "{d}");
        let (_, d) = ask(json!({ "action": "write", "resource": record("42", "crm"), "call": { "args_hash": "ab12" } })).await;
        assert_eq!(
            (d["decision"].as_str(), d["approvers"][0].as_str()),
            (Some("approval_required"), Some("sponsor")),
            "{d}"
        );
        let (_, d) = ask(json!({ "action": "delete", "resource": record("42", "crm") })).await;
        assert_eq!(
            (d["decision"].as_str(), d["reasons"][0].as_str()),
            (Some("deny"), Some("no policy permits this (default deny)")),
            "{d}"
        );

        // Bad questions are refused, not decided.
        let (status, d) = ask(json!({ "action": "launch", "resource": record("42", "crm") })).await;
        assert_eq!(
            (status, d["code"].as_str()),
            (400, Some("unknown_action")),
            "{d}"
        );
        let mut bad = record("42", "crm");
        bad["attrs"]["sensitivity"] = json!(5);
        let (status, d) = ask(json!({ "action": "read", "resource": bad })).await;
        assert_eq!(
            (status, d["code"].as_str()),
            (400, Some("bad_target")),
            "{d}"
        );
        let (status, d) = ask(json!({ "action": "read", "resource": record("42", "crm"), "principal": { "identity": agent.identity.id } })).await;
        assert_eq!(
            (status, d["code"].as_str()),
            (400, Some("principal_not_allowed")),
            "{d}"
        );

        // Each decision is on the record with its task, token and policies.
        let decisions = actions(s, "decision").await;
        assert_eq!(decisions.len(), 5);
        let first = &decisions[0];
        assert_eq!(first.outcome.as_str(), "allow");
        assert_eq!(first.trail.task_id, task);
        assert!(!first.trail.jti.is_empty());
        assert_eq!(first.trail.policies, ["claims-read"]);
        assert_eq!(first.trail.triggered_by, "alice: TICKET-7");
        let outcomes: Vec<&str> = decisions.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            ["allow", "deny", "deny", "approval_required", "deny"]
        );
        assert_eq!(decisions[3].detail["args_hash"], "ab12");

        // A proof is spent with its decision: the same proof again is refused, and only
        // the first is on the record.
        let proof = agent
            .key
            .dpop_proof("POST", &url, Some(&token), s.clock_now().as_millis() / 1000)
            .unwrap();
        let send = || {
            reqwest::Client::new()
                .post(&url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", &proof)
                .json(&json!({ "action": "read", "resource": record("42", "crm") }))
                .send()
        };
        assert_eq!(send().await.unwrap().status(), 200);
        let again = send().await.unwrap();
        assert_eq!(again.status(), 401);
        assert_eq!(
            again.json::<Value>().await.unwrap()["code"],
            "dpop_replayed"
        );
        assert_eq!(actions(s, "decision").await.len(), 6);

        // Once the task has ended its token decides nothing.
        let end = format!("{}/v1/tasks/{task}/end", s.base);
        let proof = agent
            .key
            .dpop_proof("POST", &end, Some(&token), s.clock_now().as_millis() / 1000)
            .unwrap();
        let (status, _) = agent_call(
            s,
            reqwest::Method::POST,
            &format!("/v1/tasks/{task}/end"),
            &token,
            Some(&proof),
        )
        .await;
        assert_eq!(status, 200);
        let (status, d) = ask(json!({ "action": "read", "resource": record("42", "crm") })).await;
        assert_eq!(status, 401, "{d}");
    }

    /// `principal.sponsor`'s attributes are the sponsor's own: a policy that reads them
    /// allows while the sponsor is active and a sponsor, and stops when they leave.
    pub async fn a_policy_reads_the_sponsor(s: &TestServer) {
        let c = cast(s).await;
        let text = r#"@id("sponsored-read")
permit(principal is Aim::Identity, action == Aim::Action::"read", resource is Aim::Resource)
when { principal.sponsor.active && principal.sponsor.roles.contains("sponsor") && principal.sponsor in Aim::Group::"claims-leads" };"#;
        assert_eq!(apply(s, text).await.0, 201);
        let identity = active_identity(s, &c, "agt-sponsored").await;
        let ask = json!({ "action": "read", "resource": record("7", "crm"), "principal": { "identity": identity.id } });
        let (status, d) = post(s, "/v1/authorize", &s.admin_token, &ask).await;
        assert_eq!((status, d["decision"].as_str()), (200, Some("deny")), "{d}");
        assert!(d.get("errors").is_none(), "read, not failed: {d}");
        // In the group the policy names: allowed.
        let patch = aim_domain::human::HumanPatch {
            groups: Some(vec!["claims-leads".into()]),
            ..Default::default()
        };
        s.admin.change_human(c.sponsor.id, &patch).await.unwrap();
        let (_, d) = post(s, "/v1/authorize", &s.admin_token, &ask).await;
        assert_eq!(
            (d["decision"].as_str(), d["policies"][0].as_str()),
            (Some("allow"), Some("sponsored-read")),
            "{d}"
        );
        // The sponsor leaves: the identity is orphaned, and this policy no longer allows.
        s.admin
            .set_human_active(c.sponsor.id, false, "left")
            .await
            .unwrap();
        let (_, d) = post(s, "/v1/authorize", &s.admin_token, &ask).await;
        assert_eq!(d["decision"], "deny", "{d}");
    }

    pub async fn admins_test_principals_and_proposed_sets(s: &TestServer) {
        let c = cast(s).await;
        assert_eq!(apply(s, CLAIMS_READ).await.0, 201);
        let identity = active_identity(s, &c, "agt-decide-b").await;
        let ask = json!({ "action": "read", "resource": record("7", "crm"), "principal": { "identity": identity.id } });
        let (status, d) = post(s, "/v1/authorize", &s.admin_token, &ask).await;
        assert_eq!(
            (status, d["decision"].as_str()),
            (200, Some("allow")),
            "{d}"
        );
        assert_eq!(actions(s, "decision").await.len(), 1);

        // What if reads of confidential records were forbidden?
        let mut what_if = ask.clone();
        what_if["policies"] = json!({ "sources": [
            { "name": "claims.cedar", "text": CLAIMS_READ },
            { "name": "lockdown.cedar", "text": "@id(\"lockdown\") forbid(principal, action, resource is Aim::Resource) when { resource.sensitivity == \"confidential\" };" },
        ]});
        let (status, d) = post(s, "/v1/authorize/explain", &s.admin_token, &what_if).await;
        assert_eq!(
            (status, d["decision"].as_str(), d["policies"][0].as_str()),
            (200, Some("deny"), Some("lockdown")),
            "{d}"
        );
        assert!(d.get("policy_version").is_none(), "{d}");
        // Nothing was applied and nothing recorded.
        assert_eq!(get(s, "/v1/policies").await.1["version"], 1);
        assert_eq!(actions(s, "decision").await.len(), 1);
        let (_, d) = post(s, "/v1/authorize/explain", &s.admin_token, &ask).await;
        assert_eq!(
            (d["decision"].as_str(), d["policy_version"].as_i64()),
            (Some("allow"), Some(1)),
            "{d}"
        );
        what_if["policies"]["sources"][1]["text"] =
            json!("forbid(principal, action, resource) when { resource.nope };");
        let (status, d) = post(s, "/v1/authorize/explain", &s.admin_token, &what_if).await;
        assert_eq!(
            (status, d["problems"][0]["file"].as_str()),
            (422, Some("lockdown.cedar")),
            "{d}"
        );

        // A human as principal, and the refusals.
        let (status, d) = post(s, "/v1/authorize", &s.admin_token, &json!({ "action": "read", "resource": record("7", "crm"), "principal": { "human": c.sponsor.id } })).await;
        assert_eq!((status, d["decision"].as_str()), (200, Some("deny")), "{d}");
        let (status, d) = post(
            s,
            "/v1/authorize",
            &s.admin_token,
            &json!({ "action": "read", "resource": record("7", "crm") }),
        )
        .await;
        assert_eq!(
            (status, d["code"].as_str()),
            (400, Some("principal_required")),
            "{d}"
        );
        let sponsor_token = c.sponsor_client.token().unwrap().to_owned();
        let (status, _) = post(s, "/v1/authorize", &sponsor_token, &ask).await;
        assert_eq!(status, 403);
        let (status, _) = post(s, "/v1/authorize/explain", &sponsor_token, &ask).await;
        assert_eq!(status, 403);
        let mut with_policies = ask.clone();
        with_policies["policies"] = json!({ "sources": [] });
        let (status, d) = post(s, "/v1/authorize", &s.admin_token, &with_policies).await;
        assert_eq!(
            (status, d["code"].as_str()),
            (400, Some("policies_not_allowed")),
            "{d}"
        );
        // A suspended identity is denied whatever the policies say.
        c.sponsor_client
            .identity_action(identity.id, "suspend", "test")
            .await
            .unwrap();
        let (_, d) = post(s, "/v1/authorize", &s.admin_token, &ask).await;
        assert_eq!(d["policies"][0], "aim/identity-not-active", "{d}");
    }
}

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    get_as(s, path, &s.admin_token).await
}
