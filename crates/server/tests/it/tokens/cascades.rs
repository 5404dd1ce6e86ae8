//! A revocation reaches everything that hangs on what was revoked: the tokens bound to a
//! revoked agent key (and what they delegated), every token delegated from an identity
//! that left `active` (at any depth, on every replica), and revocations that no clock can
//! dodge. Each test is named after the attack it stops.

use super::*;

crate::api_tests!(
    revoked_agent_key_kills_bound_tokens,
    token_cannot_be_bound_to_a_key_the_identity_does_not_hold,
    delegates_die_with_suspended_delegator,
    revocation_holds_whatever_the_clock_of_the_revoker,
    revoked_signing_key_never_signs_on_another_replica,
);

/// `GET /v1/tasks/{task}` at `base` (this server or a replica behind the same issuer URL)
/// with `token` and a fresh proof by `key` for the issuer's URL.
async fn read_task(
    s: &TestServer,
    base: &str,
    key: &ClientKey,
    token: &str,
    task: &str,
) -> (u16, Value) {
    let path = format!("/v1/tasks/{task}");
    let proof = key
        .dpop_proof(
            "GET",
            &format!("{}{path}", s.base),
            Some(token),
            s.clock_now().as_millis() / 1000,
        )
        .unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn active(s: &TestServer, token: &str) -> bool {
    s.admin.introspect(token).await.unwrap().active
}

fn token_of(r: &Value) -> String {
    r["access_token"].as_str().unwrap().to_owned()
}

mod cases {
    use super::*;

    /// A laptop holding an agent's key is lost; the sponsor revokes the key. The token
    /// bound to it, and what that token delegated, die on their next call.
    pub async fn revoked_agent_key_kills_bound_tokens(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-key-lost", "EdDSA").await;
        let b = Agent::new(s, &c, "agt-key-kept", "ES256").await;
        let r = a.open_task(s).await.unwrap();
        let (token_a, task) = (token_of(&r), r["task_id"].as_str().unwrap().to_owned());
        let token_b = token_of(&a.exchange(s, &token_a, &b, None).await.unwrap());
        assert_eq!(read_task(s, &s.base, &a.key, &token_a, &task).await.0, 200);
        assert_eq!(read_task(s, &s.base, &b.key, &token_b, &task).await.0, 200);

        c.sponsor_client
            .revoke_agent_key(a.identity.id, &a.key.kid(), "laptop lost")
            .await
            .unwrap();
        for (key, token) in [(&a.key, &token_a), (&b.key, &token_b)] {
            let (status, body) = read_task(s, &s.base, key, token, &task).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("token_revoked")),
                "{body}"
            );
            assert!(!active(s, token).await);
        }
    }

    /// The agent signs its assertion with its registered key but binds the token to a
    /// key aim has never seen, so that revoking the registered key would not reach the
    /// token. Refused; a second registered key works, and revoking it kills the token.
    pub async fn token_cannot_be_bound_to_a_key_the_identity_does_not_hold(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-two-keys", "EdDSA").await;
        let other = ClientKey::generate("ES256").unwrap();
        let details = json!([{ "type": "aim_task", "purpose": "p", "systems": ["crm"], "triggered_by": "t" }]).to_string();
        let ask = || {
            let proof = other
                .dpop_proof("POST", &a.endpoint, None, s.clock_now().as_millis() / 1000)
                .unwrap();
            let assertion = a.assertion(s);
            let details = details.clone();
            let a = &a;
            async move {
                a.token_with_proof(
                    &assertion,
                    ("authorization_details", &details),
                    Some(&proof),
                )
                .await
            }
        };
        assert_eq!(code(ask().await), "dpop_key_not_registered");
        c.sponsor_client
            .add_agent_key(a.identity.id, &other.public().to_json(), "second key")
            .await
            .unwrap();
        let r = ask().await.unwrap();
        let (token, task) = (token_of(&r), r["task_id"].as_str().unwrap().to_owned());
        assert_eq!(read_task(s, &s.base, &other, &token, &task).await.0, 200);
        c.sponsor_client
            .revoke_agent_key(a.identity.id, &other.kid(), "second laptop lost")
            .await
            .unwrap();
        let (status, body) = read_task(s, &s.base, &other, &token, &task).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("token_revoked")),
            "{body}"
        );
    }

    /// A → B → C → D, then B is suspended: C's and D's tokens die at once, here and on a
    /// second replica, and D cannot hand its token on; A's token lives. Resuming B does not
    /// revive them. Suspending A ends its task.
    pub async fn delegates_die_with_suspended_delegator(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-chain-a", "EdDSA").await;
        let b = Agent::new(s, &c, "agt-chain-b", "ES256").await;
        let cc = Agent::new(s, &c, "agt-chain-c", "EdDSA").await;
        let d = Agent::new(s, &c, "agt-chain-d", "ES256").await;
        let e = Agent::new(s, &c, "agt-chain-e", "EdDSA").await;
        let r = a.open_task(s).await.unwrap();
        let (token_a, task) = (token_of(&r), r["task_id"].as_str().unwrap().to_owned());
        let token_b = token_of(&a.exchange(s, &token_a, &b, None).await.unwrap());
        let token_c = token_of(&b.exchange(s, &token_b, &cc, None).await.unwrap());
        let token_d = token_of(&cc.exchange(s, &token_c, &d, None).await.unwrap());
        let replica = s.replica().await;
        assert_eq!(
            read_task(s, &replica, &d.key, &token_d, &task).await.0,
            200,
            "the replica serves the chain"
        );

        c.sponsor_client
            .identity_action(b.identity.id, "suspend", "acting oddly")
            .await
            .unwrap();
        for (key, token) in [(&cc.key, &token_c), (&d.key, &token_d)] {
            let (status, body) = read_task(s, &s.base, key, token, &task).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("token_revoked")),
                "{body}"
            );
            assert!(!active(s, token).await);
        }
        let (status, body) = read_task(s, &replica, &cc.key, &token_c, &task).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("token_revoked")),
            "the other replica sees it too: {body}"
        );
        assert_eq!(
            code(d.exchange(s, &token_d, &e, None).await),
            "token_revoked"
        );
        assert!(!active(s, &token_b).await);
        assert!(
            active(s, &token_a).await,
            "the delegator above B keeps its token"
        );

        c.sponsor_client
            .identity_action(b.identity.id, "resume", "explained")
            .await
            .unwrap();
        s.clock.advance_millis(1000);
        for token in [&token_b, &token_c, &token_d] {
            assert!(!active(s, token).await, "resuming revives nothing");
        }

        // The root leaves `active`: its task ends with it.
        c.sponsor_client
            .identity_action(a.identity.id, "suspend", "paused")
            .await
            .unwrap();
        let ended = s.admin.task(task.parse().unwrap()).await.unwrap();
        assert_eq!(
            (
                ended.state.as_str(),
                ended.end_reason.as_str(),
                ended.ended_at
            ),
            ("ended", "identity suspended", Some(s.clock_now()))
        );
        assert!(!active(s, &token_a).await);
    }

    /// The replica that records a revocation runs 30 s slow: the token it revokes was
    /// issued "after" the revocation by its clock. It is dead all the same, and so is
    /// every token of a signing key revoked the same way.
    pub async fn revocation_holds_whatever_the_clock_of_the_revoker(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-skewed", "EdDSA").await;
        let first = token_of(&a.open_task(s).await.unwrap());
        let second = token_of(&a.open_task(s).await.unwrap());
        let now = s.clock_now();
        s.clock.set(now.plus_millis(-30_000));
        c.sponsor_client.revoke_token(&first).await.unwrap();
        s.clock.set(now);
        assert!(!active(s, &first).await);
        assert!(active(s, &second).await);

        let kid = s.admin.signing_keys().await.unwrap()[0].kid.clone();
        s.clock.set(now.plus_millis(-30_000));
        s.admin.revoke_signing_key(&kid, "leaked").await.unwrap();
        s.clock.set(now);
        assert!(!active(s, &second).await);
    }

    /// Replica R signed with key K a moment ago; K is revoked on the other replica. The
    /// next token R issues is signed with another key, and is alive.
    pub async fn revoked_signing_key_never_signs_on_another_replica(s: &TestServer) {
        let c = cast(s).await;
        let a = Agent::new(s, &c, "agt-replica-signed", "EdDSA").await;
        let replica = s.replica().await;
        // The agent talks to the replica; tokens and proofs name the shared issuer URL.
        let agent = Agent {
            http: Client::new(&replica, None),
            ..a
        };
        let first = token_of(&agent.open_task(s).await.unwrap());
        let kid = |token: &str| {
            aim_token::jose::Unverified::parse(token, &[aim_token::access::ACCESS_TYP])
                .unwrap()
                .kid()
                .unwrap()
                .to_owned()
        };
        let old = kid(&first);
        s.admin.revoke_signing_key(&old, "leaked").await.unwrap();
        let next = token_of(&agent.open_task(s).await.unwrap());
        assert_ne!(
            kid(&next),
            old,
            "the replica did not sign with the revoked key"
        );
        assert!(active(s, &next).await);
        assert!(!active(s, &first).await);
    }
}
