//! Behavioural baselines on the decision path: an agent that steps out of character is
//! stepped up to its sponsor or locked within the same request, with the finding on the
//! record and the explanation naming what was unusual against which baseline.

use std::net::IpAddr;

use aim_domain::identity::Autonomy;
use aim_domain::risk::Level;

use super::*;

mod backtest;

/// Runs one case on every backend, against a server whose identities finish learning
/// after 30 calls (and no days), so a test can reach the enforced baseline quickly.
macro_rules! behaviour_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for backend in aim_testkit::Backend::enabled() {
                eprintln!("backend: {backend:?}");
                let server = TestServer::start_with(backend, |c| {
                    c.behaviour.learning_days = 0;
                    c.behaviour.learning_events = 30;
                })
                .await;
                cases::$name(&server).await;
                server.stop().await;
            }
        }
    )*};
}

behaviour_tests!(
    a_rate_spike_is_stepped_up_to_the_sponsor,
    probing_with_denied_requests_locks_a_high_risk_agent,
    a_new_key_from_a_new_network_is_stepped_up,
);

/// The seed case, with the decisions webhook its sponsor hears the lock on.
#[tokio::test]
async fn the_line_agent_is_locked_by_its_first_read_of_payroll() {
    use super::amend::approvals::{receiver, verify};
    use base64::Engine;
    for backend in aim_testkit::Backend::enabled() {
        let (url, got) = receiver().await;
        let s = TestServer::start_with(backend, |c| {
            c.approvals.webhook_url = Some(url);
            let key = base64::engine::general_purpose::STANDARD.encode(super::amend::WEBHOOK_KEY);
            c.approvals.webhook_secret = Some(format!("whsec_{key}"));
        })
        .await;
        cases::the_line_agent_is_locked_by_its_first_read_of_payroll(&s).await;
        // The sponsor is told, signed, with the explanation.
        let (headers, body) = aim_testkit::eventually("the sponsor's webhook", || async {
            got.lock()
                .unwrap()
                .iter()
                .find(|(_, b)| b.contains("anomaly.detected"))
                .cloned()
        })
        .await;
        verify(&headers, &body);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "anomaly.detected");
        let d = &v["data"];
        assert_eq!(
            (
                d["response"].as_str(),
                d["identity_name"].as_str(),
                d["sponsor"]["user_name"].as_str()
            ),
            (Some("lock"), Some("agt-line-3"), Some("sam")),
            "{d}"
        );
        assert!(
            d["explanation"].as_str().unwrap().contains("hr-payroll"),
            "{d}"
        );
        s.stop().await;
    }
}

/// Everything the task allows; the task allows only what the identity is registered for.
const PERMIT_ALL: &str = "permit(principal, action, resource);";

/// The line agent of the seed case: autonomous, registered for sensors and the
/// maintenance log, and high-risk (its criticality is high).
async fn line_agent(s: &TestServer, c: &Cast, name: &str, criticality: Level) -> Agent {
    let mut req = crate::fixtures::request(s, name, c.sponsor.id);
    req.systems = vec!["sensors".into(), "maintenance-log".into()];
    req.autonomy = Autonomy::Autonomous;
    req.criticality = criticality;
    let i = c.sponsor_client.request_identity(&req).await.unwrap();
    let identity = c
        .approver_client
        .identity_action(i.id, "approve", "ok")
        .await
        .unwrap();
    Agent::for_identity(s, c, identity, "EdDSA").await
}

fn target(system: &str, id: &str, sensitivity: &str) -> Value {
    json!({
        "type": "Resource",
        "id": format!("{system}/{id}"),
        "system": system,
        "attrs": { "type": "table", "sensitivity": sensitivity },
    })
}

/// A call to `/v1/authorize` with `token` and a fresh proof by `key`, from `from`.
async fn ask(
    s: &TestServer,
    key: &ClientKey,
    token: &str,
    body: &Value,
    from: Option<IpAddr>,
) -> (u16, Value) {
    agent_json_from(s, key, token, ("POST", "/v1/authorize"), body, from).await
}

/// A task on the agent's two systems and its token.
async fn task(s: &TestServer, agent: &Agent) -> (String, String) {
    let r = agent
        .open_task_on(s, &["sensors", "maintenance-log"])
        .await
        .unwrap();
    (
        r["access_token"].as_str().unwrap().to_owned(),
        r["task_id"].as_str().unwrap().to_owned(),
    )
}

/// `n` ordinary calls, one every 30 seconds: sensor reads and log writes. Returns a
/// token still fresh.
async fn ordinary(s: &TestServer, agent: &Agent, task: &str, n: usize) -> String {
    let mut token = String::new();
    for i in 0..n {
        if i % 8 == 0 {
            let r = agent.continue_task(s, task).await.unwrap();
            token = r["access_token"].as_str().unwrap().to_owned();
        }
        let (action, t) = if i % 3 == 2 {
            ("write", target("maintenance-log", "entries", "internal"))
        } else {
            (
                "read",
                target("sensors", &format!("line-{}", i % 5), "internal"),
            )
        };
        let (status, d) = ask(
            s,
            &agent.key,
            &token,
            &json!({ "action": action, "resource": t }),
            None,
        )
        .await;
        assert_eq!(
            (status, d["decision"].as_str()),
            (200, Some("allow")),
            "call {i}: {d}"
        );
        s.clock.advance_millis(30_000);
    }
    let r = agent.continue_task(s, task).await.unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

async fn identity_state(s: &TestServer, agent: &Agent) -> (String, String) {
    let i = s.admin.identity(agent.identity.id).await.unwrap();
    (
        i.state.as_str().to_owned(),
        i.state_cause.as_str().to_owned(),
    )
}

/// The findings on the record about `agent`, oldest first.
async fn findings(s: &TestServer, agent: &Agent) -> Vec<aim_domain::event::Event> {
    actions(s, "anomaly.detected")
        .await
        .into_iter()
        .filter(|e| e.target_id == agent.identity.id.to_string())
        .collect()
}

mod cases {
    use super::*;

    pub async fn the_line_agent_is_locked_by_its_first_read_of_payroll(s: &TestServer) {
        let c = cast(s).await;
        apply(s, PERMIT_ALL).await;
        let agent = line_agent(s, &c, "agt-line-3", Level::High).await;
        let (_, task) = task(s, &agent).await;
        // Still learning after a dozen calls: only its registration is enforced, and
        // payroll is not among its registered systems.
        let token = ordinary(s, &agent, &task, 12).await;
        let payroll = target("hr-payroll", "salaries", "restricted");
        // An admin asking about it teaches and locks nothing.
        let about = json!({ "action": "read", "resource": payroll.clone(), "principal": { "identity": agent.identity.id } });
        let (status, d) = post(s, "/v1/authorize", &s.admin_token, &about).await;
        assert_eq!((status, d["code"].as_str()), (200, None), "{d}");
        assert_eq!(identity_state(s, &agent).await.0, "active");
        let (status, d) = ask(
            s,
            &agent.key,
            &token,
            &json!({ "action": "read", "resource": payroll }),
            None,
        )
        .await;
        assert_eq!(
            (status, d["decision"].as_str(), d["code"].as_str()),
            (200, Some("deny"), Some("behaviour_locked")),
            "{d}"
        );
        assert!(
            d["policies"]
                .as_array()
                .unwrap()
                .contains(&json!("behaviour/new_system")),
            "{d}"
        );
        assert_eq!(
            identity_state(s, &agent).await,
            ("locked".into(), "behaviour".into())
        );
        // Its next call, even an ordinary one, is refused: its tokens died with the lock.
        let (status, d) = ask(
            s,
            &agent.key,
            &token,
            &json!({ "action": "read", "resource": target("sensors", "line-1", "internal") }),
            None,
        )
        .await;
        assert_eq!(status, 401, "{d}");
        assert!(agent.continue_task(s, &task).await.is_err());

        // The finding explains itself, linked to the decision's task and token.
        // Its first write to the maintenance log, a registered system, was a finding
        // only observed (and learnt); payroll is the one that locked it.
        let found = findings(s, &agent).await;
        let responses: Vec<&str> = found
            .iter()
            .map(|f| f.detail["response"].as_str().unwrap())
            .collect();
        assert_eq!(responses, ["observe", "lock"], "{found:?}");
        assert!(
            found[0]
                .reason
                .starts_with("first access to system `maintenance-log`;")
        );
        let f = &found[1];
        assert!(
            f.reason.starts_with(
                "first access to system `hr-payroll`, not among its registered systems; baseline systems: `sensors`, `maintenance-log` over 12 events in 0 days"
            ),
            "{}",
            f.reason
        );
        assert_eq!(f.trail.task_id, task);
        let decision = actions(s, "decision").await.pop().unwrap();
        assert_eq!(decision.detail["behaviour"]["because"], "new_system");
        assert_eq!(decision.detail["behaviour"]["learning"], true);
        assert_eq!(decision.detail["behaviour"]["n"], 12);
        let locked = actions(s, "identity.locked").await;
        assert_eq!(locked.len(), 1);
        assert_eq!(locked[0].actor.id, "behaviour");
        assert!(
            locked[0].reason.contains("hr-payroll"),
            "{}",
            locked[0].reason
        );

        // Why: the state, the baseline, the finding and the lock, for its sponsor too.
        let path = format!("/v1/identities/{}/why", agent.identity.id);
        let sponsor = c.sponsor_client.token().unwrap().to_owned();
        let (status, why) = get_as(s, &path, &sponsor).await;
        assert_eq!(status, 200, "{why}");
        assert_eq!(
            (why["state"].as_str(), why["state_cause"].as_str()),
            (Some("locked"), Some("behaviour"))
        );
        assert_eq!(why["baseline"]["events"], 13);
        assert_eq!(
            why["baseline"]["systems"],
            json!(["sensors", "maintenance-log"])
        );
        let kinds: Vec<&str> = why["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["anomaly.detected", "identity.locked", "anomaly.detected"],
            "{why}"
        );
        let other = c.approver_client.token().unwrap().to_owned();
        assert_eq!(get_as(s, &path, &other).await.0, 403);

        // The replay of the record agrees with every verdict given live.
        let (_, report) = post(s, "/v1/behaviour/backtest", &s.admin_token, &json!({})).await;
        assert_eq!(
            (
                report["replayed"].as_u64(),
                report["matched"].as_u64(),
                report["locked"].as_u64(),
                report["would_lock"].as_u64()
            ),
            (Some(13), Some(13), Some(1), Some(1)),
            "{report}"
        );
    }

    pub async fn a_rate_spike_is_stepped_up_to_the_sponsor(s: &TestServer) {
        let c = cast(s).await;
        apply(s, PERMIT_ALL).await;
        // Medium risk: a medium-severity finding is stepped up, not locked.
        let agent = line_agent(s, &c, "agt-line-4", Level::Medium).await;
        let (_, task) = task(s, &agent).await;
        let token = ordinary(s, &agent, &task, 40).await;
        // Two calls a minute so far; now thirty in one minute.
        let mut stepped = None;
        for i in 0..30 {
            let body = json!({ "action": "read", "resource": target("sensors", &format!("line-{}", i % 5), "internal") });
            let (status, d) = ask(s, &agent.key, &token, &body, None).await;
            assert_eq!(status, 200, "{d}");
            if d["decision"] == "approval_required" {
                stepped = Some((i, d));
                break;
            }
            assert_eq!(d["decision"], "allow", "call {i}: {d}");
        }
        let (i, d) = stepped.expect("the spike was stepped up");
        assert!(
            i >= 19,
            "stepped up at call {i} of the spike, below the floor"
        );
        assert_eq!(
            (d["code"].as_str(), d["approvers"][0].as_str()),
            (Some("behaviour_step_up"), Some("sponsor")),
            "{d}"
        );
        assert!(d["approval_id"].is_string(), "{d}");
        assert_eq!(identity_state(s, &agent).await.0, "active");
        let found = findings(s, &agent).await;
        assert_eq!(found.last().unwrap().detail["response"], "step_up");
        assert!(
            found.last().unwrap().reason.contains("calls in one minute"),
            "{}",
            found.last().unwrap().reason
        );
        // The sponsor's approval lets the very call through once.
        let approval = d["approval_id"].as_str().unwrap();
        c.sponsor_client
            .decide_approval(approval.parse().unwrap(), "approve", "batch job, expected")
            .await
            .unwrap();
        let body = json!({ "action": "read", "resource": target("sensors", &format!("line-{}", i % 5), "internal"), "approval_id": approval });
        let (_, d) = ask(s, &agent.key, &token, &body, None).await;
        assert_eq!(d["decision"], "allow", "{d}");
    }

    pub async fn probing_with_denied_requests_locks_a_high_risk_agent(s: &TestServer) {
        let c = cast(s).await;
        apply(
            s,
            r#"permit(principal, action == Aim::Action::"read", resource);
permit(principal, action == Aim::Action::"write", resource);"#,
        )
        .await;
        let agent = line_agent(s, &c, "agt-line-5", Level::High).await;
        let (_, task) = task(s, &agent).await;
        let token = ordinary(s, &agent, &task, 40).await;
        // Deleting what it may only read, record after record: denied each time.
        let mut locked_at = None;
        for i in 0..30 {
            let body = json!({ "action": "delete", "resource": target("sensors", &format!("line-{i}"), "internal") });
            let (status, d) = ask(s, &agent.key, &token, &body, None).await;
            if status == 401 {
                locked_at = Some(i);
                break;
            }
            assert_eq!((status, d["decision"].as_str()), (200, Some("deny")), "{d}");
            if d["code"] == "behaviour_locked" {
                assert!(
                    d["policies"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("behaviour/denial_burst")),
                    "{d}"
                );
            }
        }
        let at = locked_at.expect("the probing was locked");
        assert!(at >= 10, "locked after {at} denials, below the floor");
        assert_eq!(
            identity_state(s, &agent).await,
            ("locked".into(), "behaviour".into())
        );
        let found = findings(s, &agent).await;
        let last = found.last().unwrap();
        assert_eq!(
            (
                last.detail["response"].as_str(),
                last.detail["anomalies"][0]["detector"].as_str()
            ),
            (Some("lock"), Some("denial_burst")),
            "{:?}",
            last.detail
        );
    }

    pub async fn a_new_key_from_a_new_network_is_stepped_up(s: &TestServer) {
        let c = cast(s).await;
        apply(s, PERMIT_ALL).await;
        let agent = line_agent(s, &c, "agt-line-6", Level::Medium).await;
        let (_, task) = task(s, &agent).await;
        ordinary(s, &agent, &task, 40).await;
        // A second key, registered by its sponsor, used from another network.
        let other = Agent {
            identity: agent.identity.clone(),
            key: ClientKey::generate("EdDSA").unwrap(),
            http: s.client(None),
            endpoint: agent.endpoint.clone(),
            clock: s.clock.clone(),
        };
        c.sponsor_client
            .add_agent_key(
                agent.identity.id,
                &other.key.public().to_json(),
                "second key",
            )
            .await
            .unwrap();
        let r = other.continue_task(s, &task).await.unwrap();
        let token = r["access_token"].as_str().unwrap();
        let body = json!({ "action": "read", "resource": target("sensors", "line-1", "internal") });
        let elsewhere: IpAddr = "127.0.9.1".parse().unwrap();
        let (status, d) = ask(s, &other.key, token, &body, Some(elsewhere)).await;
        assert_eq!(
            (status, d["decision"].as_str(), d["code"].as_str()),
            (200, Some("approval_required"), Some("behaviour_step_up")),
            "{d}"
        );
        let found = findings(s, &agent).await;
        let detectors: Vec<&str> = found.last().unwrap().detail["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["detector"].as_str().unwrap())
            .collect();
        assert!(detectors.contains(&"new_key"), "{detectors:?}");
        assert!(detectors.contains(&"new_network"), "{detectors:?}");
        assert!(
            found.last().unwrap().detail["anomalies"]
                .to_string()
                .contains("127.0.9.0/24"),
            "{:?}",
            found.last().unwrap().detail
        );
        assert_eq!(identity_state(s, &agent).await.0, "active");

        // An admin says it was expected (a reason is required): the same call now passes.
        let path = format!("/v1/identities/{}/behaviour/expected", agent.identity.id);
        let seq = found.last().unwrap().seq;
        let (status, e) = post(
            s,
            &path,
            &s.admin_token,
            &json!({ "finding": seq, "reason": "" }),
        )
        .await;
        assert_eq!((status, e["code"].as_str()), (422, Some("reason_required")));
        let (status, e) = post(
            s,
            &path,
            &s.admin_token,
            &json!({ "finding": seq - 1, "reason": "x" }),
        )
        .await;
        assert_eq!(
            (status, e["code"].as_str()),
            (404, Some("not_found")),
            "{e}"
        );
        let sponsor = c.sponsor_client.token().unwrap().to_owned();
        assert_eq!(
            post(
                s,
                &path,
                &sponsor,
                &json!({ "finding": seq, "reason": "x" })
            )
            .await
            .0,
            403
        );
        let (status, e) = post(
            s,
            &path,
            &s.admin_token,
            &json!({ "finding": seq, "reason": "moved to the new plant network" }),
        )
        .await;
        assert_eq!(status, 200, "{e}");
        let (_, d) = ask(s, &other.key, token, &body, Some(elsewhere)).await;
        assert_eq!(d["decision"], "allow", "{d}");
        let marked = actions(s, "anomaly.expected").await;
        assert_eq!(
            (marked.len(), marked[0].reason.as_str()),
            (1, "moved to the new plant network")
        );
    }
}
