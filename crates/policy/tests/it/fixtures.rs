//! An insurance company's agents, people and records.

use std::collections::BTreeMap;

use aim_domain::human::{Human, NewHuman, Role};
use aim_domain::identity::{Autonomy, Identity, IdentityKind, IdentityRequest};
use aim_domain::ids::{HumanId, IdentityId, TaskId};
use aim_domain::lifecycle::LifecycleState;
use aim_domain::risk::{DataSensitivity, Level};
use aim_domain::task::{Task, TaskState};
use aim_domain::time::Timestamp;
use aim_policy::{Call, Compiled, Decision, Engine, Principal, Query, Source, Target};

pub fn now() -> Timestamp {
    Timestamp::parse("2026-11-23T10:30:00Z").unwrap()
}

pub fn human(name: &str) -> Human {
    NewHuman {
        user_name: name.into(),
        display_name: None,
        email: None,
        external_id: None,
        roles: vec![Role::Sponsor],
        groups: Vec::new(),
    }
    .into_human(HumanId::new(), now())
    .unwrap()
}

pub fn agent(name: &str, sponsor: &Human, team: &str, systems: &[&str]) -> Identity {
    let mut i = IdentityRequest {
        name: name.into(),
        kind: IdentityKind::AiAgent,
        autonomy: Autonomy::Autonomous,
        sponsor_id: sponsor.id,
        owner_team: Some(team.into()),
        purpose: "answers customers".into(),
        systems: systems.iter().map(|s| (*s).to_owned()).collect(),
        data_sensitivity: DataSensitivity::Confidential,
        criticality: Level::Low,
        impact: Level::Low,
        labels: BTreeMap::from([("env".into(), "prod".into())]),
        expires_at: now().plus_days(90),
    }
    .into_identity(
        IdentityId::new(),
        sponsor.id,
        now(),
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    i.state = LifecycleState::Active;
    i
}

pub fn task(identity: &Identity, systems: &[&str], subject: Option<&str>) -> Task {
    Task {
        id: TaskId::new(),
        identity_id: identity.id,
        purpose: "answer a claim question".into(),
        systems: systems.iter().map(|s| (*s).to_owned()).collect(),
        subject: subject.map(str::to_owned),
        triggered_by: "chat: session 7".into(),
        state: TaskState::Open,
        opened_at: now(),
        deadline: now().plus_millis(600_000),
        ended_at: None,
        end_reason: String::new(),
    }
}

/// A customer record in the CRM.
pub fn record(customer: &str) -> Target {
    Target {
        kind: "Resource".into(),
        id: format!("crm/customers/{customer}"),
        system: "crm".into(),
        attrs: serde_json::json!({
            "type": "customer_record",
            "sensitivity": "confidential",
            "subject": format!("customer:{customer}"),
        })
        .as_object()
        .unwrap()
        .clone(),
        tags: BTreeMap::new(),
    }
}

pub fn engine(policies: &str) -> Engine {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let compiled = compiled(&schema, policies);
    Engine::new(schema, compiled).unwrap()
}

pub fn compiled(schema: &cedar_policy::Schema, policies: &str) -> Compiled {
    aim_policy::compile(
        schema,
        &[Source {
            name: "test.cedar".into(),
            text: policies.into(),
        }],
        &[],
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
}

/// Decides for an identity (with its team as its only group) on a task, and checks that
/// the sliced and the full evaluation agree.
pub fn decide(
    e: &Engine,
    who: &Identity,
    action: &str,
    target: &Target,
    task: Option<&Task>,
) -> Decision {
    let call = Call::default();
    let q = Query {
        principal: Principal::Identity {
            identity: who,
            sponsor: None,
            groups: &[],
        },
        action,
        target,
        task,
        now: now(),
        call: &call,
    };
    let sliced = e.decide(&q).unwrap();
    assert_eq!(
        sliced,
        e.decide_full(&q).unwrap(),
        "slice and full set disagree"
    );
    sliced
}
