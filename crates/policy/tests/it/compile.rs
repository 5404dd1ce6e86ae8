//! Strict compilation: what is refused, with file, line and column; ids; templates.

use aim_policy::{Effect, Link, Source, compile};

use crate::fixtures::*;

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(name, text)| Source {
            name: (*name).into(),
            text: (*text).into(),
        })
        .collect()
}

#[test]
fn reading_an_optional_attribute_without_has_is_refused_with_its_place() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let text = "// customers' data\npermit(principal, action, resource is Aim::Resource)\n  when { resource.subject == \"customer:42\" };\n";
    let problems = compile(&schema, &sources(&[("crm.cedar", text)]), &[]).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!((p.file.as_str(), p.code), ("crm.cedar", "validation_error"));
    assert_eq!(p.policy.as_deref(), Some("crm.cedar#0"));
    assert_eq!(p.line, 3, "{p}");
    assert!(p.column > 1, "{p}");
    assert!(p.message.contains("subject"), "{p}");
    // With the test, the same policy is accepted.
    let safe = text.replace("when { resource", "when { resource has subject && resource");
    compile(&schema, &sources(&[("crm.cedar", &safe)]), &[]).unwrap();
}

#[test]
fn unknown_attributes_types_and_actions_are_refused() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    for (policy, needle) in [
        (
            "permit(principal is Aim::Identity, action, resource) when { principal.favourite_colour == \"red\" };",
            "favourite_colour",
        ),
        (
            "permit(principal is Aim::Robot, action, resource);",
            "Robot",
        ),
        (
            "permit(principal, action == Aim::Action::\"fly\", resource);",
            "fly",
        ),
        (
            "permit(principal is Aim::Identity, action, resource) when { principal.systems == \"crm\" };",
            "",
        ),
    ] {
        let problems = compile(&schema, &sources(&[("p.cedar", policy)]), &[]).unwrap_err();
        assert!(
            problems
                .iter()
                .all(|p| p.code == "validation_error" && p.line == 1),
            "{policy}: {problems:?}"
        );
        assert!(
            problems[0].message.contains(needle),
            "{policy}: {problems:?}"
        );
    }
}

#[test]
fn a_syntax_error_names_its_line_and_column() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let problems = compile(
        &schema,
        &sources(&[
            ("good.cedar", "permit(principal, action, resource);"),
            (
                "bad.cedar",
                "permit(principal, action, resource);\n\npermit(principal action, resource);",
            ),
        ]),
        &[],
    )
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(
        (p.file.as_str(), p.code, p.line),
        ("bad.cedar", "parse_error", 3),
        "{p}"
    );
    assert_eq!(
        p.to_string().split(':').take(2).collect::<Vec<_>>(),
        ["bad.cedar", "3"]
    );
}

#[test]
fn ids_come_from_annotations_or_the_file_and_must_be_unique() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let c = compile(
        &schema,
        &sources(&[(
            "a.cedar",
            "permit(principal, action, resource);\n@id(\"named\") forbid(principal, action, resource);\npermit(principal, action, resource);",
        )]),
        &[],
    )
    .unwrap();
    let ids: Vec<String> = c.flat.iter().map(|p| p.id().to_string()).collect();
    assert_eq!(ids, ["a.cedar#0", "a.cedar#2", "named"]);
    let problems = compile(
        &schema,
        &sources(&[
            ("a.cedar", "@id(\"x\") permit(principal, action, resource);"),
            ("b.cedar", "@id(\"x\") forbid(principal, action, resource);"),
        ]),
        &[],
    )
    .unwrap_err();
    assert_eq!(problems[0].code, "duplicate_id");
    assert_eq!(problems[0].file, "b.cedar");
    assert!(problems[0].message.contains("a.cedar"), "{problems:?}");
}

#[test]
fn templates_are_linked_and_decide_like_written_policies() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let template = r#"@id("team-reads-system") @reason("agents of a team may read a system")
        permit(principal in ?principal, action == Aim::Action::"read", resource in ?resource);"#;
    let link = |id: &str, team: &str| Link {
        id: id.into(),
        template: "team-reads-system".into(),
        principal: Some(format!("Aim::Group::\"{team}\"")),
        resource: Some("Aim::System::\"crm\"".into()),
    };
    let c = compile(
        &schema,
        &sources(&[("templates.cedar", template)]),
        &[link("claims-read-crm", "claims")],
    )
    .unwrap();
    assert_eq!(c.flat.len(), 1);
    assert!(c.flat[0].is_static());
    let e = aim_policy::Engine::new(schema.clone(), c).unwrap();
    let alice = human("alice");
    let claims = agent("agt-claims", &alice, "claims", &["crm"]);
    let sales = agent("agt-sales", &alice, "sales", &["crm"]);
    let d = decide(&e, &claims, "read", &record("42"), None);
    assert_eq!(
        (d.decision, d.policies.as_slice()),
        (Effect::Allow, &["claims-read-crm".to_owned()][..])
    );
    assert_eq!(d.reasons, ["agents of a team may read a system"]);
    assert_eq!(
        decide(&e, &sales, "read", &record("42"), None).decision,
        Effect::Deny
    );

    let mut bad = link("x", "claims");
    bad.template = "no-such-template".into();
    let problems =
        compile(&schema, &sources(&[("templates.cedar", template)]), &[bad]).unwrap_err();
    assert_eq!(
        (problems[0].code, problems[0].file.as_str()),
        ("bad_link", "links")
    );
    let mut bad = link("y", "claims");
    bad.principal = Some("not an entity".into());
    let problems =
        compile(&schema, &sources(&[("templates.cedar", template)]), &[bad]).unwrap_err();
    assert_eq!(problems[0].code, "bad_link");
    // A link whose entity type the schema does not know fails validation.
    let mut bad = link("z", "claims");
    bad.principal = Some("Aim::Spaceship::\"x\"".into());
    let problems =
        compile(&schema, &sources(&[("templates.cedar", template)]), &[bad]).unwrap_err();
    assert_eq!(problems[0].code, "validation_error", "{problems:?}");
}

#[test]
fn a_bad_schema_extension_is_refused_with_its_place() {
    let problems = aim_policy::schema::load(&[Source {
        name: "ext.cedarschema".into(),
        text: "namespace Aim {\n  entity Claim = { amount: Lng };\n}".into(),
    }])
    .unwrap_err();
    assert_eq!(problems[0].code, "schema_error", "{problems:?}");
}

#[test]
fn an_approval_must_name_someone_who_can_approve() {
    let schema = aim_policy::schema::load(&[]).unwrap();
    let policy = |approval: &str| {
        format!(
            "@id(\"refunds\") @approval(\"{approval}\")\npermit(principal, action, resource);\n"
        )
    };
    for good in [
        "sponsor",
        "group:finance-approvers",
        "sponsor, role:approver",
        "human:alice@example.com",
    ] {
        compile(&schema, &sources(&[("p.cedar", &policy(good))]), &[]).unwrap();
    }
    for bad in [
        "sponsr",
        "",
        " , ",
        "role:boss",
        "group:finance approvers",
        "team:claims",
        "human: ",
    ] {
        let problems = compile(&schema, &sources(&[("p.cedar", &policy(bad))]), &[]).unwrap_err();
        assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
        let p = &problems[0];
        assert_eq!(
            (p.code, p.policy.as_deref(), p.file.as_str()),
            ("bad_annotation", Some("refunds"), "p.cedar"),
            "{bad:?}"
        );
    }
}
