//! The settings' parsing and checks.

use super::*;

#[test]
fn toml_overrides_and_refuses_unknown_keys() {
    let c: Config = toml::from_str(
        r#"
        listen = "127.0.0.1:9000"
        [governance]
        auto_approve_low_risk = true
        max_lifetime_days = { high = 30, medium = 60, low = 90 }
        [naming.per_kind]
        ai_agent = "^agt-[a-z]{3,10}$"
        "#,
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert!(c.governance.auto_approve_low_risk);
    assert_eq!(c.governance.max_lifetime_days.high, 30);
    assert_eq!(
        c.governance.orphan_grace_days, 7,
        "unset keys keep defaults"
    );
    assert!(c.check().is_ok());
    assert!(toml::from_str::<Config>("lsten = \"x\"").is_err());
    let bad: Config = toml::from_str("[naming]\ndefault = \"(\"").unwrap();
    assert!(bad.check().is_err());
}

#[test]
fn audit_sinks() {
    let c: Config = toml::from_str(
        r#"
        [[audit_sinks]]
        kind = "syslog"
        name = "siem"
        address = "127.0.0.1:6514"
        format = "cef"
        [[audit_sinks]]
        kind = "webhook"
        name = "hook"
        url = "https://siem.example/aim"
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        [[audit_sinks]]
        kind = "file"
        name = "local"
        path = "/var/log/aim/audit.jsonl"
        "#,
    )
    .unwrap();
    assert_eq!(c.audit_sinks.len(), 3);
    assert!(c.check().is_ok());
    // An audit webhook is signed: a missing or weak secret is refused at start.
    let unsigned: Result<Config, _> = toml::from_str(
        "[[audit_sinks]]\nkind = \"webhook\"\nname = \"h\"\nurl = \"https://siem.example/aim\"",
    );
    assert!(unsigned.unwrap_err().to_string().contains("secret"));
    let weak: Config = toml::from_str(
        "[[audit_sinks]]\nkind = \"webhook\"\nname = \"h\"\nurl = \"https://siem.example/aim\"\nsecret = \"whsec_c2hvcnQ=\"",
    )
    .unwrap();
    let e = format!("{:#}", weak.check().unwrap_err());
    assert!(
        e.contains("`h`: secret") && e.contains("24 random bytes"),
        "{e}"
    );
    // A CAEP receiver: plain HTTP off loopback, or a credential that is not there, is
    // refused at start rather than failing at the first lock.
    let caep = |url: &str, env: &str| -> anyhow::Result<Checked> {
        let c: Config = toml::from_str(&format!(
            "[[audit_sinks]]\nkind = \"caep\"\nname = \"idp\"\nurl = \"{url}\"\n{env}"
        ))?;
        c.check()
    };
    assert!(
        caep(
            "https://idp.example/ssf",
            "audience = \"https://idp.example\""
        )
        .is_ok()
    );
    let plain = format!("{:#}", caep("http://idp.example/ssf", "").unwrap_err());
    assert!(
        plain.contains("plain HTTP") || plain.contains("https"),
        "{plain}"
    );
    let missing = format!(
        "{:#}",
        caep(
            "https://idp.example/ssf",
            "authorization_env = \"AIM_TEST_NO_SUCH_VAR\""
        )
        .unwrap_err()
    );
    assert!(
        missing.contains("AIM_TEST_NO_SUCH_VAR is not set"),
        "{missing}"
    );
    let twice: Config = toml::from_str(
        "[[audit_sinks]]\nkind = \"file\"\nname = \"x\"\npath = \"a\"\n[[audit_sinks]]\nkind = \"file\"\nname = \"x\"\npath = \"b\"",
    )
    .unwrap();
    assert!(
        twice
            .check()
            .unwrap_err()
            .to_string()
            .contains("used twice")
    );
    assert!(toml::from_str::<Config>("[[audit_sinks]]\nkind = \"ftp\"\nname = \"x\"").is_err());
}

#[test]
fn scheduled_reports_and_reassessments_are_at_most_hourly() {
    for key in [
        "compliance_report_interval_seconds",
        "discovery_reassess_interval_seconds",
    ] {
        let c: Config = toml::from_str(&format!("{key} = 60")).unwrap();
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("at least 3600"), "{e}");
        for ok in [0, 3600, 86_400] {
            let c: Config = toml::from_str(&format!("{key} = {ok}")).unwrap();
            assert!(c.check().is_ok(), "{key} = {ok}");
        }
    }
}
