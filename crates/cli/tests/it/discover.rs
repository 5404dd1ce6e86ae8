//! `aim discover` as a user runs it: real fixture files imported into a real `aim serve`,
//! the summary, a re-import that changes nothing, standard input, the lists, and the exit
//! statuses of what goes wrong.

use std::process::{Command, Stdio};

use crate::process::{AIM, Serve, ok};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../discovery/tests/fixtures");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

#[test]
fn importing_a_credential_report_and_an_inventory_then_listing_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    let report = fixture("credential_report.csv");
    let import = [
        "discover",
        "import",
        "aws-credential-report",
        report.as_str(),
        "--source",
        "aws-prod",
    ];
    let out = ok(serve.aim(t, &import));
    assert!(
        out.contains("8 accounts: 8 new, 0 changed, 0 unchanged"),
        "{out}"
    );
    assert!(out.contains("enabled machine identities"), "{out}");
    let out = ok(serve.aim(t, &import));
    assert!(
        out.contains("8 accounts: 0 new, 0 changed, 8 unchanged"),
        "{out}"
    );
    assert!(out.contains("gone  "), "{out}");

    // The same report on standard input, as `aws iam get-credential-report | aim ...`.
    let mut child = Command::new(AIM)
        .args([
            "discover",
            "import",
            "aws-credential-report",
            "-",
            "--source",
            "aws-prod",
            "-o",
            "json",
        ])
        .env("AIM_ADDR", &serve.addr)
        .env("AIM_TOKEN", &admin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&std::fs::read(&report).unwrap()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["batches"]["unchanged"], 8, "{v}");
    assert_eq!(v["summary"]["present"], 8);

    let mapping = fixture("saas_bots.mapping");
    let bots = fixture("saas_bots.csv");
    let out = ok(serve.aim(
        t,
        &[
            "discover",
            "import",
            "csv",
            bots.as_str(),
            "--mapping",
            mapping.as_str(),
            "--source",
            "saas",
        ],
    ));
    assert!(out.contains("5 accounts: 5 new"), "{out}");

    let out = ok(serve.aim(t, &["discover", "accounts", "--source", "saas"]));
    assert!(
        out.contains("bot-repo-admin") && out.contains("over_privileged"),
        "{out}"
    );
    let json = ok(serve.aim(
        t,
        &[
            "discover",
            "findings",
            "--finding",
            "over_privileged",
            "-o",
            "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["bot-repo-admin"], "{json}");
    assert_eq!(v[0]["nhi"], "NHI5");
    let out = ok(serve.aim(t, &["discover", "imports", "--source", "aws-prod"]));
    assert_eq!(out.lines().count(), 4, "a header and three imports:\n{out}");

    // Acting on it: retire one, accept a finding for a month, adopt one.
    let out = ok(serve.aim(
        t,
        &[
            "discover",
            "decommission",
            "bot-repo-admin",
            "--reason",
            "the GitHub app was removed",
        ],
    ));
    assert!(out.contains("active credentials: B-1003"), "{out}");
    let csv = ok(serve.aim(t, &["discover", "decommission-list", "--format", "csv"]));
    assert!(
        csv.starts_with("source,key,name,kind,owner,active_credentials,reason"),
        "{csv}"
    );
    assert!(csv.contains("saas,B-1003,bot-repo-admin,bot"), "{csv}");
    let out = ok(serve.aim(
        t,
        &[
            "discover",
            "acknowledge",
            "bot-standup",
            "--source",
            "saas",
            "--finding",
            "orphaned",
            "--for",
            "30d",
            "--reason",
            "bob's team takes it over",
        ],
    ));
    assert!(out.contains("acknowledged until"), "{out}");
    let out = ok(serve.aim(
        t,
        &[
            "discover",
            "findings",
            "--source",
            "saas",
            "--finding",
            "orphaned",
            "-o",
            "json",
        ],
    ));
    assert!(!out.contains("bot-standup"), "acknowledged: {out}");
    ok(serve.aim(
        t,
        &["human", "add", "alice@example.com", "--role", "sponsor"],
    ));
    // Alice is known now: her bot is no longer orphaned, without importing again.
    let out = ok(serve.aim(t, &["discover", "reassess"]));
    assert!(
        out.contains("assessed again: 1 changed") && out.contains("findings gone: 1 orphaned"),
        "{out}"
    );
    let out = ok(serve.aim(
        t,
        &[
            "discover",
            "adopt",
            "bot-metrics-exporter",
            "--kind",
            "bot",
            "--sponsor",
            "alice@example.com",
            "--expires-in",
            "60d",
            "--purpose",
            "exports metrics to Datadog",
        ],
    ));
    assert!(
        out.contains("bot-metrics-exporter") && out.contains("requested"),
        "{out}"
    );
}

#[test]
fn what_goes_wrong_exits_with_what_it_means() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    let (code, bob, err) = serve.aim(t, &["human", "add", "bob@example.com", "--role", "auditor"]);
    assert_eq!(code, 0, "{bob}{err}");
    let (_, bob, _) = serve.aim(t, &["human", "credential", "create", "bob@example.com"]);
    let auditor = Some(bob.trim());
    let report = fixture("credential_report.csv");
    let bots = fixture("saas_bots.csv");
    let broken = dir.path().join("broken.csv");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&report).unwrap().replacen(
            "2025-10-01T12:00:00+00:00",
            "last tuesday",
            1,
        ),
    )
    .unwrap();
    let broken = broken.display().to_string();
    #[rustfmt::skip]
    let table: Vec<(i32, Option<&str>, Vec<&str>, &str)> = vec![
        (5, auditor, vec!["discover", "import", "aws-credential-report", &report, "--source", "aws-prod"], "forbidden"),
        (0, auditor, vec!["discover", "accounts"], "NAME"),
        (5, auditor, vec!["discover", "reassess"], "forbidden"),
        (6, t, vec!["discover", "import", "aws-credential-report", "nowhere.csv", "--source", "aws-prod"], "nowhere.csv"),
        (6, t, vec!["discover", "import", "aws-credential-report", &bots, "--source", "aws-prod"], "no `user` column"),
        (6, t, vec!["discover", "import", "aws-credential-report", &broken, "--source", "aws-prod"], "row 8: column `user_creation_time`"),
        (6, t, vec!["discover", "import", "csv", &bots, "--map", "key=Identifier", "--source", "saas"], "`Identifier`"),
        (6, t, vec!["discover", "import", "csv", &bots, "--map", "name=Bot Name", "--source", "saas"], "key="),
        (6, t, vec!["discover", "import", "aws-credential-report", &report, "--source", "a b"], "source"),
        (6, t, vec!["discover", "accounts", "--finding", "moon_phase"], "expected one of: orphaned"),
        (3, t, vec!["discover", "decommission", "nobody", "--reason", "x"], "no discovered account named `nobody`"),
        (2, t, vec!["discover", "acknowledge", "nobody", "--finding", "orphaned", "--reason", "x"], "say until when"),
        (6, t, vec!["discover", "import", "ldap", "--url", "ldap://dc.corp.example", "--base", "dc=corp", "--source", "ad"], "in clear"),
        (1, t, vec!["discover", "import", "ldap", "--url", "ldap://127.0.0.1:9", "--base", "dc=corp", "--source", "ad"], "connecting to ldap://127.0.0.1:9"),
        (6, t, vec!["discover", "import", "aws-credential-report", &report, "--source", "aws-prod", "--dormant-days", "0"], "at least 1"),
    ];
    for (want, token, args, says) in &table {
        let (code, out, err) = serve.aim(*token, args);
        let said = format!("{out}{err}");
        assert_eq!(code, *want, "aim {}\n{said}", args.join(" "));
        assert!(
            said.contains(says),
            "aim {} should say `{says}`:\n{said}",
            args.join(" ")
        );
    }
    // The broken file's first rows were sent, but the import was not finished.
    let (_, out, err) = serve.aim(
        t,
        &[
            "discover",
            "import",
            "aws-credential-report",
            &broken,
            "--source",
            "other",
        ],
    );
    assert!(err.contains("nothing was marked gone"), "{out}{err}");
}
