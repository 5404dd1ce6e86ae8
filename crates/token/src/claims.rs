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

    /// When the token was issued, in milliseconds: from its `jti`, a UUIDv7 that aim makes
    /// from the issuing instant ([`new_jti`]), else `iat` (whole seconds). An identity's
    /// revocation kills what was issued up to it, so a second is too coarse: a token issued
    /// just after a resume, in the same second as the suspension, would die with the old ones.
    pub fn issued_ms(&self) -> i64 {
        uuid::Uuid::parse_str(&self.jti)
            .ok()
            .filter(|u| u.get_version_num() == 7)
            .and_then(|u| u.get_timestamp())
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                secs as i64 * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(self.iat * 1000)
    }
}

/// A new token id: a UUIDv7 made from the issuing instant `now_ms` (the issuer's clock),
/// so the id also says, to the millisecond, when the token was issued.
pub fn new_jti(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or_default();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
    uuid::Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_time_is_kept_to_the_millisecond_in_the_jti() {
        let ms = 1_795_000_000_123;
        let claims = |jti: String| AccessClaims {
            iss: String::new(),
            sub: String::new(),
            aud: String::new(),
            exp: 0,
            iat: 1_795_000_000,
            nbf: 0,
            jti,
            client_id: String::new(),
            scope: String::new(),
            aim_task: String::new(),
            sid: String::new(),
            act: None,
            cnf: None,
            aim_parents: Vec::new(),
        };
        assert_eq!(claims(new_jti(ms)).issued_ms(), ms);
        // A jti that is no UUIDv7 falls back to `iat`, in whole seconds.
        assert_eq!(claims("not-a-uuid".into()).issued_ms(), 1_795_000_000_000);
        let v4 = "6f1c1b8e-3d0a-4c7e-9b1a-2f5e8d7c6b5a".to_owned();
        assert_eq!(claims(v4).issued_ms(), 1_795_000_000_000);
    }
}
