//! A policy set as aim serves it to an enforcement point (its files and links, and the
//! schema extensions it was validated against), compiled there the way aim compiles it.

use aim_api::policies::Content;
use aim_domain::policy_file::Source;
use aim_policy::Engine;

/// The engine for `content` against aim's schema extended by `schema`; the problems, one
/// line each, if it does not compile (a gateway keeps the set it has).
pub fn compile(schema: &[Source], content: &Content) -> Result<Engine, String> {
    let lines = |problems: Vec<aim_policy::Problem>| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let schema = aim_policy::schema::load(schema).map_err(lines)?;
    let compiled = aim_policy::compile(&schema, &content.sources, &content.links).map_err(lines)?;
    Engine::new(schema, compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_compiles_against_the_schema_and_a_bad_one_says_why() {
        let good = Content {
            sources: vec![Source {
                name: "p.cedar".into(),
                text: "permit(principal, action, resource);".into(),
            }],
            links: vec![],
        };
        assert!(compile(&[], &good).is_ok());
        let bad = Content {
            sources: vec![Source {
                name: "p.cedar".into(),
                text: "permit(principal, action == Action::\"nope\", resource);".into(),
            }],
            links: vec![],
        };
        let why = compile(&[], &bad).unwrap_err();
        assert!(why.contains("p.cedar"), "{why}");
    }
}
