//! Policy text in, a strictly validated policy set out, or every problem with its file,
//! line and column.
//!
//! Policy ids are the `@id("...")` annotation when a policy has one, else
//! `<file>#<n>` (the n-th policy or template of that file, from 0). Template links name a
//! template by id and fill its `?principal` and `?resource` slots.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::str::FromStr;

use cedar_policy::{
    EntityUid, Policy, PolicyId, PolicySet, Schema, SlotId, Template, ValidationMode, Validator,
};
use serde::Serialize;

pub use aim_domain::policy_file::{Link, Source};

/// What is wrong, and where. Lines and columns count from 1; both are 0 when the problem
/// has no place in a file (a bad template link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `parse_error`, `validation_error`, `duplicate_id`, `bad_link`, `bad_annotation`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        }
        if let Some(p) = &self.policy {
            write!(f, "policy {p}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A validated policy set: the whole set as Cedar holds it, and every policy (static or
/// linked) as a static policy, in a stable order, for slicing.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub set: PolicySet,
    pub flat: Vec<Policy>,
    /// Where each policy and template came from.
    pub origin: HashMap<PolicyId, String>,
}

/// The approvers an `@approval` names, comma-separated: `sponsor`, `group:<name>`,
/// `role:<role>`, `human:<user name>`. A name that matches nobody would leave the action
/// unapprovable, so a misspelt one is refused when the policy is applied.
pub fn approvers(annotation: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = annotation
        .split(',')
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if names.is_empty() {
        return Err("@approval names nobody; name `sponsor`, `group:<name>`, `role:<role>` or `human:<user name>`".into());
    }
    for name in &names {
        let ok = match name.split_once(':') {
            None => name == "sponsor",
            Some(("group", g)) => aim_domain::validate::token("group", g, 128).is_ok(),
            Some(("role", r)) => aim_domain::human::Role::parse(r).is_ok(),
            Some(("human", u)) => !u.trim().is_empty(),
            Some(_) => false,
        };
        if !ok {
            return Err(format!(
                "@approval names `{name}`, which is none of `sponsor`, `group:<name>`, `role:<admin|approver|sponsor|auditor>`, `human:<user name>`"
            ));
        }
    }
    Ok(names)
}

/// Parses, names, links and validates in strict mode; any problem refuses the whole set.
pub fn compile(
    schema: &Schema,
    sources: &[Source],
    links: &[Link],
) -> Result<Compiled, Vec<Problem>> {
    let mut g = Gathered::default();
    for source in sources {
        g.add_source(source);
    }
    for link in links {
        if let Err(message) = add_link(&mut g.set, link) {
            let problem = Problem::unplaced("links", Some(link.id.clone()), "bad_link", message);
            g.problems.push(problem);
        } else {
            g.origin.insert(PolicyId::new(&link.id), "links".into());
        }
    }
    if !g.problems.is_empty() {
        return Err(g.problems);
    }
    g.validate(schema);
    if !g.problems.is_empty() {
        return Err(g.problems);
    }
    let flat = flatten(&g.set)
        .map_err(|message| vec![Problem::unplaced("links", None, "bad_link", message)])?;
    Ok(Compiled {
        set: g.set,
        flat,
        origin: g.origin,
    })
}

/// The set being built, where each policy came from, and every problem found so far.
#[derive(Default)]
struct Gathered<'a> {
    set: PolicySet,
    origin: HashMap<PolicyId, String>,
    texts: HashMap<PolicyId, &'a Source>,
    problems: Vec<Problem>,
}

impl<'a> Gathered<'a> {
    /// Parses one file and adds its policies and templates under their ids.
    fn add_source(&mut self, source: &'a Source) {
        let spans = policy_spans(&source.text);
        let parsed = match PolicySet::from_str(&source.text) {
            Ok(p) => p,
            Err(e) => {
                for err in e.iter() {
                    self.problems
                        .push(located(source, None, "parse_error", err));
                }
                return;
            }
        };
        // Cedar names a file's policies policy0, policy1, ... in the order written.
        let mut items: Vec<(usize, Item)> = parsed
            .policies()
            .map(|p| (ordinal(p.id()), Item::Policy(p.clone())))
            .chain(
                parsed
                    .templates()
                    .map(|t| (ordinal(t.id()), Item::Template(t.clone()))),
            )
            .collect();
        items.sort_by_key(|(n, _)| *n);
        for (n, item) in items {
            let span = spans.get(n).cloned().unwrap_or(0..0);
            self.add_item(source, span, n, item);
        }
    }

    /// Adds the `n`-th policy or template of `source` (written at `span`), named by its
    /// `@id` or its place. A problem with an annotation is placed at the annotation.
    fn add_item(&mut self, source: &'a Source, span: Range<usize>, n: usize, item: Item) {
        let id = PolicyId::new(
            item.annotation("id")
                .map_or_else(|| format!("{}#{n}", source.name), str::to_owned),
        );
        let problem = |annotation: &str, code, message| {
            let offset = annotation_offset(&source.text, span.clone(), annotation);
            let (line, column) = line_column(&source.text, offset);
            Problem {
                file: source.name.clone(),
                line,
                column,
                policy: Some(id.to_string()),
                code,
                message,
            }
        };
        if let Some(Err(message)) = item.annotation("approval").map(approvers) {
            self.problems
                .push(problem("approval", "bad_annotation", message));
        }
        if let Some(first) = self.origin.get(&id) {
            let message = format!("this @id is already used in {first}");
            self.problems.push(problem("id", "duplicate_id", message));
            return;
        }
        let added = match item {
            Item::Policy(p) => self.set.add(p.new_id(id.clone())),
            Item::Template(t) => self.set.add_template(t.new_id(id.clone())),
        };
        if let Err(e) = added {
            self.problems
                .push(problem("id", "duplicate_id", e.to_string()));
            return;
        }
        self.origin.insert(id.clone(), source.name.clone());
        self.texts.insert(id, source);
    }

    /// Validates the whole set against the schema in strict mode.
    fn validate(&mut self, schema: &Schema) {
        let result = Validator::new(schema.clone()).validate(&self.set, ValidationMode::Strict);
        for err in result.validation_errors() {
            let id = err.policy_id();
            let problem = match self.texts.get(id) {
                Some(source) => located(source, Some(id), "validation_error", err),
                None => Problem::unplaced(
                    self.origin.get(id).map_or("", String::as_str),
                    Some(id.to_string()),
                    "validation_error",
                    err.to_string(),
                ),
            };
            self.problems.push(problem);
        }
    }
}

impl Problem {
    /// A problem with no line and column (a bad template link).
    fn unplaced(file: &str, policy: Option<String>, code: &'static str, message: String) -> Self {
        Problem {
            file: file.to_owned(),
            line: 0,
            column: 0,
            policy,
            code,
            message,
        }
    }
}

enum Item {
    Policy(Policy),
    Template(Template),
}

impl Item {
    fn annotation(&self, key: &str) -> Option<&str> {
        match self {
            Item::Policy(p) => p.annotation(key),
            Item::Template(t) => t.annotation(key),
        }
    }
}

fn ordinal(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn add_link(set: &mut PolicySet, link: &Link) -> Result<(), String> {
    let mut slots = HashMap::new();
    for (slot, value) in [
        (SlotId::principal(), &link.principal),
        (SlotId::resource(), &link.resource),
    ] {
        if let Some(v) = value {
            let uid = EntityUid::from_str(v).map_err(|e| format!("{v}: {e}"))?;
            slots.insert(slot, uid);
        }
    }
    set.link(
        PolicyId::new(&link.template),
        PolicyId::new(&link.id),
        slots,
    )
    .map_err(|e| e.to_string())
}

/// Every policy as a static one: a linked policy's JSON form has its slots filled.
fn flatten(set: &PolicySet) -> Result<Vec<Policy>, String> {
    let mut out: BTreeMap<String, Policy> = BTreeMap::new();
    for p in set.policies() {
        let p = if p.is_static() {
            p.clone()
        } else {
            let json = p.to_json().map_err(|e| e.to_string())?;
            Policy::from_json(Some(p.id().clone()), json).map_err(|e| e.to_string())?
        };
        out.insert(p.id().to_string(), p);
    }
    Ok(out.into_values().collect())
}

/// A problem placed at its first labelled span in `source`.
pub(crate) fn located(
    source: &Source,
    policy: Option<&PolicyId>,
    code: &'static str,
    err: &(impl miette::Diagnostic + ?Sized),
) -> Problem {
    let offset = err
        .labels()
        .and_then(|mut l| l.next())
        .map_or(0, |l| l.offset());
    let (line, column) = line_column(&source.text, offset);
    let mut message = err.to_string();
    if let Some(help) = err.help() {
        message = format!("{message} ({help})");
    }
    Problem {
        file: source.name.clone(),
        line,
        column,
        policy: policy.map(ToString::to_string),
        code,
        message,
    }
}

/// The byte range of each policy and template in a file, in the order written (Cedar's
/// `policy0`, `policy1`, ...): from its first character to its closing `;`. Strings and
/// `//` comments are skipped, so a `;` inside them ends nothing.
fn policy_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        let from = *start.get_or_insert(i);
        match c {
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            ';' => {
                spans.push(from..i + 1);
                start = None;
            }
            _ => {}
        }
    }
    spans
}

/// Where `@<annotation>` is written within a policy's span, or where the policy starts.
fn annotation_offset(text: &str, span: Range<usize>, annotation: &str) -> usize {
    let within = text.get(span.clone()).unwrap_or_default();
    let mut from = 0;
    while let Some(at) = within[from..].find('@') {
        let rest = within[from + at + 1..].trim_start();
        if rest.starts_with(annotation) && rest[annotation.len()..].trim_start().starts_with('(') {
            return span.start + from + at;
        }
        from += at + 1;
    }
    span.start
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::{Source, annotation_offset, compile, line_column, policy_spans};

    #[test]
    fn policies_are_found_where_they_are_written() {
        let text = "// a; comment\n@id(\"a;b\") permit(principal, action, resource);\n\n  forbid(principal, action, resource) when { \"\\\";\" == \"x\" };";
        let spans = policy_spans(text);
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!(text[spans[0].clone()].starts_with("@id(\"a;b\")"));
        assert!(text[spans[1].clone()].starts_with("forbid("));
        assert!(text[spans[1].clone()].ends_with("};"));
        assert_eq!(
            annotation_offset(text, spans[0].clone(), "id"),
            spans[0].start
        );
        assert_eq!(
            annotation_offset(text, spans[1].clone(), "id"),
            spans[1].start
        );
    }

    /// A bad `@approval` and a second `@id` are reported once each, at the annotation.
    #[test]
    fn annotation_problems_have_a_place() {
        let text = "@id(\"x\")\n@approval(\"nobody:foo\")\npermit(principal, action, resource);\n@id(\"x\") permit(principal, action, resource);";
        let schema = crate::schema::load(&[]).unwrap();
        let problems = compile(
            &schema,
            &[Source {
                name: "p.cedar".into(),
                text: text.into(),
            }],
            &[],
        )
        .unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("p.cedar:2:1: policy x: @approval names `nobody:foo`"),
            "{shown:#?}"
        );
        assert_eq!(
            shown[1],
            "p.cedar:4:1: policy x: this @id is already used in p.cedar"
        );
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
