//! Sliced evaluation decides exactly as the whole set: random policy sets, random requests.

use std::sync::LazyLock;

use aim_domain::human::Human;
use aim_domain::identity::Identity;
use aim_policy::{Call, Engine, Principal, Query, Source, Target};
use proptest::prelude::*;

use crate::fixtures::*;

struct World {
    humans: Vec<Human>,
    agents: Vec<Identity>,
    targets: Vec<Target>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let humans = vec![human("alice"), human("bob")];
    let agents = vec![
        agent("agt-one", &humans[0], "claims", &["crm", "billing"]),
        agent("agt-two", &humans[0], "sales", &["crm"]),
        agent("agt-three", &humans[1], "claims", &["billing"]),
    ];
    let mut targets = vec![record("1"), record("2")];
    let mut invoice = record("1");
    invoice.system = "billing".into();
    invoice.id = "billing/invoices/1".into();
    targets.push(invoice);
    targets.push(Target {
        kind: "Tool".into(),
        id: "crm/search".into(),
        system: "crm".into(),
        attrs: serde_json::json!({ "name": "search" })
            .as_object()
            .unwrap()
            .clone(),
        tags: Default::default(),
    });
    targets.push(Target {
        kind: "System".into(),
        id: "billing".into(),
        system: "billing".into(),
        ..Target::default()
    });
    World {
        humans,
        agents,
        targets,
    }
});

const GROUPS: [&str; 3] = ["claims", "sales", "auditors"];
const ACTIONS: [&str; 5] = ["read", "write", "delete", "call_tool", "admin"];

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..3usize).prop_map(|i| format!("principal == Aim::Identity::\"{}\"", WORLD.agents[i].id)),
        (0..2usize).prop_map(|i| format!("principal == Aim::Human::\"{}\"", WORLD.humans[i].id)),
        (0..3usize).prop_map(|g| format!("principal in Aim::Group::\"{}\"", GROUPS[g])),
        Just("principal is Aim::Identity".to_owned()),
        Just("principal is Aim::Human".to_owned()),
        (0..3usize).prop_map(|g| format!(
            "principal is Aim::Identity in Aim::Group::\"{}\"",
            GROUPS[g]
        )),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        (0..5usize).prop_map(|a| format!("action == Aim::Action::\"{}\"", ACTIONS[a])),
        (0..5usize, 0..5usize).prop_map(|(a, b)| format!(
            "action in [Aim::Action::\"{}\", Aim::Action::\"{}\"]",
            ACTIONS[a], ACTIONS[b]
        )),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        Just("resource == Aim::Resource::\"crm/customers/1\"".to_owned()),
        Just("resource == Aim::System::\"billing\"".to_owned()),
        prop_oneof![Just("crm"), Just("billing")]
            .prop_map(|s| format!("resource in Aim::System::\"{s}\"")),
        Just("resource is Aim::Resource".to_owned()),
        Just("resource is Aim::Tool".to_owned()),
        Just("resource is Aim::Resource in Aim::System::\"crm\"".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (6..14i64).prop_map(|h| format!(" when {{ context.hour < {h} }}")),
        Just(" when { context has task }".to_owned()),
        // Errors at run time: the slice must report the same errors as the whole set.
        Just(" when { context.hour * 9223372036854775807 > 1 }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("permit"), Just("forbid")],
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
        prop::option::of(prop_oneof![Just("sponsor"), Just("group:finance")]),
    )
        .prop_map(|(effect, p, a, r, when, approval)| {
            let note = approval.map_or(String::new(), |a| format!("@approval(\"{a}\") "));
            format!("{note}{effect}({p}, {a}, {r}){when};")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_slice_decides_as_the_whole_set(
        policies in prop::collection::vec(policy(), 0..40),
        requests in prop::collection::vec((0..5usize, 0..5usize, 0..5usize, 0..4usize, 0..24i64, any::<bool>()), 1..12),
    ) {
        let schema = aim_policy::schema::load(&[]).unwrap();
        let compiled = aim_policy::compile(
            &schema,
            &[Source { name: "random.cedar".into(), text: policies.join("\n") }],
            &[],
        ).unwrap_or_else(|p| panic!("{p:?}\n{}", policies.join("\n")));
        let e = Engine::new(schema, compiled).unwrap();
        let call = Call::default();
        for (who, action, target, groups, hour, with_task) in requests {
            let groups: Vec<String> = GROUPS[..groups.min(3)].iter().map(|g| (*g).to_owned()).collect();
            let principal = if who < 3 {
                Principal::Identity { identity: &WORLD.agents[who], sponsor: None, groups: &groups }
            } else {
                Principal::Human { human: &WORLD.humans[who - 3], groups: &groups }
            };
            let target = &WORLD.targets[target];
            let task = task(&WORLD.agents[0], &["crm", "billing"], None);
            let q = Query {
                principal,
                action: ACTIONS[action],
                target,
                task: with_task.then_some(&task),
                now: now().plus_millis((hour - 10) * 3_600_000),
                call: &call,
            };
            prop_assert_eq!(e.decide(&q).unwrap(), e.decide_full(&q).unwrap(), "{:?}", policies);
        }
    }
}
