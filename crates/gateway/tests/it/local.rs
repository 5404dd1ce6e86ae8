//! Decisions taken in the gateway: with aim's policy set as it changes, a proof spent once
//! whichever way the record goes, what only aim can answer left to aim, batched routes'
//! records reaching aim without holding up the call, and durable routes' records made
//! durable in the gateway's journal reaching aim, also after a restart.

use std::time::Duration;

use aim_testkit::Backend;
use serde_json::json;

use crate::harness::{GatewaySpec, POLICIES, Setup, start_gateway};

/// A route whose decisions are queued for aim's record rather than awaited.
const BATCHED: &str = r#"
[[routes]]
upstream = "crm"
method = "GET"
path = "/crm/notes/{id}"
action = "read"
audit = "batched"
resource = { system = "crm", id = "crm/notes/{id}", attrs = { type = "note", sensitivity = "internal" } }
"#;

/// A journal for the gateway's durable routes, in `dir`.
fn journal(dir: &std::path::Path) -> String {
    format!("\n[journal]\npath = \"{}\"\n", dir.display())
}

/// A read of record `id` with a fresh proof: status and body.
async fn read(s: &Setup, path: &str, request_id: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = s
        .agent
        .call(
            &s.gateway,
            "GET",
            path,
            None,
            &[("x-request-id", request_id)],
        )
        .await;
    (status, body)
}

/// The decision recorded for `request_id`, once it reaches aim's record.
async fn decision(s: &Setup, request_id: &str) -> aim_domain::event::Event {
    aim_testkit::eventually(
        &format!("the decision for {request_id} reaches aim's record"),
        || async {
            s.events("decision")
                .await
                .into_iter()
                .find(|e| e.request_id == request_id)
        },
    )
    .await
}

#[tokio::test]
async fn a_policy_change_reaches_the_gateways_own_decisions_within_a_heartbeat() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        let (status, body) = read(&s, "/crm/records/1", "before").await;
        assert_eq!(status, 200, "{body}");
        let before = decision(&s, "before").await;
        assert_eq!(before.detail["gateway"], "gw-1");
        let first = before.detail["policy_version"].as_i64().unwrap();

        let forbid = format!(
            "{POLICIES}\n@id(\"no-crm-reads\")\nforbid(principal, action == Aim::Action::\"read\", resource);\n"
        );
        let apply: aim_api::policies::ApplyBody = serde_json::from_value(json!({
            "sources": [{ "name": "crm.cedar", "text": forbid }],
            "comment": "reads stop",
        }))
        .unwrap();
        s.aim.admin.apply_policies(&apply).await.unwrap();
        // The heartbeat (each second) names the new version; the gateway reads it.
        let mut answer = (0, json!(null));
        let mut allowed = 1;
        for i in 0..300 {
            answer = read(&s, "/crm/records/1", &format!("after-{i}")).await;
            if answer.0 == 200 {
                allowed += 1;
            }
            if answer.0 == 403 {
                let d = decision(&s, &format!("after-{i}")).await;
                assert_eq!(d.detail["gateway"], "gw-1", "{d:?}");
                assert_eq!(d.detail["policy_version"].as_i64(), Some(first + 1));
                assert_eq!(d.trail.policies, ["no-crm-reads"]);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(answer.0, 403, "still allowed after 4 s: {}", answer.1);
        assert_eq!(s.seen().len(), allowed, "the denied read was not forwarded");
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn a_proof_is_spent_once_whichever_way_the_record_goes() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let journaled = tempfile::tempdir().unwrap();
        let journal = journal(journaled.path());
        for with in [BATCHED.to_owned(), format!("{BATCHED}{journal}")] {
            spent_once(backend, &with).await;
        }
    }
}

/// Each proof goes on once through `with`'s durable and batched routes.
async fn spent_once(backend: Backend, with: &str) {
    let s = Setup::start_with(backend, with).await;
    for (path, what) in [("/crm/records/7", "durable"), ("/crm/notes/7", "batched")] {
        let url = format!("{}{path}", s.gateway);
        let proof = s.agent.proof("GET", &url);
        let send = |id: &'static str| {
            s.agent
                .http
                .get(&url)
                .header("authorization", format!("DPoP {}", s.agent.token))
                .header("dpop", proof.clone())
                .header("x-request-id", id)
                .send()
        };
        let first = send("first").await.unwrap();
        assert_eq!(first.status(), 200, "{what}");
        let again = send("again").await.unwrap();
        assert_eq!(again.status(), 401, "{what}: a proof used twice");
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["code"], "dpop_replayed", "{what}: {body}");
    }
    assert_eq!(
        s.seen().len(),
        2,
        "only the first use of each proof went on"
    );
    s.aim.stop().await;
}

#[tokio::test]
async fn a_batched_route_forwards_at_once_and_its_decision_reaches_the_record() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start_with(backend, BATCHED).await;
        for i in 0..20 {
            let (status, body) = read(&s, &format!("/crm/notes/{i}"), &format!("note-{i}")).await;
            assert_eq!(status, 200, "{body}");
        }
        for i in 0..20 {
            let d = decision(&s, &format!("note-{i}")).await;
            assert_eq!(d.outcome.as_str(), "allow");
            assert_eq!(d.detail["gateway"], "gw-1");
            assert_eq!(d.target_id, format!("crm/notes/{i}"));
            assert_eq!(d.trail.task_id, s.agent.task);
        }
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn what_only_aim_can_answer_is_left_to_aim() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = Setup::start(backend).await;
        // A write may touch a record another agent leases: aim decides (here, it holds
        // the write for approval, which aim asks for).
        let (status, _, body) = s
            .agent
            .call(
                &s.gateway,
                "POST",
                "/crm/records/9",
                Some(json!({ "subject": "customer:9" })),
                &[("x-request-id", "write-9")],
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("approval_required"))
        );
        let d = decision(&s, "write-9").await;
        assert!(d.detail.get("gateway").is_none(), "aim decided: {d:?}");
        // A read is the gateway's.
        let (status, _) = read(&s, "/crm/records/9", "read-9").await;
        assert_eq!(status, 200);
        assert_eq!(decision(&s, "read-9").await.detail["gateway"], "gw-1");
        s.aim.stop().await;
    }
}

#[tokio::test]
async fn a_journaled_durable_call_is_decided_here_and_reaches_the_record_also_after_a_restart() {
    for backend in Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let journaled = tempfile::tempdir().unwrap();
        let s = Setup::start_with(backend, &journal(journaled.path())).await;
        // The record of this durable read waits for the gateway's disk, not for aim.
        let (status, body) = read(&s, "/crm/records/3", "journaled").await;
        assert_eq!(status, 200, "{body}");
        let d = decision(&s, "journaled").await;
        assert_eq!(d.detail["gateway"], "gw-1");
        assert_eq!(d.trail.task_id, s.agent.task);
        // It went to aim through the journal, which marks what aim has once aim answers.
        let mark = journaled.path().join("shipped");
        aim_testkit::eventually("a record goes through the journal", || async {
            mark.exists().then_some(())
        })
        .await;

        // An earlier run of another gateway journaled a decision and stopped before aim
        // had it: that gateway, started again on its journal, sends it first.
        let earlier = tempfile::tempdir().unwrap();
        let mut record = aim_api::gateway::GatewayRecord {
            event: d.clone(),
            claims: vec![],
        };
        record.event.request_id = "from-an-earlier-run".into();
        record.event.detail =
            json!({ "action": "read", "policy_version": d.detail["policy_version"] });
        {
            let journal = aim_gateway::journal::Journal::open(earlier.path()).unwrap();
            let journal = std::sync::Arc::new(journal);
            journal.append(&record).await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let spec = GatewaySpec {
            aim: s.aim.base.clone(),
            resource: s.gateway.clone(),
            upstream: s.upstream,
            extra: journal(earlier.path()),
        };
        start_gateway(&s.aim, "gw-2", listener, &spec, s.dir.path()).await;
        let shipped = decision(&s, "from-an-earlier-run").await;
        assert_eq!(shipped.detail["gateway"], "gw-2");
        assert_eq!(shipped.target_id, d.target_id);
        // Sent once: the journal knows aim has it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let copies = s.events("decision").await;
        let copies = copies
            .iter()
            .filter(|e| e.request_id == "from-an-earlier-run");
        assert_eq!(copies.count(), 1);
        s.aim.stop().await;
    }
}
