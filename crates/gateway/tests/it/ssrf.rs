//! Upstreams are an allow-list, and what an upstream's name resolves to is checked at
//! each connection; redirects to another origin are refused.

use aim_testkit::Backend;

use crate::harness::{Setup, check_upstream};

#[test]
fn upstreams_at_non_public_addresses_are_refused_unless_listed() {
    for (upstream, says) in [
        (r#"url = "https://169.254.169.254/latest""#, "link-local"),
        (r#"url = "https://[fd00:ec2::254]/""#, "unique-local"),
        (r#"url = "http://127.0.0.1:9000""#, "loopback"),
        (r#"url = "http://[::ffff:127.0.0.1]:9000""#, "loopback"),
        (r#"url = "https://10.0.0.5""#, "private"),
        (r#"url = "http://10.0.0.5""#, "plain HTTP"),
        (
            r#"url = "https://user:pw@api.example""#,
            "credentials do not belong",
        ),
        (r#"url = "ftp://api.example""#, "not http"),
        (
            r#"url = "https://169.254.169.254/"
allow_addresses = ["127.0.0.1"]"#,
            "link-local",
        ),
    ] {
        let e = check_upstream(upstream).expect_err(upstream);
        assert!(e.contains(says), "{upstream}: {e}");
    }
    check_upstream(
        r#"url = "http://127.0.0.1:9000"
allow_addresses = ["127.0.0.0/8"]"#,
    )
    .unwrap();
    check_upstream(r#"url = "https://api.example""#).unwrap();
}

const LOCAL: &str = r#"
[upstreams.by_name]
url = "http://localhost:UPSTREAM"
strip_prefix = "/by-name"

[[routes]]
upstream = "by_name"
method = "GET"
path = "/by-name/records/{id}"
action = "read"
resource = { system = "crm", id = "crm/customers/{id}", attrs = { type = "customer_record", sensitivity = "confidential" } }
"#;

#[tokio::test]
async fn a_name_resolving_to_a_loopback_address_not_listed_and_a_redirect_elsewhere_are_refused() {
    let s = Setup::start_with(Backend::Sqlite, LOCAL).await;
    let a = &s.agent;
    // `localhost` is a name: checked when connecting, and refused.
    let (status, _, body) = a
        .call(&s.gateway, "GET", "/by-name/records/42", None, &[])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_unreachable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("loopback"),
        "{body}"
    );
    assert!(s.seen().is_empty(), "nothing reached the upstream");

    // The upstream redirects to the metadata address: not followed, not passed on.
    let (status, _, body) = a
        .call(&s.gateway, "GET", "/crm/redirect/metadata", None, &[])
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("upstream_redirect_refused")),
        "{body}"
    );
    // A redirect within the upstream is passed on as it is.
    let (status, headers, _) = a
        .call(&s.gateway, "GET", "/crm/redirect/same", None, &[])
        .await;
    assert_eq!(status, 302);
    assert_eq!(headers["location"], "/records/1");
    s.aim.stop().await;
}
