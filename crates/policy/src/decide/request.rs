//! A query turned into what Cedar takes: the request's entities (principal, its groups,
//! the target and its system, the action and its groups) and its context, built to the
//! schema; a caller's target is checked against the schema once per shape.

use std::collections::HashSet;

use aim_domain::human::Human;
use aim_domain::time::Timestamp;
use cedar_policy::{Context, Entities, Entity, EntityId, EntityUid, RestrictedExpression};
use serde_json::Value;

use super::{Engine, Principal, Query, QueryError, Target};

pub(super) struct Built {
    pub(super) principal: EntityUid,
    pub(super) principal_groups: HashSet<EntityUid>,
    pub(super) resource: EntityUid,
    pub(super) resource_groups: HashSet<EntityUid>,
    pub(super) entities: Entities,
    pub(super) context: Context,
}

type Attrs = Vec<(String, RestrictedExpression)>;

fn text(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn texts<'a>(items: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(|s| text(s)))
}

fn bad(e: impl std::fmt::Display) -> QueryError {
    QueryError::BadTarget(e.to_string())
}

/// A Cedar error with what it wraps: "entity does not conform to the schema" alone does
/// not say that `sensitivity` should have been a string.
pub(super) fn bad_cedar(e: impl std::error::Error) -> QueryError {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !message.contains(&more) {
            message.push_str(": ");
            message.push_str(&more);
        }
        source = s.source();
    }
    QueryError::BadTarget(message)
}

/// A JSON attribute value as Cedar's: strings, booleans, integers, arrays (sets), objects
/// (records), `{"__entity": {"type", "id"}}` and `{"__extn": {"fn", "arg"}}`.
fn value(v: &Value) -> Result<RestrictedExpression, QueryError> {
    Ok(match v {
        Value::String(s) => text(s),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(
            n.as_i64()
                .ok_or_else(|| bad(format!("{n} is not a 64-bit integer")))?,
        ),
        Value::Array(items) => {
            RestrictedExpression::new_set(items.iter().map(value).collect::<Result<Vec<_>, _>>()?)
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("__entity") => {
            RestrictedExpression::new_entity_uid(
                EntityUid::from_json(m["__entity"].clone()).map_err(bad)?,
            )
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("__extn") => {
            let f = m["__extn"]["fn"].as_str().unwrap_or_default();
            let arg = m["__extn"]["arg"]
                .as_str()
                .ok_or_else(|| bad("__extn needs a string arg"))?;
            match f {
                "datetime" => RestrictedExpression::new_datetime(arg),
                "duration" => RestrictedExpression::new_duration(arg),
                "decimal" => RestrictedExpression::new_decimal(arg),
                "ip" => RestrictedExpression::new_ip(arg),
                other => return Err(bad(format!("unknown extension function {other:?}"))),
            }
        }
        Value::Object(m) => RestrictedExpression::new_record(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), value(v)?)))
                .collect::<Result<Vec<_>, QueryError>>()?,
        )
        .map_err(bad)?,
        Value::Null => return Err(bad("null is not a value; leave the attribute out")),
    })
}

/// How many identities' entities an engine keeps.
const PRINCIPAL_CACHE: usize = 100_000;

/// An identity as a Cedar entity: its attributes, labels as tags, its groups as parents.
fn identity_entity(
    identity: &aim_domain::identity::Identity,
    groups: &[&str],
    aim_uid: &Uid<'_>,
) -> Result<(EntityUid, Entity), QueryError> {
    let mut attrs: Attrs = vec![
        ("name".into(), text(&identity.name)),
        ("kind".into(), text(identity.kind.as_str())),
        ("autonomy".into(), text(identity.autonomy.as_str())),
        ("risk_tier".into(), text(identity.risk.tier.as_str())),
        (
            "data_sensitivity".into(),
            text(identity.data_sensitivity.as_str()),
        ),
        (
            "sponsor".into(),
            RestrictedExpression::new_entity_uid(aim_uid(
                "Human",
                &identity.sponsor_id.to_string(),
            )?),
        ),
        ("systems".into(), texts(&identity.systems)),
        ("state".into(), text(identity.state.as_str())),
    ];
    if let Some(team) = &identity.owner_team {
        attrs.push(("team".into(), text(team)));
    }
    let id = aim_uid("Identity", &identity.id.to_string())?;
    let parents = groups
        .iter()
        .map(|g| aim_uid("Group", g))
        .collect::<Result<Vec<_>, _>>()?;
    let tags = identity.labels.iter().map(|(k, v)| (k.clone(), text(v)));
    let entity = Entity::new_with_tags(id.clone(), attrs, parents, tags).map_err(bad)?;
    Ok((id, entity))
}

type Uid<'a> = dyn Fn(&str, &str) -> Result<EntityUid, QueryError> + 'a;

/// The request's entities and context, checked against the schema.
pub(super) fn build(
    q: &Query<'_>,
    engine: &Engine,
    actions: &[Entity],
) -> Result<Built, QueryError> {
    let aim_uid = |kind: &str, id: &str| -> Result<EntityUid, QueryError> {
        let t = engine
            .types
            .get(kind)
            .ok_or_else(|| bad(format!("the schema has no entity type Aim::{kind}")))?;
        Ok(EntityUid::from_type_name_and_id(
            t.clone(),
            EntityId::new(id),
        ))
    };
    let mut entities = Vec::with_capacity(4);
    let (principal, groups) = principal_entities(q, engine, &aim_uid, &mut entities)?;
    // Groups and systems are not entities of their own: they have no attributes and no
    // parents, and membership (`principal in Aim::Group::"g"`) is read from the member's
    // parents, which aim gives in full. Fewer entities make Cedar's transitive closure
    // (most of building a request) cheaper; `has` on a group or system is false and any
    // attribute of one an error, as they would be with the entity present.
    let principal_groups = groups
        .iter()
        .map(|g| aim_uid("Group", g))
        .collect::<Result<HashSet<_>, _>>()?;
    let (resource, resource_groups) = target_entities(q, engine, &aim_uid, &mut entities)?;
    // In tests every request's entities are checked against the schema too.
    let schema = cfg!(debug_assertions).then_some(&*engine.schema);
    entities.extend(actions.iter().cloned());
    let entities = Entities::from_entities(entities, schema).map_err(bad_cedar)?;
    let context = Context::from_pairs(context_pairs(q, engine)?).map_err(bad)?;
    Ok(Built {
        principal,
        principal_groups,
        resource,
        resource_groups,
        entities,
        context,
    })
}

/// The principal's entity (and its sponsor's), pushed onto `entities`; its uid and groups.
fn principal_entities<'q>(
    q: &Query<'q>,
    engine: &Engine,
    aim_uid: &Uid<'_>,
    entities: &mut Vec<Entity>,
) -> Result<(EntityUid, Vec<&'q str>), QueryError> {
    match q.principal {
        Principal::Identity {
            identity,
            sponsor,
            groups,
        } => {
            let mut all: Vec<&str> = groups.iter().map(String::as_str).collect();
            if let Some(team) = &identity.owner_team {
                all.push(team);
            }
            // An identity's entity changes only with its record (a new version), so it
            // is built once per version and group list and kept.
            let key = (identity.id, identity.version, groups.to_vec());
            let cached = engine
                .principals
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned());
            let (id, entity) = match cached {
                Some(hit) => hit,
                None => {
                    let built = identity_entity(identity, &all, aim_uid)?;
                    if let Ok(mut c) = engine.principals.lock() {
                        if c.len() >= PRINCIPAL_CACHE {
                            c.clear();
                        }
                        c.insert(key, built.clone());
                    }
                    built
                }
            };
            entities.push(entity);
            if let Some(h) = sponsor {
                let uid = aim_uid("Human", &h.id.to_string())?;
                let groups = h
                    .groups
                    .iter()
                    .map(|g| aim_uid("Group", g))
                    .collect::<Result<Vec<_>, _>>()?;
                entities.push(human_entity(h, uid, groups)?);
            }
            Ok((id, all))
        }
        Principal::Human { human, groups } => {
            let all: Vec<&str> = groups.iter().map(String::as_str).collect();
            let id = aim_uid("Human", &human.id.to_string())?;
            let parents = all
                .iter()
                .map(|g| aim_uid("Group", g))
                .collect::<Result<Vec<_>, _>>()?;
            entities.push(human_entity(human, id.clone(), parents)?);
            Ok((id, all))
        }
    }
}

/// The target's entity and its system's, pushed onto `entities`; its uid and parents.
fn target_entities(
    q: &Query<'_>,
    engine: &Engine,
    aim_uid: &Uid<'_>,
    entities: &mut Vec<Entity>,
) -> Result<(EntityUid, HashSet<EntityUid>), QueryError> {
    let t = q.target;
    if t.kind.is_empty() || t.kind.contains("::") || t.system.is_empty() {
        return Err(bad(
            "a target needs a type (without namespace), an id and a system",
        ));
    }
    let system = aim_uid("System", &t.system)?;
    let resource = aim_uid(&t.kind, &t.id)?;
    if t.kind == "System" {
        if t.id != t.system {
            return Err(bad("a System target's id is its system"));
        }
        return Ok((resource, HashSet::new()));
    }
    let mut attrs = t
        .attrs
        .iter()
        .map(|(k, v)| Ok((k.clone(), value(v)?)))
        .collect::<Result<Attrs, QueryError>>()?;
    attrs.push((
        "system".into(),
        RestrictedExpression::new_entity_uid(system.clone()),
    ));
    let tags = t.tags.iter().map(|(k, v)| (k.clone(), text(v)));
    let target = Entity::new_with_tags(resource.clone(), attrs, [system.clone()], tags)
        .map_err(bad_cedar)?;
    engine.check_shape(t, &target)?;
    entities.push(target);
    Ok((resource, HashSet::from([system])))
}

impl Engine {
    /// Checks a target against the schema unless one of the same shape passed before.
    fn check_shape(&self, t: &Target, entity: &Entity) -> Result<(), QueryError> {
        let mut shape = t.kind.clone();
        for (k, v) in &t.attrs {
            shape.push(' ');
            shape.push_str(k);
            shape.push(':');
            shape_of(v, &mut shape);
        }
        for k in t.tags.keys() {
            shape.push_str(" #");
            shape.push_str(k);
        }
        let known = |s: &HashSet<String>| s.contains(&shape);
        if self.checked_shapes.lock().is_ok_and(|s| known(&s)) {
            return Ok(());
        }
        Entities::from_entities([entity.clone()], Some(&*self.schema)).map_err(bad_cedar)?;
        if let Ok(mut s) = self.checked_shapes.lock() {
            if s.len() >= 4096 {
                s.clear();
            }
            s.insert(shape);
        }
        Ok(())
    }
}

/// A value's type as the schema sees it: strings' contents do not matter, entity types
/// and extension functions do.
fn shape_of(v: &Value, out: &mut String) {
    match v {
        Value::String(_) => out.push('s'),
        Value::Bool(_) => out.push('b'),
        Value::Number(_) => out.push('n'),
        Value::Null => out.push('0'),
        Value::Array(items) => {
            out.push('[');
            for i in items {
                shape_of(i, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("__entity") => {
            out.push_str("e:");
            out.push_str(m["__entity"]["type"].as_str().unwrap_or("?"));
        }
        Value::Object(m) if m.len() == 1 && m.contains_key("__extn") => {
            out.push_str("x:");
            out.push_str(m["__extn"]["fn"].as_str().unwrap_or("?"));
        }
        Value::Object(m) => {
            out.push('{');
            for (k, v) in m {
                out.push_str(k);
                out.push(':');
                shape_of(v, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

fn human_entity(h: &Human, id: EntityUid, parents: Vec<EntityUid>) -> Result<Entity, QueryError> {
    let attrs: Attrs = vec![
        ("user_name".into(), text(&h.user_name)),
        (
            "roles".into(),
            RestrictedExpression::new_set(h.roles.iter().map(|r| text(r.as_str()))),
        ),
        (
            "active".into(),
            RestrictedExpression::new_bool(h.is_active()),
        ),
    ];
    Entity::new(
        id,
        attrs.into_iter().collect(),
        parents.into_iter().collect(),
    )
    .map_err(bad)
}

fn context_pairs(q: &Query<'_>, engine: &Engine) -> Result<Attrs, QueryError> {
    let secs = q.now.as_millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let mut call: Attrs = Vec::new();
    for (k, v) in [
        ("method", &q.call.method),
        ("path", &q.call.path),
        ("ip", &q.call.ip),
        ("args_hash", &q.call.args_hash),
    ] {
        if let Some(v) = v {
            call.push((k.into(), text(v)));
        }
    }
    let mut pairs: Attrs = vec![
        (
            "hour".into(),
            RestrictedExpression::new_long(secs.rem_euclid(86_400) / 3600),
        ),
        // 1970-01-01 was a Thursday (ISO 4).
        (
            "weekday".into(),
            RestrictedExpression::new_long((days + 3).rem_euclid(7) + 1),
        ),
        (
            "call".into(),
            RestrictedExpression::new_record(call).map_err(bad)?,
        ),
    ];
    if engine.needs_time {
        pairs.push((
            "time".into(),
            RestrictedExpression::new_datetime(Timestamp::from_millis(secs * 1000).to_rfc3339()),
        ));
    }
    if let Some(t) = q.task {
        let mut task: Attrs = vec![
            ("id".into(), text(&t.id.to_string())),
            ("purpose".into(), text(&t.purpose)),
            ("systems".into(), texts(&t.systems)),
            ("triggered_by".into(), text(&t.triggered_by)),
        ];
        if let Some(s) = &t.subject {
            task.push(("subject".into(), text(s)));
        }
        pairs.push((
            "task".into(),
            RestrictedExpression::new_record(task).map_err(bad)?,
        ));
    }
    Ok(pairs)
}
