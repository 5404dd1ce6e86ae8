use crate::process::Serve;

#[test]
fn exit_statuses_mean_something() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    let (code, out, _) = serve.aim(t, &["human", "add", "sam@example.com", "--role", "sponsor"]);
    assert_eq!(code, 0, "{out}");
    let request = [
        "identity",
        "request",
        "agt-exit-codes",
        "--kind",
        "ai_agent",
        "--autonomy",
        "assistant",
        "--sponsor",
        "sam@example.com",
        "--purpose",
        "test exit codes",
        "--sensitivity",
        "internal",
        "--criticality",
        "low",
        "--impact",
        "low",
        "--expires-in",
        "30d",
    ];
    assert_eq!(serve.aim(t, &request).0, 0);
    // 3: not found.
    let (code, _, err) = serve.aim(t, &["identity", "show", "agt-nobody"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no identity named `agt-nobody`"), "{err}");
    // Context added by the CLI keeps the status: an unknown sponsor is still "not found".
    let mut ghost = request.to_vec();
    ghost[8] = "nobody@example.com";
    assert_eq!(serve.aim(t, &ghost).0, 3);
    // 4: conflict (an illegal move, a taken name).
    assert_eq!(serve.aim(t, &["identity", "resume", "agt-exit-codes"]).0, 4);
    assert_eq!(serve.aim(t, &request).0, 4);
    // 5: not authenticated / not allowed.
    assert_eq!(serve.aim(None, &["identity", "list"]).0, 5);
    assert_eq!(serve.aim(Some("aim_wrong"), &["identity", "list"]).0, 5);
    let (_, bob, _) = {
        serve.aim(t, &["human", "add", "bob@example.com", "--role", "auditor"]);
        serve.aim(t, &["human", "credential", "create", "bob@example.com"])
    };
    assert_eq!(
        serve
            .aim(Some(bob.trim()), &["identity", "suspend", "agt-exit-codes"])
            .0,
        5
    );
    // 6: invalid input the server refuses.
    let mut bad = request.to_vec();
    bad[2] = "not-a-good-name";
    let (code, _, err) = serve.aim(t, &bad);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("naming_policy_violation"), "{err}");
    // 2: usage errors caught by the CLI itself.
    assert_eq!(
        serve.aim(t, &["identity", "list", "--state", "sleepy"]).0,
        2
    );
    // 7: nothing listening.
    let mut gone = std::process::Command::new(crate::process::AIM);
    gone.args(["identity", "list"])
        .env("AIM_ADDR", "http://127.0.0.1:9")
        .env("AIM_TOKEN", &admin);
    let out = gone.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // JSON output is machine-readable; completions print a script.
    let (code, json, _) = serve.aim(t, &["identity", "list", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "agt-exit-codes");
    let (code, script, _) = serve.aim(None, &["completion", "bash"]);
    assert_eq!(code, 0);
    assert!(script.contains("_aim()"), "bash completion");
}

/// A reader that goes away early (`aim completion bash | head`) is no failure, and
/// `aim audit export --file -` writes to standard output, not to a file named `-`.
#[test]
fn closed_pipes_and_dash_for_standard_output() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::process::AIM)
        .args(["completion", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little (the script is far larger than a pipe holds), then hang up.
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(head.starts_with(b"_aim()"));

    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let out = Command::new(crate::process::AIM)
        .args(["audit", "export", "--file", "-"])
        .env("AIM_ADDR", &serve.addr)
        .env("AIM_TOKEN", &admin)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout);
    let first = first.lines().next().unwrap_or_default().to_owned();
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["seq"], 1, "{first}");
    assert!(!dir.path().join("-").exists(), "no file named `-`");
}

/// `aim sweep run` on a registry with nothing due says so, rather than printing a column
/// of zeros that reads like a failure.
#[test]
fn a_sweep_with_nothing_due_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let (code, out, err) = serve.aim(Some(&admin), &["sweep", "run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("nothing was due"), "{out}");
    let (code, out, _) = serve.aim(Some(&admin), &["sweep", "run", "-o", "json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["examined"], 0);
}
