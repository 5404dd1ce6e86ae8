use std::process::Command;

use crate::process::{AIM, Serve};

/// The shell between the README's tour markers.
fn readme_tour() -> String {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("<!-- tour:start -->")
        .expect("tour start marker");
    let end = readme.find("<!-- tour:end -->").expect("tour end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("a sh fence") + "```sh\n".len();
    let body_end = block[body_start..].find("```").expect("fence end") + body_start;
    block[body_start..body_end].to_owned()
}

#[test]
fn the_readme_tour_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let bin_dir = std::path::Path::new(AIM).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -euo pipefail\nset -x\n{}", readme_tour());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("AIM_ADDR", &serve.addr)
        .env_remove("AIM_TOKEN")
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tour failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // The tour leaves no key, token or policy file where it runs: only aim's data.
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["aim-data"],
        "the tour left files in the working tree"
    );
    // `aim serve` said where it listens and where the bootstrap credential is.
    let said = serve.output.lock().unwrap().join("\n");
    assert!(
        said.starts_with("aim listening on http://127.0.0.1:"),
        "{said}"
    );
    assert!(
        said.contains("bootstrap admin credential (shown once): aim_"),
        "{said}"
    );
    assert!(
        said.contains("aim-data/bootstrap-admin-token (mode 0600)"),
        "{said}"
    );
    // Attesting says what happened: when, and when the next one is due.
    assert!(
        stdout.contains("agt-claims-triage attested at 20")
            && stdout.contains("next attestation due 20"),
        "{stdout}"
    );
    // The end state the tour describes.
    let json_start = stdout.rfind("\n[").map(|i| i + 1).unwrap_or(0);
    let list: serde_json::Value =
        serde_json::from_str(&stdout[json_start..]).expect("the last command prints JSON");
    let agent = &list[0];
    assert_eq!(agent["name"], "agt-claims-triage");
    assert_eq!(agent["state"], "decommissioned");
    assert_eq!(agent["risk"]["tier"], "medium");
    assert_eq!(
        agent["orphaned_since"],
        serde_json::Value::Null,
        "reassigned to carol"
    );
    assert!(
        stdout.contains("1 identities they sponsor are now orphaned"),
        "{stdout}"
    );
    // The agent's token: written to a private file, active as aim says (its signature
    // checked against the published keys, then introspected), and its task listed with
    // the request behind it.
    assert!(stdout.contains("verdict  active"), "{stdout}");
    assert!(stdout.contains("alice: CLAIM-4711"), "{stdout}");
    // The tour's scratch directory (`mktemp -d` under TMPDIR) holds the token.
    let work = std::fs::read_dir(scratch.path())
        .unwrap()
        .next()
        .expect("the tour's scratch directory")
        .unwrap()
        .path();
    let token_file = work.join("token.jwt");
    assert!(
        std::fs::read_to_string(&token_file)
            .unwrap()
            .starts_with("ey")
    );
    use std::os::unix::fs::PermissionsExt;
    for private in ["token.jwt", "agent.pem"] {
        let mode = std::fs::metadata(work.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
}
