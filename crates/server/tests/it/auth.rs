use aim_domain::human::Role;
use aim_domain::lifecycle::LifecycleState;

use crate::api_tests;
use crate::fixtures::{active_identity, cast, code, event_count, request};

api_tests!(
    no_or_bad_credential_is_401_and_audited,
    auditor_reads_but_cannot_write,
    sponsor_touches_only_own_identities,
    departed_humans_and_revoked_credentials_stop_working,
    only_admins_manage_humans,
    bootstrap_credential_file_is_private,
);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn no_or_bad_credential_is_401_and_audited(s: &TestServer) {
        let before = event_count(s).await;
        assert_eq!(
            code(s.client(None).identities(&vec![]).await),
            "unauthenticated"
        );
        assert_eq!(
            code(
                s.client(Some("aim_not-a-real-one"))
                    .identities(&vec![])
                    .await
            ),
            "unauthenticated"
        );
        assert_eq!(
            code(s.client(Some("Basic abc")).identities(&vec![]).await),
            "unauthenticated"
        );
        let events = s.db.store.events(0, 1000).await.unwrap();
        let refused: Vec<_> = events[before..]
            .iter()
            .filter(|e| e.action.as_str() == "request.refused")
            .collect();
        assert_eq!(refused.len(), 3);
        assert!(
            refused
                .iter()
                .all(|e| e.reason == "unauthenticated" && e.actor.kind.as_str() == "anonymous")
        );
        // The scheme is case-insensitive.
        let http = reqwest::Client::new();
        let lower = http
            .get(format!("{}/v1/identities", s.base))
            .header("authorization", format!("bearer {}", s.admin_token));
        assert_eq!(lower.send().await.unwrap().status(), 200);
        // Health and the API description need no credential.
        assert_eq!(
            http.get(format!("{}/healthz", s.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            http.get(format!("{}/readyz", s.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let doc: serde_json::Value = http
            .get(format!("{}/v1/openapi.json", s.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["paths"]["/v1/identities"]["post"].is_object(), "{doc}");
        assert!(doc["components"]["schemas"]["Identity"].is_object());
        for path in [
            "/v1/policies",
            "/v1/policies/rollback",
            "/v1/authorize",
            "/v1/authorize/explain",
            "/v1/approvals/{id}/approve",
            "/v1/grants",
            "/v1/grants/requests",
            "/v1/grants/{id}/revoke",
            "/v1/leases",
            "/v1/leases/{id}/release",
        ] {
            assert!(doc["paths"][path]["post"].is_object(), "{path} missing");
        }
        assert!(doc["components"]["schemas"]["AuthorizeBody"].is_object());
    }

    pub async fn auditor_reads_but_cannot_write(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-audited").await;
        let (_, auditor) = s.human("audrey", &[Role::Auditor]).await;
        assert_eq!(auditor.identity(i.id).await.unwrap().id, i.id);
        assert!(!auditor.audit(&vec![]).await.unwrap().items.is_empty());
        let before = event_count(s).await;
        assert_eq!(
            code(auditor.identity_action(i.id, "suspend", "").await),
            "forbidden"
        );
        assert_eq!(
            code(
                auditor
                    .request_identity(&request(s, "agt-by-auditor", c.sponsor.id))
                    .await
            ),
            "forbidden"
        );
        assert_eq!(code(auditor.run_sweep().await), "forbidden");
        assert_eq!(
            s.admin.identity(i.id).await.unwrap().state,
            LifecycleState::Active
        );
        let events = s.db.store.events(0, 1000).await.unwrap();
        let refused: Vec<_> = events[before..]
            .iter()
            .filter(|e| e.action.as_str() == "request.refused")
            .collect();
        assert_eq!(refused.len(), 3, "each refused write is on the record");
        assert!(refused.iter().all(|e| e.reason == "forbidden"));
    }

    pub async fn sponsor_touches_only_own_identities(s: &TestServer) {
        let c = cast(s).await;
        // A sponsor requests identities only for themselves.
        let (someone, _) = s.human("sid", &[Role::Sponsor]).await;
        let r = c
            .sponsor_client
            .request_identity(&request(s, "agt-for-someone", someone.id))
            .await;
        assert_eq!(code(r), "forbidden");
        let mine = active_identity(s, &c, "agt-mine").await;
        let (other, other_client) = s.human("oscar", &[Role::Sponsor]).await;
        for action in ["suspend", "attest", "lock", "decommission"] {
            assert_eq!(
                code(other_client.identity_action(mine.id, action, "").await),
                "forbidden",
                "{action}"
            );
        }
        let patch = aim_domain::identity::IdentityPatch {
            purpose: Some("hijacked".into()),
            ..Default::default()
        };
        assert_eq!(
            code(other_client.change_identity(mine.id, &patch).await),
            "forbidden"
        );
        let x = c
            .sponsor_client
            .identity_action(mine.id, "suspend", "")
            .await
            .unwrap();
        assert_eq!(x.state, LifecycleState::Suspended);
        // Only an admin assigns a sponsor; the rights move with it.
        let handover = aim_domain::identity::IdentityPatch {
            sponsor_id: Some(other.id),
            ..Default::default()
        };
        let r = c.sponsor_client.change_identity(mine.id, &handover).await;
        assert_eq!(code(r), "forbidden");
        s.admin.change_identity(mine.id, &handover).await.unwrap();
        assert_eq!(
            code(
                c.sponsor_client
                    .identity_action(mine.id, "resume", "")
                    .await
            ),
            "forbidden"
        );
        other_client
            .identity_action(mine.id, "resume", "")
            .await
            .unwrap();
    }

    pub async fn departed_humans_and_revoked_credentials_stop_working(s: &TestServer) {
        let (h, client) = s.human("dora", &[Role::Sponsor]).await;
        client.identities(&vec![]).await.unwrap();
        s.admin.set_human_active(h.id, false, "left").await.unwrap();
        assert_eq!(code(client.identities(&vec![]).await), "unauthenticated");
        s.admin.set_human_active(h.id, true, "back").await.unwrap();
        client.identities(&vec![]).await.unwrap();
        let creds = s.admin.credentials(h.id).await.unwrap();
        s.admin.revoke_credential(h.id, creds[0].id).await.unwrap();
        assert_eq!(code(client.identities(&vec![]).await), "unauthenticated");
        assert_eq!(
            code(s.admin.revoke_credential(h.id, creds[0].id).await),
            "already_revoked"
        );
        let secret = s.admin.create_credential(h.id, "new").await.unwrap().secret;
        assert!(secret.starts_with("aim_"));
        s.client(Some(&secret)).identities(&vec![]).await.unwrap();
        // An admin cannot revoke the credential the request is made with (it would lock
        // them out mid-operation); with another credential they can.
        let admin = s.admin.find_human("admin").await.unwrap();
        let mine = s.admin.credentials(admin.id).await.unwrap();
        assert_eq!(
            code(s.admin.revoke_credential(admin.id, mine[0].id).await),
            "cannot_revoke_own_credential"
        );
        let spare = s
            .admin
            .create_credential(admin.id, "spare")
            .await
            .unwrap()
            .secret;
        s.client(Some(&spare))
            .revoke_credential(admin.id, mine[0].id)
            .await
            .unwrap();
        assert_eq!(code(s.admin.identities(&vec![]).await), "unauthenticated");
    }

    pub async fn only_admins_manage_humans(s: &TestServer) {
        let (h, client) = s.human("paul", &[Role::Approver]).await;
        let new = aim_domain::human::NewHuman {
            user_name: "mallory".into(),
            display_name: None,
            email: None,
            external_id: None,
            roles: vec![Role::Admin],
            groups: Vec::new(),
        };
        assert_eq!(code(client.create_human(&new).await), "forbidden");
        let patch = aim_domain::human::HumanPatch {
            roles: Some(vec![Role::Admin]),
            ..Default::default()
        };
        assert_eq!(code(client.change_human(h.id, &patch).await), "forbidden");
        assert_eq!(
            code(client.create_credential(h.id, "more").await),
            "forbidden"
        );
        assert_eq!(
            s.admin.human(h.id).await.unwrap().roles,
            vec![Role::Approver]
        );
        // An admin cannot lock themselves out by departing.
        let me = s.admin.find_human("admin").await.unwrap();
        assert_eq!(
            code(s.admin.set_human_active(me.id, false, "").await),
            "cannot_depart_self"
        );
        let demote = aim_domain::human::HumanPatch {
            roles: Some(vec![Role::Auditor]),
            ..Default::default()
        };
        assert_eq!(
            code(s.admin.change_human(me.id, &demote).await),
            "cannot_demote_self"
        );
        assert_eq!(s.admin.human(me.id).await.unwrap().roles, vec![Role::Admin]);
        let changed = s.admin.change_human(h.id, &patch).await.unwrap();
        assert_eq!(changed.roles, vec![Role::Admin]);
        assert_eq!(
            code(
                s.admin
                    .create_human(&aim_domain::human::NewHuman {
                        user_name: "PAUL".into(),
                        ..new
                    })
                    .await
            ),
            "user_name_taken"
        );
    }

    pub async fn bootstrap_credential_file_is_private(s: &TestServer) {
        use std::os::unix::fs::PermissionsExt;
        let path = s.db.dir.path().join("bootstrap-admin-token");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let secret = std::fs::read_to_string(&path).unwrap();
        assert_eq!(secret.trim(), s.admin_token);
        // Only the hash is stored: the secret appears in no stored event.
        let events = s.db.store.events(0, 1000).await.unwrap();
        assert!(
            events
                .iter()
                .all(|e| !serde_json::to_string(e).unwrap().contains(&s.admin_token))
        );
    }
}
