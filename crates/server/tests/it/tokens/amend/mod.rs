//! What decisions do beyond policies, over HTTP: human approval of one exact action (with
//! its signed webhook) in `approvals`; leases against conflicting writes, grants and
//! just-in-time elevation that expire by themselves, in `leases_grants`. Shared here: the
//! policies, the record, and an agent calling with its token and fresh proofs.

pub(crate) mod approvals;
mod binding;
mod lease_limits;
mod leases_grants;
mod objects;

use super::*;

const REFUNDS: &str = r#"@id("claims-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
@id("refunds") @approval("sponsor, group:finance-approvers")
permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource is Aim::Resource);
"#;

const WRITERS: &str = r#"@id("claims-rw")
permit(principal in Aim::Group::"claims", action in [Aim::Action::"read", Aim::Action::"write"], resource is Aim::Resource);
"#;

pub(crate) const WEBHOOK_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn record(customer: &str) -> Value {
    json!({
        "type": "Resource",
        "id": format!("crm/customers/{customer}"),
        "system": "crm",
        "attrs": { "type": "customer_record", "sensitivity": "confidential", "subject": format!("customer:{customer}") },
    })
}

/// An agent asks for a write the policies hold for approval (the webhook announces it).
pub(crate) async fn ask_for_an_approval(s: &TestServer) {
    let c = cast(s).await;
    apply(s, REFUNDS).await;
    let me = Caller::new(s, &c, "agt-asks-approval").await;
    let (status, d) = me
        .ask(s, json!({ "action": "write", "resource": record("42") }))
        .await;
    assert_eq!(
        (status, d["decision"].as_str()),
        (200, Some("approval_required")),
        "{d}"
    );
}

/// A lease request for `resource` (as `/v1/authorize` names it), with its attributes.
fn lease_of(resource: &Value) -> Value {
    json!({
        "record": { "system": resource["system"], "type": resource["type"], "id": resource["id"] },
        "attrs": resource["attrs"],
    })
}

/// An agent with an open task, calling aim with its token and a fresh proof each time.
struct Caller {
    agent: Agent,
    token: String,
    task: String,
}

impl Caller {
    async fn new(s: &TestServer, c: &Cast, name: &str) -> Caller {
        let agent = Agent::new(s, c, name, "EdDSA").await;
        let r = agent.open_task(s).await.unwrap();
        Caller {
            token: r["access_token"].as_str().unwrap().to_owned(),
            task: r["task_id"].as_str().unwrap().to_owned(),
            agent,
        }
    }

    async fn call(&self, s: &TestServer, method: &str, path: &str, body: &Value) -> (u16, Value) {
        agent_json(s, &self.agent.key, &self.token, method, path, body).await
    }

    async fn ask(&self, s: &TestServer, body: Value) -> (u16, Value) {
        self.call(s, "POST", "/v1/authorize", &body).await
    }
}
