//! Delegation by token exchange (RFC 8693): an agent hands a sub-agent a token that is
//! strictly narrower than its own — scopes a subset of the parent's, expiry no later than
//! the parent's — and records who delegated in a nested `act` claim. Chains are capped in
//! depth, and an identity may not appear twice in one chain.

use crate::claims::{AccessClaims, Act};

/// The longest delegation chain by default (the original holder not counted).
pub const DEFAULT_MAX_DEPTH: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    #[error("scope `{0}` is not in the parent token")]
    ScopeNotHeld(String),
    #[error("the sub-agent may not use `{0}`: it is not one of its registered systems")]
    ScopeNotAllowed(String),
    #[error("nothing would be left to delegate: the scopes do not overlap")]
    EmptyScope,
    #[error("delegation chains are limited to {0} hops")]
    TooDeep(usize),
    #[error("`{0}` already appears in this delegation chain")]
    Cycle(String),
    #[error("the parent token has expired")]
    ParentExpired,
}

impl DelegationError {
    pub fn code(&self) -> &'static str {
        match self {
            DelegationError::ScopeNotHeld(_) | DelegationError::ScopeNotAllowed(_) => {
                "scope_not_held"
            }
            DelegationError::EmptyScope => "empty_scope",
            DelegationError::TooDeep(_) => "delegation_too_deep",
            DelegationError::Cycle(_) => "delegation_cycle",
            DelegationError::ParentExpired => "token_expired",
        }
    }
}

/// What the child token gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: Vec<String>,
    pub exp: i64,
    pub act: Act,
    /// The jtis of every token above the child, nearest first: revoking any revokes it.
    pub parents: Vec<String>,
}

/// Narrows `parent` for the sub-agent `actor_sub`, whose own systems are `actor_systems`:
/// the requested scopes (or, if none, every parent scope the sub-agent may use) must be
/// held by the parent and allowed to the sub-agent; expiry is the earliest of the parent's
/// and `now + lifetime`.
pub fn delegate(
    parent: &AccessClaims,
    actor_sub: &str,
    actor_systems: &[String],
    requested: Option<&[String]>,
    now: i64,
    lifetime: i64,
    max_depth: usize,
) -> Result<Grant, DelegationError> {
    if parent.exp <= now {
        return Err(DelegationError::ParentExpired);
    }
    let held: Vec<&str> = parent.scopes().collect();
    let scope: Vec<String> = match requested {
        Some(req) => {
            for s in req {
                if !held.contains(&s.as_str()) {
                    return Err(DelegationError::ScopeNotHeld(s.clone()));
                }
                if !actor_systems.contains(s) {
                    return Err(DelegationError::ScopeNotAllowed(s.clone()));
                }
            }
            let mut v = req.to_vec();
            v.sort();
            v.dedup();
            v
        }
        None => held
            .iter()
            .filter(|s| actor_systems.iter().any(|a| a == *s))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    if scope.is_empty() {
        return Err(DelegationError::EmptyScope);
    }
    let chain = parent.act.as_ref().map(Act::chain).unwrap_or_default();
    if actor_sub == parent.sub || chain.iter().any(|s| s == actor_sub) {
        return Err(DelegationError::Cycle(actor_sub.to_owned()));
    }
    let act = Act {
        sub: parent.sub.clone(),
        client_id: Some(parent.client_id.clone()),
        cnf: parent.cnf.clone(),
        act: parent.act.clone().map(Box::new),
    };
    if act.depth() > max_depth {
        return Err(DelegationError::TooDeep(max_depth));
    }
    let mut parents = vec![parent.jti.clone()];
    parents.extend(parent.aim_parents.iter().cloned());
    Ok(Grant {
        scope,
        exp: parent.exp.min(now + lifetime),
        act,
        parents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_790_000_000;

    fn root(scope: &[&str]) -> AccessClaims {
        AccessClaims {
            iss: "https://aim".into(),
            sub: "spiffe://aim/agent/a0".into(),
            aud: "aim".into(),
            exp: NOW + 300,
            iat: NOW,
            nbf: NOW,
            jti: "j0".into(),
            client_id: "a0".into(),
            scope: scope.join(" "),
            aim_task: "t".into(),
            sid: "t".into(),
            act: None,
            cnf: None,
            aim_parents: Vec::new(),
        }
    }

    /// The child token a grant describes, as the issuer would mint it.
    fn child(parent: &AccessClaims, sub: &str, g: &Grant, n: usize) -> AccessClaims {
        AccessClaims {
            sub: sub.into(),
            client_id: format!("c{n}"),
            jti: format!("j{n}"),
            exp: g.exp,
            scope: g.scope.join(" "),
            act: Some(g.act.clone()),
            aim_parents: g.parents.clone(),
            ..parent.clone()
        }
    }

    #[test]
    fn refusals() {
        let p = root(&["crm", "billing"]);
        let all = ["crm".to_owned(), "billing".to_owned()];
        let d = |sub: &str, systems: &[String], req: Option<&[String]>| {
            delegate(&p, sub, systems, req, NOW, 300, 4)
                .map(|_| ())
                .unwrap_err()
                .code()
        };
        assert_eq!(d("b", &all, Some(&["hr".to_owned()])), "scope_not_held");
        assert_eq!(
            d("b", &["crm".to_owned()], Some(&["billing".to_owned()])),
            "scope_not_held"
        );
        assert_eq!(d("b", &["hr".to_owned()], None), "empty_scope");
        assert_eq!(d("spiffe://aim/agent/a0", &all, None), "delegation_cycle");
        let expired = AccessClaims {
            exp: NOW,
            ..p.clone()
        };
        assert_eq!(
            delegate(&expired, "b", &all, None, NOW, 300, 4)
                .unwrap_err()
                .code(),
            "token_expired"
        );
    }

    proptest! {
        /// Along any chain of delegations: each token's scopes are within its parent's,
        /// it expires no later, its `act` records the whole chain, it names every ancestor
        /// for revocation, no identity appears twice, and chains stop at the depth limit.
        #[test]
        fn chains_only_narrow(
            hops in proptest::collection::vec((0usize..6, proptest::collection::vec(0usize..4, 0..4), 1i64..400), 1..8),
            max_depth in 1usize..5,
        ) {
            let systems = ["crm", "billing", "hr", "mail"];
            let mut token = root(&systems);
            let mut seen = vec![token.sub.clone()];
            for (n, (who, wanted, lifetime)) in hops.into_iter().enumerate() {
                let sub = format!("spiffe://aim/agent/a{who}");
                let actor_systems: Vec<String> = systems.iter().map(|s| s.to_string()).collect();
                let requested: Vec<String> = wanted.iter().map(|i| systems[*i].to_owned()).collect();
                let req = (!requested.is_empty()).then_some(requested.as_slice());
                match delegate(&token, &sub, &actor_systems, req, NOW, lifetime, max_depth) {
                    Ok(g) => {
                        let held: Vec<&str> = token.scopes().collect();
                        prop_assert!(g.scope.iter().all(|s| held.contains(&s.as_str())));
                        prop_assert!(g.exp <= token.exp);
                        prop_assert!(!seen.contains(&sub), "a cycle was let through");
                        prop_assert!(g.act.depth() <= max_depth);
                        prop_assert_eq!(g.act.chain().len(), seen.len());
                        prop_assert_eq!(g.act.client_ids().map(|c| c.len()), Some(seen.len()));
                        prop_assert_eq!(g.act.client_id.as_deref(), Some(token.client_id.as_str()));
                        prop_assert_eq!(g.parents.len(), seen.len());
                        prop_assert_eq!(&g.parents[0], &token.jti);
                        seen.push(sub.clone());
                        token = child(&token, &sub, &g, n + 1);
                    }
                    Err(DelegationError::Cycle(s)) => prop_assert!(seen.contains(&s)),
                    Err(DelegationError::TooDeep(_)) => prop_assert!(seen.len() >= max_depth),
                    Err(DelegationError::ScopeNotHeld(s)) => {
                        prop_assert!(!token.scopes().any(|h| h == s));
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }
    }
}
