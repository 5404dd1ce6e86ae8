//! Service accounts read from a real slapd holding what a domain controller holds for them,
//! then imported into aim: each finding a directory account can have, from its own
//! attributes.

use std::collections::BTreeMap;

use aim_discovery::ldap::{self, DEFAULT_FILTER, Directory, PRIVILEGED_GROUPS};
use aim_discovery::upload::{Options, upload};
use aim_domain::discovery::{AccountKind, CredentialKind, Flag, LastUse, SourceKind, Thresholds};
use aim_domain::human::Role;
use aim_domain::time::Timestamp;
use aim_testkit::{Backend, TestServer};

use crate::slapd::{ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};

fn directory(slapd: &Slapd, filter: &str) -> Directory {
    Directory {
        url: slapd.url.clone(),
        starttls: false,
        bind_dn: Some(ROOT_DN.to_owned()),
        password: Some(ROOT_PASSWORD.to_owned()),
        bases: vec![format!("ou=Service Accounts,{SUFFIX}"), SUFFIX.to_owned()],
        filter: filter.to_owned(),
        privileged_groups: PRIVILEGED_GROUPS.iter().map(|g| (*g).to_owned()).collect(),
        ca_pem: None,
    }
}

fn day(s: &str) -> Timestamp {
    Timestamp::parse(&format!("{s}T00:00:00Z")).unwrap()
}

#[tokio::test]
async fn a_directory_s_service_accounts_come_with_their_state_from_its_attributes() {
    let slapd = Slapd::start("corp.ldif");
    let mut dir = directory(&slapd, "(objectClass=user)");
    dir.bases.truncate(1);
    let found = ldap::read(&dir).await.unwrap();
    let accounts: BTreeMap<String, _> = found
        .accounts
        .into_iter()
        .map(|a| a.unwrap())
        .map(|a| (a.name.clone(), a))
        .collect();
    assert_eq!(accounts.len(), 8, "{:?}", accounts.keys());
    let sql = &accounts["svc-sql"];
    assert_eq!(sql.key, format!("cn=svc-sql,ou=Service Accounts,{SUFFIX}"));
    assert_eq!(sql.kind, AccountKind::ServiceUser);
    assert_eq!(
        sql.owner.as_deref(),
        Some("alice@example.com"),
        "managedBy, resolved"
    );
    assert_eq!(sql.created, Some(day("2024-01-10")));
    assert_eq!(sql.last_used, LastUse::At(day("2026-02-25")), "a FILETIME");
    assert_eq!(sql.credentials[0].kind, CredentialKind::Password);
    assert_eq!(sql.credentials[0].created, Some(day("2024-01-10")));
    assert_eq!(sql.expires, None, "accountExpires 0x7FFF...: never");
    assert_eq!(
        sql.flags,
        [Flag::PasswordNeverExpires, Flag::ServicePrincipalName]
    );
    assert_eq!(sql.purpose.as_deref(), Some("SQL Server engine"));
    let backup = &accounts["svc-backup"];
    let groups: Vec<(&str, bool)> = backup
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.privileged))
        .collect();
    assert_eq!(groups, [("Backup Operators", true), ("App Readers", false)]);
    assert_eq!(backup.owner, None);
    assert!(!accounts["svc-legacy"].enabled, "ACCOUNTDISABLE");
    let web = &accounts["svc-web"];
    assert_eq!(
        web.flags,
        [
            Flag::PasswordNotRequired,
            Flag::NoPreauthentication,
            Flag::ServicePrincipalName
        ]
    );
    let gmsa = &accounts["gmsa-app"];
    assert_eq!(gmsa.kind, AccountKind::ManagedServiceAccount);
    assert!(gmsa.credentials[0].rotates_itself);
    assert_eq!(accounts["svc-deleg"].flags, [Flag::TrustedForDelegation]);
    assert_eq!(accounts["svc-expired"].expires, Some(day("2026-01-31")));
    assert_eq!(
        accounts["svc-new"].last_used,
        LastUse::Never,
        "no lastLogonTimestamp"
    );
    assert_eq!(
        found.logon_sync_days, None,
        "the OU is not the domain object"
    );
}

#[tokio::test]
async fn the_default_filter_finds_accounts_with_a_service_principal_name_or_a_managed_password() {
    let slapd = Slapd::start("corp.ldif");
    let dir = directory(&slapd, DEFAULT_FILTER);
    let found = ldap::read(&Directory {
        bases: vec![SUFFIX.to_owned()],
        ..dir
    })
    .await
    .unwrap();
    let mut names: Vec<String> = found
        .accounts
        .into_iter()
        .map(|a| a.unwrap().name)
        .collect();
    names.sort();
    assert_eq!(names, ["gmsa-app", "svc-legacy", "svc-sql", "svc-web"]);
    assert_eq!(
        found.logon_sync_days,
        Some(30),
        "the domain object's interval"
    );
}

#[tokio::test]
async fn a_wrong_password_and_a_threshold_within_the_domain_s_sync_interval_are_refused() {
    let slapd = Slapd::start("corp.ldif");
    let mut dir = directory(&slapd, DEFAULT_FILTER);
    dir.password = Some("wrong".to_owned());
    let e = ldap::read(&dir).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("binding as {ROOT_DN}")) && e.contains("49"),
        "{e}"
    );
    assert!(!e.contains(ROOT_PASSWORD));
    let found = ldap::read(&directory(&slapd, DEFAULT_FILTER))
        .await
        .unwrap();
    let e = ldap::check_threshold(&found, 30).unwrap_err().to_string();
    assert!(e.contains("msDS-LogonTimeSyncInterval is 30 days"), "{e}");
    ldap::check_threshold(&found, 31).unwrap();
    let nothing = Directory {
        url: "ldap://127.0.0.1:9".to_owned(),
        ..directory(&slapd, DEFAULT_FILTER)
    };
    let e = ldap::read(&nothing).await.unwrap_err().to_string();
    assert!(e.contains("connecting to ldap://127.0.0.1:9"), "{e}");
}

#[tokio::test]
async fn each_directory_finding_from_the_account_that_has_it() {
    let slapd = Slapd::start("corp.ldif");
    let srv = TestServer::start(Backend::Sqlite).await;
    srv.human("alice", &[Role::Sponsor]).await;
    let mut dir = directory(&slapd, "(objectClass=user)");
    dir.bases.truncate(1);
    let found = ldap::read(&dir).await.unwrap();
    let options = Options {
        source: "corp-ad".to_owned(),
        kind: SourceKind::Ldap,
        thresholds: None,
        batch: 500,
        environment: None,
        allow_mass_removal: false,
    };
    let import = upload(&srv.admin, &options, found.accounts.into_iter(), |_| {})
        .await
        .unwrap();
    assert_eq!(import.thresholds, Thresholds::for_source(SourceKind::Ldap));
    let page = srv
        .admin
        .discovered_accounts(&vec![("source", "corp-ad".to_owned())])
        .await
        .unwrap();
    let findings = aim_testkit::discovery::findings_by_name(&srv.admin, "corp-ad").await;
    let want: BTreeMap<String, Vec<String>> = [
        (
            "svc-sql",
            vec![
                "never_rotated@password",
                "password_never_expires",
                "weak_authentication",
            ],
        ),
        // Last logon 106 days ago, past the directory's 90.
        ("svc-backup", vec!["orphaned", "dormant", "over_privileged"]),
        ("svc-legacy", vec![]),
        ("svc-web", vec!["weak_authentication"]),
        // Its password is old but the directory rotates it; its SPN cannot be cracked.
        ("gmsa-app", vec![]),
        ("svc-deleg", vec!["over_privileged"]),
        ("svc-expired", vec!["expired_enabled"]),
        // Never logged on, but created four days ago.
        ("svc-new", vec![]),
    ]
    .into_iter()
    .map(|(n, f)| (n.to_owned(), f.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(findings, want);
    let web = page.items.iter().find(|a| a.name == "svc-web").unwrap();
    assert_eq!(web.findings[0].severity.as_str(), "high");
    assert_eq!(
        web.findings[0].evidence["service_principal_names"],
        "HTTP/web01.corp.example"
    );
    // A threshold within AD's 14-day replication is refused by aim itself.
    let e = srv
        .admin
        .open_import(&aim_api::discovery::NewImport {
            source: "corp-ad".to_owned(),
            kind: SourceKind::Ldap,
            thresholds: Some(Thresholds {
                dormant_days: 10,
                rotation_days: 90,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("invalid_thresholds"));
}
