//! `aim grant` and `aim approval` from the command line: a grant added, listed and
//! revoked, bad ones refused with their exit status; the approvals queue read and an
//! unknown approval refused.

use crate::process::{Serve, ok};

#[test]
fn grants_are_added_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let run = |args: &[&str]| serve.aim(Some(&admin), args);
    let json = |out: String| -> serde_json::Value { serde_json::from_str(&out).unwrap() };

    let g = json(ok(run(&[
        "grant",
        "add",
        "--group",
        "claims",
        "--action",
        "read",
        "--system",
        "crm",
        "--reason",
        "claims backlog",
        "--for",
        "30m",
        "-o",
        "json",
    ])));
    assert_eq!(
        (g["state"].as_str(), g["grantee"]["group"].as_str()),
        (Some("active"), Some("claims")),
        "{g}"
    );
    let id = g["id"].as_str().unwrap().to_owned();
    let created = aim_domain::time::Timestamp::parse(g["created_at"].as_str().unwrap()).unwrap();
    let expires = aim_domain::time::Timestamp::parse(g["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.as_millis() - created.as_millis(), 30 * 60 * 1000);

    let table = ok(run(&["grant", "list", "--group", "claims"]));
    assert!(
        table.contains(&id) && table.contains("crm (all)") && table.contains("active"),
        "{table}"
    );

    // One record needs its type; a missing reason is refused.
    let (code, _, err) = run(&[
        "grant",
        "add",
        "--group",
        "claims",
        "--action",
        "read",
        "--system",
        "crm",
        "--resource-id",
        "crm/1",
        "--reason",
        "x",
    ]);
    assert_eq!(code, 2, "clap refuses --resource-id alone: {err}");
    let (code, _, err) = run(&[
        "grant", "add", "--group", "claims", "--action", "read", "--system", "crm", "--reason", " ",
    ]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("reason"), "{err}");

    let revoked = json(ok(run(&[
        "grant",
        "revoke",
        &id,
        "--reason",
        "backlog cleared",
        "-o",
        "json",
    ])));
    assert_eq!(revoked["state"], "revoked");
    let (code, _, err) = run(&["grant", "revoke", &id, "--reason", "again"]);
    assert_eq!(code, 4, "{err}");
    let listed = json(ok(run(&[
        "grant", "list", "--state", "active", "-o", "json",
    ])));
    assert_eq!(listed, serde_json::json!([]));

    // Approvers' groups are what `@approval("group:...")` names.
    let fay = json(ok(run(&[
        "human",
        "add",
        "fay",
        "--role",
        "approver",
        "--group",
        "finance-approvers",
        "-o",
        "json",
    ])));
    assert_eq!(fay["groups"], serde_json::json!(["finance-approvers"]));
    let fay = json(ok(run(&[
        "human",
        "groups",
        "fay",
        "--group",
        "claims-leads",
        "--group",
        "finance-approvers",
        "-o",
        "json",
    ])));
    assert_eq!(
        fay["groups"],
        serde_json::json!(["claims-leads", "finance-approvers"])
    );
    let (code, _, err) = run(&["human", "groups", "fay", "--group", "bad group"]);
    assert_eq!(code, 6, "{err}");

    // Nothing waits for approval; an unknown approval is not found.
    let queue = json(ok(run(&["approval", "list", "-o", "json"])));
    assert_eq!(queue, serde_json::json!([]));
    let (code, _, err) = run(&[
        "approval",
        "approve",
        "01a205bb-f02d-7784-8dcf-59bb9cbbc239",
        "--reason",
        "ok",
    ]);
    assert_eq!(code, 3, "{err}");
}
