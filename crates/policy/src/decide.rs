//! One decision: aim's own scoping rules first, then the slice of the Cedar policies whose
//! scope matches, failing closed on any error.

use crate::schema::AimSchema;
use std::collections::{HashMap, HashSet};

use aim_domain::human::Human;
use aim_domain::identity::Identity;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use cedar_policy::{
    Authorizer, Entity, EntityTypeName, EntityUid, PolicyId, PolicySet, Request, Schema,
};

pub use aim_domain::decision::{Call, Decision, Effect, Target};

use crate::compile::Compiled;
use crate::slice::{Index, Side};

mod request;
use request::build;

/// The rule ids aim reports for its own checks, which no policy can override.
pub const TASK_SCOPE: &str = "aim/task-scope";
pub const SCOPE_OF_THOUGHT: &str = "aim/scope-of-thought";
pub const NOT_ACTIVE: &str = "aim/identity-not-active";

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    Identity {
        identity: &'a Identity,
        /// Present when policies may look at `principal.sponsor`'s attributes.
        sponsor: Option<&'a Human>,
        /// Every group the identity is in, directly or not (its team is added).
        groups: &'a [String],
    },
    Human {
        human: &'a Human,
        groups: &'a [String],
    },
}

/// One question: may this principal take this action on this target now?
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub principal: Principal<'a>,
    /// An action name in the `Aim` namespace: `read`, or one a deployment added.
    pub action: &'a str,
    pub target: &'a Target,
    pub task: Option<&'a Task>,
    pub now: Timestamp,
    pub call: &'a Call,
}

type PrincipalCache = HashMap<(aim_domain::ids::IdentityId, i64, Vec<String>), (EntityUid, Entity)>;

/// A validated policy set ready to decide, with its scope index.
#[derive(Debug)]
pub struct Engine {
    schema: AimSchema,
    compiled: Compiled,
    index: Index,
    /// Each action by name: its uid, the action groups it is in, and the action entities
    /// a request for it needs (itself and its groups, as the schema declares them).
    actions: HashMap<String, Action>,
    /// Identities' entities by id, record version and extra groups (see `request.rs`).
    principals: std::sync::Mutex<PrincipalCache>,
    /// The schema's entity types by name without the `Aim::` namespace: parsing a name
    /// per request would run Cedar's parser.
    types: HashMap<String, EntityTypeName>,
    /// Whether any policy mentions `time`: parsing the `datetime` costs as much as a
    /// decision, so it is left out of the context when nothing reads it.
    needs_time: bool,
    /// Whether any policy reads an attribute called `sponsor` (`principal.sponsor.active`):
    /// only then is an identity's sponsor worth loading for a decision.
    reads_sponsor: bool,
    /// Each policy's `@reason` and `@approval`, read once: Cedar parses the key on every
    /// annotation lookup.
    notes: HashMap<PolicyId, Notes>,
    /// Slices already built, by the positions they hold: requests of the same shape
    /// (one agent, one action, one kind of record) use the same slice.
    slices: std::sync::Mutex<HashMap<Vec<u32>, std::sync::Arc<PolicySet>>>,
    /// Target shapes (type, attribute names and value types) already checked against the
    /// schema: checking costs more than deciding, and callers send few distinct shapes.
    checked_shapes: std::sync::Mutex<HashSet<String>>,
    authorizer: Authorizer,
}

#[derive(Debug)]
struct Action {
    uid: EntityUid,
    groups: HashSet<EntityUid>,
    entities: Vec<Entity>,
}

/// What aim reads from a policy's annotations.
#[derive(Debug)]
struct Notes {
    reason: Option<String>,
    approval: Option<String>,
}

/// Why a query could not be put to Cedar; the caller answers 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("bad target: {0}")]
    BadTarget(String),
}

impl QueryError {
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::UnknownAction(_) => "unknown_action",
            QueryError::BadTarget(_) => "bad_target",
        }
    }
}

impl Engine {
    pub fn new(schema: AimSchema, compiled: Compiled) -> Result<Self, String> {
        let actions = schema.action_entities().map_err(|e| e.to_string())?;
        let mut by_name = HashMap::new();
        for a in actions.iter() {
            let id = a.uid();
            let groups: HashSet<EntityUid> = actions
                .ancestors(&id)
                .map(|i| i.cloned().collect())
                .unwrap_or_default();
            let entities = actions
                .iter()
                .filter(|e| e.uid() == id || groups.contains(&e.uid()))
                .cloned()
                .collect();
            by_name.insert(
                id.id().unescaped().to_owned(),
                Action {
                    uid: id,
                    groups,
                    entities,
                },
            );
        }
        let types = schema
            .entity_types()
            .filter_map(|t| {
                let name = t.to_string();
                name.strip_prefix("Aim::")
                    .map(|short| (short.to_owned(), t.clone()))
            })
            .collect();
        let needs_time = cfg!(debug_assertions)
            || compiled
                .flat
                .iter()
                .any(|p| p.to_cedar().is_none_or(|t| t.contains("time")));
        let reads_sponsor = compiled.flat.iter().any(|p| {
            p.to_json().map_or(true, |j| {
                let j = j.to_string();
                j.contains(r#""attr":"sponsor""#)
            })
        });
        let notes = compiled
            .flat
            .iter()
            .map(|p| {
                let note = |k: &str| p.annotation(k).map(str::to_owned);
                (
                    p.id().clone(),
                    Notes {
                        reason: note("reason"),
                        approval: note("approval"),
                    },
                )
            })
            .collect();
        Ok(Engine {
            index: Index::new(&compiled.flat),
            schema,
            compiled,
            actions: by_name,
            types,
            needs_time,
            reads_sponsor,
            slices: std::sync::Mutex::new(HashMap::new()),
            notes,
            checked_shapes: std::sync::Mutex::new(HashSet::new()),
            principals: std::sync::Mutex::new(HashMap::new()),
            authorizer: Authorizer::new(),
        })
    }

    /// The action and every action group it is in (`refund`, `write`), or `None` for an
    /// action the schema does not know.
    pub fn action_names(&self, action: &str) -> Option<Vec<String>> {
        let a = self.actions.get(action)?;
        let mut names = vec![action.to_owned()];
        names.extend(a.groups.iter().map(|g| g.id().unescaped().to_owned()));
        Some(names)
    }

    /// Whether a decision needs the identity's sponsor ([`Principal::Identity`]'s
    /// `sponsor`): some policy reads `principal.sponsor`'s attributes. Without it, such a
    /// policy fails closed.
    pub fn reads_sponsor(&self) -> bool {
        self.reads_sponsor
    }

    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Decides on the slice of policies whose scope matches.
    pub fn decide(&self, q: &Query<'_>) -> Result<Decision, QueryError> {
        self.decide_with(q, true)
    }

    /// Decides on the whole set, as plain Cedar would: the reference the slicing is tested
    /// against.
    pub fn decide_full(&self, q: &Query<'_>) -> Result<Decision, QueryError> {
        self.decide_with(q, false)
    }

    fn decide_with(&self, q: &Query<'_>, sliced: bool) -> Result<Decision, QueryError> {
        let Some(Action {
            uid: action,
            groups: action_groups,
            entities: action_entities,
        }) = self.actions.get(q.action)
        else {
            return Err(QueryError::UnknownAction(q.action.to_owned()));
        };
        if let Some(d) = aim_rules(q, &self.schema) {
            return Ok(d);
        }
        let built = build(q, self, action_entities)?;
        // aim builds the principal and the context itself, to the schema (the tests build
        // them checked); only the caller's target needs checking, once per shape.
        let request = Request::new(
            built.principal.clone(),
            action.clone(),
            built.resource.clone(),
            built.context,
            cfg!(debug_assertions).then_some(&self.schema),
        )
        .map_err(request::bad_cedar)?;
        let slice;
        let set: &PolicySet = if sliced {
            let positions = self.index.slice(
                Side {
                    uid: &built.principal,
                    ancestors: &built.principal_groups,
                },
                Side {
                    uid: action,
                    ancestors: action_groups,
                },
                Side {
                    uid: &built.resource,
                    ancestors: &built.resource_groups,
                },
            );
            slice = self.slice_set(positions)?;
            &slice
        } else {
            &self.compiled.set
        };
        let response = self
            .authorizer
            .is_authorized(&request, set, &built.entities);
        Ok(self.verdict(&response))
    }

    /// The policy set of a slice, built once and kept (up to 4,096 slices).
    fn slice_set(&self, positions: Vec<u32>) -> Result<std::sync::Arc<PolicySet>, QueryError> {
        if let Some(set) = self
            .slices
            .lock()
            .ok()
            .and_then(|m| m.get(&positions).cloned())
        {
            return Ok(set);
        }
        let set = std::sync::Arc::new(
            PolicySet::from_policies(
                positions
                    .iter()
                    .map(|&i| self.compiled.flat[i as usize].clone()),
            )
            .map_err(|e| QueryError::BadTarget(e.to_string()))?,
        );
        if let Ok(mut m) = self.slices.lock() {
            if m.len() >= 4096 {
                m.clear();
            }
            m.insert(positions, set.clone());
        }
        Ok(set)
    }

    fn verdict(&self, response: &cedar_policy::Response) -> Decision {
        let diagnostics = response.diagnostics();
        let mut policies: Vec<&PolicyId> = diagnostics.reason().collect();
        policies.sort_by_key(|p| p.to_string());
        let mut errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        errors.sort();
        let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
        let annotated = |pick: fn(&Notes) -> &Option<String>| -> Vec<String> {
            policies
                .iter()
                .filter_map(|p| self.notes.get(p).and_then(|n| pick(n).clone()))
                .collect()
        };
        if !errors.is_empty() {
            // Cedar skips a policy that errors; a skipped forbid must not let an allow
            // through, so any error denies, naming the policies that failed.
            let mut failed: Vec<String> = diagnostics
                .errors()
                .map(
                    |cedar_policy::AuthorizationError::PolicyEvaluationError(e)| {
                        e.policy_id().to_string()
                    },
                )
                .collect();
            failed.sort();
            return Decision {
                decision: Effect::Deny,
                policies: failed,
                reasons: vec!["a policy could not be evaluated; failing closed".into()],
                approvers: Vec::new(),
                errors,
            };
        }
        let mut reasons = annotated(|n| &n.reason);
        match response.decision() {
            cedar_policy::Decision::Deny => {
                if policies.is_empty() {
                    reasons.push("no policy permits this (default deny)".into());
                } else if reasons.is_empty() {
                    reasons.push(format!("forbidden by {}", names.join(", ")));
                }
                Decision {
                    decision: Effect::Deny,
                    policies: names,
                    reasons,
                    approvers: Vec::new(),
                    errors,
                }
            }
            cedar_policy::Decision::Allow => {
                // `@approval("sponsor, group:finance-approvers")` names several.
                // Checked when the set was compiled.
                let mut approvers: Vec<String> = annotated(|n| &n.approval)
                    .iter()
                    .flat_map(|a| crate::compile::approvers(a).unwrap_or_default())
                    .collect();
                approvers.sort();
                approvers.dedup();
                if reasons.is_empty() {
                    reasons.push(format!("permitted by {}", names.join(", ")));
                }
                Decision {
                    decision: if approvers.is_empty() {
                        Effect::Allow
                    } else {
                        Effect::ApprovalRequired
                    },
                    policies: names,
                    reasons,
                    approvers,
                    errors,
                }
            }
        }
    }
}

/// aim's own rules, which no policy can override: only active identities act, a task's
/// systems bound what it may touch, and a task bound to a subject touches no other
/// subject's data, nor a record of a type that carries subjects but names none.
fn aim_rules(q: &Query<'_>, schema: &AimSchema) -> Option<Decision> {
    if let Principal::Identity { identity, .. } = q.principal
        && identity.state != aim_domain::lifecycle::LifecycleState::Active
    {
        return Some(Decision::deny(
            NOT_ACTIVE,
            format!("identity {} is {}", identity.name, identity.state),
        ));
    }
    let task = q.task?;
    if !task.systems.contains(&q.target.system) {
        return Some(Decision::deny(
            TASK_SCOPE,
            format!(
                "system {} is outside the task's systems ({})",
                q.target.system,
                task.systems.join(", ")
            ),
        ));
    }
    let bound = task.subject.as_ref()?;
    match q.target.subject() {
        Some(other) if other != bound => Some(Decision::deny(
            SCOPE_OF_THOUGHT,
            format!("the task is bound to {bound}; this is {other}'s data"),
        )),
        // INVARIANT: leaving `subject` out never skips the rule; only a type the schema
        // declares without a `subject` attribute is subject-free.
        None if schema.bears_subject(&q.target.kind) => Some(Decision::deny(
            SCOPE_OF_THOUGHT,
            format!(
                "the task is bound to {bound}; this {} names no subject, and its type carries subjects",
                q.target.kind
            ),
        )),
        _ => None,
    }
}
