//! The compliance report: read from live data, naming the identities and accounts behind
//! each control they fail, kept for the trend, read again, rendered as Markdown and HTML
//! with every outside name escaped.

use aim_api::discovery::AcknowledgeBody;
use aim_api::reports::{ComplianceReport, ReportFormat};
use aim_client::{Client, ClientError};
use aim_discovery::csv_map::{Mapping, Rows};
use aim_discovery::upload::upload;
use aim_domain::compliance::{Control, Status};
use aim_domain::discovery::{AccountKind, FindingKind, SourceKind};
use aim_domain::event::AuditAction;
use aim_domain::human::Role;
use aim_domain::ids::ReportId;
use aim_testkit::fixtures::low_risk_request;
use aim_testkit::server::start_time;
use aim_testkit::{Backend, TestServer};

use crate::discovery::{bots, options};

fn control<'a>(r: &'a ComplianceReport, id: &str) -> &'a Control {
    r.controls.iter().find(|c| c.id == id).unwrap()
}

/// The names the failing checks of a control give.
fn named(r: &ComplianceReport, id: &str) -> Vec<String> {
    control(r, id)
        .checks
        .iter()
        .filter(|k| k.status != Status::Met)
        .flat_map(|k| k.names.clone())
        .collect()
}

/// The audit events of reports generated, as `GET /v1/audit` lists them.
async fn report_events(srv: &TestServer) -> Vec<aim_domain::event::Event> {
    let query = vec![(
        "action",
        AuditAction::ComplianceReported.as_str().to_owned(),
    )];
    srv.admin.audit(&query).await.unwrap().items
}

fn code(e: &ClientError) -> (u16, String) {
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_owned())
}

/// A sponsor who departs (their identity orphaned), an identity on bearer tokens, an
/// approver, and the saas bot inventory imported.
async fn example(srv: &TestServer) -> Client {
    let (alice, _) = srv.human("alice", &[Role::Sponsor]).await;
    let (carol, _) = srv.human("carol", &[Role::Sponsor]).await;
    let (_, approver) = srv.human("bob", &[Role::Approver]).await;
    let (_, auditor) = srv.human("dana", &[Role::Auditor]).await;
    let end = start_time().plus_days(60);
    for (name, sponsor) in [("agt-claims", alice.id), ("svc-billing", carol.id)] {
        let i = srv
            .admin
            .request_identity(&low_risk_request(name, sponsor, end))
            .await
            .unwrap();
        approver
            .identity_action(i.id, "approve", "reviewed")
            .await
            .unwrap();
    }
    let agent = srv.admin.find_identity("agt-claims").await.unwrap();
    srv.admin
        .set_bearer(agent.id, true, "its client cannot sign DPoP proofs")
        .await
        .unwrap();
    srv.admin
        .set_human_active(carol.id, false, "left the company")
        .await
        .unwrap();
    upload(
        &srv.admin,
        &options("saas", SourceKind::Csv),
        bots(),
        |_| {},
    )
    .await
    .unwrap();
    auditor
}

#[tokio::test]
async fn each_control_names_the_identities_and_accounts_behind_it() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let auditor = example(&srv).await;
        let r = auditor.compliance_report().await.unwrap();
        assert_eq!(r.generated_by, "dana");
        // The registry: the orphan under offboarding, the bearer identity under
        // authentication, each by name, and nobody else.
        assert_eq!(named(&r, "NHI1")[0], "svc-billing");
        assert_eq!(named(&r, "NHI4"), ["agt-claims"]);
        assert_eq!(named(&r, "PR.AA-03"), ["agt-claims"]);
        // Discovery: accounts by source and name, with their finding.
        let nhi8 = named(&r, "NHI8");
        assert!(
            nhi8.contains(&"saas/bot-deploy-notifier (shared_across_environments)".to_owned()),
            "{nhi8:?}"
        );
        assert_eq!(control(&r, "NHI8").status, Status::NotMet);
        // An acknowledged finding still counts, and says until when it is accepted.
        let accounts = srv
            .admin
            .discovered_accounts(&vec![("source", "saas".to_owned())])
            .await
            .unwrap();
        let notifier = accounts
            .items
            .iter()
            .find(|a| a.name == "bot-deploy-notifier")
            .unwrap();
        let slot = notifier
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::SharedAcrossEnvironments)
            .unwrap()
            .slot();
        let until = start_time().plus_days(30);
        srv.admin
            .acknowledge_finding(
                notifier.id,
                &AcknowledgeBody {
                    finding: slot,
                    reason: "the prod token is rotated with the Slack migration".to_owned(),
                    until,
                },
            )
            .await
            .unwrap();
        let again = auditor.compliance_report().await.unwrap();
        let expected = format!(
            "saas/bot-deploy-notifier (acknowledged until {}) (shared_across_environments)",
            &until.to_rfc3339()[..10]
        );
        assert!(
            named(&again, "NHI8").contains(&expected),
            "{:?}",
            named(&again, "NHI8")
        );
        assert_eq!(control(&again, "NHI8").checks[0].count, 2);
        assert_eq!(
            again.posture.discovery.findings[&FindingKind::SharedAcrossEnvironments].acknowledged,
            1
        );
        let detail = &control(&again, "NHI8").checks[0].detail;
        assert!(
            detail.contains("2 shared_across_environments (1 acknowledged)"),
            "{detail}"
        );
        assert!(
            !control(&r, "NHI8").checks[0]
                .detail
                .contains("acknowledged")
        );
        let inventory = &control(&r, "ID.AM-02").checks[0];
        assert!(
            inventory.detail.contains("from saas: csv"),
            "{}",
            inventory.detail
        );
        // What a fresh aim has no data for, it says so.
        assert_eq!(control(&r, "PR.AA-06").status, Status::NotApplicable);
        assert_eq!(r.posture.registry.live, 2);
        assert_eq!(r.posture.humans.approvers, 1);
        assert_eq!(r.posture.discovery.accounts, 5);
        // Every control not met names who fails it.
        for c in r.controls.iter().filter(|c| c.status == Status::NotMet) {
            for k in c.checks.iter().filter(|k| k.status == Status::NotMet) {
                assert!(k.count == 0 || !k.names.is_empty(), "{}: {k:?}", c.id);
            }
        }
    }
}

#[tokio::test]
async fn reports_are_kept_with_a_trend_and_read_again_as_generated() {
    for backend in Backend::enabled() {
        let srv = TestServer::start(backend).await;
        let auditor = example(&srv).await;
        let first = auditor.compliance_report().await.unwrap();
        assert_eq!(first.trend.len(), 1);
        // The orphan gets a new sponsor: the next report scores higher, and shows both.
        let (erin, _) = srv.human("erin", &[Role::Sponsor]).await;
        let svc = srv.admin.find_identity("svc-billing").await.unwrap();
        srv.admin
            .change_identity(
                svc.id,
                &aim_domain::identity::IdentityPatch {
                    sponsor_id: Some(erin.id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        srv.clock.advance_millis(60_000);
        let second = auditor.compliance_report().await.unwrap();
        assert!(named(&second, "NHI1").iter().all(|n| n != "svc-billing"));
        assert!(
            second.score > first.score,
            "{} then {}",
            first.score,
            second.score
        );
        let trend: Vec<(ReportId, f64)> = second.trend.iter().map(|t| (t.id, t.score)).collect();
        assert_eq!(trend, [(first.id, first.score), (second.id, second.score)]);
        let list = auditor.compliance_reports(None).await.unwrap();
        let ids: Vec<ReportId> = list.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [second.id, first.id]);
        assert_eq!(list.items[1].frameworks, first.frameworks);
        // The first, read again, is what it was: the orphan still named.
        let again = auditor
            .kept_report_as(first.id, ReportFormat::Json)
            .await
            .unwrap();
        let again: ComplianceReport = serde_json::from_str(&again).unwrap();
        assert_eq!(again, first);
        // Each report is on the record, with its score.
        let events = report_events(&srv).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].detail["score"], first.score);
    }
}

#[tokio::test]
async fn a_scheduled_report_is_made_and_kept_without_anyone_asking() {
    for backend in Backend::enabled() {
        let srv =
            TestServer::start_with(backend, |c| c.compliance_report_interval_seconds = 86_400)
                .await;
        // None kept yet: the schedule makes one at once.
        let list = aim_testkit::eventually("the scheduled report is kept", || async {
            Some(srv.admin.compliance_reports(None).await.unwrap()).filter(|l| !l.items.is_empty())
        })
        .await;
        assert_eq!(list.items.len(), 1, "{backend:?}");
        assert_eq!(list.items[0].generated_by, "aim (scheduled)");
        let events = report_events(&srv).await;
        assert_eq!(events.len(), 1);
        let actor = &events[0].actor;
        assert_eq!(
            (actor.kind.as_str(), actor.id.as_str()),
            ("system", "compliance-schedule")
        );
        // A report on request joins the same trend.
        let asked = srv.admin.compliance_report().await.unwrap();
        assert_eq!(asked.trend.len(), 2);
        assert_eq!(asked.trend[0].id, list.items[0].id);
    }
}

#[tokio::test]
async fn who_may_ask_and_what_is_refused() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let (_, sponsor) = srv.human("alice", &[Role::Sponsor]).await;
    let e = sponsor.compliance_report().await.unwrap_err();
    assert_eq!(code(&e), (403, "forbidden".to_owned()));
    let e = sponsor.compliance_reports(None).await.unwrap_err();
    assert_eq!(code(&e).0, 403);
    let e = srv
        .admin
        .kept_report_as(ReportId::new(), ReportFormat::Md)
        .await
        .unwrap_err();
    assert_eq!(code(&e), (404, "not_found".to_owned()));
    let e = srv.admin.compliance_reports(Some(0)).await.unwrap_err();
    assert_eq!(code(&e), (400, "bad_limit".to_owned()));
    // A format aim does not render is refused before anything is kept.
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/reports/compliance?format=pdf", srv.base))
        .bearer_auth(&srv.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert!(
        srv.admin
            .compliance_reports(None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Accounts whose names are markup: a directory anyone may write to names them.
const HOSTILE: &str = "Bot ID,Bot Name,Owner Email,Scopes,Created,Status\n\
B-1,<img src=x onerror=alert(1)>,nobody@example.com,*,2025-01-01,active\n\
B-2,[click](https://evil.example/) | x,nobody@example.com,*,2025-01-01,active\n";
const HOSTILE_MAP: &str = "key=Bot ID\nname=Bot Name\nowner=Owner Email\npermissions=Scopes\n\
created=Created\nenabled=Status\n";

#[tokio::test]
async fn markdown_and_html_escape_every_outside_name() {
    let srv = TestServer::start(Backend::Sqlite).await;
    let rows = Rows::new(
        HOSTILE.as_bytes(),
        &Mapping::parse_lines(HOSTILE_MAP, AccountKind::Bot).unwrap(),
    )
    .unwrap();
    upload(&srv.admin, &options("evil", SourceKind::Csv), rows, |_| {})
        .await
        .unwrap();
    let html = srv
        .admin
        .compliance_report_as(ReportFormat::Html)
        .await
        .unwrap();
    assert!(!html.contains("<img"), "markup got through");
    assert!(html.contains("evil/&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("<script"));
    let md = srv
        .admin
        .compliance_report_as(ReportFormat::Md)
        .await
        .unwrap();
    assert!(
        md.contains(r"evil/\[click\](https://evil.example/) \| x"),
        "{md}"
    );
    assert!(md.contains(r"evil/\<img src=x onerror=alert(1)\>"));
    // The HTML answer itself forbids anything but its inline styles.
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/reports/compliance?format=html", srv.base))
        .bearer_auth(&srv.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 201);
    let csp = raw.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        raw.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
