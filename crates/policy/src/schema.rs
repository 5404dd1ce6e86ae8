//! aim's Cedar schema, and deployments' extensions to it.

use cedar_policy::{Schema, SchemaFragment};

use crate::compile::{Problem, Source};

/// The published schema (`crates/policy/schema/aim.cedarschema`).
pub const AIM_SCHEMA: &str = include_str!("../schema/aim.cedarschema");

/// aim's schema plus each extension fragment (Cedar schema syntax, usually more
/// `namespace Aim { ... }` declarations: entity types, actions in aim's action groups).
pub fn load(extensions: &[Source]) -> Result<Schema, Vec<Problem>> {
    let base = Source {
        name: "aim.cedarschema".into(),
        text: AIM_SCHEMA.into(),
    };
    let mut fragments = Vec::new();
    let mut problems = Vec::new();
    for source in std::iter::once(&base).chain(extensions) {
        match SchemaFragment::from_cedarschema_str(&source.text) {
            Ok((fragment, _warnings)) => fragments.push(fragment),
            Err(e) => problems.push(crate::compile::located(source, None, "schema_error", &e)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Schema::from_schema_fragments(fragments).map_err(|e| {
        vec![Problem {
            file: "schema".into(),
            line: 0,
            column: 0,
            policy: None,
            code: "schema_error",
            message: e.to_string(),
        }]
    })
}
