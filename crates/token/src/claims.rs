//! The claims of an aim access token (RFC 9068 profile, with RFC 8693 `act` and RFC 9449
//! `cnf`).

use serde::{Deserialize, Serialize};

/// One link of a delegation chain: `sub` acted, on behalf of the one in the nested `act`.
/// `client_id` and `cnf` (RFC 8693 §4.1 lets `act` carry claims that identify the actor)
/// are the delegator's identity id and the key its token was bound to: a token dies when
/// any identity above it leaves `active` or any key above it is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// The subjects from the innermost delegator out: `[parent, grandparent, ...]`
    /// read as the chain of who delegated.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.sub.clone()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.sub.clone());
            next = a.act.as_deref();
        }
        out
    }

    /// The identity ids of the delegators, nearest first; `None` if a link does not name
    /// its identity (such a token cannot be checked against its delegators' state).
    pub fn client_ids(&self) -> Option<Vec<&str>> {
        self.links().map(|a| a.client_id.as_deref()).collect()
    }

    /// Every link, nearest first.
    pub fn links(&self) -> impl Iterator<Item = &Act> {
        std::iter::successors(Some(self), |a| a.act.as_deref())
    }

    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
}

/// Proof-of-possession confirmation: the RFC 7638 thumbprint of the holder's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    pub jkt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// `spiffe://<trust-domain>/<kind>/<name>`.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The identity's id.
    pub client_id: String,
    /// Space-separated: the systems of the task.
    pub scope: String,
    /// The task this token belongs to.
    pub aim_task: String,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// For a delegated token: the jtis of every token above it, nearest first. Revoking
    /// any of them revokes this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aim_parents: Vec<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}
