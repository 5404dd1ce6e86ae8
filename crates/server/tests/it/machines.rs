//! Least privilege for the machines that talk to aim: a gateway credential decides, follows
//! revocations and introspects, and reads nothing else; a SCIM credential provisions people
//! and makes no admins; the first-start admin secret expires once a second admin exists,
//! and can be rotated. Named after the attacks.

use aim_domain::human::Role;
use aim_testkit::TestServer;
use serde_json::{Value, json};

use crate::fixtures::{active_identity, cast, code};

crate::api_tests!(
    stolen_gateway_credential_cannot_read_or_change_the_registry,
    scim_credential_cannot_make_admins_or_leave_scim,
    scim_cannot_demote_its_callers_own_admin_role,
    machine_roles_cannot_be_mixed_with_a_persons,
    bootstrap_credential_expires_after_a_second_admin,
    bootstrap_credential_is_rotated,
);

/// `method path` with `token`; SCIM paths get SCIM's media type.
async fn call(s: &TestServer, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", s.base))
        .bearer_auth(token);
    if method != "GET" {
        let media = if path.starts_with("/scim/") {
            "application/scim+json"
        } else {
            "application/json"
        };
        req = req
            .header("content-type", media)
            .body(serde_json::to_vec(&body).unwrap());
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn user(name: &str, roles: &[&str]) -> Value {
    let roles: Vec<Value> = roles.iter().map(|r| json!({ "value": r })).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "roles": roles,
    })
}

mod cases {
    use super::*;

    /// The gateway's credential leaks from its host. It can ask for decisions, follow
    /// revocations and introspect, as a gateway must; it cannot list identities, make
    /// humans or change policies.
    pub async fn stolen_gateway_credential_cannot_read_or_change_the_registry(s: &TestServer) {
        let c = cast(s).await;
        let agent = active_identity(s, &c, "agt-behind-gateway").await;
        let (_, gw) = s.human("gateway-eu-1", &[Role::Gateway]).await;
        let gw = gw.token().unwrap().to_owned();
        let ask = json!({
            "action": "read",
            "resource": { "type": "Resource", "id": "crm/1", "system": "crm", "attrs": { "type": "t", "sensitivity": "internal" } },
            "principal": { "identity": agent.id },
        });
        let (status, d) = call(s, &gw, "POST", "/v1/authorize", ask).await;
        assert_eq!((status, d["decision"].as_str()), (200, Some("deny")), "{d}");
        assert_eq!(
            call(s, &gw, "GET", "/v1/revocations", json!(null)).await.0,
            200
        );
        let introspect = reqwest::Client::new()
            .post(format!("{}/oauth/introspect", s.base))
            .bearer_auth(&gw)
            .form(&[("token", "not-a-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(introspect.status(), 200);
        for (method, path, body) in [
            ("GET", "/v1/identities".to_owned(), json!(null)),
            ("GET", format!("/v1/identities/{}", agent.id), json!(null)),
            ("GET", "/v1/audit".to_owned(), json!(null)),
            (
                "POST",
                "/v1/humans".to_owned(),
                json!({ "user_name": "mallory", "roles": ["admin"] }),
            ),
            ("POST", "/v1/policies".to_owned(), json!({ "sources": [] })),
            (
                "POST",
                format!("/v1/identities/{}/lock", agent.id),
                json!({}),
            ),
        ] {
            let (status, body) = call(s, &gw, method, &path, body).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}"
            );
        }
    }

    /// The IdP's SCIM credential provisions people; it cannot make an admin or a gateway,
    /// and it reaches nothing outside `/scim/v2`.
    pub async fn scim_credential_cannot_make_admins_or_leave_scim(s: &TestServer) {
        let (_, idp) = s.human("okta", &[Role::Scim]).await;
        let idp = idp.token().unwrap().to_owned();
        let (status, body) = call(
            s,
            &idp,
            "POST",
            "/scim/v2/Users",
            user("nina@example.com", &["sponsor"]),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        for role in ["admin", "gateway"] {
            let (status, _) = call(
                s,
                &idp,
                "POST",
                "/scim/v2/Users",
                user(&format!("{role}@example.com"), &[role]),
            )
            .await;
            assert_eq!(status, 403, "{role}");
        }
        let id = body["id"].as_str().unwrap();
        let (status, _) = call(
            s,
            &idp,
            "PUT",
            &format!("/scim/v2/Users/{id}"),
            user("nina@example.com", &["admin"]),
        )
        .await;
        assert_eq!(status, 403, "nor promote someone to admin");
        assert_eq!(call(s, &idp, "GET", "/v1/humans", json!(null)).await.0, 403);
        assert_eq!(
            call(s, &idp, "GET", "/v1/identities", json!(null)).await.0,
            403
        );
        // An admin may still provision admins over SCIM.
        let (status, _) = call(
            s,
            &s.admin_token,
            "POST",
            "/scim/v2/Users",
            user("root@example.com", &["admin"]),
        )
        .await;
        assert_eq!(status, 201);
    }

    /// A misconfigured IdP pushes the admin whose credential it uses without the admin
    /// role: the deployment would lose its admin. Refused.
    pub async fn scim_cannot_demote_its_callers_own_admin_role(s: &TestServer) {
        let me = s.admin.find_human("admin").await.unwrap();
        let (status, body) = call(
            s,
            &s.admin_token,
            "PUT",
            &format!("/scim/v2/Users/{}", me.id),
            user("admin", &["sponsor"]),
        )
        .await;
        assert_eq!(status, 409, "{body}");
        let still = s.admin.human(me.id).await.unwrap();
        assert!(still.roles.contains(&Role::Admin));
    }

    /// A machine's credential is never also a person's.
    pub async fn machine_roles_cannot_be_mixed_with_a_persons(s: &TestServer) {
        let new = aim_domain::human::NewHuman {
            user_name: "gw-admin".into(),
            display_name: None,
            email: None,
            external_id: None,
            roles: vec![Role::Gateway, Role::Admin],
            groups: Vec::new(),
        };
        assert_eq!(code(s.admin.create_human(&new).await), "validation_failed");
    }

    /// The first-start secret sits in a file on the server. Once a second admin exists
    /// it works for a day more, then stops.
    pub async fn bootstrap_credential_expires_after_a_second_admin(s: &TestServer) {
        let (_, second) = s.human("ops-admin", &[Role::Admin]).await;
        s.clock.advance_millis(23 * 3_600_000);
        second.run_sweep().await.unwrap();
        assert!(
            s.admin
                .human(s.admin.find_human("admin").await.unwrap().id)
                .await
                .is_ok()
        );
        s.clock.advance_millis(2 * 3_600_000);
        second.run_sweep().await.unwrap();
        assert_eq!(code(s.admin.run_sweep().await), "unauthenticated");
        let revoked = second
            .audit(&vec![("action", "credential.revoked".to_owned())])
            .await
            .unwrap()
            .items;
        assert!(
            revoked.iter().any(|e| e.reason.contains("second admin")),
            "{revoked:?}"
        );
    }

    /// Rotating replaces the secret at once: the old one fails, the new one works.
    pub async fn bootstrap_credential_is_rotated(s: &TestServer) {
        let (_, sponsor) = s.human("sam", &[Role::Sponsor]).await;
        assert_eq!(code(sponsor.rotate_bootstrap().await), "forbidden");
        let issued = s.admin.rotate_bootstrap().await.unwrap();
        assert_eq!(code(s.admin.run_sweep().await), "unauthenticated");
        let fresh = s.client(Some(&issued.secret));
        fresh.run_sweep().await.unwrap();
        let file = std::fs::read_to_string(s.db.dir.path().join("bootstrap-admin-token")).unwrap();
        assert_eq!(file.trim(), issued.secret, "the file holds the new secret");
    }
}
