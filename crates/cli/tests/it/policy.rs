//! `aim policy` from the command line: a folder applied, a bad file refused with its
//! place and exit status 6, a request tried against proposed files, a rollback.

use crate::process::{Serve, ok};

#[test]
fn policies_are_applied_tested_and_rolled_back_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let run = |args: &[&str]| serve.aim(Some(&admin), args);
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

    // Annotation problems are placed at the annotation, each said once, one a line.
    let annotated = dir.path().join("annotated.cedar");
    std::fs::write(
        &annotated,
        "@id(\"x\")\n@approval(\"nobody:foo\")\npermit(principal, action, resource);\n\n@id(\"x\") forbid(principal, action, resource);\n",
    )
    .unwrap();
    let (code, out, err) = run(&["policy", "apply", "-f", &annotated.display().to_string()]);
    assert_eq!(code, 6, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "error: 2 problem(s) in the policy set; nothing was applied (invalid_policy, HTTP 422)",
            "  annotated.cedar:2:1: policy x: @approval names `nobody:foo`, which is none of `sponsor`, `group:<name>`, `role:<admin|approver|sponsor|auditor>`, `human:<user name>`",
            "  annotated.cedar:5:1: policy x: this @id is already used in annotated.cedar",
        ],
        "{err}"
    );

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
    // The principal by name, in the file or on the command line.
    let by_name = dir.path().join("by-name.json");
    let mut named: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&request).unwrap()).unwrap();
    let admin_name = list[0]["user_name"].as_str().unwrap().to_owned();
    named["principal"] = serde_json::json!({ "human": admin_name });
    std::fs::write(&by_name, named.to_string()).unwrap();
    let out = ok(run(&[
        "policy",
        "test",
        "--request",
        &by_name.display().to_string(),
    ]));
    assert!(out.contains("allow") && out.contains("crm-read"), "{out}");
    let out = ok(run(&[
        "policy",
        "test",
        "--request",
        &r,
        "--human",
        &admin_name,
    ]));
    assert!(out.contains("allow"), "{out}");
    let (code, _, err) = run(&[
        "policy",
        "test",
        "--request",
        &r,
        "--human",
        "nobody@example.com",
    ]);
    assert_eq!(code, 3, "{err}");
    // A target that does not fit the schema: the answer names the attribute.
    let mut wrong = named.clone();
    wrong["resource"]["attrs"]["sensitivity"] = serde_json::json!(5);
    let wrong_file = dir.path().join("wrong.json");
    std::fs::write(&wrong_file, wrong.to_string()).unwrap();
    let (code, _, err) = run(&[
        "policy",
        "test",
        "--request",
        &wrong_file.display().to_string(),
    ]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("bad_target") && err.contains("`sensitivity`"),
        "{err}"
    );
    // What --help promises about the record is what happens: the refusal is recorded.
    let (_, help, _) = run(&["policy", "test", "--help"]);
    assert!(help.contains("recorded as a refused request"), "{help}");
    let log = ok(run(&[
        "audit",
        "list",
        "--action",
        "request.refused",
        "-o",
        "json",
    ]));
    assert!(log.contains("bad_target"), "{log}");
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
