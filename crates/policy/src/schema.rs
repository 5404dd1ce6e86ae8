//! aim's Cedar schema, and deployments' extensions to it.

use std::collections::HashSet;

use cedar_policy::{Schema, SchemaFragment};

use crate::compile::{Problem, Source};

/// The published schema (`crates/policy/schema/aim.cedarschema`).
pub const AIM_SCHEMA: &str = include_str!("../schema/aim.cedarschema");

/// The Cedar schema, with what aim's own rules read from it. It dereferences to the Cedar
/// [`Schema`].
#[derive(Debug, Clone)]
pub struct AimSchema {
    cedar: Schema,
    /// The `Aim::` entity types (short names) that declare a `subject` attribute: a task
    /// bound to a subject may touch one of them only if it names that subject. A type
    /// without one (`System`, `Tool`, a deployment's `entity Ledger`) is subject-free.
    subject_types: HashSet<String>,
}

impl AimSchema {
    /// Whether entity type `Aim::<kind>` declares a `subject` attribute.
    pub fn bears_subject(&self, kind: &str) -> bool {
        self.subject_types.contains(kind)
    }
}

impl std::ops::Deref for AimSchema {
    type Target = Schema;
    fn deref(&self) -> &Schema {
        &self.cedar
    }
}

/// The `Aim::` entity types of `fragment` whose shape declares `subject`.
fn subject_types(fragment: &SchemaFragment, out: &mut HashSet<String>) {
    let Ok(json) = fragment.to_json_string() else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&json) else {
        return;
    };
    let Some(types) = json
        .get("Aim")
        .and_then(|ns| ns.get("entityTypes"))
        .and_then(serde_json::Value::as_object)
    else {
        return;
    };
    for (name, t) in types {
        if t.pointer("/shape/attributes/subject").is_some() {
            out.insert(name.clone());
        }
    }
}

/// aim's schema plus each extension fragment (Cedar schema syntax, usually more
/// `namespace Aim { ... }` declarations: entity types, actions in aim's action groups).
pub fn load(extensions: &[Source]) -> Result<AimSchema, Vec<Problem>> {
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
    let mut subjects = HashSet::new();
    for f in &fragments {
        subject_types(f, &mut subjects);
    }
    let cedar = Schema::from_schema_fragments(fragments).map_err(|e| {
        vec![Problem {
            file: "schema".into(),
            line: 0,
            column: 0,
            policy: None,
            code: "schema_error",
            message: e.to_string(),
        }]
    })?;
    Ok(AimSchema {
        cedar,
        subject_types: subjects,
    })
}
