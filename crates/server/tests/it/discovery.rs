//! Discovery imports end to end: fixture files in real formats read by the importers, sent
//! through the client, assessed and kept by the server; re-imports, gone accounts, owners
//! and registry links, and every refusal.

use std::collections::BTreeMap;

use aim_api::discovery::{Import, Presence};
use aim_client::Client;
use aim_discovery::ReadError;
use aim_discovery::csv_map::{Mapping, Rows};
use aim_discovery::upload::{Options, UploadError, upload};
use aim_domain::discovery::{Account, AccountKind, SourceKind};
use aim_domain::event::AuditAction;
use aim_domain::human::Role;
use aim_testkit::{Backend, TestServer};

pub(crate) const REPORT: &str =
    include_str!("../../../discovery/tests/fixtures/credential_report.csv");
const REPORT_2014: &str =
    include_str!("../../../discovery/tests/fixtures/credential_report_2014.csv");
const BOTS: &str = include_str!("../../../discovery/tests/fixtures/saas_bots.csv");
const MAPPING: &str = include_str!("../../../discovery/tests/fixtures/saas_bots.mapping");

pub(crate) fn options(source: &str, kind: SourceKind) -> Options {
    Options {
        source: source.to_owned(),
        kind,
        thresholds: None,
        batch: 3,
        environment: None,
        allow_mass_removal: false,
    }
}

pub(crate) fn report(
    text: &str,
) -> impl Iterator<Item = Result<Account, ReadError>> + Send + use<> {
    aim_discovery::credential_report::open(std::io::Cursor::new(text.to_owned().into_bytes()))
        .unwrap()
}

pub(crate) async fn import_report(client: &Client, text: &str) -> Import {
    upload(
        client,
        &options("aws-prod", SourceKind::AwsCredentialReport),
        report(text),
        |_| {},
    )
    .await
    .unwrap()
}

/// Each account's findings as `kind` or `kind@credential`, by name.
pub(crate) async fn findings(client: &Client, source: &str) -> BTreeMap<String, Vec<String>> {
    aim_testkit::discovery::findings_by_name(client, source).await
}

pub(crate) fn expected(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    rows.iter()
        .map(|(n, f)| ((*n).to_owned(), f.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

pub(crate) fn report_findings() -> BTreeMap<String, Vec<String>> {
    expected(&[
        ("root", &[]),
        ("ci-deployer", &["orphaned"]),
        (
            "old-backup",
            &[
                "orphaned",
                "dormant@access_key_1",
                "never_rotated@access_key_1",
            ],
        ),
        (
            "reporting-bot",
            &[
                "orphaned",
                "stale_credential@access_key_1",
                "two_active_keys",
            ],
        ),
        ("jenkins", &["orphaned", "human_use"]),
        ("alice", &[]),
        (
            "unused-key",
            &[
                "orphaned",
                "never_used@access_key_1",
                "never_rotated@access_key_1",
            ],
        ),
        ("retired-svc", &[]),
    ])
}

#[tokio::test]
async fn a_credential_report_is_assessed_per_key_and_a_reimport_changes_nothing() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let first = import_report(&srv.admin, REPORT).await;
        let summary = first.summary.clone().unwrap();
        assert_eq!(summary.batches.received, 8);
        assert_eq!(summary.batches.new, 8);
        assert_eq!(summary.present, 8);
        // root, ci-deployer, old-backup, reporting-bot, jenkins, unused-key; not alice (a
        // person) nor retired-svc (no active credential).
        assert_eq!(summary.machine_enabled, 6);
        assert_eq!(summary.gone, 0);
        assert_eq!(findings(&srv.admin, "aws-prod").await, report_findings());

        let again = import_report(&srv.admin, REPORT).await;
        let s2 = again.summary.clone().unwrap();
        assert_eq!(
            (s2.batches.new, s2.batches.updated, s2.batches.unchanged),
            (0, 0, 8)
        );
        assert_eq!(
            (
                s2.present,
                s2.machine_enabled,
                s2.gone,
                &s2.findings,
                &s2.severities
            ),
            (
                summary.present,
                summary.machine_enabled,
                0,
                &summary.findings,
                &summary.severities
            )
        );
        assert_eq!(findings(&srv.admin, "aws-prod").await, report_findings());

        // old-backup deleted from the account: gone, and its findings with it.
        let without: String = REPORT
            .lines()
            .filter(|l| !l.starts_with("old-backup,"))
            .map(|l| format!("{l}\n"))
            .collect();
        let third = import_report(&srv.admin, &without).await.summary.unwrap();
        assert_eq!((third.gone, third.present), (1, 7));
        let mut want = report_findings();
        want.remove("old-backup");
        assert_eq!(findings(&srv.admin, "aws-prod").await, want);
        let gone = srv
            .admin
            .discovered_accounts(&vec![("presence", "gone".to_owned())])
            .await
            .unwrap();
        assert_eq!(gone.items.len(), 1);
        assert_eq!(gone.items[0].name, "old-backup");
        assert_eq!(gone.items[0].presence, Presence::Gone);
        assert!(gone.items[0].gone_at.is_some());
        // Back in the source: present again, the same account.
        let fourth = import_report(&srv.admin, REPORT).await.summary.unwrap();
        assert_eq!((fourth.batches.new, fourth.present), (1, 8));
        let back = srv
            .admin
            .discovered_account(gone.items[0].id)
            .await
            .unwrap();
        assert_eq!(back.presence, Presence::Present);
        assert_eq!(back.first_seen, gone.items[0].first_seen);

        // The imports are on the record, newest first, with their counts.
        let imports = srv
            .admin
            .imports(&vec![("source", "aws-prod".to_owned())])
            .await
            .unwrap();
        assert_eq!(imports.items.len(), 4);
        assert_eq!(imports.items[0].id, {
            let last = srv
                .admin
                .imports(&vec![("limit", "1".to_owned())])
                .await
                .unwrap();
            last.items[0].id
        });
        for action in [
            AuditAction::DiscoveryImportStarted,
            AuditAction::DiscoveryAccountsImported,
            AuditAction::DiscoveryImportFinished,
        ] {
            let events = srv
                .admin
                .audit(&vec![("action", action.as_str().to_owned())])
                .await
                .unwrap();
            assert!(!events.items.is_empty(), "{action}");
        }
        // The findings list names the account and its key.
        let page = srv
            .admin
            .discovery_findings(&vec![("finding", "two_active_keys".to_owned())])
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].name, "reporting-bot");
        assert_eq!(
            page.items[0].key,
            "arn:aws:iam::111122223333:user/reporting-bot"
        );
        assert_eq!(page.items[0].finding.nhi.as_str(), "NHI7");
    }
}

#[tokio::test]
async fn a_report_from_2014_is_never_called_dormant() {
    let srv = TestServer::start(Backend::Sqlite).await;
    import_report(&srv.admin, REPORT_2014).await;
    assert_eq!(
        findings(&srv.admin, "aws-prod").await,
        expected(&[
            ("root", &[]),
            ("old-backup", &["orphaned", "never_rotated@access_key_1"]),
        ])
    );
}

pub(crate) fn bots() -> Rows<&'static [u8]> {
    Rows::new(
        BOTS.as_bytes(),
        &Mapping::parse_lines(MAPPING, AccountKind::Bot).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn owners_are_looked_up_among_aim_s_humans_and_names_link_the_registry() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let (alice, _) = srv.human("alice", &[Role::Sponsor]).await;
        let (bob, _) = srv.human("bob", &[Role::Sponsor]).await;
        srv.admin
            .set_human_active(bob.id, false, "left the company")
            .await
            .unwrap();
        let request = aim_testkit::fixtures::low_risk_request(
            "bot-deploy-notifier",
            alice.id,
            aim_testkit::server::start_time().plus_days(60),
        );
        let registered = srv.admin.request_identity(&request).await.unwrap();
        upload(
            &srv.admin,
            &options("saas", SourceKind::Csv),
            bots(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            findings(&srv.admin, "saas").await,
            expected(&[
                // Two Slack bots; one token in prod and in staging.
                (
                    "bot-deploy-notifier",
                    &["duplicate", "shared_across_environments@B-1001"]
                ),
                ("bot-standup", &["orphaned", "dormant@B-1002", "duplicate"]),
                (
                    "bot-repo-admin",
                    &[
                        "orphaned",
                        "over_privileged",
                        "shared_across_environments@B-1003"
                    ]
                ),
                ("bot-old-webhook", &[]),
                ("bot-metrics-exporter", &["orphaned"]),
            ])
        );
        let page = srv
            .admin
            .discovery_findings(&vec![("finding", "orphaned".to_owned())])
            .await
            .unwrap();
        let reasons: BTreeMap<String, String> = page
            .items
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.finding.evidence["reason"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(reasons["bot-standup"], "owner_departed");
        assert_eq!(reasons["bot-repo-admin"], "no_owner");
        assert_eq!(reasons["bot-metrics-exporter"], "owner_unknown");
        let all = srv.admin.discovered_accounts(&vec![]).await.unwrap();
        let notifier = all
            .items
            .iter()
            .find(|a| a.name == "bot-deploy-notifier")
            .unwrap();
        assert_eq!(notifier.identity, Some(registered.id));
        assert!(
            all.items
                .iter()
                .filter(|a| a.name != "bot-deploy-notifier")
                .all(|a| a.identity.is_none())
        );
    }
}

#[tokio::test]
async fn refusals_leave_nothing_half_written() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let (_, auditor) = srv.human("audrey", &[Role::Auditor]).await;
        let code = |e: &aim_client::ClientError| {
            (e.status().unwrap_or(0), e.code().unwrap_or("").to_owned())
        };
        let new = |source: &str, kind| aim_api::discovery::NewImport {
            source: source.to_owned(),
            kind,
            thresholds: None,
        };
        // Only admins import; auditors read.
        assert_eq!(
            code(
                &auditor
                    .open_import(&new("aws-prod", SourceKind::AwsCredentialReport))
                    .await
                    .unwrap_err()
            ),
            (403, "forbidden".to_owned())
        );
        auditor.discovered_accounts(&vec![]).await.unwrap();
        // A directory's dormancy threshold at its replication interval.
        let mut short = new("corp-ad", SourceKind::Ldap);
        short.thresholds = Some(aim_domain::discovery::Thresholds {
            dormant_days: 14,
            rotation_days: 90,
        });
        let e = srv.admin.open_import(&short).await.unwrap_err();
        assert_eq!(code(&e), (422, "invalid_thresholds".to_owned()));
        assert!(e.to_string().contains("msDS-LogonTimeSyncInterval"), "{e}");
        // One open import per source and format.
        let open = srv
            .admin
            .open_import(&new("aws-prod", SourceKind::AwsCredentialReport))
            .await
            .unwrap();
        assert_eq!(
            code(
                &srv.admin
                    .open_import(&new("aws-prod", SourceKind::AwsCredentialReport))
                    .await
                    .unwrap_err()
            ),
            (409, "import_in_progress".to_owned())
        );
        // A bad account refuses the whole batch.
        let mut accounts: Vec<Account> = report(REPORT).map(Result::unwrap).collect();
        accounts[3].name = "line\nbreak".to_owned();
        let e = srv
            .admin
            .import_accounts(open.id, accounts.clone())
            .await
            .unwrap_err();
        assert_eq!(code(&e), (422, "invalid_account".to_owned()));
        accounts[3].name = "fine".to_owned();
        accounts[4].key = accounts[2].key.clone();
        assert_eq!(
            code(
                &srv.admin
                    .import_accounts(open.id, accounts.clone())
                    .await
                    .unwrap_err()
            ),
            (422, "duplicate_account".to_owned())
        );
        let too_many: Vec<Account> = (0..=aim_api::discovery::MAX_BATCH)
            .map(|i| Account {
                key: format!("k{i}"),
                ..accounts[1].clone()
            })
            .collect();
        assert_eq!(
            code(
                &srv.admin
                    .import_accounts(open.id, too_many)
                    .await
                    .unwrap_err()
            ),
            (422, "batch_too_large".to_owned())
        );
        assert!(
            srv.admin
                .discovered_accounts(&vec![])
                .await
                .unwrap()
                .items
                .is_empty()
        );
        // Idle for longer than it may hold its source: a new import may start.
        srv.clock.advance_millis(16 * 60_000);
        let second = srv
            .admin
            .open_import(&new("aws-prod", SourceKind::AwsCredentialReport))
            .await
            .unwrap();
        srv.admin.finish_import(second.id).await.unwrap();
        assert_eq!(
            code(
                &srv.admin
                    .import_accounts(second.id, vec![])
                    .await
                    .unwrap_err()
            ),
            (409, "import_finished".to_owned())
        );
        assert_eq!(
            code(&srv.admin.finish_import(second.id).await.unwrap_err()),
            (409, "import_finished".to_owned())
        );
        assert_eq!(
            code(
                &srv.admin
                    .import(aim_domain::ids::ImportId::new())
                    .await
                    .unwrap_err()
            ),
            (404, "not_found".to_owned())
        );
    }
}

#[tokio::test]
async fn a_file_that_breaks_midway_marks_nothing_gone() {
    let srv = TestServer::start(Backend::Sqlite).await;
    import_report(&srv.admin, REPORT).await;
    let broken = REPORT.replacen("2025-10-01T12:00:00+00:00", "last tuesday", 1);
    // The break is on the seventh account: two batches of three are sent, then it stops.
    let err = upload(
        &srv.admin,
        &options("aws-prod", SourceKind::AwsCredentialReport),
        report(&broken),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, UploadError::Read(_)), "{err}");
    assert!(
        err.to_string()
            .contains("row 8: column `user_creation_time`"),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was marked gone"), "{err}");
    // Abandoned: on the record as such, and the next import need not wait.
    let imports = srv
        .admin
        .imports(&vec![("limit", "1".to_owned())])
        .await
        .unwrap();
    assert!(imports.items[0].abandoned && imports.items[0].summary.is_none());
    import_report(&srv.admin, REPORT).await;
    let present = srv
        .admin
        .discovered_accounts(&vec![("presence", "present".to_owned())])
        .await
        .unwrap();
    assert_eq!(present.items.len(), 8);
}

#[tokio::test]
async fn a_file_that_would_empty_the_source_is_refused_unless_allowed() {
    let srv = TestServer::start(Backend::Sqlite).await;
    import_report(&srv.admin, REPORT).await;
    let header: String = REPORT.lines().take(1).map(|l| format!("{l}\n")).collect();
    let err = upload(
        &srv.admin,
        &options("aws-prod", SourceKind::AwsCredentialReport),
        report(&header),
        |_| {},
    )
    .await
    .unwrap_err();
    let UploadError::Api(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.code(), Some("mass_removal"));
    assert!(
        e.to_string().contains("would mark 8 of the 8 accounts"),
        "{e}"
    );
    let present = |client: Client| async move {
        client
            .discovered_accounts(&vec![("presence", "present".to_owned())])
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(present(srv.admin.clone()).await, 8, "nothing marked gone");
    // Abandoned, so the source is free; with the operator's say-so, it goes through.
    let mut allowed = options("aws-prod", SourceKind::AwsCredentialReport);
    allowed.allow_mass_removal = true;
    let done = upload(&srv.admin, &allowed, report(&header), |_| {})
        .await
        .unwrap();
    assert_eq!(done.summary.unwrap().gone, 8);
    assert_eq!(present(srv.admin.clone()).await, 0);
}
