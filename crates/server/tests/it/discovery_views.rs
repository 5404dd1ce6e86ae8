//! Discovery's views: an AWS account's credential report and its authorization export
//! merged into one account per principal, and Kubernetes service accounts.

use aim_api::discovery::Import;
use aim_client::Client;
use aim_discovery::csv_map::{Mapping, Rows};
use aim_discovery::upload::upload;
use aim_domain::discovery::{AccountKind, FindingKind, SourceKind};
use aim_domain::human::Role;
use aim_testkit::{Backend, TestServer};

use crate::discovery::{REPORT, expected, findings, import_report, options, report_findings};

const AUTHORIZATION: &str =
    include_str!("../../../discovery/tests/fixtures/authorization_details.json");

async fn import_authorization(client: &Client, text: &str) -> Import {
    let accounts =
        aim_discovery::aws_authorization::read(text.as_bytes(), aim_testkit::server::start_time())
            .unwrap();
    upload(
        client,
        &options("aws-prod", SourceKind::AwsAuthorization),
        accounts,
        |_| {},
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credential_report_and_authorization_details_are_two_views_of_one_account() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        srv.human("alice", &[Role::Sponsor]).await;
        import_report(&srv.admin, REPORT).await;
        let both = import_authorization(&srv.admin, AUTHORIZATION).await;
        let summary = both.summary.unwrap();
        // Four users already known from the report (updated), three roles new.
        assert_eq!((summary.batches.new, summary.batches.updated), (3, 4));
        assert_eq!(summary.present, 11);
        let mut want = report_findings();
        // ci-deployer's owner is tagged: no longer orphaned; its ECR grants are named.
        want.insert("ci-deployer".into(), vec![]);
        // old-backup holds AdministratorAccess.
        want.get_mut("old-backup")
            .unwrap()
            .push("over_privileged".into());
        // alice is a person (the report says so), admin through a group or not.
        want.insert("lambda-exec".into(), vec![]);
        want.insert(
            "legacy-etl".into(),
            vec!["dormant".into(), "over_privileged".into()],
        );
        want.insert("new-role".into(), vec![]);
        assert_eq!(findings(&srv.admin, "aws-prod").await, want);
        let accounts = srv
            .admin
            .discovered_accounts(&vec![
                ("source", "aws-prod".to_owned()),
                ("limit", "100".to_owned()),
            ])
            .await
            .unwrap();
        let backup = accounts
            .items
            .iter()
            .find(|a| a.name == "old-backup")
            .unwrap();
        assert_eq!(
            backup.seen_in,
            [
                SourceKind::AwsAuthorization,
                SourceKind::AwsCredentialReport
            ]
        );
        assert_eq!(backup.risk.tier.as_str(), "high");
        assert!(!backup.account.credentials.is_empty() && !backup.account.permissions.is_empty());

        // The next export has neither legacy-etl nor reporting-bot: the role is gone, the
        // user is still in the credential report and only loses its permissions' view.
        let without: serde_json::Value = {
            let mut v: serde_json::Value = serde_json::from_str(AUTHORIZATION).unwrap();
            v["RoleDetailList"]
                .as_array_mut()
                .unwrap()
                .retain(|r| r["RoleName"] != "legacy-etl");
            v["UserDetailList"]
                .as_array_mut()
                .unwrap()
                .retain(|u| u["UserName"] != "reporting-bot");
            v
        };
        let next = import_authorization(&srv.admin, &without.to_string())
            .await
            .summary
            .unwrap();
        assert_eq!((next.gone, next.present), (1, 10));
        let bot = srv
            .admin
            .discovery_findings(&vec![("finding", "two_active_keys".to_owned())])
            .await
            .unwrap();
        assert_eq!(bot.items[0].name, "reporting-bot");
        let accounts = srv
            .admin
            .discovered_accounts(&vec![("source", "aws-prod".to_owned())])
            .await
            .unwrap();
        let bot = accounts
            .items
            .iter()
            .find(|a| a.name == "reporting-bot")
            .unwrap();
        assert_eq!(bot.seen_in, [SourceKind::AwsCredentialReport]);
        assert!(bot.account.permissions.is_empty());
    }
}

const KUBERNETES: &str = include_str!("../../../discovery/tests/fixtures/kubernetes.json");

#[tokio::test]
async fn kubernetes_service_accounts_are_assessed_per_token() {
    let srv = TestServer::start(Backend::Sqlite).await;
    srv.human("alice", &[Role::Sponsor]).await;
    let accounts = aim_discovery::kubernetes::read(KUBERNETES.as_bytes()).unwrap();
    upload(
        &srv.admin,
        &options("prod-cluster", SourceKind::Kubernetes),
        accounts,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        findings(&srv.admin, "prod-cluster").await,
        expected(&[
            (
                "deployer",
                &["never_rotated@deployer-token-7xk2p", "over_privileged"]
            ),
            ("default", &["orphaned"]),
            ("prometheus", &[]),
            (
                "legacy-batch",
                &[
                    "orphaned",
                    "dormant@legacy-batch-token",
                    "stale_credential@legacy-batch-token"
                ],
            ),
            ("old-job", &["over_privileged"]),
        ])
    );
    let admin = srv
        .admin
        .discovery_findings(&vec![
            ("finding", "over_privileged".to_owned()),
            ("severity", "high".to_owned()),
        ])
        .await
        .unwrap();
    let names: Vec<&str> = admin.items.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["deployer"],
        "cluster-admin in one namespace is medium"
    );
}

const KEYS: &str = include_str!("../../../discovery/tests/fixtures/api_keys.csv");
const KEYS_MAPPING: &str = include_str!("../../../discovery/tests/fixtures/api_keys.mapping");

async fn import_keys(client: &Client, text: &str) -> aim_api::discovery::ImportSummary {
    let mapping = Mapping::parse_lines(KEYS_MAPPING, AccountKind::ApiKey).unwrap();
    let rows = Rows::new(std::io::Cursor::new(text.to_owned().into_bytes()), &mapping).unwrap();
    upload(
        client,
        &options("vault-keys", SourceKind::Csv),
        rows,
        |_| {},
    )
    .await
    .unwrap()
    .summary
    .unwrap()
}

#[tokio::test]
async fn duplicates_and_a_secret_shared_across_environments_are_found_across_accounts() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        srv.human("alice", &[Role::Sponsor]).await;
        let first = import_keys(&srv.admin, KEYS).await;
        let want = expected(&[
            // The same owner, purpose and scopes (case and order aside) under two names.
            ("key-billing-sync", &["duplicate"]),
            ("key-billing-sync-2", &["duplicate"]),
            // One scope fewer: another job.
            ("key-billing-report", &[]),
            // One secret in prod and in staging.
            ("key-ci-prod", &["shared_across_environments@K-4"]),
            ("key-ci-staging", &["shared_across_environments@K-5"]),
            // One secret twice, but in one environment: not across environments.
            ("key-ci-prod-2", &[]),
            ("key-ci-prod-3", &[]),
        ]);
        assert_eq!(findings(&srv.admin, "vault-keys").await, want);
        assert_eq!(first.findings.get(&FindingKind::Duplicate), Some(&2));
        let again = import_keys(&srv.admin, KEYS).await;
        assert_eq!(
            (
                again.batches.new,
                again.batches.updated,
                again.batches.unchanged
            ),
            (0, 0, 7)
        );
        assert_eq!(
            (&again.findings, &again.severities),
            (&first.findings, &first.severities)
        );
        assert_eq!(findings(&srv.admin, "vault-keys").await, want);
        let shared = srv
            .admin
            .discovery_findings(&vec![("finding", "shared_across_environments".to_owned())])
            .await
            .unwrap();
        assert_eq!(
            shared.items[0].finding.evidence["environments"],
            serde_json::json!(["prod", "staging"])
        );
        assert_eq!(
            shared.items[0].finding.evidence["others"],
            serde_json::json!(["key-ci-staging"])
        );
        // The second copy retired: the first is no longer a duplicate.
        let without: String = KEYS
            .lines()
            .filter(|l| !l.starts_with("K-2,"))
            .map(|l| format!("{l}\n"))
            .collect();
        let third = import_keys(&srv.admin, &without).await;
        assert_eq!(third.gone, 1);
        assert_eq!(third.findings.get(&FindingKind::Duplicate), None);
        let mut want = want;
        want.remove("key-billing-sync-2");
        want.insert("key-billing-sync".into(), vec![]);
        assert_eq!(findings(&srv.admin, "vault-keys").await, want);
    }
}

#[tokio::test]
async fn a_linked_identity_s_registered_systems_unused_for_ninety_days() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let c = crate::fixtures::cast(&srv).await;
    let mut req = crate::fixtures::request(&srv, "bot-deploy-notifier", c.sponsor.id);
    req.systems = vec!["crm".to_owned(), "slack".to_owned()];
    req.expires_at = aim_testkit::server::start_time().plus_days(300);
    let i = c.sponsor_client.request_identity(&req).await.unwrap();
    c.approver_client
        .identity_action(i.id, "approve", "ok")
        .await
        .unwrap();
    let unused = |client: Client| async move {
        client
            .discovery_findings(&vec![("finding", "unused_permissions".to_owned())])
            .await
            .unwrap()
            .items
    };
    let import = |client: Client| async move {
        let accounts = crate::discovery::bots();
        upload(&client, &options("saas", SourceKind::Csv), accounts, |_| {})
            .await
            .unwrap();
    };
    import(srv.admin.clone()).await;
    assert!(unused(srv.admin.clone()).await.is_empty(), "approved today");
    // In the registry for 89 days without a call: too soon to say.
    srv.clock.advance_days(89);
    import(srv.admin.clone()).await;
    assert!(unused(srv.admin.clone()).await.is_empty());
    srv.clock.advance_days(2);
    import(srv.admin.clone()).await;
    let found = unused(srv.admin.clone()).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "bot-deploy-notifier");
    assert_eq!(
        found[0].finding.evidence["unused_systems"],
        serde_json::json!(["crm", "slack"])
    );
    assert_eq!(found[0].finding.nhi.as_str(), "NHI5");
}
