//! Tables for people, JSON for scripts. Every string a user or agent supplied is printed
//! with control characters escaped, so a value can never forge lines or colours.

use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Format;

/// Escapes control characters (`\n` → `\\n`, ESC → `\\u{1b}`).
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Names for ids: what aim sends beside a list (`names`), or what the CLI looked up for
/// one object. People read names; the ids stay in JSON, with the names beside them.
#[derive(Debug, Default, Clone)]
pub struct Names(pub std::collections::BTreeMap<String, String>);

impl Names {
    /// The name of `id` if it has one, else the id as given, escaped for a table.
    pub fn of(&self, id: &impl ToString) -> String {
        let id = id.to_string();
        clean(self.0.get(&id).unwrap_or(&id))
    }

    /// The user names of these humans, one request each (for one object, not a list).
    pub async fn of_humans(
        client: &aim_client::Client,
        ids: impl IntoIterator<Item = aim_domain::ids::HumanId>,
    ) -> Names {
        let mut names = Names::default();
        for id in ids {
            let key = id.to_string();
            if names.0.contains_key(&key) {
                continue;
            }
            if let Ok(h) = client.human(id).await {
                names.0.insert(key, h.user_name);
            }
        }
        names
    }

    /// Adds the name of identity `id`, if this credential may read it.
    pub async fn add_identity(
        &mut self,
        client: &aim_client::Client,
        id: aim_domain::ids::IdentityId,
    ) {
        if let Ok(i) = client.identity(id).await {
            self.0.insert(id.to_string(), i.name);
        }
    }
}

/// `value` with a `<field>_name` beside each field that holds a named id (`identity_id` →
/// `identity_name`, `decided_by` → `decided_by_name`, an actor's `id` → `name`), never
/// replacing a field that is there.
pub fn with_names(value: &mut serde_json::Value, names: &Names) {
    use serde_json::Value;
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| with_names(v, names)),
        Value::Object(m) => {
            let mut found = Vec::new();
            for (key, v) in m.iter_mut() {
                match v {
                    Value::String(id) => {
                        // An id alone, or as `kind:id` (a key's `created_by`).
                        let bare = id.split_once(':').map_or(id.as_str(), |(_, id)| id);
                        let named = names.0.get(id.as_str()).or_else(|| names.0.get(bare));
                        if let Some(name) = named {
                            let field = match key.as_str() {
                                "id" => "name".to_owned(),
                                k => format!("{}_name", k.strip_suffix("_id").unwrap_or(k)),
                            };
                            found.push((field, name.clone()));
                        }
                    }
                    other => with_names(other, names),
                }
            }
            for (field, name) in found {
                m.entry(field).or_insert(Value::String(name));
            }
        }
        _ => {}
    }
}

/// [`emit`], with the names of the ids `value` holds: beside them in JSON, and for
/// `table` to print.
pub fn emit_named<T: Serialize>(
    format: Format,
    value: &T,
    names: &Names,
    table: impl FnOnce(&T, &Names),
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(value)?;
            with_names(&mut v, names);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => table(value, names),
    }
    Ok(())
}

/// Prints `value` as JSON, or calls `table` to print it for people.
pub fn emit<T: Serialize>(format: Format, value: &T, table: impl FnOnce(&T)) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Table => table(value),
    }
    Ok(())
}

/// Columns aligned on the widest cell.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    pub fn print(&self) {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$}  ", w = widths[i]);
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// `key: value` lines.
pub fn fields(pairs: &[(&str, String)]) {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{k:<w$}  {}", clean(v));
    }
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_go_beside_the_ids() {
        let names = super::Names(
            [
                ("i1".to_owned(), "agt-x".to_owned()),
                ("h1".to_owned(), "ann".to_owned()),
            ]
            .into(),
        );
        let mut v = serde_json::json!([{
            "id": "i1", "name": "agt-x-own", "identity_id": "i1", "decided_by": "h1",
            "actor": { "kind": "human", "id": "h1" }, "other": "zz", "created_by": "human:h1",
        }]);
        super::with_names(&mut v, &names);
        assert_eq!(v[0]["name"], "agt-x-own", "never replaced");
        assert_eq!(v[0]["identity_name"], "agt-x");
        assert_eq!(v[0]["decided_by_name"], "ann");
        assert_eq!(v[0]["actor"]["name"], "ann");
        assert!(v[0].get("other_name").is_none());
        assert_eq!(v[0]["created_by_name"], "ann");
        assert_eq!(names.of(&"h1"), "ann");
        assert_eq!(names.of(&"zz"), "zz");
    }

    use super::*;

    #[test]
    fn control_characters_cannot_forge_output() {
        assert_eq!(clean("a\nb"), "a\\nb");
        assert_eq!(clean("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(clean("plain"), "plain");
    }
}
