//! Each rule: the exact condition alone gives exactly its finding, and the condition just
//! short of its threshold gives none.

use super::*;
use crate::time::{DAY_MS, Timestamp};

const HOUR: i64 = 3_600_000;

fn now() -> Timestamp {
    Timestamp::parse("2026-11-30T12:00:00Z").unwrap_or(Timestamp::from_millis(0))
}

fn ago(ms: i64) -> Timestamp {
    Timestamp::from_millis(now().as_millis() - ms)
}

fn days(n: i64) -> i64 {
    n * DAY_MS
}

/// A machine account with nothing wrong: owned, used yesterday, its key ten days old.
fn clean() -> Account {
    Account {
        key: "arn:aws:iam::111122223333:user/ci-deployer".to_owned(),
        name: "ci-deployer".to_owned(),
        kind: AccountKind::ServiceUser,
        enabled: true,
        owner: Some("alice".to_owned()),
        purpose: None,
        vendor: None,
        environment: None,
        created: Some(ago(days(10))),
        last_used: LastUse::Unknown,
        expires: None,
        credentials: vec![Credential {
            id: "AKIAEXAMPLE1".to_owned(),
            kind: CredentialKind::AccessKey,
            active: true,
            created: Some(ago(days(10))),
            last_used: LastUse::At(ago(days(1))),
            expires: None,
            rotates_itself: false,
            fingerprint: None,
        }],
        permissions: vec![Permission {
            action: "s3:GetObject".to_owned(),
            resource: Some("arn:aws:s3:::builds/artifact".to_owned()),
            via: None,
            admin: false,
        }],
        groups: Vec::new(),
        systems: Vec::new(),
        flags: Vec::new(),
        attributes: Default::default(),
    }
}

fn thresholds() -> Thresholds {
    Thresholds {
        dormant_days: 30,
        rotation_days: 90,
    }
}

fn findings_with(a: &Account, previous: Option<&Account>, owner: Owner) -> Vec<Finding> {
    assess(&Subject {
        account: a,
        previous,
        owner,
        thresholds: thresholds(),
        now: now(),
    })
}

fn findings(a: &Account) -> Vec<Finding> {
    findings_with(a, None, Owner::Active("alice".to_owned()))
}

fn kinds(f: &[Finding]) -> Vec<(FindingKind, Option<String>)> {
    f.iter().map(|f| (f.kind, f.credential.clone())).collect()
}

fn only(a: &Account, kind: FindingKind, credential: Option<&str>) -> Finding {
    let f = findings(a);
    assert_eq!(
        kinds(&f),
        vec![(kind, credential.map(str::to_owned))],
        "{f:#?}"
    );
    f.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn key(a: &mut Account) -> &mut Credential {
    &mut a.credentials[0]
}

#[test]
fn a_clean_account_has_no_findings() {
    assert_eq!(findings(&clean()), Vec::new());
}

#[test]
fn orphaned_without_an_owner_with_a_departed_one_and_with_an_unknown_one() {
    for (owner, reason) in [
        (Owner::None, "no_owner"),
        (Owner::Departed("bob".to_owned()), "owner_departed"),
        (
            Owner::Unknown("carol@example.com".to_owned()),
            "owner_unknown",
        ),
    ] {
        let f = findings_with(&clean(), None, owner);
        assert_eq!(kinds(&f), vec![(FindingKind::Orphaned, None)]);
        assert_eq!(f[0].evidence["reason"], reason);
        assert_eq!(f[0].nhi, Nhi::Nhi1);
    }
}

#[test]
fn dormant_per_key_after_thirty_days_and_not_before() {
    let mut a = clean();
    key(&mut a).last_used = LastUse::At(ago(days(30) + HOUR));
    let f = only(&a, FindingKind::Dormant, Some("AKIAEXAMPLE1"));
    assert_eq!(f.nhi, Nhi::Nhi1);
    key(&mut a).last_used = LastUse::At(ago(days(30) - HOUR));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn an_unknown_last_use_is_never_called_dormant() {
    let mut a = clean();
    key(&mut a).last_used = LastUse::Unknown;
    a.last_used = LastUse::Unknown;
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn the_account_s_own_last_use_counts_when_no_credential_dates_its_use() {
    let mut a = clean();
    a.kind = AccountKind::Role;
    a.credentials.clear();
    a.last_used = LastUse::At(ago(days(31)));
    only(&a, FindingKind::Dormant, None);
    a.last_used = LastUse::At(ago(days(29)));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn not_used_since_a_bound_older_than_the_threshold_is_dormant() {
    let mut a = clean();
    a.kind = AccountKind::Role;
    a.credentials.clear();
    a.last_used = LastUse::Before(ago(days(31)));
    let f = only(&a, FindingKind::Dormant, None);
    assert!(f.message.contains("if ever"), "{}", f.message);
    a.last_used = LastUse::Before(ago(days(29)));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn never_used_once_older_than_the_dormancy_threshold() {
    let mut a = clean();
    a.created = Some(ago(days(31)));
    key(&mut a).created = Some(ago(days(31)));
    key(&mut a).last_used = LastUse::Never;
    only(&a, FindingKind::NeverUsed, Some("AKIAEXAMPLE1"));
    key(&mut a).created = Some(ago(days(29)));
    a.created = Some(ago(days(29)));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn expired_but_enabled_and_not_a_minute_before() {
    let mut a = clean();
    a.expires = Some(ago(60_000));
    let f = only(&a, FindingKind::ExpiredEnabled, None);
    assert_eq!(f.severity, Severity::High);
    a.expires = Some(ago(-60_000));
    assert_eq!(findings(&a), Vec::new());
    a.expires = Some(ago(60_000));
    a.enabled = false;
    assert_eq!(
        findings(&a),
        Vec::new(),
        "a disabled account is not a finding"
    );
}

#[test]
fn a_credential_past_its_expiry_but_active() {
    let mut a = clean();
    key(&mut a).expires = Some(ago(HOUR));
    only(&a, FindingKind::ExpiredEnabled, Some("AKIAEXAMPLE1"));
}

#[test]
fn stale_after_ninety_days_when_rotated_once_and_not_before() {
    let mut a = clean();
    a.created = Some(ago(days(400)));
    key(&mut a).created = Some(ago(days(90) + HOUR));
    let f = only(&a, FindingKind::StaleCredential, Some("AKIAEXAMPLE1"));
    assert_eq!(f.nhi, Nhi::Nhi7);
    key(&mut a).created = Some(ago(days(90) - HOUR));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn never_rotated_when_the_key_is_as_old_as_the_account() {
    let mut a = clean();
    a.created = Some(ago(days(91)));
    key(&mut a).created = Some(ago(days(91) - HOUR));
    only(&a, FindingKind::NeverRotated, Some("AKIAEXAMPLE1"));
    a.created = Some(ago(days(89)));
    key(&mut a).created = Some(ago(days(89)));
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn a_managed_account_s_password_is_never_stale() {
    let mut a = clean();
    a.kind = AccountKind::ManagedServiceAccount;
    a.created = Some(ago(days(900)));
    key(&mut a).kind = CredentialKind::Password;
    key(&mut a).created = Some(ago(days(900)));
    a.flags.push(Flag::PasswordNeverExpires);
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn two_active_keys_and_not_one_active_one_inactive() {
    let mut a = clean();
    let mut second = a.credentials[0].clone();
    second.id = "AKIAEXAMPLE2".to_owned();
    a.credentials.push(second);
    only(&a, FindingKind::TwoActiveKeys, None);
    a.credentials[1].active = false;
    assert_eq!(findings(&a), Vec::new());
}

#[test]
fn password_never_expires() {
    let mut a = clean();
    a.flags.push(Flag::PasswordNeverExpires);
    only(&a, FindingKind::PasswordNeverExpires, None);
}

#[test]
fn over_privileged_by_admin_wildcard_group_or_delegation() {
    let mut a = clean();
    a.permissions[0].action = "*".to_owned();
    a.permissions[0].resource = Some("*".to_owned());
    assert_eq!(
        only(&a, FindingKind::OverPrivileged, None).severity,
        Severity::High
    );
    a.permissions[0].action = "s3:*".to_owned();
    a.permissions[0].resource = Some("arn:aws:s3:::builds/*".to_owned());
    assert_eq!(
        only(&a, FindingKind::OverPrivileged, None).severity,
        Severity::Medium
    );
    a.permissions[0].action = "s3:GetObject".to_owned();
    a.permissions[0].resource = Some("arn:aws:s3:::builds/artifact".to_owned());
    assert_eq!(
        findings(&a),
        Vec::new(),
        "a named action on a named resource"
    );
    a.permissions[0].admin = true;
    only(&a, FindingKind::OverPrivileged, None);
    a.permissions[0].admin = false;
    a.groups.push(Group {
        name: "Domain Admins".to_owned(),
        privileged: true,
    });
    only(&a, FindingKind::OverPrivileged, None);
    a.groups[0].privileged = false;
    assert_eq!(findings(&a), Vec::new(), "an ordinary group");
    a.flags.push(Flag::TrustedForDelegation);
    only(&a, FindingKind::OverPrivileged, None);
}

#[test]
fn root_with_an_access_key_is_critical_and_its_quiet_is_not_dormancy() {
    let mut a = clean();
    a.kind = AccountKind::Root;
    a.owner = None;
    key(&mut a).last_used = LastUse::At(ago(days(300)));
    let f = findings_with(&a, None, Owner::None);
    assert_eq!(kinds(&f), vec![(FindingKind::OverPrivileged, None)]);
    assert_eq!(f[0].severity, Severity::Critical);
    key(&mut a).active = false;
    assert_eq!(findings_with(&a, None, Owner::None), Vec::new());
}

#[test]
fn privilege_added_since_the_previous_import() {
    let before = clean();
    let mut a = clean();
    a.groups.push(Group {
        name: "Domain Admins".to_owned(),
        privileged: true,
    });
    let owner = Owner::Active("alice".to_owned());
    let f = findings_with(&a, Some(&before), owner.clone());
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::OverPrivileged, None),
            (FindingKind::PrivilegeAdded, None)
        ]
    );
    // Already a member last time: over-privileged, not newly so.
    let f = findings_with(&a, Some(&a), owner.clone());
    assert_eq!(kinds(&f), vec![(FindingKind::OverPrivileged, None)]);
    // The first import has nothing to compare with.
    let f = findings_with(&a, None, owner);
    assert_eq!(kinds(&f), vec![(FindingKind::OverPrivileged, None)]);
}

#[test]
fn reassessed_without_an_import_the_clock_and_the_owner_count_and_privilege_added_stays() {
    let before = clean();
    let mut a = clean();
    a.groups.push(Group {
        name: "Domain Admins".to_owned(),
        privileged: true,
    });
    let subject = |owner: Owner, now: Timestamp| Subject {
        account: &a,
        previous: Some(&before),
        owner,
        thresholds: thresholds(),
        now,
    };
    let imported = assess(&subject(Owner::Active("alice".to_owned()), now()));
    // Nothing changed: exactly what the import gave, in its order.
    assert_eq!(
        reassess(
            &subject(Owner::Active("alice".to_owned()), now()),
            &imported
        ),
        imported
    );
    // The owner left, and a month went by without the key being used.
    let later = Timestamp::from_millis(now().as_millis() + days(30));
    let f = reassess(
        &subject(Owner::Departed("alice".to_owned()), later),
        &imported,
    );
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::Orphaned, None),
            (FindingKind::Dormant, Some("AKIAEXAMPLE1".to_owned())),
            (FindingKind::OverPrivileged, None),
            (FindingKind::PrivilegeAdded, None)
        ]
    );
    // A kept finding is only carried where it still applies.
    let mut left = a.clone();
    left.groups.clear();
    let f = reassess(
        &Subject {
            account: &left,
            previous: None,
            owner: Owner::Active("alice".to_owned()),
            thresholds: thresholds(),
            now: now(),
        },
        &imported,
    );
    assert_eq!(f, Vec::new());
}

#[test]
fn weak_authentication_from_directory_flags() {
    for flag in [
        Flag::PasswordNotRequired,
        Flag::NoPreauthentication,
        Flag::ServicePrincipalName,
    ] {
        let mut a = clean();
        a.flags.push(flag);
        let f = only(&a, FindingKind::WeakAuthentication, None);
        assert_eq!(f.nhi, Nhi::Nhi4);
    }
    let mut a = clean();
    a.kind = AccountKind::ManagedServiceAccount;
    a.flags.push(Flag::ServicePrincipalName);
    assert_eq!(findings(&a), Vec::new(), "a gMSA's SPN is not roastable");
}

#[test]
fn human_use_by_console_password_or_interactive_logon() {
    let mut a = clean();
    let mut console = a.credentials[0].clone();
    console.id = "password".to_owned();
    console.kind = CredentialKind::ConsolePassword;
    a.credentials.push(console);
    assert_eq!(only(&a, FindingKind::HumanUse, None).nhi, Nhi::Nhi10);
    a.credentials[1].active = false;
    assert_eq!(findings(&a), Vec::new());
    a.flags.push(Flag::InteractiveLogon);
    only(&a, FindingKind::HumanUse, None);
}

#[test]
fn a_person_s_own_account_is_not_a_machine_identity() {
    let mut a = clean();
    a.kind = AccountKind::Human;
    a.owner = None;
    key(&mut a).last_used = LastUse::At(ago(days(300)));
    assert_eq!(findings_with(&a, None, Owner::None), Vec::new());
}

#[test]
fn a_directory_dormancy_threshold_at_the_replication_interval_is_refused() {
    let t = Thresholds {
        dormant_days: 14,
        rotation_days: 90,
    };
    let err = t.checked(SourceKind::Ldap).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("msDS-LogonTimeSyncInterval")),
        "{err:?}"
    );
    assert!(t.checked(SourceKind::AwsCredentialReport).is_ok());
    let t = Thresholds {
        dormant_days: 15,
        ..t
    };
    assert!(t.checked(SourceKind::Ldap).is_ok());
    assert_eq!(Thresholds::for_source(SourceKind::Ldap).dormant_days, 90);
}

#[test]
fn merging_two_views_of_one_account() {
    let mut creds = clean();
    creds.permissions.clear();
    let mut perms = clean();
    perms.credentials.clear();
    perms.permissions[0].action = "*".to_owned();
    perms.permissions[0].resource = Some("*".to_owned());
    let merged = creds.merge(&perms);
    assert_eq!(merged.credentials.len(), 1);
    assert_eq!(merged.permissions.len(), 1);
    only(&merged, FindingKind::OverPrivileged, None);
}

#[test]
fn tiers_follow_reach() {
    use crate::risk::RiskTier;
    let a = clean();
    assert_eq!(tier::tier(&a).tier, RiskTier::Low);
    let mut w = clean();
    w.permissions[0].action = "s3:PutObject".to_owned();
    assert_eq!(tier::tier(&w).tier, RiskTier::Medium);
    let mut admin = clean();
    admin.permissions[0].admin = true;
    assert_eq!(tier::tier(&admin).tier, RiskTier::High);
    let mut secrets = clean();
    secrets.permissions[0].action = "secretsmanager:GetSecretValue".to_owned();
    assert_eq!(tier::tier(&secrets).tier, RiskTier::High);
}

#[test]
fn last_use_serializes_as_a_word_or_an_instant() {
    for (v, s) in [
        (LastUse::Never, "\"never\""),
        (LastUse::Unknown, "\"unknown\""),
        (LastUse::At(now()), "\"2026-11-30T12:00:00Z\""),
        (LastUse::Before(now()), "\"before:2026-11-30T12:00:00Z\""),
    ] {
        assert_eq!(serde_json::to_string(&v).ok().as_deref(), Some(s));
        assert_eq!(serde_json::from_str::<LastUse>(s).ok(), Some(v));
    }
}

#[test]
fn an_account_over_its_bounds_is_refused_with_the_bound() {
    let mut a = clean();
    a.groups = (0..=super::account::MAX_GROUPS)
        .map(|i| Group {
            name: format!("g{i}"),
            privileged: false,
        })
        .collect();
    let err = a.checked().err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("groups")));
    let mut a = clean();
    a.name = "line\nbreak".to_owned();
    assert!(a.checked().is_err());
}

#[test]
fn a_finding_whose_message_alone_moved_is_the_same() {
    let a = Finding::new(
        FindingKind::Dormant,
        Severity::Medium,
        "last used 40 days ago".to_owned(),
    )
    .evidence(serde_json::json!({ "dormant_days": 30 }));
    let mut b = a.clone();
    b.message = "last used 41 days ago".to_owned();
    assert!(a.same_as(&b));
    b.credential = Some("AKIAEXAMPLE1".to_owned());
    assert!(!a.same_as(&b));
    let mut c = a.clone();
    c.evidence = serde_json::json!({ "dormant_days": 90 });
    assert!(!a.same_as(&c));
}
