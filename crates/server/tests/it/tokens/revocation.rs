//! Tokens die when they should: introspection follows live state, RFC 7009 revocation,
//! signing keys rotated and revoked, and the revocation list streamed to gateways.

use super::*;

crate::api_tests!(
    introspection_and_revocation_follow_live_state,
    signing_keys_rotate_and_revoke,
    revocations_stream_to_gateways,
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

mod cases {
    use super::*;
    pub async fn introspection_and_revocation_follow_live_state(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-token-e", "EdDSA").await;
        let active = |v: &aim_api::oauth::Introspection| v.active;
        let token = |r: Value| r["access_token"].as_str().unwrap().to_owned();

        let first = token(agent.open_task(s).await.unwrap());
        let v = s.admin.introspect(&first).await.unwrap();
        assert!(active(&v), "{v:?}");
        assert_eq!(v.client_id, Some(agent.identity.id.to_string()));
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
        // A token issued after the resume works, even within the same second as the
        // suspension: issue times are kept to the millisecond (the jti is a UUIDv7).
        s.clock.advance_millis(1);
        let third = token(agent.open_task(s).await.unwrap());
        assert!(active(&s.admin.introspect(&third).await.unwrap()));

        // The list gateways follow: the token and the identity, each with its epoch.
        let list = s.admin.revocations(0).await.unwrap();
        let kinds: Vec<&str> = list.items.iter().map(|r| r.kind.as_str()).collect();
        assert!(
            kinds.contains(&"token") && kinds.contains(&"identity"),
            "{list:?}"
        );
        assert!(
            s.admin
                .revocations(list.epoch)
                .await
                .unwrap()
                .items
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
        let old = keys[0].kid.clone();
        assert_eq!(
            code(c.sponsor_client.rotate_signing_key().await),
            "forbidden"
        );

        let keys = s.admin.rotate_signing_key().await.unwrap();
        assert_eq!(keys.len(), 2);
        let current: Vec<_> = keys.iter().filter(|k| k.current).collect();
        assert_eq!(current.len(), 1);
        assert_ne!(current[0].kid, old);
        assert!(
            keys.iter().all(|k| k.published),
            "the old key still verifies: {keys:?}"
        );
        assert!(jwks(s).await.contains(&old));
        assert!(s.admin.introspect(&old_token).await.unwrap().active);
        let new_token = token(agent.open_task(s).await.unwrap());
        assert!(s.admin.introspect(&new_token).await.unwrap().active);

        s.admin
            .revoke_signing_key(&old, "compromised")
            .await
            .unwrap();
        assert!(!s.admin.introspect(&old_token).await.unwrap().active);
        assert!(s.admin.introspect(&new_token).await.unwrap().active);
        assert!(!jwks(s).await.contains(&old), "a revoked key leaves JWKS");
        assert_eq!(
            code(s.admin.revoke_signing_key(&old, "again").await),
            "not_found"
        );
    }

    pub async fn revocations_stream_to_gateways(s: &TestServer) {
        let c = cast(s).await;
        let agent = Agent::new(s, &c, "agt-stream-a", "EdDSA").await;
        let start = s.admin.revocations(0).await.unwrap().epoch;
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
}
