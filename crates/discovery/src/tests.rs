//! The importers against fixture files in each real format.

use aim_domain::discovery::{Account, AccountKind, CredentialKind, LastUse};
use aim_domain::time::Timestamp;
use base64::Engine;

use crate::csv_map::{Mapping, Rows};
use crate::{ReadError, credential_report};

const REPORT: &str = include_str!("../tests/fixtures/credential_report.csv");
const REPORT_2014: &str = include_str!("../tests/fixtures/credential_report_2014.csv");
const BOTS: &str = include_str!("../tests/fixtures/saas_bots.csv");
const MAPPING: &str = include_str!("../tests/fixtures/saas_bots.mapping");

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn read(text: &str) -> Vec<Account> {
    credential_report::open(std::io::Cursor::new(text.to_owned().into_bytes()))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn by_name<'a>(accounts: &'a [Account], name: &str) -> &'a Account {
    accounts.iter().find(|a| a.name == name).unwrap()
}

#[test]
fn a_credential_report_gives_one_credential_per_key_password_and_certificate() {
    let accounts = read(REPORT);
    assert_eq!(accounts.len(), 8);
    let root = by_name(&accounts, "root");
    assert_eq!(root.kind, AccountKind::Root);
    assert_eq!(root.key, "arn:aws:iam::111122223333:root");
    assert!(root.credentials.is_empty(), "{:?}", root.credentials);
    let bot = by_name(&accounts, "reporting-bot");
    assert_eq!(bot.kind, AccountKind::ServiceUser);
    let ids: Vec<&str> = bot.credentials.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["access_key_1", "access_key_2"]);
    assert_eq!(
        bot.credentials[0].last_used,
        LastUse::At(t("2026-02-27T06:00:00Z"))
    );
    assert_eq!(
        bot.credentials[1].last_used,
        LastUse::Never,
        "N/A: never used"
    );
    assert_eq!(bot.credentials[1].created, Some(t("2026-02-01T08:00:00Z")));
    assert_eq!(bot.attributes["aws_account"], "111122223333");
    assert_eq!(bot.attributes["access_key_1_last_used_service"], "athena");
    let jenkins = by_name(&accounts, "jenkins");
    assert_eq!(jenkins.kind, AccountKind::ServiceUser);
    assert_eq!(jenkins.credentials[0].kind, CredentialKind::ConsolePassword);
    let alice = by_name(&accounts, "alice");
    assert_eq!(alice.kind, AccountKind::Human, "only a console password");
    let retired = by_name(&accounts, "retired-svc");
    assert!(!retired.enabled, "its only key is inactive");
    assert_eq!(retired.credentials.len(), 1);
    assert!(!retired.credentials[0].active);
}

#[test]
fn a_report_from_before_key_use_was_tracked_leaves_use_unknown() {
    let accounts = read(REPORT_2014);
    assert_eq!(accounts.len(), 2);
    let root = by_name(&accounts, "root");
    assert!(root.credentials.is_empty());
    let backup = by_name(&accounts, "old-backup");
    assert_eq!(backup.credentials.len(), 1);
    assert_eq!(backup.credentials[0].last_used, LastUse::Unknown);
    assert_eq!(
        backup.credentials[0].created,
        Some(t("2012-01-15T10:05:00Z"))
    );
}

#[test]
fn the_cli_s_json_with_base64_content_reads_as_the_csv() {
    let json = serde_json::json!({
        "Content": base64::engine::general_purpose::STANDARD.encode(REPORT),
        "ReportFormat": "text/csv",
        "GeneratedTime": "2026-03-01T08:00:00+00:00",
    })
    .to_string();
    assert_eq!(read(&json), read(REPORT));
}

#[test]
fn what_is_not_a_credential_report_is_refused_with_the_reason() {
    let err = |text: &str| {
        credential_report::open(std::io::Cursor::new(text.to_owned().into_bytes()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(err("name,email\nx,y\n").contains("no `user` column"));
    assert!(err("{\"Users\": []}").contains("get-credential-report"));
    assert!(err("{\"Content\": \"%%%\"}").contains("not base64"));
    assert!(err("{\"Content\": \"\", \"ReportFormat\": \"text/xml\"}").contains("text/xml"));
    let bad_date = REPORT.replacen("2025-06-01T12:00:00+00:00", "yesterday", 1);
    let rows: Vec<_> = credential_report::open(std::io::Cursor::new(bad_date.into_bytes()))
        .unwrap()
        .collect();
    let e = rows
        .iter()
        .find_map(|r| r.as_ref().err())
        .map(ReadError::to_string)
        .unwrap();
    assert!(e.starts_with("row 3: column `user_creation_time`"), "{e}");
}

fn bots_mapping() -> Mapping {
    Mapping::parse_lines(MAPPING, AccountKind::Bot).unwrap()
}

#[test]
fn a_mapped_csv_reads_its_columns_into_accounts() {
    let rows: Vec<Account> = Rows::new(BOTS.as_bytes(), &bots_mapping())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 5);
    let standup = &rows[1];
    assert_eq!(standup.key, "B-1002");
    assert_eq!(standup.name, "bot-standup");
    assert_eq!(standup.kind, AccountKind::Bot);
    assert_eq!(standup.owner.as_deref(), Some("bob@example.com"));
    assert_eq!(standup.permissions.len(), 2);
    assert_eq!(standup.credentials[0].kind, CredentialKind::ApiKey);
    assert_eq!(
        standup.credentials[0].last_used,
        LastUse::At(t("2025-12-01T00:00:00Z"))
    );
    assert_eq!(standup.last_used, LastUse::Unknown, "use is the key's");
    let repo = &rows[2];
    assert_eq!(repo.owner, None);
    assert!(repo.permissions[0].is_wildcard());
    let old = &rows[3];
    assert!(!old.enabled);
    assert_eq!(old.credentials[0].last_used, LastUse::Never);
    assert_eq!(old.credentials[0].fingerprint, None);
}

#[test]
fn a_mapping_that_does_not_fit_the_file_is_refused_before_any_row() {
    let m = |pairs: &[&str]| {
        Mapping::parse(
            &pairs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            AccountKind::Bot,
        )
    };
    assert!(
        m(&["name=Bot Name"])
            .err()
            .unwrap()
            .to_string()
            .contains("key=")
    );
    assert!(
        m(&["key=Bot ID", "colour=Red"])
            .err()
            .unwrap()
            .to_string()
            .contains("not a field")
    );
    let e = Rows::new(BOTS.as_bytes(), &m(&["key=Identifier"]).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`Identifier`") && e.contains("Bot ID"), "{e}");
}

const AUTHORIZATION: &str = include_str!("../tests/fixtures/authorization_details.json");

fn authorization(text: &str) -> Vec<Account> {
    crate::aws_authorization::read(text.as_bytes(), t("2026-03-01T09:00:00Z"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn authorization_details_give_each_principal_its_effective_permissions() {
    let accounts = authorization(AUTHORIZATION);
    assert_eq!(accounts.len(), 7, "4 users and 3 roles");
    // A group's URL-encoded inline policy, and the owner and environment from tags.
    let ci = by_name(&accounts, "ci-deployer");
    assert_eq!(ci.owner.as_deref(), Some("alice@example.com"));
    assert_eq!(ci.environment.as_deref(), Some("prod"));
    let actions: Vec<&str> = ci.permissions.iter().map(|p| p.action.as_str()).collect();
    assert_eq!(actions, ["ecr:BatchGetImage", "ecr:PutImage"]);
    assert_eq!(
        ci.permissions[0].via.as_deref(),
        Some("group deployers: inline policy push-images")
    );
    assert_eq!(ci.groups[0].name, "deployers");
    // An attached managed policy, read from its default version.
    let backup = by_name(&accounts, "old-backup");
    assert!(backup.permissions.iter().any(|p| p.is_admin()));
    let lambda = by_name(&accounts, "lambda-exec");
    assert_eq!(lambda.kind, AccountKind::Role);
    assert!(
        lambda.permissions.iter().all(|p| !p.is_wildcard()),
        "v2 (default), not v1: {:?}",
        lambda.permissions
    );
    assert_eq!(lambda.last_used, LastUse::At(t("2026-02-28T10:00:00Z")));
    // NotAction: everything but IAM and Organizations, a wildcard and not an admin grant.
    let etl = by_name(&accounts, "legacy-etl");
    assert_eq!(etl.permissions.len(), 1);
    assert!(etl.permissions[0].is_wildcard() && !etl.permissions[0].is_admin());
    assert!(etl.permissions[0].action.contains("except iam:*"));
    // Not used in AWS's 400-day window: not used since then, if ever.
    assert_eq!(etl.last_used, LastUse::Before(t("2025-01-25T09:00:00Z")));
    assert_eq!(
        etl.attributes["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::444455556666:root"
    );
    // Created inside the window and not used: never.
    assert_eq!(by_name(&accounts, "new-role").last_used, LastUse::Never);
}

#[test]
fn a_deny_of_everything_leaves_no_permission_and_a_bad_document_names_its_principal() {
    let mut v: serde_json::Value = serde_json::from_str(AUTHORIZATION).unwrap();
    let statements = v["UserDetailList"][2]["UserPolicyList"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.push(serde_json::json!({"Effect": "Deny", "Action": "*", "Resource": "*"}));
    let denied = v.to_string();
    let accounts = authorization(&denied);
    let bot = by_name(&accounts, "reporting-bot");
    assert!(bot.permissions.is_empty());
    assert_eq!(bot.attributes["deny_all"], true);
    let broken = AUTHORIZATION.replacen("%7B%22Version", "%7B%7B%22Version", 1);
    let e = crate::aws_authorization::read(broken.as_bytes(), t("2026-03-01T09:00:00Z"))
        .unwrap()
        .find_map(Result::err)
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("user arn:aws:iam::111122223333:user/ci-deployer:"),
        "{e}"
    );
    let e = crate::aws_authorization::read(&b"[1, 2]"[..], t("2026-03-01T09:00:00Z"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("get-account-authorization-details"), "{e}");
}

const KUBERNETES: &str = include_str!("../tests/fixtures/kubernetes.json");

#[test]
fn kubernetes_service_accounts_with_their_bindings_and_token_secrets() {
    let accounts: Vec<Account> = crate::kubernetes::read(KUBERNETES.as_bytes())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let keys: Vec<&str> = accounts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "ci/deployer",
            "ci/default",
            "monitoring/prometheus",
            "payments/legacy-batch",
            "payments/old-job"
        ],
        "payments/default can do nothing and holds no token"
    );
    let deployer = &accounts[0];
    assert_eq!(deployer.kind, AccountKind::ServiceAccount);
    assert_eq!(deployer.owner.as_deref(), Some("alice@example.com"));
    assert!(
        deployer.permissions.iter().any(|p| p.is_admin()),
        "cluster-admin across the cluster"
    );
    assert!(
        deployer
            .permissions
            .iter()
            .any(|p| p.action == "get pods" && p.resource.as_deref() == Some("namespace/ci")),
        "the view role every service account of ci has: {:?}",
        deployer.permissions
    );
    let token = &deployer.credentials[0];
    assert_eq!(
        (token.id.as_str(), token.kind),
        ("deployer-token-7xk2p", CredentialKind::Token)
    );
    assert_eq!(token.last_used, LastUse::At(t("2026-02-27T00:00:00Z")));
    let json = serde_json::to_string(&accounts).unwrap();
    assert!(
        !json.contains("ZXlKaGJHY2"),
        "a token's value is never read"
    );
    let prometheus = &accounts[2];
    assert_eq!(prometheus.purpose.as_deref(), Some("scrapes metrics"));
    assert!(prometheus.permissions.iter().all(|p| !p.is_wildcard()));
    assert!(
        prometheus
            .permissions
            .iter()
            .any(|p| p.action == "get /metrics")
    );
    let old = &accounts[4];
    assert!(
        !old.credentials[0].active,
        "invalidated by the control plane"
    );
    assert_eq!(old.credentials[0].expires, Some(t("2026-01-15T00:00:00Z")));
    let namespace_admin = old.permissions.iter().find(|p| p.action == "*").unwrap();
    assert!(
        namespace_admin.is_wildcard() && !namespace_admin.is_admin(),
        "cluster-admin in one namespace"
    );
    let e = crate::kubernetes::read(&b"{\"kind\": \"Pod\"}"[..])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("items"), "{e}");
}
