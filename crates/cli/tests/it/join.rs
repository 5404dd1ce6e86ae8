//! A new agent joins with a one-time token from the command line, then gets a token; the
//! join token works once.

use crate::process::{Serve, ok, request};

#[test]
fn an_agent_joins_once_and_gets_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    ok(serve.aim(
        Some(&admin),
        &["human", "add", "sam@example.com", "--role", "sponsor"],
    ));
    ok(serve.aim(
        Some(&admin),
        &["human", "add", "ava@example.com", "--role", "approver"],
    ));
    let ava = ok(serve.aim(
        Some(&admin),
        &["human", "credential", "create", "ava@example.com"],
    ));
    ok(serve.aim(
        Some(&admin),
        &request("agt-joiner", "ai_agent", "autonomous", "sam@example.com"),
    ));
    ok(serve.aim(
        Some(ava.trim()),
        &["identity", "approve", "agt-joiner", "--reason", "ok"],
    ));
    let out = ok(serve.aim(
        Some(&admin),
        &[
            "join-token",
            "create",
            "agt-joiner",
            "--ttl",
            "600",
            "-o",
            "json",
        ],
    ));
    let join: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = join["token"].as_str().unwrap();

    // The agent's side needs no credential of aim's: only the join token and its key.
    let key = dir.path().join("joiner.pem");
    ok(serve.aim(
        None,
        &[
            "identity",
            "key",
            "generate",
            "--out",
            key.to_str().unwrap(),
        ],
    ));
    let joined = ok(serve.aim(
        None,
        &[
            "identity",
            "key",
            "join",
            "--join-token",
            secret,
            "--key-file",
            key.to_str().unwrap(),
            "--label",
            "worker",
            "-o",
            "json",
        ],
    ));
    let joined: serde_json::Value = serde_json::from_str(&joined).unwrap();
    assert!(
        joined["created_by"]
            .as_str()
            .unwrap()
            .starts_with("join-token:")
    );
    let identity = joined["identity_id"].as_str().unwrap();
    let out = ok(serve.aim(
        None,
        &[
            "token",
            "issue",
            "--identity",
            identity,
            "--key-file",
            key.to_str().unwrap(),
            "--purpose",
            "first job",
            "--system",
            "crm",
            "--triggered-by",
            "sam: JOB-1",
            "-o",
            "json",
        ],
    ));
    let token: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(token["token_type"], "DPoP");
    // `aim task start` opens another task the same way; `aim task end` closes it.
    let out = ok(serve.aim(
        None,
        &[
            "task",
            "start",
            "--identity",
            identity,
            "--key-file",
            key.to_str().unwrap(),
            "--purpose",
            "second job",
            "--system",
            "crm",
            "--triggered-by",
            "sam: JOB-2",
            "-o",
            "json",
        ],
    ));
    let started: serde_json::Value = serde_json::from_str(&out).unwrap();
    let task = started["task_id"].as_str().unwrap();
    let out = ok(serve.aim(
        Some(&admin),
        &["task", "end", task, "--reason", "done", "-o", "json"],
    ));
    let ended: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ended["state"], "ended");
    // Used once; a second join is not authenticated (exit 5).
    let again = serve.aim(
        None,
        &[
            "identity",
            "key",
            "join",
            "--join-token",
            secret,
            "--key-file",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(again.0, 5, "{}", again.2);
    assert!(again.2.contains("join_token_invalid"), "{}", again.2);
    inspection_tells_the_truth(&serve, &admin, identity, &key, dir.path());
}

/// `aim token inspect` takes a file (or `-`, or the token), prints readable JSON, and says
/// what aim says: an active token exits 0; once its identity is locked it exits 5 and says
/// it is not active, though its signature and lifetime are still fine.
fn inspection_tells_the_truth(
    serve: &Serve,
    admin: &str,
    identity: &str,
    key: &std::path::Path,
    dir: &std::path::Path,
) {
    let file = dir.join("token.jwt");
    ok(serve.aim(
        None,
        &[
            "token",
            "issue",
            "--identity",
            identity,
            "--key-file",
            key.to_str().unwrap(),
            "--purpose",
            "inspected job",
            "--system",
            "crm",
            "--triggered-by",
            "sam: JOB-3",
            "--write-token",
            file.to_str().unwrap(),
        ],
    ));
    let path = file.to_str().unwrap();
    let out = ok(serve.aim(Some(admin), &["token", "inspect", path]));
    assert!(out.contains("verdict  active"), "{out}");
    assert!(
        out.contains("\n  \"client_id\": "),
        "claims print as indented JSON, one per line: {out}"
    );
    let (code, out, err) = serve.aim(
        Some(admin),
        &["identity", "lock", identity, "--reason", "inspect test"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = serve.aim(Some(admin), &["token", "inspect", path, "-o", "json"]);
    assert_eq!(code, 5, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["active"], false, "{v}");
    assert_eq!(v["introspection"]["active"], false, "{v}");
    assert!(err.contains("not active"), "{err}");
}
