use std::collections::BTreeMap;

use aim_domain::event::{Actor, Event};
use aim_domain::governance::GovernanceConfig;
use aim_domain::human::{Human, NewHuman, Role};
use aim_domain::identity::{Identity, IdentityRequest};
use aim_domain::ids::{HumanId, IdentityId};
use aim_domain::naming::NamingPolicy;
use aim_domain::time::Timestamp;

pub fn t0() -> Timestamp {
    Timestamp::parse("2026-06-01T00:00:00Z").unwrap()
}

pub fn human(user: &str) -> Human {
    NewHuman {
        user_name: user.into(),
        display_name: Some(user.to_uppercase()),
        email: None,
        external_id: Some(format!("ext-{user}")),
        roles: vec![Role::Sponsor],
        groups: Vec::new(),
    }
    .into_human(HumanId::new(), t0())
    .unwrap()
}

pub fn identity(name: &str, sponsor: HumanId) -> Identity {
    IdentityRequest {
        labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
        ..aim_testkit::fixtures::low_risk_request(name, sponsor, t0().plus_days(100))
    }
    .into_identity(
        IdentityId::new(),
        sponsor,
        t0(),
        &NamingPolicy::default(),
        &GovernanceConfig::default(),
    )
    .unwrap()
}

pub fn event(action: &str, target: impl ToString) -> Event {
    Event::new(
        t0(),
        Actor::system("test"),
        aim_domain::event::AuditAction::parse(action).unwrap(),
        "test",
        target,
    )
}
