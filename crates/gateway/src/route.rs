//! Routes: a method and a path template to an upstream, and how a request on it becomes a
//! question for aim (the action, the resource and its attributes, from the path, the query
//! or the JSON body).

use std::collections::BTreeMap;

use aim_domain::decision::Target;
use serde_json::{Map, Value};

use crate::config::TargetConfig;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Static(String),
    Param(String),
    /// The rest of the path, one segment or more.
    Rest(String),
}

/// `/crm/records/{id}`, `/files/{*path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segs: Vec<Seg>,
}

/// A request path matched a template's static segments only if letter case is ignored:
/// refused rather than guessed (the upstream may or may not ignore case).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the path differs from the route {0} only in letter case")]
pub struct CaseMismatch(pub String);

impl Template {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err("a path template starts with `/`".into());
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut segs = Vec::new();
        let mut names = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(name) = part.strip_prefix("{*").and_then(|p| p.strip_suffix('}'))
            {
                if i != parts.len() - 1 {
                    return Err(format!("{{*{name}}} must be the last segment"));
                }
                Seg::Rest(param_name(name)?)
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Seg::Param(param_name(name)?)
            } else {
                let decoded =
                    crate::canon::segment(part).map_err(|e| format!("segment {part:?}: {e}"))?;
                if decoded.is_empty()
                    || decoded.contains(['{', '}'])
                    || part == &"."
                    || part == &".."
                {
                    return Err(format!("segment {part:?} is not a literal segment"));
                }
                Seg::Static(decoded)
            };
            if let Seg::Param(n) | Seg::Rest(n) = &seg {
                if names.contains(n) {
                    return Err(format!("{{{n}}} appears twice"));
                }
                names.push(n.clone());
            }
            segs.push(seg);
        }
        Ok(Self { segs })
    }

    /// The parameters' names.
    fn params(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Param(n) | Seg::Rest(n) => Some(n.as_str()),
            Seg::Static(_) => None,
        })
    }

    /// The path parameters if `segments` match, `None` if they do not; a match that holds
    /// only when case is ignored is an error.
    pub fn matches(
        &self,
        segments: &[String],
    ) -> Result<Option<BTreeMap<String, String>>, CaseMismatch> {
        let mut params = BTreeMap::new();
        let mut case_only = false;
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Rest(name) => {
                    let rest = segments.get(i..).unwrap_or_default();
                    if rest.iter().all(String::is_empty) {
                        return Ok(None);
                    }
                    params.insert(name.clone(), rest.join("/"));
                    return if case_only {
                        Err(self.mismatch())
                    } else {
                        Ok(Some(params))
                    };
                }
                _ if i >= segments.len() => return Ok(None),
                Seg::Static(s) if *s == segments[i] => {}
                Seg::Static(s) if s.eq_ignore_ascii_case(&segments[i]) => case_only = true,
                Seg::Static(_) => return Ok(None),
                Seg::Param(name) => {
                    if segments[i].is_empty() {
                        return Ok(None);
                    }
                    params.insert(name.clone(), segments[i].clone());
                }
            }
        }
        if segments.len() != self.segs.len() {
            return Ok(None);
        }
        if case_only {
            return Err(self.mismatch());
        }
        Ok(Some(params))
    }

    fn mismatch(&self) -> CaseMismatch {
        CaseMismatch(self.to_string())
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.segs.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segs {
            match s {
                Seg::Static(s) => write!(f, "/{s}")?,
                Seg::Param(n) => write!(f, "/{{{n}}}")?,
                Seg::Rest(n) => write!(f, "/{{*{n}}}")?,
            }
        }
        Ok(())
    }
}

fn param_name(name: &str) -> Result<String, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "{{{name}}}: a parameter is named with letters, digits and `_`"
        ));
    }
    Ok(name.to_owned())
}

/// Where an attribute's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A literal, where `{param}` is replaced by the path parameter.
    Text(String),
    Query(String),
    /// A JSON pointer into the body.
    Body(String),
}

/// A route as checked.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index of its upstream in the config's list.
    pub upstream: usize,
    /// `None` for any method.
    pub method: Option<String>,
    pub template: Template,
    pub action: String,
    /// How its decisions reach aim's record.
    pub audit: crate::decide::Audit,
    kind: String,
    system: String,
    id: String,
    attrs: BTreeMap<String, Source>,
}

/// Why a request could not be turned into a question (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the query names {0:?} more than once")]
    AmbiguousQuery(String),
    #[error("the body is not JSON, and this route reads attributes from it")]
    BodyNotJson,
    #[error(
        "the resource's id needs the argument {0:?}, which the call does not give as a string or number"
    )]
    Missing(String),
}

impl Route {
    pub fn new(
        upstream: usize,
        method: &str,
        template: Template,
        action: String,
        target: TargetConfig,
    ) -> Result<Self, String> {
        let known: Vec<String> = template.params().map(str::to_owned).collect();
        Self::build(upstream, method, template, action, target, Some(&known))
    }

    /// An MCP tool's question: `{name}` in the id or a literal attribute is the call's
    /// argument `name` (a string or a number), `body:/pointer` points into its arguments.
    pub fn for_tool(upstream: usize, action: String, target: TargetConfig) -> Result<Self, String> {
        let template = Template { segs: Vec::new() };
        Self::build(upstream, "POST", template, action, target, None)
    }

    /// `known`: the parameters `{name}` may name (any, if `None`).
    fn build(
        upstream: usize,
        method: &str,
        template: Template,
        action: String,
        target: TargetConfig,
        known: Option<&[String]>,
    ) -> Result<Self, String> {
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Some(m.to_owned()),
            m => return Err(format!("method {m:?}: give an upper-case method or `*`")),
        };
        if action.is_empty()
            || target.system.is_empty()
            || target.id.is_empty()
            || target.kind.is_empty()
        {
            return Err(
                "action, resource.type, resource.system and resource.id may not be empty".into(),
            );
        }
        // aim's schema requires these of a Resource: without them every request on the
        // route would be refused.
        if target.kind == "Resource" {
            for required in ["type", "sensitivity"] {
                if !target.attrs.contains_key(required) {
                    return Err(format!(
                        "resource.attrs.{required} is required of a Resource (a literal, for sensitivity: a value the agent sends is what the agent says)"
                    ));
                }
            }
        }
        let uses = |text: &str| -> Result<(), String> {
            for name in placeholders(text) {
                if known.is_some_and(|k| !k.iter().any(|k| k == name)) {
                    return Err(format!("{{{name}}} is not a parameter of the path"));
                }
                param_name(name)?;
            }
            Ok(())
        };
        uses(&target.id)?;
        let mut attrs = BTreeMap::new();
        for (name, source) in target.attrs {
            let source = if let Some(q) = source.strip_prefix("query:") {
                Source::Query(q.to_owned())
            } else if let Some(p) = source.strip_prefix("body:") {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(format!(
                        "attrs.{name}: a body source is a JSON pointer (`body:/subject`)"
                    ));
                }
                Source::Body(p.to_owned())
            } else {
                uses(&source)?;
                Source::Text(source)
            };
            attrs.insert(name, source);
        }
        Ok(Self {
            upstream,
            method,
            template,
            action,
            audit: crate::decide::Audit::default(),
            kind: target.kind,
            system: target.system,
            id: target.id,
            attrs,
        })
    }

    pub fn accepts(&self, method: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
    }

    /// Whether the question needs the body as JSON.
    pub fn reads_body(&self) -> bool {
        self.attrs.values().any(|s| matches!(s, Source::Body(_)))
    }

    /// The resource this request acts on. An attribute whose source is absent from the
    /// request is left out (a policy tests it with `has`).
    pub fn target(
        &self,
        params: &BTreeMap<String, String>,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Target, Unreadable> {
        let json: Option<Value> = if self.reads_body() && !body.is_empty() {
            Some(serde_json::from_slice(body).map_err(|_| Unreadable::BodyNotJson)?)
        } else {
            None
        };
        let mut attrs = Map::new();
        for (name, source) in &self.attrs {
            let value = match source {
                // A literal naming an argument the call does not give is left out.
                Source::Text(t) => placeholders(t)
                    .all(|n| params.contains_key(n))
                    .then(|| Value::String(fill(t, params))),
                Source::Query(q) => {
                    let mut found =
                        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                            .filter(|(k, _)| k == q)
                            .map(|(_, v)| v.into_owned());
                    let first = found.next();
                    if found.next().is_some() {
                        return Err(Unreadable::AmbiguousQuery(q.clone()));
                    }
                    first.map(Value::String)
                }
                Source::Body(pointer) => json.as_ref().and_then(|j| j.pointer(pointer)).cloned(),
            };
            if let Some(v) = value {
                attrs.insert(name.clone(), v);
            }
        }
        if let Some(missing) = placeholders(&self.id).find(|n| !params.contains_key(*n)) {
            return Err(Unreadable::Missing(missing.to_owned()));
        }
        let id = fill(&self.id, params);
        Ok(Target {
            kind: self.kind.clone(),
            id,
            system: self.system.clone(),
            attrs,
            tags: BTreeMap::new(),
        })
    }
}

/// The `{name}`s in `text`.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(n, _)| n))
}

/// `text` with each `{name}` replaced by its parameter, in one pass: a value is never read
/// as a template itself.
fn fill(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once('}') {
            Some((name, tail)) if params.contains_key(name) => {
                out.push_str(&params[name]);
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        crate::canon::path(p)
            .unwrap_or_else(|e| panic!("{e}"))
            .segments
    }

    fn template(t: &str) -> Template {
        Template::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn templates_match_segments_and_take_parameters() {
        let t = template("/crm/records/{id}");
        let m = t
            .matches(&segs("/crm/records/42"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.and_then(|p| p.get("id").cloned()).as_deref(), Some("42"));
        for other in [
            "/crm/records",
            "/crm/records/42/x",
            "/crm/records/",
            "/crm/other/1",
            "/",
        ] {
            assert_eq!(t.matches(&segs(other)), Ok(None), "{other}");
        }
        assert!(t.matches(&segs("/CRM/records/42")).is_err());
        assert!(t.matches(&segs("/crm/Records/42")).is_err());

        let rest = template("/files/{*path}");
        let m = rest
            .matches(&segs("/files/a/b%20c"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.and_then(|p| p.get("path").cloned()).as_deref(),
            Some("a/b c")
        );
        assert_eq!(rest.matches(&segs("/files")), Ok(None));
        assert!(rest.matches(&segs("/Files/a")).is_err());
        assert_eq!(
            template("/").matches(&segs("/")).map(|m| m.is_some()),
            Ok(true)
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "crm",
            "/a/{*rest}/b",
            "/a/{x}/{x}",
            "/a/{x-y}",
            "/a//b",
            "/a/../b",
            "/a/{}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    fn route(attrs: &[(&str, &str)]) -> Route {
        let target = TargetConfig {
            kind: "Resource".into(),
            system: "crm".into(),
            id: "record-{id}".into(),
            attrs: [("sensitivity", "confidential")]
                .iter()
                .chain(attrs)
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        };
        Route::new(
            0,
            "POST",
            template("/crm/records/{id}"),
            "write".into(),
            target,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn attributes_come_from_the_path_the_query_and_the_body() {
        let r = route(&[
            ("subject", "body:/customer"),
            ("sensitivity", "query:level"),
            ("type", "customer_record"),
            ("key", "k-{id}"),
        ]);
        let params = BTreeMap::from([("id".to_owned(), "42".to_owned())]);
        let t = r
            .target(
                &params,
                Some("level=high&x=1"),
                br#"{"customer": "customer:7"}"#,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.id, "record-42");
        assert_eq!(t.attrs["subject"], "customer:7");
        assert_eq!(t.attrs["sensitivity"], "high");
        assert_eq!(t.attrs["type"], "customer_record");
        assert_eq!(t.attrs["key"], "k-42");
        // Absent sources leave the attribute out.
        let t = r
            .target(&params, None, b"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.attrs.contains_key("subject") && !t.attrs.contains_key("sensitivity"));
        // A repeated query parameter is ambiguous; a body that is not JSON unreadable.
        assert_eq!(
            r.target(&params, Some("level=low&level=high"), b""),
            Err(Unreadable::AmbiguousQuery("level".into()))
        );
        assert_eq!(
            r.target(&params, None, b"not json"),
            Err(Unreadable::BodyNotJson)
        );
    }

    #[test]
    fn a_route_naming_an_unknown_parameter_is_refused() {
        let attrs = || {
            BTreeMap::from([
                ("type".to_owned(), "t".to_owned()),
                ("sensitivity".to_owned(), "public".to_owned()),
            ])
        };
        let target = TargetConfig {
            kind: "Resource".into(),
            system: "crm".into(),
            id: "{nope}".into(),
            attrs: attrs(),
        };
        assert!(Route::new(0, "GET", template("/crm/{id}"), "read".into(), target).is_err());
        let target = TargetConfig {
            kind: "Resource".into(),
            system: "crm".into(),
            id: "{id}".into(),
            attrs: attrs(),
        };
        assert!(Route::new(0, "get", template("/crm/{id}"), "read".into(), target).is_err());
        let bare = TargetConfig {
            kind: "Resource".into(),
            system: "crm".into(),
            id: "{id}".into(),
            attrs: BTreeMap::new(),
        };
        let e = Route::new(0, "GET", template("/crm/{id}"), "read".into(), bare);
        assert!(e.is_err_and(|e| e.contains("resource.attrs.type")));
    }
}
