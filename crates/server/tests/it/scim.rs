//! SCIM 2.0 as Okta and Entra ID speak it.

use aim_domain::human::{HumanState, Role};
use aim_domain::lifecycle::LifecycleState;
use serde_json::{Value, json};

use crate::api_tests;
use crate::fixtures::{active_identity, cast};

api_tests!(
    create_get_filter,
    okta_and_entra_deactivate_with_patch,
    put_replaces_profile,
    delete_departs_and_hides,
    errors_use_scim_shape,
    the_identity_provider_cannot_remove_the_last_admin,
    groups_in_okta_and_entra_styles,
);

async fn scim(
    s: &aim_testkit::TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}/scim/v2{path}", s.base))
        .bearer_auth(&s.admin_token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status != 204 {
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(ct, "application/scim+json", "{method} {path}");
    }
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn okta_user(user: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user,
        "name": { "givenName": "Nina", "familyName": "Ortiz" },
        "emails": [{ "primary": true, "value": user, "type": "work" }],
        "displayName": "Nina Ortiz",
        "locale": "en-US",
        "externalId": "00u1abcd",
        "groups": [],
        "password": "ignored-by-aim",
        "active": true,
        "roles": [{ "value": "sponsor" }]
    })
}

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    pub async fn create_get_filter(s: &TestServer) {
        let (status, u) = scim(s, "POST", "/Users", Some(okta_user("nina@example.com"))).await;
        assert_eq!(status, 201, "{u}");
        assert_eq!(u["userName"], "nina@example.com");
        assert_eq!(u["active"], true);
        assert_eq!(u["externalId"], "00u1abcd");
        assert_eq!(u["displayName"], "Nina Ortiz");
        assert_eq!(u["emails"][0]["value"], "nina@example.com");
        assert_eq!(u["roles"][0]["value"], "sponsor");
        assert_eq!(u["meta"]["resourceType"], "User");
        assert!(
            u.to_string().find("ignored-by-aim").is_none(),
            "passwords are never kept"
        );
        let id = u["id"].as_str().unwrap().to_owned();
        let (status, got) = scim(s, "GET", &format!("/Users/{id}"), None).await;
        assert_eq!((status, &got["id"]), (200, &json!(id)));
        // The lookup an IdP makes before creating: case-insensitive userName.
        let (status, list) = scim(
            s,
            "GET",
            "/Users?filter=userName%20eq%20%22NINA%40example.com%22",
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            list["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
        assert_eq!(list["totalResults"], 1);
        assert_eq!(list["Resources"][0]["id"], json!(id));
        let (_, none) = scim(s, "GET", "/Users?filter=userName%20eq%20%22nobody%22", None).await;
        assert_eq!(
            (
                none["totalResults"].as_u64(),
                none["Resources"].as_array().map(Vec::len)
            ),
            (Some(0), Some(0))
        );
        let (_, by_ext) = scim(
            s,
            "GET",
            "/Users?filter=externalId%20eq%20%2200u1abcd%22",
            None,
        )
        .await;
        assert_eq!(by_ext["totalResults"], 1);
        // Index-based paging over everyone (the bootstrap admin and nina).
        let (_, page) = scim(s, "GET", "/Users?startIndex=2&count=1", None).await;
        assert_eq!(
            (
                page["totalResults"].as_u64(),
                page["startIndex"].as_u64(),
                page["itemsPerPage"].as_u64()
            ),
            (Some(2), Some(2), Some(1))
        );
        // The human is visible in aim's own API with the role the IdP gave.
        let h = s.admin.find_human("nina@example.com").await.unwrap();
        assert_eq!(h.roles, vec![Role::Sponsor]);
    }

    pub async fn okta_and_entra_deactivate_with_patch(s: &TestServer) {
        let c = cast(s).await;
        let sponsored = active_identity(s, &c, "agt-scim-sponsored").await;
        let id = c.sponsor.id.to_string();
        // Okta: a value object without a path.
        let okta = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "value": { "active": false } }]
        });
        let (status, u) = scim(s, "PATCH", &format!("/Users/{id}"), Some(okta)).await;
        assert_eq!((status, &u["active"]), (200, &json!(false)), "{u}");
        assert_eq!(
            s.admin.human(c.sponsor.id).await.unwrap().state,
            HumanState::Departed
        );
        let i = s.admin.identity(sponsored.id).await.unwrap();
        assert!(
            i.orphaned_since.is_some(),
            "departure orphans the sponsor's identities"
        );
        // Entra ID: a path, capitalised op, and the value as a string.
        let entra = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                { "op": "Replace", "path": "active", "value": "True" },
                { "op": "Replace", "path": "displayName", "value": "Sam Sponsor" },
                { "op": "Add", "path": "emails[type eq \"work\"].value", "value": "sam@corp.example" },
                { "op": "Replace", "path": "name.givenName", "value": "Sam" }
            ]
        });
        let (status, u) = scim(s, "PATCH", &format!("/Users/{id}"), Some(entra)).await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(
            (&u["active"], &u["displayName"]),
            (&json!(true), &json!("Sam Sponsor"))
        );
        assert_eq!(u["emails"][0]["value"], "sam@corp.example");
        assert!(
            s.admin
                .identity(sponsored.id)
                .await
                .unwrap()
                .orphaned_since
                .is_none()
        );
    }

    pub async fn put_replaces_profile(s: &TestServer) {
        let (_, u) = scim(s, "POST", "/Users", Some(okta_user("pat@example.com"))).await;
        let id = u["id"].as_str().unwrap().to_owned();
        let mut full = okta_user("pat@example.com");
        full["displayName"] = json!("Pat Renamed");
        full["active"] = json!(false);
        let (status, u) = scim(s, "PUT", &format!("/Users/{id}"), Some(full)).await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(
            (&u["displayName"], &u["active"]),
            (&json!("Pat Renamed"), &json!(false))
        );
    }

    pub async fn delete_departs_and_hides(s: &TestServer) {
        let c = cast(s).await;
        let i = active_identity(s, &c, "agt-scim-deleted").await;
        let id = c.sponsor.id.to_string();
        let (status, _) = scim(s, "DELETE", &format!("/Users/{id}"), None).await;
        assert_eq!(status, 204);
        let (status, e) = scim(s, "GET", &format!("/Users/{id}"), None).await;
        assert_eq!(status, 404, "{e}");
        // aim keeps the record, departed, and the identity is orphaned.
        assert_eq!(
            s.admin.human(c.sponsor.id).await.unwrap().state,
            HumanState::Departed
        );
        let i = s.admin.identity(i.id).await.unwrap();
        assert!(i.orphaned_since.is_some());
        assert_eq!(
            i.state,
            LifecycleState::Active,
            "suspended only after the grace period"
        );
    }

    /// Deactivating, deleting or demoting the only admin over SCIM is refused (409), and
    /// the admin keeps working.
    pub async fn the_identity_provider_cannot_remove_the_last_admin(s: &TestServer) {
        let (_, idp) = s.human("okta-provisioner", &[Role::Scim]).await;
        let idp_token = idp.token().unwrap().to_owned();
        let me = s.admin.find_human("admin").await.unwrap();
        let id = me.id.to_string();
        let as_idp = |method: &'static str, body: Option<Value>| {
            let (http, base, token, id) = (
                reqwest::Client::new(),
                s.base.clone(),
                idp_token.clone(),
                id.clone(),
            );
            async move {
                let mut req = http
                    .request(
                        method.parse().unwrap(),
                        format!("{base}/scim/v2/Users/{id}"),
                    )
                    .bearer_auth(token);
                if let Some(b) = body {
                    req = req
                        .header("content-type", "application/scim+json")
                        .body(b.to_string());
                }
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }
        };
        let deactivate = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "value": { "active": false } }]
        });
        let mut demote = okta_user("admin");
        demote["externalId"] = json!(null);
        demote["roles"] = json!([{ "value": "sponsor" }]);
        for (method, body) in [
            ("PATCH", Some(deactivate)),
            ("PUT", Some(demote)),
            ("DELETE", None),
        ] {
            let (status, text) = as_idp(method, body).await;
            assert_eq!(status, 409, "{method}: {text}");
            assert!(text.contains("active admin"), "{text}");
        }
        let me_after = s.admin.human(me.id).await.unwrap();
        assert!(me_after.is_active() && me_after.has_role(Role::Admin));
    }

    /// Groups pushed by an IdP become aim's groups: created with members, found by
    /// display name, changed with Okta's and Entra ID's PATCH dialects, deleted; policies
    /// see the membership at once.
    pub async fn groups_in_okta_and_entra_styles(s: &TestServer) {
        let mut users = Vec::new();
        for u in ["gina@example.com", "hugo@example.com"] {
            let (status, body) = scim(s, "POST", "/Users", Some(okta_user(u))).await;
            assert_eq!(status, 201, "{body}");
            users.push(body["id"].as_str().unwrap().to_owned());
        }
        let (gina, hugo) = (users[0].clone(), users[1].clone());
        let groups_of = |id: &str| {
            let id: aim_domain::ids::HumanId = id.parse().unwrap();
            async move { s.admin.human(id).await.unwrap().groups }
        };
        let members = |g: &Value| -> Vec<String> {
            let mut m: Vec<String> = g["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|m| m["value"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            m.sort();
            m
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let (status, g) = scim(
            s,
            "POST",
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Claims Leads",
                "externalId": "00g1okta",
                "members": [{ "value": gina, "display": "gina@example.com" }],
            })),
        )
        .await;
        assert_eq!(status, 201, "{g}");
        assert_eq!(
            g["urn:aim:params:scim:schemas:extension:2.0:Group"]["name"],
            "claims-leads"
        );
        assert_eq!(members(&g), std::slice::from_ref(&gina));
        assert_eq!(groups_of(&gina).await, ["claims-leads"]);
        let gid = g["id"].as_str().unwrap().to_owned();
        let path = format!("/Groups/{gid}");
        // Policies see the membership.
        let policy = r#"permit(principal in Aim::Group::"claims-leads", action == Aim::Action::"read", resource in Aim::System::"crm");"#;
        let (status, _) = crate::tokens::post(
            s,
            "/v1/policies",
            &s.admin_token,
            &json!({ "sources": [{ "name": "g.cedar", "text": policy }] }),
        )
        .await;
        assert_eq!(status, 201);
        let decide = |who: &str| {
            let body = json!({ "action": "read", "principal": { "human": who }, "resource": { "type": "Resource", "id": "crm/1", "system": "crm", "attrs": { "type": "note", "sensitivity": "internal" } } });
            async move {
                crate::tokens::post(s, "/v1/authorize", &s.admin_token, &body)
                    .await
                    .1["decision"]
                    .clone()
            }
        };
        assert_eq!(decide(&gina).await, "allow");
        assert_eq!(decide(&hugo).await, "deny");

        // Found by display name, or not at all.
        let (status, list) = scim(
            s,
            "GET",
            "/Groups?filter=displayName%20eq%20%22Claims%20Leads%22",
            None,
        )
        .await;
        assert_eq!(
            (status, list["totalResults"].as_u64()),
            (200, Some(1)),
            "{list}"
        );
        let (_, none) = scim(
            s,
            "GET",
            "/Groups?filter=displayName%20eq%20%22Nobody%22",
            None,
        )
        .await;
        assert_eq!(none["totalResults"], 0);

        // Okta: add with a path, remove by filter, rename without a path.
        let okta = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });
        let (status, g) = scim(s, "PATCH", &path, Some(okta(json!([{ "op": "add", "path": "members", "value": [{ "value": hugo, "display": "hugo@example.com" }] }])))).await;
        assert_eq!(status, 200, "{g}");
        assert_eq!(members(&g), sorted(vec![gina.clone(), hugo.clone()]));
        let (_, g) = scim(
            s,
            "PATCH",
            &path,
            Some(okta(
                json!([{ "op": "remove", "path": format!("members[value eq \"{gina}\"]") }]),
            )),
        )
        .await;
        assert_eq!(members(&g), std::slice::from_ref(&hugo));
        assert!(groups_of(&gina).await.is_empty());
        assert_eq!(decide(&gina).await, "deny");
        assert_eq!(decide(&hugo).await, "allow");
        let (_, g) = scim(
            s,
            "PATCH",
            &path,
            Some(okta(
                json!([{ "op": "replace", "value": { "id": gid, "displayName": "Claims Team" } }]),
            )),
        )
        .await;
        assert_eq!(g["displayName"], "Claims Team");
        assert_eq!(
            g["urn:aim:params:scim:schemas:extension:2.0:Group"]["name"], "claims-leads",
            "the aim name stays"
        );

        // Entra ID: capitalised ops, remove with a value list, replace by path.
        let entra = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });
        let (status, g) = scim(
            s,
            "PATCH",
            &path,
            Some(entra(json!([
                { "op": "Add", "path": "members", "value": [{ "value": gina }] },
                { "op": "Remove", "path": "members", "value": [{ "value": hugo }] },
                { "op": "Replace", "path": "displayName", "value": "Claims Crew" },
            ]))),
        )
        .await;
        assert_eq!(status, 200, "{g}");
        assert_eq!(
            (members(&g), g["displayName"].as_str()),
            (vec![gina.clone()], Some("Claims Crew"))
        );
        let (_, g) = scim(
            s,
            "GET",
            &format!("{path}?excludedAttributes=members"),
            None,
        )
        .await;
        assert!(g.get("members").is_none(), "{g}");

        // Refusals: an unknown member (nothing applied), a taken name, an unknown op.
        let ghost = aim_domain::ids::HumanId::new().to_string();
        let (status, e) = scim(s, "PATCH", &path, Some(okta(json!([{ "op": "add", "path": "members", "value": [{ "value": hugo }, { "value": ghost }] }])))).await;
        assert_eq!(status, 400, "{e}");
        assert!(groups_of(&hugo).await.is_empty(), "nothing half-applied");
        let (status, e) = scim(
            s,
            "POST",
            "/Groups",
            Some(json!({ "displayName": "claims leads" })),
        )
        .await;
        assert_eq!(
            (status, e["scimType"].as_str()),
            (409, Some("uniqueness")),
            "{e}"
        );
        let (status, _) = scim(
            s,
            "PATCH",
            &path,
            Some(okta(json!([{ "op": "move", "path": "members" }]))),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = scim(s, "GET", "/Groups/not-a-group", None).await;
        assert_eq!(status, 404);

        // Deleted: its members leave it, and it is gone.
        let (status, _) = scim(s, "DELETE", &path, None).await;
        assert_eq!(status, 204);
        assert!(groups_of(&gina).await.is_empty());
        let (status, _) = scim(s, "GET", &path, None).await;
        assert_eq!(status, 404);
        let log = crate::fixtures::all_events(s).await;
        let actions: Vec<&str> = log
            .iter()
            .map(|e| e.action.as_str())
            .filter(|a| a.starts_with("group."))
            .collect();
        assert_eq!(actions.first(), Some(&"group.provisioned"));
        assert_eq!(actions.last(), Some(&"group.deleted"));
    }

    pub async fn errors_use_scim_shape(s: &TestServer) {
        let check = |(status, body): (u16, Value), want_status: u16, want_type: Option<&str>| {
            assert_eq!(status, want_status, "{body}");
            assert_eq!(
                body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
                "{body}"
            );
            assert_eq!(body["status"], json!(want_status.to_string()));
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
            match want_type {
                Some(t) => assert_eq!(body["scimType"], t, "{body}"),
                None => assert!(body.get("scimType").is_none(), "{body}"),
            }
        };
        scim(s, "POST", "/Users", Some(okta_user("dupe@example.com"))).await;
        check(
            scim(s, "POST", "/Users", Some(okta_user("DUPE@example.com"))).await,
            409,
            Some("uniqueness"),
        );
        check(
            scim(
                s,
                "POST",
                "/Users",
                Some(json!({ "displayName": "no user name" })),
            )
            .await,
            400,
            Some("invalidValue"),
        );
        check(
            scim(s, "GET", "/Users?filter=displayName%20co%20%22x%22", None).await,
            400,
            Some("invalidFilter"),
        );
        check(
            scim(
                s,
                "GET",
                &format!("/Users/{}", aim_domain::ids::HumanId::new()),
                None,
            )
            .await,
            404,
            None,
        );
        check(scim(s, "GET", "/Users/not-an-id", None).await, 404, None);
        let (_, u) = scim(
            s,
            "GET",
            "/Users?filter=userName%20eq%20%22dupe%40example.com%22",
            None,
        )
        .await;
        let id = u["Resources"][0]["id"].as_str().unwrap().to_owned();
        let bad_path =
            json!({ "Operations": [{ "op": "replace", "path": "password", "value": "x" }] });
        check(
            scim(s, "PATCH", &format!("/Users/{id}"), Some(bad_path)).await,
            400,
            Some("invalidPath"),
        );
        let bad_active =
            json!({ "Operations": [{ "op": "replace", "path": "active", "value": "maybe" }] });
        check(
            scim(s, "PATCH", &format!("/Users/{id}"), Some(bad_active)).await,
            400,
            Some("invalidValue"),
        );
        let bad_role = json!({ "userName": "r@example.com", "roles": [{ "value": "root" }] });
        check(
            scim(s, "POST", "/Users", Some(bad_role)).await,
            400,
            Some("invalidValue"),
        );
        // Malformed and deeply nested JSON.
        let http = reqwest::Client::new();
        for body in [
            "{\"userName\":".to_owned(),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ] {
            let resp = http
                .post(format!("{}/scim/v2/Users", s.base))
                .bearer_auth(&s.admin_token)
                .header("content-type", "application/scim+json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            check(
                (status, resp.json().await.unwrap()),
                400,
                Some("invalidSyntax"),
            );
        }
        // No credential: SCIM's shape too.
        let resp = http
            .get(format!("{}/scim/v2/Users", s.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        check((status, resp.json().await.unwrap()), 401, None);
    }
}
