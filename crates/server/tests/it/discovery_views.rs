//! Discovery's views: an AWS account's credential report and its authorization export
//! merged into one account per principal, and Kubernetes service accounts.

use aim_api::discovery::Import;
use aim_client::Client;
use aim_discovery::upload::upload;
use aim_domain::discovery::SourceKind;
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
