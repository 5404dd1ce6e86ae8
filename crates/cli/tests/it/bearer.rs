//! `aim identity bearer`: an admin lets one identity have bearer tokens, with a reason on
//! the record, and withdraws it.

use crate::process::{Serve, request};

#[test]
fn an_admin_opts_an_identity_into_bearer_tokens_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    assert_eq!(
        serve
            .aim(t, &["human", "add", "sam@example.com", "--role", "sponsor"])
            .0,
        0
    );
    let request = request("bot-legacy-client", "bot", "automation", "sam@example.com");
    let (code, out, err) = serve.aim(t, &request);
    assert_eq!(code, 0, "{out}{err}");
    // A reason is required to allow.
    let (code, _, _) = serve.aim(t, &["identity", "bearer", "bot-legacy-client"]);
    assert_eq!(code, 2, "usage");
    let (code, out, err) = serve.aim(
        t,
        &[
            "identity",
            "bearer",
            "bot-legacy-client",
            "--reason",
            "no DPoP library, SEC-9",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("may have bearer tokens (no DPoP library, SEC-9)"),
        "{out}"
    );
    let (code, out, _) = serve.aim(
        t,
        &["identity", "bearer", "bot-legacy-client", "--withdraw"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("bound to its key"), "{out}");
    let (code, out, _) = serve.aim(
        t,
        &[
            "audit",
            "list",
            "--action",
            "identity.bearer_allowed",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("no DPoP library, SEC-9"), "{out}");
}
