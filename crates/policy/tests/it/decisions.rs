//! Decisions: default deny, forbid over permit, aim's scoping rules, approvals, fail closed.

use aim_policy::decide::{NOT_ACTIVE, SCOPE_OF_THOUGHT, TASK_SCOPE};
use aim_policy::{Call, Effect, Principal, Query, QueryError, Source};

use crate::fixtures::*;

const TEAM_READS: &str = r#"
@id("claims-read")
permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource is Aim::Resource);
"#;

#[test]
fn nothing_is_allowed_without_a_policy() {
    let e = engine("");
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!(d.decision, Effect::Deny);
    assert!(d.policies.is_empty());
    assert_eq!(d.reasons, ["no policy permits this (default deny)"]);
}

#[test]
fn a_permit_allows_and_names_itself() {
    let e = engine(TEAM_READS);
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!(d.decision, Effect::Allow, "{d:?}");
    assert_eq!(d.policies, ["claims-read"]);
    // Another team's agent is not in the group.
    let other = agent("agt-sales", &alice, "sales", &["crm"]);
    assert_eq!(
        decide(&e, &other, "read", &record("42"), None).decision,
        Effect::Deny
    );
    // Nor does reading permit writing.
    assert_eq!(
        decide(&e, &bot, "write", &record("42"), None).decision,
        Effect::Deny
    );
}

#[test]
fn forbid_overrides_permit() {
    let e = engine(&format!(
        r#"{TEAM_READS}
        @id("no-restricted")
        @reason("restricted records are read by people only")
        forbid(principal is Aim::Identity, action, resource is Aim::Resource)
          when {{ resource.sensitivity == "restricted" }};"#
    ));
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let mut secret = record("42");
    secret
        .attrs
        .insert("sensitivity".into(), "restricted".into());
    let d = decide(&e, &bot, "read", &secret, None);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.policies, ["no-restricted"]);
    assert_eq!(d.reasons, ["restricted records are read by people only"]);
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Allow
    );
}

#[test]
fn a_task_reaches_only_its_own_systems_whatever_is_granted() {
    let e = engine("permit(principal, action, resource);");
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm", "billing"]);
    let t = task(&bot, &["crm"], None);
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), Some(&t)).decision,
        Effect::Allow
    );
    let mut invoice = record("42");
    invoice.system = "billing".into();
    invoice.id = "billing/invoices/9".into();
    let d = decide(&e, &bot, "read", &invoice, Some(&t));
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.policies, [TASK_SCOPE]);
    assert!(d.reasons[0].contains("billing"), "{d:?}");
}

/// The insurance chatbot: once the caller is authenticated as customer 42, the agent's task
/// is bound to customer 42, and reading anyone else's personal data is denied even though
/// its team may read every customer record.
#[test]
fn scope_of_thought_keeps_a_task_to_its_customer() {
    let e = engine(TEAM_READS);
    let alice = human("alice");
    let chatbot = agent("agt-chatbot", &alice, "claims", &["crm"]);
    let t = task(&chatbot, &["crm"], Some("customer:42"));
    let own = decide(&e, &chatbot, "read", &record("42"), Some(&t));
    assert_eq!(own.decision, Effect::Allow, "{own:?}");
    let other = decide(&e, &chatbot, "read", &record("43"), Some(&t));
    assert_eq!(other.decision, Effect::Deny);
    assert_eq!(other.policies, [SCOPE_OF_THOUGHT]);
    assert_eq!(
        other.reasons,
        ["the task is bound to customer:42; this is customer:43's data"]
    );
    // Before authentication the task has no subject: the team's policy decides.
    let open = task(&chatbot, &["crm"], None);
    assert_eq!(
        decide(&e, &chatbot, "read", &record("43"), Some(&open)).decision,
        Effect::Allow
    );
}

/// Leaving `subject` out of a customer record does not escape the task's customer: the
/// record's type carries subjects, so one that names none is denied. A tool (a type
/// declared without `subject`) is subject-free and left to the policies.
#[test]
fn a_record_that_names_no_subject_does_not_escape_a_bound_task() {
    let e = engine(
        r#"@id("claims-all")
permit(principal in Aim::Group::"claims", action in [Aim::Action::"read", Aim::Action::"call_tool"], resource);"#,
    );
    let alice = human("alice");
    let chatbot = agent("agt-chatbot", &alice, "claims", &["crm"]);
    let bound = task(&chatbot, &["crm"], Some("customer:42"));
    let mut anonymous = record("43");
    anonymous.attrs.remove("subject");
    let d = decide(&e, &chatbot, "read", &anonymous, Some(&bound));
    assert_eq!(d.decision, Effect::Deny, "{d:?}");
    assert_eq!(d.policies, [SCOPE_OF_THOUGHT]);
    assert!(d.reasons[0].contains("names no subject"), "{d:?}");
    let open = task(&chatbot, &["crm"], None);
    assert_eq!(
        decide(&e, &chatbot, "read", &anonymous, Some(&open)).decision,
        Effect::Allow,
        "a task bound to nobody is left to the policies"
    );
    let tool = aim_policy::Target {
        kind: "Tool".into(),
        id: "crm/search".into(),
        system: "crm".into(),
        attrs: serde_json::json!({ "name": "search" })
            .as_object()
            .unwrap()
            .clone(),
        tags: Default::default(),
    };
    assert_eq!(
        decide(&e, &chatbot, "call_tool", &tool, Some(&bound)).decision,
        Effect::Allow
    );
}

#[test]
fn policies_see_the_task_in_the_context() {
    let e = engine(
        r#"permit(principal, action == Aim::Action::"read", resource is Aim::Resource)
           when { context has task && context.task has subject && resource has subject
                  && context.task.subject == resource.subject };"#,
    );
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let bound = task(&bot, &["crm"], Some("customer:42"));
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), Some(&bound)).decision,
        Effect::Allow
    );
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Deny
    );
}

#[test]
fn an_approval_annotation_asks_a_human() {
    let e = engine(
        r#"@id("refunds") @approval("group:finance-approvers")
           permit(principal in Aim::Group::"claims", action == Aim::Action::"write", resource);
           @id("reads") permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource);"#,
    );
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let d = decide(&e, &bot, "write", &record("42"), None);
    assert_eq!(d.decision, Effect::ApprovalRequired);
    assert_eq!(d.approvers, ["group:finance-approvers"]);
    assert_eq!(d.policies, ["refunds"]);
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Allow
    );
}

#[test]
fn several_approvers_in_one_annotation() {
    let e = engine(
        r#"@approval("sponsor, group:finance-approvers")
           permit(principal, action == Aim::Action::"write", resource);"#,
    );
    let bot = agent("agt-claims", &human("alice"), "claims", &["crm"]);
    let d = decide(&e, &bot, "write", &record("42"), None);
    assert_eq!(d.approvers, ["group:finance-approvers", "sponsor"]);
}

#[test]
fn a_changed_identity_is_decided_as_it_is_now() {
    // The engine keeps an identity's entity per record version: a new version (a changed
    // team, tier, label) is seen at once.
    let e = engine(
        r#"@id("claims-read") permit(principal in Aim::Group::"claims", action == Aim::Action::"read", resource);
           @id("no-high") forbid(principal is Aim::Identity, action, resource) when { principal.risk_tier == "high" };"#,
    );
    let mut bot = agent("agt-claims", &human("alice"), "claims", &["crm"]);
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Allow
    );
    bot.risk.tier = aim_domain::risk::RiskTier::High;
    bot.version += 1;
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).policies,
        ["no-high"]
    );
    bot.risk.tier = aim_domain::risk::RiskTier::Low;
    bot.owner_team = Some("billing".into());
    bot.version += 1;
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!((d.decision, d.policies.len()), (Effect::Deny, 0));
}

#[test]
fn an_evaluation_error_denies_even_when_another_policy_permits() {
    // Valid under strict validation, but overflows at run time: Cedar would skip this
    // forbid and allow; aim denies.
    let e = engine(&format!(
        r#"{TEAM_READS}
        @id("overflows") forbid(principal, action, resource) when {{ context.hour * 9223372036854775807 > 1 }};"#
    ));
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!(d.decision, Effect::Deny, "{d:?}");
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].contains("overflows"), "{d:?}");
}

#[test]
fn an_identity_that_is_not_active_is_denied() {
    let e = engine("permit(principal, action, resource);");
    let alice = human("alice");
    let mut bot = agent("agt-claims", &alice, "claims", &["crm"]);
    bot.state = aim_domain::lifecycle::LifecycleState::Suspended;
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!(d.decision, Effect::Deny);
    assert_eq!(d.policies, [NOT_ACTIVE]);
}

#[test]
fn people_attributes_tags_and_the_clock_are_visible() {
    let e = engine(
        r#"@id("business-hours")
           permit(principal is Aim::Identity, action == Aim::Action::"read", resource is Aim::Resource)
           when { principal.hasTag("env") && principal.getTag("env") == "prod"
                  && context.hour >= 8 && context.hour < 18 && context.weekday <= 5
                  && context.time > datetime("2026-01-01") };
           @id("sponsors-read") permit(principal is Aim::Human, action == Aim::Action::"read", resource)
           when { principal.active && principal.roles.contains("sponsor") };"#,
    );
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    // 2026-11-23 10:30 UTC is a Monday.
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Allow
    );
    let call = Call::default();
    let target = record("42");
    let q = Query {
        principal: Principal::Human {
            human: &alice,
            groups: &[],
        },
        action: "read",
        target: &target,
        task: None,
        now: now(),
        call: &call,
    };
    assert_eq!(e.decide(&q).unwrap().policies, ["sponsors-read"]);
    let saturday = Query {
        principal: Principal::Identity {
            identity: &bot,
            sponsor: None,
            groups: &[],
        },
        now: now().plus_days(5),
        ..q
    };
    assert_eq!(e.decide(&saturday).unwrap().decision, Effect::Deny);
}

#[test]
fn a_deployment_adds_actions_inside_aims_action_groups() {
    let schema = aim_policy::schema::load(&[Source {
        name: "insurer.cedarschema".into(),
        text: r#"namespace Aim {
            action refund in [Action::"write"] appliesTo {
              principal: [Identity, Human], resource: [Resource, Tool, System], context: Context,
            };
        }"#
        .into(),
    }])
    .unwrap();
    let compiled = compiled(
        &schema,
        r#"@id("claims-write") permit(principal in Aim::Group::"claims", action in Aim::Action::"write", resource);"#,
    );
    let e = aim_policy::Engine::new(schema, compiled).unwrap();
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    assert_eq!(
        decide(&e, &bot, "refund", &record("42"), None).decision,
        Effect::Allow
    );
    assert_eq!(
        decide(&e, &bot, "read", &record("42"), None).decision,
        Effect::Deny
    );
}

#[test]
fn bad_queries_are_refused_not_decided() {
    let e = engine(TEAM_READS);
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm"]);
    let call = Call::default();
    let target = record("42");
    let q = Query {
        principal: Principal::Identity {
            identity: &bot,
            sponsor: None,
            groups: &[],
        },
        action: "launch_missiles",
        target: &target,
        task: None,
        now: now(),
        call: &call,
    };
    assert_eq!(
        e.decide(&q).unwrap_err(),
        QueryError::UnknownAction("launch_missiles".into())
    );
    let mut wrong = record("42");
    wrong
        .attrs
        .insert("sensitivity".into(), serde_json::json!(5));
    let err = e
        .decide(&Query {
            action: "read",
            target: &wrong,
            ..q.clone()
        })
        .unwrap_err();
    assert_eq!(err.code(), "bad_target", "{err}");
    // The answer names the attribute and what it should have been.
    let said = err.to_string();
    assert!(
        said.contains("`sensitivity`") && said.contains("string"),
        "{said}"
    );
    let mut unknown = record("42");
    unknown.kind = "Spaceship".into();
    let err = e
        .decide(&Query {
            action: "read",
            target: &unknown,
            ..q
        })
        .unwrap_err();
    assert_eq!(err.code(), "bad_target", "{err}");
}

#[test]
fn groups_and_systems_are_known_by_their_members() {
    // A request carries no entity for a group or a system (they have no attributes of
    // their own); `in` reads the member's parents, which aim gives in full.
    let e = engine(
        r#"@id("crm-reads")
        permit(principal in Aim::Group::"claims", action == Aim::Action::"read",
               resource in Aim::System::"crm");"#,
    );
    let alice = human("alice");
    let bot = agent("agt-claims", &alice, "claims", &["crm", "billing"]);
    let d = decide(&e, &bot, "read", &record("42"), None);
    assert_eq!(
        (d.decision, d.policies),
        (Effect::Allow, vec!["crm-reads".to_owned()])
    );
    let mut billing = record("42");
    billing.system = "billing".into();
    assert_eq!(
        decide(&e, &bot, "read", &billing, None).decision,
        Effect::Deny
    );
    let other = agent("agt-sales", &alice, "sales", &["crm"]);
    assert_eq!(
        decide(&e, &other, "read", &record("42"), None).decision,
        Effect::Deny
    );
}
