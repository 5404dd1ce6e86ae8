use crate::process::Serve;

fn verify(dir: &std::path::Path) -> (i32, String, String) {
    let out = std::process::Command::new(crate::process::AIM)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.join("aim-data"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_verify_offline_names_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let token = serve.token();
    for user in ["ann@example.com", "ben@example.com", "cat@example.com"] {
        assert_eq!(
            serve
                .aim(Some(&token), &["human", "add", user, "--role", "sponsor"])
                .0,
            0
        );
    }
    // A refused request is on the record too.
    assert_eq!(serve.aim(Some("aim_wrong"), &["identity", "list"]).0, 5);
    // Reading the log through the API.
    let (code, out, err) = serve.aim(
        Some(&token),
        &["audit", "list", "--human", "ben@example.com", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let records: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(records[0]["action"], "human.created");
    assert_eq!(records.as_array().unwrap().len(), 1);
    let (code, out, _) = serve.aim(Some(&token), &["audit", "list", "--outcome", "denied"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("request.refused") && out.contains("unauthenticated"),
        "{out}"
    );
    // Records 1 and 2 are the first token signing and checkpoint keys; the first admin
    // comes next.
    let (code, out, _) = serve.aim(Some(&token), &["audit", "show", "3"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("system:bootstrap") && out.contains("prev hash"),
        "{out}"
    );
    assert_eq!(serve.aim(Some(&token), &["audit", "show", "999"]).0, 3);
    // Export as JSON Lines, and check the export offline; a tampered export fails.
    let export = dir.path().join("audit.jsonl");
    let (code, _, err) = serve.aim(
        Some(&token),
        &["audit", "export", "--file", export.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert_eq!(text.lines().count(), 7);
    let from_export = |file: &std::path::Path| {
        let out = std::process::Command::new(crate::process::AIM)
            .args(["audit", "verify", "--from-export"])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = from_export(&export);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("intact: records 1 to 7"), "{out}");
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("ben@example.com", "eve@example.com", 1),
    )
    .unwrap();
    let (code, _, err) = from_export(&tampered);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("record 5 was altered"), "{err}");
    // OCSF and CEF for a SIEM: one record per line each.
    let (code, ocsf, _) = serve.aim(Some(&token), &["audit", "export", "--format", "ocsf"]);
    assert_eq!(code, 0);
    let first: serde_json::Value = serde_json::from_str(ocsf.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["class_uid"].as_u64(), first["activity_id"].as_u64()),
        (Some(3001), Some(1))
    );
    let refused: serde_json::Value = serde_json::from_str(ocsf.lines().nth(6).unwrap()).unwrap();
    assert_eq!(
        refused["class_uid"], 3002,
        "the refused credential is an authentication failure"
    );
    let (code, cef, _) = serve.aim(Some(&token), &["audit", "export", "--format", "cef"]);
    assert_eq!(code, 0);
    assert_eq!(cef.lines().count(), 7);
    assert!(
        cef.lines().all(|l| l.starts_with("CEF:0|aim|aim|")),
        "{cef}"
    );
    // A partial export checks from where it starts.
    let (code, partial, _) = serve.aim(Some(&token), &["audit", "export", "--after", "2"]);
    assert_eq!(code, 0);
    let partial_file = dir.path().join("partial.jsonl");
    std::fs::write(&partial_file, &partial).unwrap();
    let (code, out, err) = from_export(&partial_file);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("intact: records 3 to 7"), "{out}");
    // The last records, for a person watching.
    let (code, out, _) = serve.aim(Some(&token), &["audit", "tail", "-n", "2"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().last().unwrap().starts_with("7  "), "{out}");
    // While the server runs: the check only reads.
    let (code, out, err) = verify(dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("intact: 7 records verified"), "{out}");
    drop(serve);

    // An attacker with the database file lifts the trigger and edits record 3.
    let db = dir.path().join("aim-data/aim.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER events_no_update; UPDATE events SET actor_id = 'someone-else' WHERE seq = 3;")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let (code, out, err) = verify(dir.path());
    assert_eq!(code, 8, "{out}{err}");
    assert!(err.contains("record 3 was altered"), "{err}");

    // A missing data dir is an error (not found), not a pass.
    let out = std::process::Command::new(crate::process::AIM)
        .args(["audit", "verify", "--data-dir", "/nonexistent/aim-data"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// Someone with the database file cuts the log short and rewrites the chain head to match:
/// the log alone then looks intact, but a signed checkpoint kept outside aim catches it.
#[test]
fn a_signed_checkpoint_catches_a_rewritten_tail() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let token = serve.token();
    for user in ["dan@example.com", "eli@example.com", "fay@example.com"] {
        assert_eq!(serve.aim(Some(&token), &["human", "add", user]).0, 0);
    }
    let cp_file = dir.path().join("checkpoint.json");
    let (code, _, err) = serve.aim(
        Some(&token),
        &["audit", "checkpoint", "--file", cp_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let cp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cp_file).unwrap()).unwrap();
    assert_eq!(cp["seq"], 6);
    // The key is published, and a rotation keeps the old one listed (it still verifies).
    let keys = |args: &[&str]| -> serde_json::Value {
        let (code, out, err) = serve.aim(Some(&token), args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let published = keys(&["audit", "checkpoint-keys", "-o", "json"]);
    assert_eq!(published[0]["public_key"], cp["public_key"], "{published}");
    let rotated = keys(&["audit", "checkpoint-keys", "--rotate", "-o", "json"]);
    assert_eq!(rotated.as_array().unwrap().len(), 2, "{rotated}");
    assert_eq!(rotated[1]["public_key"], cp["public_key"], "{rotated}");
    assert!(rotated[1]["retired_at"].is_string() && rotated[0]["retired_at"].is_null());
    drop(serve);

    let with_checkpoint = |file: &std::path::Path, extra: &[&str]| {
        let out = std::process::Command::new(crate::process::AIM)
            .args(["audit", "verify", "--data-dir"])
            .arg(dir.path().join("aim-data"))
            .arg("--checkpoint")
            .arg(file)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        with_checkpoint(&cp_file, &[]).0,
        0,
        "intact before the attack"
    );
    let public_key = cp["public_key"].as_str().unwrap().to_owned();
    assert_eq!(
        with_checkpoint(&cp_file, &["--public-key", &public_key]).0,
        0
    );

    let db = dir.path().join("aim-data/aim.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
        let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::raw_sql(
            "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq > 2; \
             UPDATE chain_head SET seq = 2, hash = (SELECT hash FROM events WHERE seq = 2);",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let (code, out, err) = verify(dir.path());
    assert_eq!(
        code, 0,
        "without a checkpoint the shortened log looks intact: {out}{err}"
    );
    let (code, err) = with_checkpoint(&cp_file, &[]);
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains("the log ends at record 2") && err.contains("truncated"),
        "{err}"
    );

    // A forged or foreign checkpoint is refused outright.
    let forged = dir.path().join("forged.json");
    let mut f = cp.clone();
    f["seq"] = serde_json::json!(2);
    std::fs::write(&forged, f.to_string()).unwrap();
    let (code, err) = with_checkpoint(&forged, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("signature does not verify"), "{err}");
    let (code, err) = with_checkpoint(&cp_file, &["--public-key", &"ab".repeat(32)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another key"), "{err}");
}

/// `aim audit trace` prints a task's causal chain as a tree. The task's records are
/// appended straight into the server's database, as the token issuer and the gateway write
/// them; a hostile request reference cannot colour or break the output.
#[test]
fn audit_trace_prints_the_causal_chain() {
    use aim_domain::event::{Actor, Event, Outcome, Trail};
    use aim_domain::ids::TaskId;

    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let token = serve.token();
    let task = TaskId::new();
    let t = task.to_string();
    let trail = |jti: &str| Trail {
        task_id: t.clone(),
        jti: jti.into(),
        triggered_by: "TICKET-9\u{1b}[31m\nforged".into(),
        ..Trail::default()
    };
    let at = aim_domain::time::Timestamp::from_millis(1_790_000_000_000);
    let ev = |action: &str, target: &str| {
        Event::new(
            at,
            Actor::system("issuer"),
            aim_domain::event::AuditAction::parse(action).unwrap(),
            "identity",
            target,
        )
    };
    let records = [
        ev("task.opened", "agent-a").trail(trail("")),
        ev("token.issued", "agent-a").trail(trail("j-a")),
        ev("token.issued", "agent-b")
            .detail(serde_json::json!({ "parent_jti": "j-a" }))
            .trail(Trail {
                act: vec!["agent-a".into()],
                ..trail("j-b")
            }),
        ev("decision", "crm").outcome(Outcome::Deny).trail(Trail {
            policies: vec!["no-export".into()],
            ..trail("j-b")
        }),
    ];
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = aim_store::sqlite::SqliteStore::open(&dir.path().join("aim-data/aim.db"))
            .await
            .unwrap();
        for r in &records {
            aim_store::AuditStore::append_event(&store, r)
                .await
                .unwrap();
        }
    });

    let (code, out, err) = serve.aim(Some(&token), &["audit", "trace", &t]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("task {t}"));
    assert_eq!(
        lines[1],
        "  triggered by human request: TICKET-9\\u{1b}[31m\\nforged"
    );
    assert!(
        lines[2].starts_with("  #") && lines[2].contains("task.opened"),
        "{out}"
    );
    assert_eq!(lines[3], "  token j-a for identity:agent-a");
    assert!(
        lines[4].starts_with("    #") && lines[4].contains("token.issued"),
        "{out}"
    );
    assert_eq!(lines[5], "    token j-b for identity:agent-b");
    assert!(lines[6].contains("(acting for agent-a)"), "{out}");
    assert!(
        lines[7].starts_with("      #")
            && lines[7].contains("decision identity:crm deny")
            && lines[7].contains("[policies: no-export]"),
        "{out}"
    );
    assert_eq!(lines.len(), 8, "{out}");
    assert!(!out.contains('\u{1b}'));

    let (code, out, _) = serve.aim(Some(&token), &["audit", "trace", &t, "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tokens"][0]["tokens"][0]["jti"], "j-b");
    // An unknown task, and something that is not a task id.
    assert_eq!(
        serve
            .aim(
                Some(&token),
                &["audit", "trace", &TaskId::new().to_string()]
            )
            .0,
        3
    );
    let (code, _, err) = serve.aim(Some(&token), &["audit", "trace", "not-a-task"]);
    assert_eq!(code, 3, "a name that is not a task id names no task");
    assert!(err.contains("tasks are named by their id"), "{err}");
}
