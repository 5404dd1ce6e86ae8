//! The naming policy: one regular expression per identity kind, so names say what they are
//! (`agt-claims-triage`, `svc-billing-export`) and stay greppable across systems.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::Refusal;
use crate::identity::IdentityKind;

/// The default pattern: a kind prefix and 3–48 lowercase letters, digits or hyphens.
pub const DEFAULT_PATTERN: &str = "^(agt|bot|svc|key|job)-[a-z0-9-]{3,48}$";

/// The longest name aim accepts whatever the policy says.
pub const MAX_NAME_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct NamingPolicy {
    default: Regex,
    per_kind: BTreeMap<IdentityKind, Regex>,
}

impl NamingPolicy {
    /// `per_kind` overrides the default pattern for some kinds.
    pub fn new(default: &str, per_kind: &BTreeMap<IdentityKind, String>) -> Result<Self, String> {
        let compile =
            |p: &str| Regex::new(p).map_err(|e| format!("invalid naming pattern `{p}`: {e}"));
        let mut map = BTreeMap::new();
        for (k, p) in per_kind {
            map.insert(*k, compile(p)?);
        }
        Ok(Self {
            default: compile(default)?,
            per_kind: map,
        })
    }

    pub fn pattern_for(&self, kind: IdentityKind) -> &Regex {
        self.per_kind.get(&kind).unwrap_or(&self.default)
    }

    pub fn check(&self, kind: IdentityKind, name: &str) -> Result<(), Refusal> {
        let re = self.pattern_for(kind);
        let printable = name.chars().all(|c| !c.is_control());
        if name.len() > MAX_NAME_LEN || !printable || !re.is_match(name) {
            return Err(Refusal::NamingPolicy {
                name: name
                    .chars()
                    .take(MAX_NAME_LEN)
                    .filter(|c| !c.is_control())
                    .collect(),
                kind: kind.as_str(),
                pattern: re.as_str().to_owned(),
            });
        }
        Ok(())
    }
}

impl Default for NamingPolicy {
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        Self {
            // INVARIANT: DEFAULT_PATTERN is a constant valid regex; `default_pattern` tests it.
            default: Regex::new(DEFAULT_PATTERN).expect("DEFAULT_PATTERN compiles"),
            per_kind: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern() {
        let p = NamingPolicy::default();
        for ok in ["agt-claims-triage", "svc-billing-export-2", "bot-abc"] {
            assert!(p.check(IdentityKind::AiAgent, ok).is_ok(), "{ok}");
        }
        for bad in [
            "Agt-claims",
            "agt-ab",
            "claims-bot",
            "agt_claims",
            "agt-claims\n",
            "agt-ÄÖÜ-x",
            "",
        ] {
            let e = p.check(IdentityKind::AiAgent, bad).unwrap_err();
            assert_eq!(e.code(), "naming_policy_violation", "{bad:?}");
        }
        let long = format!("agt-{}", "a".repeat(49));
        assert!(p.check(IdentityKind::Bot, &long).is_err());
    }

    #[test]
    fn per_kind_override() {
        let mut m = BTreeMap::new();
        m.insert(IdentityKind::AiAgent, "^agt-[a-z]{3,10}$".to_owned());
        let p = NamingPolicy::new(DEFAULT_PATTERN, &m).unwrap();
        assert!(p.check(IdentityKind::AiAgent, "agt-abc").is_ok());
        assert!(p.check(IdentityKind::AiAgent, "agt-abc-1").is_err());
        assert!(p.check(IdentityKind::Bot, "bot-abc-1").is_ok());
    }

    #[test]
    fn invalid_pattern_is_reported() {
        let e = NamingPolicy::new("(", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("invalid naming pattern"), "{e}");
    }
}
