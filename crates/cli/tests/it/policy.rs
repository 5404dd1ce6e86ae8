//! `aim policy` from the command line: a folder applied, a bad file refused with its
//! place and exit status 6, a request tried against proposed files, a rollback.

use crate::process::Serve;

#[test]
fn policies_are_applied_tested_and_rolled_back_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let run = |args: &[&str]| serve.aim(Some(&admin), args);
    let ok = |(code, out, err): (i32, String, String)| {
        assert_eq!(code, 0, "{out}{err}");
        out
    };
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("crm.cedar"),
        "@id(\"crm-read\")\npermit(principal is Aim::Human, action == Aim::Action::\"read\", resource in Aim::System::\"crm\");\n",
    )
    .unwrap();
    std::fs::write(policies.join("notes.txt"), "not a policy").unwrap();
    let p = policies.display().to_string();
    let out = ok(run(&["policy", "apply", "-f", &p, "--comment", "first"]));
    assert!(out.contains("version") && out.contains('1'), "{out}");

    // A file that reads an optional attribute unsafely: refused, with where.
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit(principal, action, resource is Aim::Resource)\n  when { resource.owner == \"x\" };\n",
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "apply", "-f", &bad.display().to_string()]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("bad.cedar:2:"), "{err}");
    assert!(err.contains("owner"), "{err}");

    // Try a request: the set in force allows, the proposed one (nothing) denies.
    let me = ok(run(&["human", "list", "-o", "json"]));
    let humans: serde_json::Value = serde_json::from_str(&me).unwrap();
    let list = humans.get("items").unwrap_or(&humans);
    let admin_id = list[0]["id"].as_str().unwrap().to_owned();
    let request = dir.path().join("request.json");
    std::fs::write(
        &request,
        serde_json::json!({
            "action": "read",
            "principal": { "human": admin_id },
            "resource": { "type": "Resource", "id": "crm/accounts/1", "system": "crm",
                          "attrs": { "type": "account", "sensitivity": "internal" } },
        })
        .to_string(),
    )
    .unwrap();
    let r = request.display().to_string();
    let out = ok(run(&["policy", "test", "--request", &r]));
    assert!(out.contains("allow") && out.contains("crm-read"), "{out}");
    let empty = dir.path().join("empty.cedar");
    std::fs::write(&empty, "").unwrap();
    let out = ok(run(&[
        "policy",
        "test",
        "--request",
        &r,
        "-f",
        &empty.display().to_string(),
    ]));
    assert!(out.contains("deny") && out.contains("proposed"), "{out}");

    ok(run(&[
        "policy",
        "apply",
        "-f",
        &empty.display().to_string(),
        "--comment",
        "lockdown",
    ]));
    let out = ok(run(&[
        "policy",
        "rollback",
        "1",
        "--comment",
        "undo lockdown",
    ]));
    assert!(out.contains('3'), "{out}");
    let out = ok(run(&["policy", "show"]));
    assert!(
        out.contains("crm-read") && out.contains("crm.cedar"),
        "{out}"
    );
    let out = ok(run(&["policy", "versions"]));
    assert!(
        out.contains("rollback to 1") && out.contains("lockdown"),
        "{out}"
    );
    let (code, _, err) = run(&["policy", "rollback", "42"]);
    assert_eq!(code, 3, "{err}");
}
