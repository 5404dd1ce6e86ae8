//! Behavioural baselines behind a gateway that decides by itself: its records reach aim,
//! which holds each call against the agent's baseline; the line agent's first read of
//! payroll locks it, the lock reaches the gateway before aim answers, and the agent's
//! next call there is refused.

use aim_domain::Clock;
use aim_domain::identity::Autonomy;
use aim_domain::risk::Level;
use aim_testkit::Backend;
use aim_token::client::ClientKey;

use crate::harness::{Setup, agent_with_task};

/// The payroll system, behind the same gateway.
const PAYROLL: &str = r#"
[[routes]]
upstream = "crm"
method = "GET"
path = "/payroll/{id}"
action = "read"
resource = { system = "hr-payroll", id = "hr-payroll/{id}", attrs = { type = "salary", sensitivity = "restricted" } }
"#;

#[tokio::test]
async fn a_lock_for_a_payroll_read_decided_in_the_gateway_reaches_it_at_once() {
    for backend in Backend::enabled() {
        let s = Setup::start_with(backend, PAYROLL).await;
        // A high-risk autonomous agent on the crm, as the line agent on its systems.
        let sponsor = s.aim.admin.find_human("sam").await.unwrap();
        let mut req = aim_testkit::fixtures::low_risk_request(
            "agt-line-gw",
            sponsor.id,
            s.aim.clock.now().plus_days(30),
        );
        req.autonomy = Autonomy::Autonomous;
        req.criticality = Level::High;
        let identity = s.sponsor.request_identity(&req).await.unwrap();
        let identity = s
            .aim
            .admin
            .identity_action(identity.id, "approve", "ok")
            .await
            .unwrap();
        let key = ClientKey::generate("EdDSA").unwrap();
        s.sponsor
            .add_agent_key(identity.id, &key.public().to_json(), "line key")
            .await
            .unwrap();
        let agent = agent_with_task(&s.aim, identity, key, Some(&s.gateway)).await;

        for id in 1..=3 {
            let (status, _, body) = agent
                .call(&s.gateway, "GET", &format!("/crm/records/{id}"), None, &[])
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let before = s.seen().len();
        let (status, _, body) = agent
            .call(&s.gateway, "GET", "/payroll/salaries", None, &[])
            .await;
        assert_eq!(status, 403, "{body}");
        let locked = s.aim.admin.identity(agent.identity.id).await.unwrap();
        assert_eq!(
            (locked.state.as_str(), locked.state_cause.as_str()),
            ("locked", "behaviour")
        );
        // The next call through the gateway, an ordinary one, is refused there.
        let (status, _, body) = agent
            .call(&s.gateway, "GET", "/crm/records/1", None, &[])
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("token_revoked")),
            "{body}"
        );
        assert_eq!(s.seen().len(), before, "nothing more reached the upstream");

        // The record says the gateway decided, and what the baseline made of it.
        let decisions = s.events("decision").await;
        let payroll = decisions
            .iter()
            .find(|e| e.target_id == "hr-payroll/salaries")
            .unwrap();
        assert!(payroll.detail["gateway"].is_string(), "{}", payroll.detail);
        assert_eq!(payroll.detail["behaviour"]["response"], "lock");
        assert_eq!(payroll.detail["behaviour"]["because"], "new_system");
        let finding = s.events("anomaly.detected").await.pop().unwrap();
        assert_eq!(finding.detail["forwarded"], true);
        assert!(
            finding.reason.starts_with("first access to system `hr-payroll`, not among its registered systems; baseline systems: `crm`"),
            "{}",
            finding.reason
        );
        s.aim.stop().await;
    }
}
