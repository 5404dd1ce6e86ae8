//! Shared Signals (SSF 1.0): what cuts an identity off, as CAEP Security Event Tokens
//! (RFC 8417) pushed to receivers (RFC 8935), so identity providers and SaaS tools that
//! speak CAEP cut the agent off too. A `[[audit_sinks]]` of `kind = "caep"` reads the audit
//! log like any sink (from its stored position: nothing is skipped, a receiver that was
//! down catches up) and sends one SET per record that matters:
//!
//! | record | CAEP event |
//! |---|---|
//! | `identity.locked`, `.suspended`, `.decommissioned`, `.expired` | `session-revoked` |
//! | `token.revoked` | `session-revoked` (the token's session) |
//! | `agent_key.revoked` | `credential-change` (`change_type` `revoke`) |
//!
//! Each SET is signed with aim's token signing key (`typ: secevent+jwt`), so a receiver
//! verifies it with aim's JWKS; its `jti` is `aim-<seq>`, the same on every retry, for the
//! receiver to de-duplicate. The subject is the identity's SPIFFE id (`sub_id` format
//! `uri`), or its id (`opaque`) if it is gone.

use aim_domain::event::{ActorKind, AuditAction, Event};
use serde_json::{Value, json};

pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";

/// The CAEP event a record maps to, and the identity it is about.
pub fn event_of(e: &Event) -> Option<(&'static str, String)> {
    use AuditAction as A;
    let kind = match e.action {
        A::IdentityLocked
        | A::IdentitySuspended
        | A::IdentityDecommissioned
        | A::IdentityExpired => SESSION_REVOKED,
        A::TokenRevoked => SESSION_REVOKED,
        A::AgentKeyRevoked => CREDENTIAL_CHANGE,
        _ => return None,
    };
    // Each of these records names the identity as its target.
    if e.target_type != "identity" {
        return None;
    }
    let identity = e.target_id.clone();
    Some((kind, identity))
}

/// What a SET says, before it is signed.
#[derive(Debug)]
pub struct Set<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub identity_id: &'a str,
    /// Its SPIFFE id, when found.
    pub spiffe: Option<String>,
}

/// The claims of the SET for record `e` (one that [`event_of`] maps).
pub fn claims(e: &Event, kind: &str, set: &Set<'_>, now_secs: i64) -> Value {
    let sub_id = match &set.spiffe {
        Some(uri) => json!({ "format": "uri", "uri": uri }),
        None => json!({ "format": "opaque", "id": set.identity_id }),
    };
    let initiating = match e.actor.kind {
        ActorKind::Human => "admin",
        _ => "policy",
    };
    let mut event = json!({
        "event_timestamp": e.at.as_millis() / 1000,
        "initiating_entity": initiating,
        "reason_admin": { "en": reason(e) },
    });
    if kind == CREDENTIAL_CHANGE {
        event["credential_type"] = json!("x509");
        event["change_type"] = json!("revoke");
        if let Some(kid) = e.detail.get("kid").and_then(Value::as_str) {
            event["friendly_name"] = json!(kid);
        }
    }
    json!({
        "iss": set.issuer,
        "aud": set.audience,
        "jti": format!("aim-{}", e.seq),
        "iat": now_secs,
        "txn": e.request_id,
        "sub_id": sub_id,
        "events": { kind: event },
    })
}

fn reason(e: &Event) -> String {
    let what = e.action.as_str();
    let why: String = e
        .reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if why.is_empty() {
        format!("aim: {what}")
    } else {
        format!("aim: {what}: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_domain::event::Actor;
    use aim_domain::time::Timestamp;

    #[test]
    fn a_lock_is_a_session_revoked_about_the_identity() {
        let mut e = Event::new(
            Timestamp::from_millis(1_700_000_000_000),
            Actor::system("sweep"),
            AuditAction::IdentityLocked,
            "identity",
            "id-1",
        )
        .reason("incident 42\nforged line");
        e.seq = 7;
        let (kind, who) = event_of(&e).expect("a lock is a signal");
        assert_eq!((kind, who.as_str()), (SESSION_REVOKED, "id-1"));
        let set = Set {
            issuer: "https://aim.example",
            audience: "https://idp.example",
            identity_id: "id-1",
            spiffe: Some("spiffe://aim.example/agent/a".into()),
        };
        let c = claims(&e, kind, &set, 1_700_000_001);
        assert_eq!(c["jti"], "aim-7");
        assert_eq!(c["sub_id"]["uri"], "spiffe://aim.example/agent/a");
        let ev = &c["events"][SESSION_REVOKED];
        assert_eq!(ev["event_timestamp"], 1_700_000_000);
        assert_eq!(ev["initiating_entity"], "policy");
        assert_eq!(
            ev["reason_admin"]["en"],
            "aim: identity.locked: incident 42forged line"
        );
        let approved = Event::new(
            Timestamp::from_millis(0),
            Actor::system("x"),
            AuditAction::IdentityApproved,
            "identity",
            "id-1",
        );
        assert!(
            event_of(&approved).is_none(),
            "only what cuts an identity off"
        );
    }
}
