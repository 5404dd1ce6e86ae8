//! What an approval and a decision are bound to, against an agent that tries to stretch
//! them: an approval covers the whole action as the policies saw it and only the approvers
//! they named, and the caller's address is the one aim saw. Named after the attacks.

use super::*;

crate::api_tests!(
    approval_does_not_cover_the_record_described_otherwise,
    approval_does_not_cover_approvers_the_policies_added,
    agent_cannot_assert_its_own_address,
);

/// The agent's write of customer 42's record, with `attrs` overriding the record's, retrying
/// `approval` if given.
fn write(attrs: Value, approval: Option<&str>) -> Value {
    let mut resource = record("42");
    for (k, v) in attrs.as_object().unwrap() {
        resource["attrs"][k] = v.clone();
    }
    let mut b = json!({ "action": "write", "resource": resource, "call": { "args_hash": "h1" } });
    if let Some(a) = approval {
        b["approval_id"] = json!(a);
    }
    b
}

/// Asks for the write, has the sponsor approve it, and returns the approval id.
async fn approved(s: &TestServer, c: &Cast, me: &Caller) -> String {
    let (status, d) = me.ask(s, write(json!({}), None)).await;
    assert_eq!(
        (status, d["decision"].as_str()),
        (200, Some("approval_required")),
        "{d}"
    );
    let id = d["approval_id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        s,
        &format!("/v1/approvals/{id}/approve"),
        c.sponsor_client.token().unwrap(),
        &json!({ "reason": "refund checked" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    id
}

mod cases {
    use super::*;

    /// The sponsor approved a write to a confidential record; the agent retries with the
    /// record described as public (which a policy might treat more kindly). The approval
    /// does not cover it, and is still there for the action it was given for.
    pub async fn approval_does_not_cover_the_record_described_otherwise(s: &TestServer) {
        let c = cast(s).await;
        apply(s, REFUNDS).await;
        let me = Caller::new(s, &c, "agt-bind-attrs").await;
        let id = approved(s, &c, &me).await;

        let (_, d) = me
            .ask(s, write(json!({ "sensitivity": "public" }), Some(&id)))
            .await;
        assert_eq!(
            (d["decision"].as_str(), d["code"].as_str()),
            (Some("deny"), Some("approval_mismatch")),
            "{d}"
        );
        // A new ask for the record described otherwise is a new approval, not this one.
        let (_, d) = me
            .ask(s, write(json!({ "sensitivity": "public" }), None))
            .await;
        assert_ne!(d["approval_id"].as_str(), Some(id.as_str()), "{d}");
        // The same attributes in another order are the same record.
        let mut reordered = write(json!({}), Some(&id));
        let attrs = reordered["resource"]["attrs"].as_object().unwrap().clone();
        let backwards: serde_json::Map<String, Value> = attrs.into_iter().rev().collect();
        reordered["resource"]["attrs"] = Value::Object(backwards);
        let (_, d) = me.ask(s, reordered).await;
        assert_eq!(d["decision"], "allow", "{d}");
    }

    /// The sponsor approved; then the policies were changed to also ask finance. The old
    /// approval no longer suffices.
    pub async fn approval_does_not_cover_approvers_the_policies_added(s: &TestServer) {
        let c = cast(s).await;
        apply(s, SPONSOR_ONLY).await;
        let me = Caller::new(s, &c, "agt-bind-approvers").await;
        let id = approved(s, &c, &me).await;
        apply(s, REFUNDS).await;
        let (_, d) = me.ask(s, write(json!({}), Some(&id))).await;
        assert_eq!(
            (d["decision"].as_str(), d["code"].as_str()),
            (Some("deny"), Some("approval_mismatch")),
            "{d}"
        );
        assert!(
            d["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains("group:finance-approvers")),
            "{d}"
        );
    }

    /// A policy allows writes only from the office network; the agent, calling from
    /// elsewhere, says it is in the office. The decision sees where it really is.
    pub async fn agent_cannot_assert_its_own_address(s: &TestServer) {
        let c = cast(s).await;
        apply(s, OFFICE_ONLY).await;
        let me = Caller::new(s, &c, "agt-bind-ip").await;
        let ask =
            |ip: &str| json!({ "action": "read", "resource": record("42"), "call": { "ip": ip } });
        let (_, d) = me.ask(s, ask("10.1.2.3")).await;
        assert_eq!(d["decision"], "deny", "the office address it claimed: {d}");
        let (_, d) = me
            .ask(s, json!({ "action": "read", "resource": record("42") }))
            .await;
        assert_eq!(d["decision"], "deny", "{d}");
        // The record shows where the call came from.
        let decisions = actions(s, "decision").await;
        assert!(
            decisions.iter().all(|e| e.source == "127.0.0.1"),
            "{decisions:?}"
        );
    }
}

const SPONSOR_ONLY: &str = r#"@id("claims-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("refunds") @approval("sponsor")
permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource is Aim::Resource);
"#;

/// Reads only from the office (10.1.2.3); the tests run on loopback.
const OFFICE_ONLY: &str = r#"@id("office-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource)
  when { context.call has ip && context.call.ip == "10.1.2.3" };
"#;
