//! Names, not UUIDs, wherever a person reads: tasks, grants, keys, `identity show`, the
//! audit list and a task's trace; JSON keeps the ids and adds the names beside them.

use crate::process::{Serve, ok, request};

#[test]
fn people_read_names_and_scripts_get_both() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let run = |args: &[&str]| serve.aim(Some(&admin), args);
    let json = |out: String| -> serde_json::Value { serde_json::from_str(&out).unwrap() };
    let me = json(ok(run(&["human", "list", "-o", "json"])));
    let admin_name = me[0]["user_name"].as_str().unwrap().to_owned();
    ok(run(&[
        "human",
        "add",
        "sam@example.com",
        "--role",
        "sponsor",
    ]));
    ok(run(&[
        "human",
        "add",
        "bob@example.com",
        "--role",
        "approver",
    ]));
    let bob = ok(run(&["human", "credential", "create", "bob@example.com"]));
    ok(run(&request(
        "agt-named-one",
        "ai_agent",
        "assistant",
        "sam@example.com",
    )));
    ok(serve.aim(
        Some(bob.trim()),
        &["identity", "approve", "agt-named-one", "--reason", "ok"],
    ));
    let id = json(ok(run(&[
        "identity",
        "show",
        "agt-named-one",
        "-o",
        "json",
    ])))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = dir.path().join("agent.pem");
    let k = key.to_str().unwrap();
    ok(run(&["identity", "key", "generate", "--out", k]));
    ok(run(&[
        "identity",
        "key",
        "add",
        "agt-named-one",
        "--key-file",
        k,
    ]));
    ok(serve.aim(
        None,
        &[
            "token",
            "issue",
            "--identity",
            &id,
            "--key-file",
            k,
            "--purpose",
            "names",
            "--system",
            "crm",
            "--triggered-by",
            "sam: NAMES-1",
            "--write-token",
            dir.path().join("token.jwt").to_str().unwrap(),
        ],
    ));
    ok(run(&[
        "grant",
        "add",
        "--identity",
        "agt-named-one",
        "--action",
        "read",
        "--system",
        "crm",
        "--reason",
        "names test",
    ]));

    // identity show: the sponsor, who asked and who decided, by name.
    let show = ok(run(&["identity", "show", "agt-named-one"]));
    assert!(show.contains("sam@example.com"), "{show}");
    assert!(show.contains(&format!("by {admin_name}")), "{show}");
    assert!(show.contains("by bob@example.com"), "{show}");
    let v = json(ok(run(&[
        "identity",
        "show",
        "agt-named-one",
        "-o",
        "json",
    ])));
    assert_eq!(v["decided_by_name"], "bob@example.com", "{v}");
    assert!(
        v["decided_by"].as_str().is_some_and(|s| s.len() == 36),
        "{v}"
    );

    // The identity list names sponsors from the page, and adds the names in JSON.
    let list = ok(run(&["identity", "list"]));
    assert!(list.contains("sam@example.com"), "{list}");
    let v = json(ok(run(&["identity", "list", "-o", "json"])));
    assert_eq!(v[0]["sponsor_name"], "sam@example.com", "{v}");
    assert_eq!(
        v[0]["name"], "agt-named-one",
        "the identity's own name stays"
    );

    // Tasks, grants and keys.
    let tasks = ok(run(&["task", "list"]));
    assert!(
        tasks.contains("agt-named-one") && !tasks.contains(&id),
        "{tasks}"
    );
    let v = json(ok(run(&["task", "list", "-o", "json"])));
    assert_eq!(
        (v[0]["identity_id"].as_str(), v[0]["identity_name"].as_str()),
        (Some(id.as_str()), Some("agt-named-one"))
    );
    let task = v[0]["id"].as_str().unwrap().to_owned();
    let grants = ok(run(&["grant", "list", "--identity", "agt-named-one"]));
    assert!(
        grants.contains("identity agt-named-one") && !grants.contains(&id),
        "{grants}"
    );
    let keys = ok(run(&["identity", "key", "list", "agt-named-one"]));
    assert!(keys.contains(&admin_name), "{keys}");
    let v = json(ok(run(&[
        "identity",
        "key",
        "list",
        "agt-named-one",
        "-o",
        "json",
    ])));
    assert_eq!(
        v[0]["created_by_name"].as_str(),
        Some(admin_name.as_str()),
        "{v}"
    );

    // The audit list and a task's trace.
    let log = ok(run(&["audit", "list", "--identity", "agt-named-one"]));
    assert!(
        log.contains("human:bob@example.com") && log.contains("identity:agt-named-one"),
        "{log}"
    );
    assert!(!log.contains(&id), "{log}");
    let v = json(ok(run(&[
        "audit",
        "list",
        "--identity",
        "agt-named-one",
        "-o",
        "json",
    ])));
    let approved = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "identity.approved")
        .unwrap();
    assert_eq!(approved["actor"]["name"], "bob@example.com", "{approved}");
    assert_eq!(approved["target_name"], "agt-named-one", "{approved}");
    assert_eq!(approved["target_id"], id.as_str(), "{approved}");
    let trace = ok(run(&["audit", "trace", &task]));
    assert!(
        trace.contains("identity:agt-named-one") && !trace.contains(&id),
        "{trace}"
    );
}
