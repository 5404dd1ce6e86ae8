//! What a security team does about discovered accounts: adopt one into the registry, put
//! one on the decommission list (JSON and CSV), acknowledge a finding until a date; and
//! findings brought up to date without an import.

use std::collections::BTreeMap;

use aim_api::discovery::{AcknowledgeBody, AdoptBody};
use aim_client::{Client, ClientError};
use aim_discovery::upload::upload;
use aim_domain::discovery::{FindingKind, SourceKind};
use aim_domain::event::AuditAction;
use aim_domain::human::Role;
use aim_domain::identity::IdentityKind;
use aim_domain::ids::AccountId;
use aim_domain::lifecycle::LifecycleState;
use aim_testkit::{Backend, TestServer};

use crate::discovery::{bots, options};

async fn import_bots(client: &Client) -> aim_api::discovery::Import {
    upload(client, &options("saas", SourceKind::Csv), bots(), |_| {})
        .await
        .unwrap()
}

fn code(e: &ClientError) -> (u16, String) {
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_owned())
}

async fn account(client: &Client, name: &str) -> aim_api::discovery::DiscoveredAccount {
    let page = client
        .discovered_accounts(&vec![("source", "saas".to_owned())])
        .await
        .unwrap();
    page.items.into_iter().find(|a| a.name == name).unwrap()
}

fn adopt_body(sponsor: aim_domain::ids::HumanId, purpose: Option<&str>) -> AdoptBody {
    AdoptBody {
        name: None,
        kind: IdentityKind::Bot,
        autonomy: None,
        sponsor_id: sponsor,
        owner_team: None,
        purpose: purpose.map(str::to_owned),
        systems: None,
        data_sensitivity: None,
        criticality: None,
        impact: None,
        labels: Default::default(),
        expires_at: aim_testkit::server::start_time().plus_days(60),
    }
}

#[tokio::test]
async fn an_account_is_adopted_through_the_registry_s_approval() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let (alice, _) = srv.human("alice", &[Role::Sponsor]).await;
        srv.human("bob", &[Role::Sponsor]).await;
        let standup = aim_testkit::fixtures::low_risk_request(
            "bot-standup",
            alice.id,
            aim_testkit::server::start_time().plus_days(30),
        );
        srv.admin.request_identity(&standup).await.unwrap();
        import_bots(&srv.admin).await;
        let exporter = account(&srv.admin, "bot-metrics-exporter").await;
        let e = srv
            .admin
            .adopt_account(exporter.id, &adopt_body(alice.id, None))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (422, "purpose_required".to_owned()));
        let adopted = srv
            .admin
            .adopt_account(
                exporter.id,
                &adopt_body(alice.id, Some("exports metrics to Datadog")),
            )
            .await
            .unwrap();
        assert_eq!(adopted.identity.name, "bot-metrics-exporter");
        assert_eq!(
            adopted.identity.state,
            LifecycleState::Requested,
            "an approver decides"
        );
        assert_eq!(adopted.identity.sponsor_id, alice.id);
        // Read-only metrics in prod: confidential data, low criticality and impact.
        assert_eq!(adopted.identity.data_sensitivity.as_str(), "confidential");
        let now = account(&srv.admin, "bot-metrics-exporter").await;
        assert_eq!(now.identity, Some(adopted.identity.id));
        assert_eq!(now.disposition.unwrap().state, "adopted");
        let again = srv
            .admin
            .adopt_account(exporter.id, &adopt_body(alice.id, Some("x")))
            .await
            .unwrap_err();
        assert_eq!(code(&again), (409, "already_decided".to_owned()));
        // Already in the registry under its name.
        let linked = account(&srv.admin, "bot-standup").await;
        let e = srv
            .admin
            .adopt_account(linked.id, &adopt_body(alice.id, Some("x")))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (409, "already_in_registry".to_owned()));
        let e = srv
            .admin
            .adopt_account(AccountId::new(), &adopt_body(alice.id, Some("x")))
            .await
            .unwrap_err();
        assert_eq!(code(&e).0, 404);
        let events = srv
            .admin
            .audit(&vec![(
                "action",
                AuditAction::DiscoveryAccountAdopted.as_str().to_owned(),
            )])
            .await
            .unwrap();
        assert_eq!(events.items.len(), 1);
        assert_eq!(
            events.items[0].detail["identity"],
            adopted.identity.id.to_string()
        );
        // An import never undoes the decision.
        import_bots(&srv.admin).await;
        let after = account(&srv.admin, "bot-metrics-exporter").await;
        assert_eq!(after.identity, Some(adopted.identity.id));
        assert_eq!(after.disposition.unwrap().state, "adopted");
    }
}

#[tokio::test]
async fn the_decommission_list_says_what_to_retire_and_when_it_is_done() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let (_, auditor) = srv.human("audrey", &[Role::Auditor]).await;
        import_bots(&srv.admin).await;
        let repo = account(&srv.admin, "bot-repo-admin").await;
        let e = srv
            .admin
            .decommission_account(repo.id, " ")
            .await
            .unwrap_err();
        assert_eq!(code(&e), (422, "reason_required".to_owned()));
        let e = auditor
            .decommission_account(repo.id, "x")
            .await
            .unwrap_err();
        assert_eq!(code(&e).0, 403);
        let row = srv
            .admin
            .decommission_account(
                repo.id,
                "=HYPERLINK(\"http://x\") the GitHub app was removed",
            )
            .await
            .unwrap();
        assert_eq!(row.active_credentials, ["B-1003"]);
        let e = srv
            .admin
            .decommission_account(repo.id, "twice")
            .await
            .unwrap_err();
        assert_eq!(code(&e), (409, "already_decided".to_owned()));
        let list = auditor.decommission_list(Some("saas")).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].name.as_str(), list[0].marked_by.as_str()),
            ("bot-repo-admin", "admin")
        );
        assert!(
            auditor
                .decommission_list(Some("elsewhere"))
                .await
                .unwrap()
                .is_empty()
        );
        let csv = auditor.decommission_csv(None).await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "source,key,name,kind,owner,active_credentials,reason,marked_by,marked_at,gone_at"
        );
        assert!(
            lines[1].starts_with("saas,B-1003,bot-repo-admin,bot,,B-1003,\"'=HYPERLINK(\"\"http://x\"\") the GitHub app was removed\",admin,"),
            "a formula is defused and the quotes doubled: {}",
            lines[1]
        );
        // Retired at the source: the next import marks it gone, and the list says so.
        let without: &'static str = Box::leak(
            include_str!("../../../discovery/tests/fixtures/saas_bots.csv")
                .lines()
                .filter(|l| !l.starts_with("B-1003,"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_boxed_str(),
        );
        let mapping = aim_discovery::csv_map::Mapping::parse_lines(
            include_str!("../../../discovery/tests/fixtures/saas_bots.mapping"),
            aim_domain::discovery::AccountKind::Bot,
        )
        .unwrap();
        let rows = aim_discovery::csv_map::Rows::new(without.as_bytes(), &mapping).unwrap();
        upload(&srv.admin, &options("saas", SourceKind::Csv), rows, |_| {})
            .await
            .unwrap();
        let list = srv.admin.decommission_list(None).await.unwrap();
        assert!(list[0].gone_at.is_some());
        let e = srv
            .admin
            .decommission_account(repo.id, "again")
            .await
            .unwrap_err();
        assert_eq!(code(&e), (409, "account_gone".to_owned()));
    }
}

#[tokio::test]
async fn an_acknowledged_finding_stays_out_of_the_list_until_its_date() {
    let srv = TestServer::start(Backend::Sqlite).await;
    import_bots(&srv.admin).await;
    let standup = account(&srv.admin, "bot-standup").await;
    let now = aim_testkit::server::start_time();
    let ack = |finding: &str, until| AcknowledgeBody {
        finding: finding.to_owned(),
        reason: "the standup bot is retired with the Slack migration in April".to_owned(),
        until,
    };
    let e = srv
        .admin
        .acknowledge_finding(standup.id, &ack("dormant", now.plus_days(30)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), (404, "finding_not_found".to_owned()));
    assert!(e.to_string().contains("dormant:B-1002"), "{e}");
    for until in [now.minus_days(1), now.plus_days(366)] {
        let e = srv
            .admin
            .acknowledge_finding(standup.id, &ack("dormant:B-1002", until))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (422, "bad_until".to_owned()));
    }
    let k = srv
        .admin
        .acknowledge_finding(standup.id, &ack("dormant:B-1002", now.plus_days(30)))
        .await
        .unwrap();
    assert_eq!(k.by, "admin");
    let dormant = |ack: &'static str| {
        let admin = srv.admin.clone();
        async move {
            admin
                .discovery_findings(&vec![
                    ("finding", "dormant".to_owned()),
                    ("acknowledged", ack.to_owned()),
                ])
                .await
                .unwrap()
                .items
        }
    };
    assert!(dormant("exclude").await.is_empty());
    let shown = dormant("include").await;
    assert_eq!(shown.len(), 1);
    assert_eq!(
        shown[0].acknowledged.as_ref().unwrap().until,
        now.plus_days(30)
    );
    assert_eq!(dormant("only").await.len(), 1);
    let shown = srv.admin.discovered_account(standup.id).await.unwrap();
    assert_eq!(shown.acknowledgements.len(), 1);
    // Its date passes: it counts again.
    srv.clock.advance_days(31);
    let back = dormant("exclude").await;
    assert_eq!(back.len(), 1);
    assert!(back[0].acknowledged.is_none());
}

/// The findings of each of `saas`'s accounts, by name.
async fn saas_findings(client: &Client) -> BTreeMap<String, Vec<String>> {
    aim_testkit::discovery::findings_by_name(client, "saas").await
}

/// The `discovery.findings_reassessed` events.
async fn reassessed(srv: &TestServer) -> Vec<aim_domain::event::Event> {
    let query = vec![(
        "action",
        AuditAction::DiscoveryFindingsReassessed.as_str().to_owned(),
    )];
    srv.admin.audit(&query).await.unwrap().items
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn findings_follow_the_clock_and_the_owners_without_an_import() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let (alice, _) = srv.human("alice", &[Role::Sponsor]).await;
        let (bob, _) = srv.human("bob", &[Role::Sponsor]).await;
        import_bots(&srv.admin).await;
        let imported = saas_findings(&srv.admin).await;
        assert_eq!(imported["bot-standup"], ["dormant@B-1002", "duplicate"]);

        // Nothing moved: nothing changes, nothing is written.
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!((r.sources, r.accounts, r.changed), (1, 5, 0));
        assert_eq!(saas_findings(&srv.admin).await, imported);

        // Bob leaves: his bot is orphaned now, not at the source's next import.
        srv.admin
            .set_human_active(bob.id, false, "left the company")
            .await
            .unwrap();
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!(r.changed, 1);
        assert_eq!(r.appeared, BTreeMap::from([(FindingKind::Orphaned, 1)]));
        assert!(r.went.is_empty());
        let mut expected = imported.clone();
        expected.insert(
            "bot-standup".to_owned(),
            owned(&["orphaned", "dormant@B-1002", "duplicate"]),
        );
        assert_eq!(saas_findings(&srv.admin).await, expected);

        // Six weeks on, the bots used just before the import are dormant; what only an
        // import or its end can tell (duplicates, a secret shared across environments)
        // stays as it was.
        srv.clock.advance_days(42);
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!(r.appeared, BTreeMap::from([(FindingKind::Dormant, 3)]));
        assert!(r.went.is_empty());
        let f = saas_findings(&srv.admin).await;
        assert_eq!(
            f["bot-deploy-notifier"],
            [
                "dormant@B-1001",
                "duplicate",
                "shared_across_environments@B-1001"
            ]
        );
        assert_eq!(
            f["bot-repo-admin"],
            [
                "orphaned",
                "dormant@B-1003",
                "over_privileged",
                "shared_across_environments@B-1003"
            ]
        );
        assert_eq!(f["bot-metrics-exporter"], ["orphaned", "dormant@B-1005"]);

        // What a reassessment wrote is what an import finds: a re-import changes no
        // finding (it rewrites bot-standup's message, whose day count a reassessment
        // leaves alone).
        let batches = import_bots(&srv.admin).await.summary.unwrap().batches;
        assert_eq!((batches.new, batches.unchanged, batches.updated), (0, 4, 1));
        assert_eq!(saas_findings(&srv.admin).await, f);
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!(r.changed, 0, "only days moved: nothing written");

        // On the record, by the admin who asked, only when something changed.
        let events = reassessed(&srv).await;
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.target_id == "saas"));
        assert_eq!(events[0].actor.kind.as_str(), "human");
        assert!(events.iter().any(|e| e.detail["appeared"]["orphaned"] == 1));

        // A source being imported is left to its import: what this would write could
        // overwrite a batch's findings with older ones.
        srv.clock.advance_days(30);
        let running = srv
            .admin
            .open_import(&aim_api::discovery::NewImport {
                source: "saas".to_owned(),
                kind: SourceKind::Csv,
                thresholds: None,
            })
            .await
            .unwrap();
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!(
            (r.busy, r.sources, r.changed),
            (vec!["saas".to_owned()], 0, 0)
        );
        srv.admin.abandon_import(running.id).await.unwrap();
        let r = srv.admin.reassess_discovery(None).await.unwrap();
        assert_eq!((r.sources, r.accounts), (1, 5));

        // One that takes longer than the caller waits answers 202 and goes on.
        let before = reassessed(&srv).await.len();
        srv.admin
            .set_human_active(alice.id, false, "left the company")
            .await
            .unwrap();
        let r = srv.admin.reassess_discovery(Some(0)).await.unwrap();
        assert!(r.running && r.changed == 0, "{r:?}");
        aim_testkit::eventually("the reassessment goes on and writes", || async {
            (reassessed(&srv).await.len() > before).then_some(())
        })
        .await;
        let e = srv.admin.reassess_discovery(Some(3601)).await.unwrap_err();
        assert_eq!(code(&e), (400, "bad_wait".to_owned()));

        // Only admins ask for it.
        let (_, auditor) = srv.human("audrey", &[Role::Auditor]).await;
        let e = auditor.reassess_discovery(None).await.unwrap_err();
        assert_eq!(code(&e).0, 403);
    }
}
