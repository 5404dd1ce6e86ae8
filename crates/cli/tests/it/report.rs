//! `aim report` as an auditor runs it: a report written to a file in each format, the list
//! of kept reports, one read again, and what is refused.

use crate::process::{Serve, ok};

#[test]
fn reports_are_written_listed_and_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let admin = serve.token();
    let t = Some(admin.as_str());
    let html = dir.path().join("report.html");
    let html_path = html.to_str().unwrap();
    let (code, out, err) = serve.aim(
        t,
        &[
            "report",
            "compliance",
            "--format",
            "html",
            "--out",
            html_path,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("report written to"), "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("OWASP Top 10 for Agentic Applications"));
    // Markdown on standard output, by default.
    let md = ok(serve.aim(t, &["report", "compliance"]));
    assert!(md.starts_with("# aim compliance report"), "{md}");
    assert!(md.contains("| NIST CSF 2.0 |") || md.contains("NIST Cybersecurity Framework 2.0"));
    // Both kept, newest first, with each framework's score.
    let list = ok(serve.aim(t, &["report", "list"]));
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].contains("owasp_nhi"), "{list}");
    let first = rows[1].split_whitespace().next().unwrap();
    let json = ok(serve.aim(t, &["report", "show", first, "--format", "json"]));
    let kept: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(kept["id"], first);
    assert_eq!(kept["trend"].as_array().unwrap().len(), 1);
    // A report id that is not one, and one nobody kept.
    let (code, _, err) = serve.aim(t, &["report", "show", "q3"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("not a report id"), "{err}");
    let (code, _, err) = serve.aim(
        t,
        &["report", "show", "01a231af-90b4-7027-b343-1f516d43a46d"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not_found"), "{err}");
}
