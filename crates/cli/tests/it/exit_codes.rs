use std::path::Path;
use std::process::Command;

use crate::process::{AIM, Serve, request};

/// Runs `aim` in `cwd` against `serve`, with or without a credential.
fn aim_in(serve: &Serve, cwd: &Path, token: Option<&str>, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(AIM);
    cmd.args(args)
        .current_dir(cwd)
        .env("AIM_ADDR", &serve.addr)
        .env_remove("AIM_TOKEN")
        .env_remove("AIM_DATA_DIR")
        .env_remove("AIM_CA_CERT");
    if let Some(t) = token {
        cmd.env("AIM_TOKEN", t);
    }
    let out = cmd.output().expect("run aim");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), said)
}

/// Every exit status the README lists, each from a command that should end with it, and
/// what the command says.
#[test]
fn exit_statuses_mean_what_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    let request = request("agt-exit-codes", "ai_agent", "assistant", "sam@example.com");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (code, out) = aim_in(
        &serve,
        w,
        t,
        &["human", "add", "sam@example.com", "--role", "sponsor"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(aim_in(&serve, w, t, &request).0, 0);
    aim_in(
        &serve,
        w,
        t,
        &["human", "add", "bob@example.com", "--role", "auditor"],
    );
    let (code, bob, err) = serve.aim(t, &["human", "credential", "create", "bob@example.com"]);
    assert_eq!(code, 0, "{bob}{err}");
    // Files the table reads: a key file, a file that is not one, and an export with one
    // record rewritten.
    std::fs::write(w.join("not-a-key.pem"), "hello\n").unwrap();
    assert_eq!(
        aim_in(
            &serve,
            w,
            None,
            &["identity", "key", "generate", "--out", "agent.pem"]
        )
        .0,
        0
    );
    assert_eq!(
        aim_in(&serve, w, t, &["audit", "export", "--file", "log.jsonl"]).0,
        0
    );
    let log = std::fs::read_to_string(w.join("log.jsonl")).unwrap();
    std::fs::write(
        w.join("tampered.jsonl"),
        log.replacen("sam@example.com", "eve@example.com", 1),
    )
    .unwrap();
    let mut ghost = request.clone();
    ghost[8] = "nobody@example.com";
    let mut badly_named = request.clone();
    badly_named[2] = "not-a-good-name";
    let mut bad_instant = request.clone();
    let n = bad_instant.len();
    bad_instant[n - 2] = "--expires-at";
    bad_instant[n - 1] = "next tuesday";

    let no_token: Option<&str> = None;
    let wrong = Some("aim_wrong");
    let auditor = Some(bob.trim());
    #[rustfmt::skip]
    let table: Vec<(i32, Option<&str>, Vec<&str>, &str)> = vec![
        (0, t, vec!["identity", "list"], "agt-exit-codes"),
        (0, no_token, vec!["identity", "list", "--help"], "--state <STATE>"),
        (0, no_token, vec!["identity", "request", "--help"], "[possible values: ai_agent, bot, service_account"),
        // 1: anything else (a key file that already exists is never overwritten).
        (1, no_token, vec!["identity", "key", "generate", "--out", "agent.pem"], "must not exist yet"),
        // 2: the command line does not say what to do.
        (2, t, vec!["identity", "frobnicate"], "unrecognized subcommand"),
        (2, t, vec!["identity", "request", "agt-x"], "required"),
        (2, no_token, vec!["audit", "verify"], "give --data-dir, --database-url or --from-export"),
        (2, t, vec!["identity", "key", "add", "agt-exit-codes"], "--jwk <JWK>|--key-file <KEY_FILE>"),
        // Behavioural baselines: nothing recorded yet, so nothing to replay or explain.
        (0, t, vec!["behaviour", "backtest", "--since", "30d"], "0 calls of 0 identities"),
        (0, t, vec!["identity", "why", "agt-exit-codes"], "no findings in the last 90 days"),
        (3, t, vec!["behaviour", "expected", "agt-exit-codes", "--finding", "999999", "--reason", "x"], "not_found"),
        // 3: not found, whether aim or the CLI finds it missing.
        (3, t, vec!["identity", "show", "agt-nobody"], "no identity named `agt-nobody`"),
        (3, t, ghost.clone(), "nobody@example.com"),
        (3, t, vec!["audit", "trace", "no-such-task"], "no task `no-such-task`"),
        (3, t, vec!["audit", "trace", "01890000-0000-7000-8000-000000000000"], "not_found"),
        (3, no_token, vec!["audit", "verify", "--data-dir", "nowhere"], "nowhere/aim.db does not exist"),
        (3, t, vec!["identity", "key", "add", "agt-exit-codes", "--key-file", "missing.pem"], "missing.pem"),
        // 4: a conflict: an illegal lifecycle move, a name taken.
        (4, t, vec!["identity", "resume", "agt-exit-codes"], "illegal_transition"),
        (4, t, request.clone(), "name_taken"),
        // 5: not authenticated, or not allowed.
        (5, no_token, vec!["identity", "list"], "set AIM_TOKEN"),
        (5, wrong, vec!["identity", "list"], "unauthenticated"),
        (5, auditor, vec!["identity", "suspend", "agt-exit-codes"], "forbidden"),
        (5, auditor, vec!["behaviour", "backtest"], "forbidden"),
        // 6: invalid input, refused by the CLI or by aim.
        (6, t, badly_named.clone(), "naming_policy_violation"),
        (6, t, bad_instant.clone(), "`next tuesday` is not an RFC 3339 instant"),
        (6, t, vec!["identity", "list", "--state", "sleepy"], "possible values: requested, active"),
        (6, t, vec!["identity", "key", "add", "agt-exit-codes", "--key-file", "not-a-key.pem"], "holds no usable key"),
        (6, t, vec!["approval", "show", "not-an-id"], "not-an-id"),
        (6, t, vec!["behaviour", "backtest", "--enforce", "moon_phase"], "expected one of: new_system"),
        (6, Some("aim_two\nlines"), vec!["identity", "list"], "AIM_TOKEN"),
        // 8: the audit chain is broken.
        (8, no_token, vec!["audit", "verify", "--from-export", "tampered.jsonl"], "record"),
    ];
    for (want, token, args, says) in &table {
        let (code, said) = aim_in(&serve, w, *token, args);
        assert_eq!(code, *want, "aim {}\n{said}", args.join(" "));
        assert!(
            said.contains(says),
            "aim {} should say `{says}`:\n{said}",
            args.join(" ")
        );
    }
    // 7: nothing listening.
    let mut gone = Command::new(AIM);
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
    // With no source, `aim audit verify` reads ./aim-data as `aim serve` writes it.
    let (code, said) = aim_in(&serve, dir.path(), None, &["audit", "verify"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("aim-data/aim.db"), "{said}");
    // JSON output is machine-readable; completions print a script.
    let (code, json) = aim_in(&serve, w, t, &["identity", "list", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["name"], "agt-exit-codes");
    let (code, script) = aim_in(&serve, w, None, &["completion", "bash"]);
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
