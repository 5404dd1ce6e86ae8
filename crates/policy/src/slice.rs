//! Which policies can apply to a request, found without evaluating them.
//!
//! Cedar evaluates every policy in the set it is given, so a decision's cost grows with the
//! set. A policy applies only if its scope matches: its principal, action and resource
//! constraints. The index files each policy under its constraint in each of the three
//! positions (by entity for `==` and `in`, by type for `is`, or as unscoped); a request
//! looks up its principal, action and resource and their ancestors, takes the smallest of
//! the three candidate lists, and keeps the candidates whose whole scope matches. The slice
//! then decides exactly as the whole set would: a policy left out has a scope that cannot
//! match, so it could neither permit, forbid nor error.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PrincipalConstraint, ResourceConstraint,
};

/// One side of a request: the entity and everything it is `in`.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub uid: &'a EntityUid,
    pub ancestors: &'a HashSet<EntityUid>,
}

impl Side<'_> {
    fn is_in(&self, group: &EntityUid) -> bool {
        self.uid == group || self.ancestors.contains(group)
    }
}

#[derive(Debug, Default)]
struct Position {
    by_uid: HashMap<EntityUid, Vec<u32>>,
    by_type: HashMap<EntityTypeName, Vec<u32>>,
    any: Vec<u32>,
}

impl Position {
    /// Candidates for a side; a policy may appear twice (an action listed twice).
    fn candidates(&self, side: Side<'_>, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.any);
        if let Some(v) = self.by_type.get(side.uid.type_name()) {
            out.extend_from_slice(v);
        }
        for uid in std::iter::once(side.uid).chain(side.ancestors.iter()) {
            if let Some(v) = self.by_uid.get(uid) {
                out.extend_from_slice(v);
            }
        }
    }

    fn count(&self, side: Side<'_>) -> usize {
        let mut n = self.any.len();
        n += self.by_type.get(side.uid.type_name()).map_or(0, Vec::len);
        for uid in std::iter::once(side.uid).chain(side.ancestors.iter()) {
            n += self.by_uid.get(uid).map_or(0, Vec::len);
        }
        n
    }
}

/// The policies of one set, indexed by scope.
#[derive(Debug, Default)]
pub struct Index {
    principal: Position,
    action: Position,
    resource: Position,
    scopes: Vec<Scope>,
}

#[derive(Debug)]
struct Scope {
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

impl Index {
    pub fn new(policies: &[Policy]) -> Self {
        let mut index = Index::default();
        for (i, p) in policies.iter().enumerate() {
            let i = i as u32;
            let principal = p.principal_constraint();
            match &principal {
                PrincipalConstraint::Any => index.principal.any.push(i),
                PrincipalConstraint::Is(t) => index.principal.file_type(t, i),
                PrincipalConstraint::Eq(u)
                | PrincipalConstraint::In(u)
                | PrincipalConstraint::IsIn(_, u) => index.principal.file_uid(u, i),
            }
            let action = p.action_constraint();
            match &action {
                ActionConstraint::Any => index.action.any.push(i),
                ActionConstraint::Eq(u) => index.action.file_uid(u, i),
                ActionConstraint::In(us) => {
                    for u in us {
                        index.action.file_uid(u, i);
                    }
                }
            }
            let resource = p.resource_constraint();
            match &resource {
                ResourceConstraint::Any => index.resource.any.push(i),
                ResourceConstraint::Is(t) => index.resource.file_type(t, i),
                ResourceConstraint::Eq(u)
                | ResourceConstraint::In(u)
                | ResourceConstraint::IsIn(_, u) => index.resource.file_uid(u, i),
            }
            index.scopes.push(Scope {
                principal,
                action,
                resource,
            });
        }
        index
    }

    /// The positions (into the indexed slice) of every policy whose scope matches, in
    /// ascending order.
    pub fn slice(&self, principal: Side<'_>, action: Side<'_>, resource: Side<'_>) -> Vec<u32> {
        let counts = [
            self.principal.count(principal),
            self.action.count(action),
            self.resource.count(resource),
        ];
        let mut out = Vec::new();
        match counts
            .iter()
            .enumerate()
            .min_by_key(|(_, n)| **n)
            .map(|(i, _)| i)
        {
            Some(0) => self.principal.candidates(principal, &mut out),
            Some(1) => self.action.candidates(action, &mut out),
            _ => self.resource.candidates(resource, &mut out),
        }
        out.sort_unstable();
        out.dedup();
        out.retain(|&i| self.scopes[i as usize].matches(principal, action, resource));
        out
    }
}

impl Position {
    fn file_uid(&mut self, uid: &EntityUid, i: u32) {
        self.by_uid.entry(uid.clone()).or_default().push(i);
    }
    fn file_type(&mut self, t: &EntityTypeName, i: u32) {
        self.by_type.entry(t.clone()).or_default().push(i);
    }
}

impl Scope {
    fn matches(&self, principal: Side<'_>, action: Side<'_>, resource: Side<'_>) -> bool {
        let p = match &self.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => principal.uid == u,
            PrincipalConstraint::In(u) => principal.is_in(u),
            PrincipalConstraint::Is(t) => principal.uid.type_name() == t,
            PrincipalConstraint::IsIn(t, u) => principal.uid.type_name() == t && principal.is_in(u),
        };
        let a = match &self.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(u) => action.uid == u,
            ActionConstraint::In(us) => us.iter().any(|u| action.is_in(u)),
        };
        let r = match &self.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(u) => resource.uid == u,
            ResourceConstraint::In(u) => resource.is_in(u),
            ResourceConstraint::Is(t) => resource.uid.type_name() == t,
            ResourceConstraint::IsIn(t, u) => resource.uid.type_name() == t && resource.is_in(u),
        };
        p && a && r
    }
}
