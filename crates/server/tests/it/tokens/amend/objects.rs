//! Object-level checks: a caller that may use an endpoint may still not touch every object
//! behind it. Named after the attacks.

use super::*;

crate::api_tests!(
    sub_agent_cannot_end_its_delegators_task,
    strangers_cannot_read_a_lease,
    sponsor_cannot_read_grants_of_identities_it_does_not_sponsor,
    join_token_adds_no_key_to_a_locked_identity,
);

mod cases {
    use super::*;

    /// B was handed a narrowed token for A's task; ending the task would kill A's work
    /// and every other delegate's. B may not; A may.
    pub async fn sub_agent_cannot_end_its_delegators_task(s: &TestServer) {
        let c = cast(s).await;
        let a = Caller::new(s, &c, "agt-end-a").await;
        let b = Agent::new(s, &c, "agt-end-b", "EdDSA").await;
        let r = a.agent.exchange(s, &a.token, &b, None).await.unwrap();
        let token_b = r["access_token"].as_str().unwrap().to_owned();
        let end = format!("/v1/tasks/{}/end", a.task);
        let (status, body) = agent_json(s, &b.key, &token_b, "POST", &end, &json!({})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("delegate_cannot_end_task")),
            "{body}"
        );
        let task = s.admin.task(a.task.parse().unwrap()).await.unwrap();
        assert_eq!(task.state.as_str(), "open", "nothing was ended");
        let (status, body) = a.call(s, "POST", &end, &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }

    /// A lease names the record another agent is working on. Its holder, admins and
    /// auditors read it; another agent and a sponsor do not.
    pub async fn strangers_cannot_read_a_lease(s: &TestServer) {
        let c = cast(s).await;
        apply(s, WRITERS).await;
        let holder = Caller::new(s, &c, "agt-lease-holder").await;
        let other = Caller::new(s, &c, "agt-lease-other").await;
        let lease = lease_of(&record("42"));
        let (status, held) = holder.call(s, "POST", "/v1/leases", &lease).await;
        assert_eq!(status, 201, "{held}");
        let path = format!("/v1/leases/{}", held["id"].as_str().unwrap());
        assert_eq!(holder.call(s, "GET", &path, &json!(null)).await.0, 200);
        let (status, body) = other.call(s, "GET", &path, &json!(null)).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
        let (status, _) = get_as(s, &path, c.sponsor_client.token().unwrap()).await;
        assert_eq!(status, 403);
        assert_eq!(get_as(s, &path, &s.admin_token).await.0, 200);
        let (_, auditor) = s.human("aud", &[aim_domain::human::Role::Auditor]).await;
        assert_eq!(get_as(s, &path, auditor.token().unwrap()).await.0, 200);
    }

    /// A sponsor lists only the grants of identities it sponsors; reading one by id must
    /// not be a way round that.
    pub async fn sponsor_cannot_read_grants_of_identities_it_does_not_sponsor(s: &TestServer) {
        let c = cast(s).await;
        let mine = active_identity(s, &c, "agt-grant-mine").await;
        let (_, other_sponsor) = s.human("otto", &[aim_domain::human::Role::Sponsor]).await;
        let grant = |identity: aim_domain::ids::IdentityId| json!({ "grantee": { "identity": identity }, "action": "read", "system": "crm", "reason": "backlog" });
        let (status, g) = post(s, "/v1/grants", &s.admin_token, &grant(mine.id)).await;
        assert_eq!(status, 201, "{g}");
        let path = format!("/v1/grants/{}", g["id"].as_str().unwrap());
        let (status, body) = get_as(s, &path, other_sponsor.token().unwrap()).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        let (status, body) = get_as(s, &path, c.sponsor_client.token().unwrap()).await;
        assert_eq!(status, 200, "its own sponsor reads it: {body}");
        let (status, _) = get_as(s, &path, c.approver_client.token().unwrap()).await;
        assert_eq!(status, 200, "approvers list every grant, so they read it");
        let (status, g) = post(
            s,
            "/v1/grants",
            &s.admin_token,
            &json!({ "grantee": { "group": "claims" }, "action": "read", "system": "crm", "reason": "team" }),
        )
        .await;
        assert_eq!(status, 201, "{g}");
        let team = format!("/v1/grants/{}", g["id"].as_str().unwrap());
        assert_eq!(
            get_as(s, &team, c.sponsor_client.token().unwrap()).await.0,
            404,
            "a sponsor cannot list team grants either"
        );
    }

    /// The sponsor made a join token, then locked the identity during an incident. Whoever
    /// holds the token cannot register a key now; once the identity is unlocked, the token
    /// (still unused) works.
    pub async fn join_token_adds_no_key_to_a_locked_identity(s: &TestServer) {
        let c = cast(s).await;
        let identity = active_identity(s, &c, "agt-join-locked").await;
        let issued = c
            .sponsor_client
            .create_join_token(identity.id, None)
            .await
            .unwrap();
        let secret = issued.token.clone();
        s.admin
            .identity_action(identity.id, "lock", "incident")
            .await
            .unwrap();
        let key = ClientKey::generate("EdDSA").unwrap();
        let url = format!("{}/v1/join", s.base);
        let proof = || {
            key.dpop_proof("POST", &url, None, s.clock_now().as_millis() / 1000)
                .unwrap()
        };
        let anon = s.client(None);
        let jwk = key.public().to_json();
        assert_eq!(
            code(anon.join(&secret, &jwk, "w", Some(&proof())).await),
            "state_forbids_action"
        );
        assert!(s.admin.agent_keys(identity.id).await.unwrap().is_empty());
        assert!(
            actions(s, "join.refused")
                .await
                .iter()
                .any(|e| e.reason == "state_forbids_action"),
            "the refusal is on the record"
        );
        s.admin
            .identity_action(identity.id, "unlock", "contained")
            .await
            .unwrap();
        anon.join(&secret, &jwk, "w", Some(&proof())).await.unwrap();
        assert_eq!(s.admin.agent_keys(identity.id).await.unwrap().len(), 1);
    }
}
